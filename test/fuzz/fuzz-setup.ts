/**
 * What the generated-input tests share: the RPCs of every implemented service
 * (from the mesh model, so a new service is fuzzed without touching these
 * tests), a tenant with one fixture of each resource (so generated ids can hit
 * real data), a token per call that passes the RPC's access rule (so input
 * reaches the handler; service-only RPCs are called with a calling service's
 * certificate), fixed seeds, and the statuses that count as a defect.
 */
import { randomUUID } from "node:crypto";
import type { Role } from "@leadmesh/contracts/common/v1/access";
import { contracts, type MethodContract, roleClaim } from "@leadmesh/platform";
import { implementedServices, loadMeshModel, type RpcModel } from "../../scripts/mesh/model";
import { createQualifiedLead, distribute, expectOk, fundedBuyer, topUp } from "../harness/distribution";
import { authSignedToken, type RegisteredTenant, registerTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";
import type { RequestContext } from "../harness/proto-arbitraries";
import { RawGrpcClient, type RawOutcome } from "../harness/raw-grpc";

export interface FuzzCase {
  service: string;
  rpc: RpcModel;
  contract: MethodContract;
}

export const FUZZ_CASES: FuzzCase[] = implementedServices(loadMeshModel()).flatMap((service) =>
  service.rpcs.map((rpc) => ({ service: service.name, rpc, contract: contracts().method(rpc.path)! })),
);

export const FUZZED_SERVICES = [...new Set(FUZZ_CASES.map((c) => c.service))];

/**
 * Base seed of every property; each RPC and transport derives its own from
 * it, so a failure replays alone. FUZZ_SEED and FUZZ_RUNS_SCALE explore
 * further on demand (e.g. FUZZ_SEED=7 FUZZ_RUNS_SCALE=4 npx jest test/fuzz);
 * the suite itself always runs the fixed seed.
 */
export const BASE_SEED = Number(process.env.FUZZ_SEED ?? 20261202);

/** Runs of a property: `base` scaled by FUZZ_RUNS_SCALE (1 by default). */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * Number(process.env.FUZZ_RUNS_SCALE ?? 1)));
}

export function seedFor(label: string): number {
  let hash = BASE_SEED;
  for (const character of label) hash = (Math.imul(hash, 31) + character.charCodeAt(0)) | 0;
  return hash;
}

export { DEFECT_CODES } from "../harness/status-codes";

export interface FuzzTenant extends RequestContext {
  tenant: RegisteredTenant;
  /**
   * Fields a plausible request of an RPC needs to list the fixtures (by gRPC
   * path, as plausibleRequest overrides): e.g. the buyer whose ledger has a
   * second page, where the default id (the first lead's) would be NOT_FOUND.
   */
  listOverrides: Record<string, Record<string, unknown>>;
}

/** Two buyers, one topped up twice with two leads sold to it (so every buyers list has a second page), and one of its sales. */
async function buyerFixtures(token: string): Promise<{ buyerId: string; otherBuyerId: string; saleId: string }> {
  const api = { token };
  const buyer = await fundedBuyer(api, 5_000, { displayName: "Fuzz buyer", priceMinor: 700 });
  expectOk(await topUp(api, buyer.id, 2_000), `topping up buyer ${buyer.id} again`);
  const other = await fundedBuyer(api, 0, { displayName: "Fuzz buyer 2", priceMinor: 300 });
  const saleIds: string[] = [];
  for (const name of ["Sold 1", "Sold 2"]) {
    const lead = await createQualifiedLead(api, { firstName: name });
    saleIds.push(expectOk(await distribute(api, lead.id, { buyerId: buyer.id }), `selling lead ${lead.id}`).json.sale.leadSaleId);
  }
  return { buyerId: buyer.id, otherBuyerId: other.id, saleId: saleIds[0] };
}

