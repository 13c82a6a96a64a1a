/**
 * The leads half of lead distribution over real gRPC and mTLS, on the test
 * mesh's FerretDB and its real buyers service: leads runs in-process (its
 * own database, tokens signed by the test key) and reaches the mesh's buyers
 * with its own certificate, as in production. Buyers and their balances are
 * set up through Envoy as the tenant's admin. A second leads on the same
 * database whose buyers address goes nowhere plays the replica that loses
 * buyers mid-sale; a third, started when the test allows it, recovers.
 * (test/e2e/distribution.test.ts covers the flow through Envoy REST,
 * test/e2e/distribution-crash.test.ts the kill -9 at each step.)
 */
import { randomUUID } from "node:crypto";
import { LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import type { RunningService } from "@leadmesh/platform";
import { Status } from "nice-grpc";
import { ErrorInfo, PreconditionFailure, RichClientError } from "nice-grpc-error-details";
import { pollUntil } from "../../../test/harness/bounded";
import { serviceClient } from "../../../test/harness/clients";
import { type Api, fundedBuyer, getBuyer, ledgerEntries, minor } from "../../../test/harness/distribution";
import { registerTenant } from "../../../test/harness/identity";
import { startInProcess } from "../../../test/harness/in-process";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken } from "../../../test/harness/tokens";
import { startLeads } from "../src/main";
import { leadClient } from "./harness";

jest.setTimeout(120_000);

const CHARGE = "BUYER_LEDGER_ENTRY_TYPE_CHARGE";
/** Where nothing listens: SellLead fails at once with UNAVAILABLE. */
const NO_BUYERS = "ipv4:127.0.0.1:1";

let buyersAddress: string;
let selling: { service: RunningService; address: string; database: string };
let cutOff: { service: RunningService; address: string };

beforeAll(async () => {
  buyersAddress = `ipv4:127.0.0.1:${meshInfo().services.buyers.grpc}`;
  // Recovery of these two waits the default 30 s: no sweep can finish a sale before a test lets one.
  selling = await startInProcess("leads", (env, fetchKeys) => startLeads({ ...env, BUYERS_ADDRESS: buyersAddress }, fetchKeys));
  cutOff = await startInProcess("leads", (env, fetchKeys) => startLeads({ ...env, MONGO_DATABASE: selling.database, BUYERS_ADDRESS: NO_BUYERS }, fetchKeys));
});

afterAll(async () => {
  await Promise.all([selling?.service.shutdown(), cutOff?.service.shutdown()]);
});

/** Another replica on the same database that reaches buyers and takes a distribution as interrupted after 1 s. */
const startRecoveringReplica = () =>
  startInProcess("leads", (env, fetchKeys) =>
    startLeads(
      { ...env, MONGO_DATABASE: selling.database, BUYERS_ADDRESS: buyersAddress, LEADS_DISTRIBUTION_STALE_MS: "1000", LEADS_DISTRIBUTION_SWEEP_MS: "200" },
      fetchKeys,
    ),
  );

/** A tenant registered in the mesh (buyers knows it and its time zone) and its admin's REST access. */
async function tenant(label: string): Promise<{ tenantId: string; api: Api }> {
  const registered = await registerTenant(label);
  return { tenantId: registered.tenantId, api: { token: registered.accessToken } };
}

const managerOf = (address: string, tenantId: string) => leadClient(address, mintToken({ tenant: tenantId, sub: "manager-1", roles: ["manager"] }));

async function rpcError(call: Promise<unknown>): Promise<RichClientError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(RichClientError);
    return error as RichClientError;
  }
  throw new Error("call succeeded but an error was expected");
}

function detailsOf(error: RichClientError) {
  const info = error.extra.find((detail): detail is ErrorInfo => detail.$type === ErrorInfo.$type);
  const failure = error.extra.find((detail): detail is PreconditionFailure => detail.$type === PreconditionFailure.$type);
  return { code: error.code, reason: info?.reason, metadata: info?.metadata ?? {}, violations: failure?.violations ?? [] };
}

async function qualifiedLead(client: ReturnType<typeof managerOf>["client"]) {
  const { lead } = await client.createLead({
    lead: { firstName: "Sale", email: "sale@example.com", source: LeadSource.LEAD_SOURCE_WEB_FORM, status: LeadStatus.LEAD_STATUS_QUALIFIED, score: 50 },
  });
  if (!lead) throw new Error("CreateLead answered no lead");
  return lead;
}

