import { type Buyer, BuyerState, type DeepPartial } from "@leadmesh/contracts/buyers/v1/buyer";
import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import type { RunningService } from "@leadmesh/platform";
import { BadRequest, ErrorInfo, RichClientError } from "nice-grpc-error-details";
import { grpcClient } from "../../../test/harness/clients";
import { startInProcess } from "../../../test/harness/in-process";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken } from "../../../test/harness/tokens";
import { startBuyers } from "../src/main";

/**
 * The buyers service in-process on the test mesh's FerretDB and Redis,
 * serving mTLS with its own certificate, asking the mesh's users service for
 * tenant time zones (as the buyers identity). `database` shares another
 * instance's database: two replicas of one deployment (read-cache tests).
 */
export async function startBuyersForTest(database?: string): Promise<{ service: RunningService; address: string; database: string }> {
  const usersAddress = `127.0.0.1:${meshInfo().services.users.grpc}`;
  const started = await startInProcess("buyers", (env, fetchKeys) =>
    startBuyers({ ...env, USERS_ADDRESS: usersAddress, ...(database ? { MONGO_DATABASE: database } : {}) }, fetchKeys),
  );
  return { ...started, database: database ?? started.database };
}

export type RoleClaim = "agent" | "manager" | "admin";

/** A BuyerService client acting as a user of `tenant`. */
export function buyerClient(address: string, tenant: string, roles: RoleClaim[] = ["manager"], sub = "manager-1") {
  return grpcClient(BuyerServiceDefinition, address, mintToken({ tenant, sub, roles }));
}

export function sampleBuyer(overrides: DeepPartial<Buyer> = {}): DeepPartial<Buyer> {
  return {
    displayName: "Acme Leads",
    contactEmail: "buying@acme.example.com",
    state: BuyerState.BUYER_STATE_UNSPECIFIED,
    pricePerLead: { currencyCode: "USD", amountMinor: "1250" },
    ...overrides,
  };
}

export async function rpcError(call: Promise<unknown>): Promise<RichClientError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(RichClientError);
    return error as RichClientError;
  }
  throw new Error("call succeeded but an error was expected");
}

export function details(error: RichClientError) {
  const info = error.extra.find((detail) => detail.$type === ErrorInfo.$type) as ErrorInfo | undefined;
  const badRequest = error.extra.find((detail) => detail.$type === BadRequest.$type) as BadRequest | undefined;
  return { code: error.code, reason: info?.reason, metadata: info?.metadata, fields: badRequest?.fieldViolations.map((violation) => violation.field) ?? [] };
}