/** A tenant with two leads (one with two notes), two departments, an invited user, a session, two buyers and two sales, whose ids generated requests may use. */
export async function fuzzTenant(label: string): Promise<FuzzTenant> {
  const tenant = await registerTenant(label);
  const token = tenant.accessToken;
  const lead = await rest("POST", "/api/v1/leads", { body: { firstName: "Fuzz", email: "fuzz@example.com", source: "LEAD_SOURCE_OTHER" }, token });
  const department = await rest("POST", "/api/v1/departments", { body: { displayName: "Fuzz" }, token });
  const user = await rest("POST", "/api/v1/users:invite", { body: { email: "invited@fuzz.example", displayName: "Invited", roles: ["ROLE_AGENT"] }, token });
  // Second items, so every list has a next page (and a page token to tamper with).
  const more = [
    await rest("POST", "/api/v1/leads", { body: { firstName: "Fuzz 2", email: "fuzz2@example.com", source: "LEAD_SOURCE_OTHER", score: 7 }, token }),
    await rest("POST", "/api/v1/departments", { body: { displayName: "Fuzz 2" }, token }),
    await rest("POST", `/api/v1/leads/${lead.json?.lead?.id}/activities`, { body: { note: { text: "first" } }, token }),
    await rest("POST", `/api/v1/leads/${lead.json?.lead?.id}/activities`, { body: { note: { text: "second" } }, token }),
  ];
  for (const response of [lead, department, user, ...more]) if (response.status !== 200) throw new Error(`fixture failed: ${response.status} ${response.text}`);
  const { buyerId, otherBuyerId, saleId } = await buyerFixtures(token);
  return {
    tenant,
    // The first seven by position: plausibleText takes [0] for ids, [4] for tenant_id, [6] for etag.
    knownIds: [
      lead.json.lead.id,
      department.json.department.id,
      user.json.user.id,
      tenant.adminId,
      tenant.tenantId,
      tenant.sessionId,
      lead.json.lead.etag,
      buyerId,
      otherBuyerId,
      saleId,
    ],
    listOverrides: {
      "/buyers.v1.BuyerService/ListBuyerLedgerEntries": { buyerId },
      "/buyers.v1.BuyerService/ListLeadSales": { buyerId },
    },
  };
}

/**
 * A fresh token per call whose role passes the RPC's rule: no token for a
 * public RPC, the strongest declared role. Fresh, because generated calls may
 * log out or revoke their caller. Service-only RPCs take no token: see callerFor.
 */
export async function tokenFor(rpc: RpcModel, tenantId: string): Promise<string | undefined> {
  const rule = rpc.access;
  if (!rule || rule.public) return undefined;
  const sub = `fuzz-${randomUUID().slice(0, 8)}`;
  if (rule.roles.length > 0) return authSignedToken({ tenant: tenantId, sub, roles: [roleClaim(Math.max(...rule.roles) as Role)] });
  throw new Error(`${rpc.path}: no user can pass its access rule (a service-only RPC: use callerFor)`);
}

/** Who calls an RPC over gRPC: a user's token (as the operator's certificate), or a declared calling service's certificate acting for the tenant. */
export interface FuzzCaller {
  token?: string;
  /** Mesh identity presented; the operator when absent. */
  identity?: string;
  tenant?: string;
}

/**
 * A services-only RPC that no implemented service is declared to call
 * (mesh/topology.yaml): no caller can reach its handler, so generated input
 * can only prove that every request is refused before it (e.g. leads'
 * BatchGetLeads, which buyers no longer calls).
 */
export function unreachable(rpc: RpcModel): boolean {
  const rule = rpc.access;
  return Boolean(rule && !rule.public && rule.roles.length === 0 && rpc.servicePeers.length === 0);
}

/** A caller that passes the RPC's rule and its peer allow-list, so input reaches the handler (for an unreachable RPC: the operator for the tenant, without a token). */
export async function callerFor(rpc: RpcModel, tenantId: string): Promise<FuzzCaller> {
  if (unreachable(rpc)) return { tenant: tenantId };
  const rule = rpc.access;
  if (rule && !rule.public && rule.roles.length === 0 && rpc.servicePeers.length > 0) return { identity: rpc.servicePeers[0], tenant: tenantId };
  return { token: await tokenFor(rpc, tenantId) };
}

/** Raw gRPC clients of the test mesh's services, one per service and identity presented. */
export class FuzzClients {
  private readonly clients = new Map<string, RawGrpcClient>();

  call(service: string, path: string, request: Uint8Array, caller: FuzzCaller): Promise<RawOutcome> {
    const key = `${service} ${caller.identity ?? ""} ${caller.tenant ?? ""}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new RawGrpcClient(`127.0.0.1:${meshInfo().services[service].grpc}`, { identity: caller.identity, tenant: caller.tenant });
      this.clients.set(key, client);
    }
    return client.call(path, request, caller.token);
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