describe("DistributeLead against the mesh's buyers", () => {
  it("sells a lead once over mTLS and freezes its status; ReleaseLeadSale from buyers frees it, never for that buyer again", async () => {
    const { tenantId, api } = await tenant("leads-dist");
    const buyer = await fundedBuyer(api, 5_000, { priceMinor: 1_250 });
    const manager = managerOf(selling.address, tenantId);
    const lead = await qualifiedLead(manager.client);

    const { lead: sold, sale } = await manager.client.distributeLead({ leadId: lead.id });
    expect(sale).toMatchObject({ buyerId: buyer.id, price: { currencyCode: "USD", amountMinor: "1250" } });
    expect(sale?.sellTime).toBeInstanceOf(Date);
    expect(sold).toMatchObject({ status: LeadStatus.LEAD_STATUS_SOLD, sale, etag: "3" });
    expect((await manager.client.getLead({ id: lead.id })).lead).toEqual(sold);
    const activities = (await manager.client.listLeadActivities({ leadId: lead.id })).activities.map((activity) => activity.detail);
    expect(activities).toEqual([{ $case: "statusChange", value: { fromStatus: LeadStatus.LEAD_STATUS_QUALIFIED, toStatus: LeadStatus.LEAD_STATUS_SOLD } }]);
    expect(minor((await getBuyer(api, buyer.id)).json.buyer.balance)).toBe(3_750n);

    // Only a distribution sells, and a sold lead's status belongs to its sale.
    const other = await qualifiedLead(manager.client);
    const setSold = await rpcError(manager.client.updateLead({ lead: { id: other.id, status: LeadStatus.LEAD_STATUS_SOLD }, updateMask: ["status"] }));
    expect(setSold.code).toBe(Status.INVALID_ARGUMENT);
    const reopen = await rpcError(manager.client.updateLead({ lead: { id: lead.id, status: LeadStatus.LEAD_STATUS_NEW }, updateMask: ["status"] }));
    expect(detailsOf(reopen)).toMatchObject({ code: Status.FAILED_PRECONDITION, metadata: { lead_sale_id: sale?.leadSaleId } });
    const again = await rpcError(manager.client.distributeLead({ leadId: lead.id }));
    expect(again.details).toBe(`lead "${lead.id}" is already sold (sale ${sale?.leadSaleId})`);

    // buyers, after refunding a return, releases the lead: once, whatever the retries.
    const asBuyers = serviceClient(LeadServiceDefinition, selling.address, "buyers", tenantId, { server: "leads" });
    const released = (await asBuyers.client.releaseLeadSale({ leadId: lead.id, leadSaleId: sale?.leadSaleId ?? "" })).lead;
    expect(released).toMatchObject({ status: LeadStatus.LEAD_STATUS_QUALIFIED, sale: undefined, returnedBuyerIds: [buyer.id] });
    expect((await asBuyers.client.releaseLeadSale({ leadId: lead.id, leadSaleId: sale?.leadSaleId ?? "" })).lead).toEqual(released);
    asBuyers.close();

    // Distributable again, but its only buyer returned it: FAILED_PRECONDITION with buyers' reason, relayed over gRPC.
    const refused = detailsOf(await rpcError(manager.client.distributeLead({ leadId: lead.id })));
    expect(refused).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "NO_MATCHING_BUYER" });
    expect(refused.violations).toEqual([
      expect.objectContaining({
        type: "BUYER_SKIPPED",
        subject: `buyers/${buyer.id}`,
        description: expect.stringMatching(/^BUYER_SKIP_REASON_RETURNED_BEFORE: /),
      }),
    ]);
    expect((await manager.client.getLead({ id: lead.id })).lead).toMatchObject({ status: LeadStatus.LEAD_STATUS_QUALIFIED, returnedBuyerIds: [buyer.id] });
    // The refused distribution let go of the lead: its status may change again.
    const moved = await manager.client.updateLead({ lead: { id: lead.id, status: LeadStatus.LEAD_STATUS_UNQUALIFIED }, updateMask: ["status"] });
    expect(moved.lead?.status).toBe(LeadStatus.LEAD_STATUS_UNQUALIFIED);
    manager.close();
  });

  it("keeps a sale whose outcome is unknown claimed (status, delete and other distributions refused) until recovery completes it, charged once", async () => {
    const { tenantId, api } = await tenant("leads-recover");
    const buyer = await fundedBuyer(api, 5_000, { priceMinor: 700 });
    const cutOffManager = managerOf(cutOff.address, tenantId);
    const manager = managerOf(selling.address, tenantId);
    const lead = await qualifiedLead(manager.client);
    const requestId = randomUUID();

    const pending = detailsOf(await rpcError(cutOffManager.client.distributeLead({ leadId: lead.id, requestId })));
    expect(pending).toMatchObject({ code: Status.UNAVAILABLE, reason: "OPERATION_PENDING" });
    const leadSaleId = pending.metadata.lead_sale_id;
    expect(leadSaleId).toMatch(/^[A-Za-z0-9_-]+$/);

    // While buyers' answer is unknown nothing else may move the lead (on either replica).
    for (const refusal of [
      cutOffManager.client.updateLead({ lead: { id: lead.id, status: LeadStatus.LEAD_STATUS_LOST }, updateMask: ["status"] }),
      cutOffManager.client.deleteLead({ id: lead.id }),
      cutOffManager.client.distributeLead({ leadId: lead.id, requestId: randomUUID() }),
    ]) {
      expect(detailsOf(await rpcError(refusal))).toMatchObject({ code: Status.ABORTED, reason: "DISTRIBUTION_IN_PROGRESS" });
    }

    // A replica that reaches buyers recovers it once the distribution is stale: sold, under the pending sale id.
    const recovering = await startRecoveringReplica();
    const recovered = await pollUntil(
      "recovery to sell the lead",
      async () => {
        const { lead: current } = await manager.client.getLead({ id: lead.id });
        return current?.status === LeadStatus.LEAD_STATUS_SOLD ? current : undefined;
      },
      30_000,
    );
    expect(recovered.sale).toMatchObject({ leadSaleId, buyerId: buyer.id, price: { amountMinor: "700" } });
    // The retry the client makes with its request id answers that sale, even on the replica cut off from buyers.
    expect((await cutOffManager.client.distributeLead({ leadId: lead.id, requestId })).sale).toEqual(recovered.sale);
    const charges = (await ledgerEntries(api, buyer.id)).filter((entry) => entry.type === CHARGE);
    expect(charges).toEqual([expect.objectContaining({ leadId: lead.id, leadSaleId })]);
    expect(minor((await getBuyer(api, buyer.id)).json.buyer.balance)).toBe(4_300n);
    cutOffManager.close();
    manager.close();
    await recovering.service.shutdown();
  });
});
