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
import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import { LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import type { RunningService } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { Status } from "nice-grpc";
import { ErrorInfo, PreconditionFailure, RichClientError } from "nice-grpc-error-details";
import { pollUntil } from "../../../test/harness/bounded";
import { serviceClient } from "../../../test/harness/clients";
import { type Api, expectOk, fundedBuyer, getBuyer, ledgerEntries, minor, returnSale } from "../../../test/harness/distribution";
import { registerTenant } from "../../../test/harness/identity";
import { startInProcess } from "../../../test/harness/in-process";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken } from "../../../test/harness/tokens";
import { DistributionMarkers } from "../src/distribution/markers";
import { startLeads } from "../src/main";
import { leadClient } from "./harness";

jest.setTimeout(120_000);

const CHARGE = "BUYER_LEDGER_ENTRY_TYPE_CHARGE";
const REFUND = "BUYER_LEDGER_ENTRY_TYPE_REFUND";
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

describe("returned sales against the mesh's buyers", () => {
  // The mesh's buyers releases returned sales at the mesh's own leads, not at this in-process one (another
  // database): these tests call ReleaseLeadSale as buyers where buyers' release would land.

  it("refuses a retry with the request_id of a returned sale: FAILED_PRECONDITION, lead QUALIFIED, no new charge", async () => {
    const { tenantId, api } = await tenant("leads-return-retry");
    const buyer = await fundedBuyer(api, 5_000, { priceMinor: 1_000 });
    const manager = managerOf(selling.address, tenantId);
    const lead = await qualifiedLead(manager.client);
    const requestId = randomUUID();
    const { sale } = await manager.client.distributeLead({ leadId: lead.id, requestId });
    const leadSaleId = sale?.leadSaleId ?? "";
    expectOk(await returnSale(api, leadSaleId), "returning the sale");
    const asBuyers = serviceClient(LeadServiceDefinition, selling.address, "buyers", tenantId, { server: "leads" });
    await asBuyers.client.releaseLeadSale({ leadId: lead.id, leadSaleId });
    asBuyers.close();

    const retry = detailsOf(await rpcError(manager.client.distributeLead({ leadId: lead.id, requestId })));
    expect(retry).toMatchObject({ code: Status.FAILED_PRECONDITION, metadata: { lead_sale_id: leadSaleId, lead_sale_state: "RETURNED" } });
    expect((await manager.client.getLead({ id: lead.id })).lead).toMatchObject({
      status: LeadStatus.LEAD_STATUS_QUALIFIED,
      sale: undefined,
      returnedBuyerIds: [buyer.id],
    });
    const entries = await ledgerEntries(api, buyer.id);
    expect(entries.filter((entry) => entry.type === CHARGE)).toHaveLength(1);
    expect(entries.filter((entry) => entry.type === REFUND)).toHaveLength(1);
    expect(minor((await getBuyer(api, buyer.id)).json.buyer.balance)).toBe(5_000n);
    manager.close();
  });

  it("recovers a sale buyers made and the buyer returned before leads recorded it: QUALIFIED, the buyer in returnedBuyerIds, never SOLD", async () => {
    const { tenantId, api } = await tenant("leads-return-pending");
    const buyer = await fundedBuyer(api, 5_000, { priceMinor: 600 });
    const cutOffManager = managerOf(cutOff.address, tenantId);
    const manager = managerOf(selling.address, tenantId);
    const lead = await qualifiedLead(manager.client);
    const requestId = randomUUID();
    const pending = detailsOf(await rpcError(cutOffManager.client.distributeLead({ leadId: lead.id, requestId })));
    const leadSaleId = pending.metadata.lead_sale_id ?? "";

    // buyers makes the sale (as a SellLead whose answer never reached leads would), and the buyer returns it.
    const asLeads = serviceClient(BuyerServiceDefinition, buyersAddress, "leads", tenantId, { server: "buyers" });
    const { leadSale } = await asLeads.client.sellLead({ leadSaleId, lead, buyerId: "", validateOnly: false });
    asLeads.close();
    expect(leadSale).toMatchObject({ id: leadSaleId, buyerId: buyer.id, state: LeadSaleState.LEAD_SALE_STATE_SOLD });
    expectOk(await returnSale(api, leadSaleId), "returning the sale");

    const recovering = await startRecoveringReplica();
    const released = await pollUntil(
      "recovery to release the returned sale",
      async () => {
        const { lead: current } = await manager.client.getLead({ id: lead.id });
        return current?.returnedBuyerIds.includes(buyer.id) ? current : undefined;
      },
      30_000,
    );
    expect(released).toMatchObject({ status: LeadStatus.LEAD_STATUS_QUALIFIED, sale: undefined });
    expect((await manager.client.listLeadActivities({ leadId: lead.id })).activities).toEqual([]);
    const retry = detailsOf(await rpcError(manager.client.distributeLead({ leadId: lead.id, requestId })));
    expect(retry).toMatchObject({ code: Status.FAILED_PRECONDITION, metadata: { lead_sale_id: leadSaleId, lead_sale_state: "RETURNED" } });
    // Free again: status changes are allowed, the claim is gone.
    const moved = await manager.client.updateLead({ lead: { id: lead.id, status: LeadStatus.LEAD_STATUS_LOST }, updateMask: ["status"] });
    expect(moved.lead?.status).toBe(LeadStatus.LEAD_STATUS_LOST);
    expect((await ledgerEntries(api, buyer.id)).filter((entry) => entry.type === CHARGE)).toHaveLength(1);
    expect(minor((await getBuyer(api, buyer.id)).json.buyer.balance)).toBe(5_000n);
    cutOffManager.close();
    manager.close();
    await recovering.service.shutdown();
  });
});

describe("distribution markers on FerretDB", () => {
  it("re-open per attempt (fresh startTime, new openId), close and defer only the opening they name, and skip markers not yet due", async () => {
    const client = new MongoClient(meshInfo().mongoUrl);
    try {
      const markers = new DistributionMarkers(client.db(`leads_markers_${Date.now().toString(36)}`));
      const opening = { _id: "D", tenantId: "acme", leadId: "lead-1" };
      const first = await markers.open({ ...opening, startTime: new Date(1_000) });
      const second = await markers.open({ ...opening, startTime: new Date(50_000) });
      expect(second).not.toBe(first);
      // The retry's opening is what recovery sees: not stale before 50 s.
      expect(await markers.due(new Date(40_000), new Date(40_000), 10)).toEqual([]);
      const [stale] = await markers.due(new Date(60_000), new Date(60_000), 10);
      expect(stale).toMatchObject({ ...opening, startTime: new Date(50_000), openId: second, attempts: 0, nextAttemptTime: null });
      // A closer or a backoff that saw the first opening changes nothing.
      await markers.close("D", first);
      await markers.defer("D", first, 5, new Date(1_000_000));
      expect(await markers.due(new Date(60_000), new Date(60_000), 10)).toHaveLength(1);
      await markers.defer("D", second, 1, new Date(70_000));
      expect(await markers.due(new Date(60_000), new Date(60_000), 10)).toEqual([]);
      expect(await markers.due(new Date(60_000), new Date(70_000), 10)).toEqual([expect.objectContaining({ attempts: 1 })]);
      await markers.close("D", second);
      expect(await markers.due(new Date(60_000), new Date(70_000), 10)).toEqual([]);
      // Openings racing for a missing marker both land (one inserts, one updates).
      const racing = await Promise.all([1, 2, 3].map(() => markers.open({ ...opening, _id: "E", startTime: new Date(2_000) })));
      const [raced] = await markers.due(new Date(60_000), new Date(60_000), 10);
      expect(racing).toContain(raced?.openId);
    } finally {
      await client.close();
    }
  });
});
