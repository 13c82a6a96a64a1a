/**
 * The leads half of the distribution protocol (distribute.ts, recovery.ts,
 * release.ts) against in-memory leads and markers and a scripted buyers
 * gateway that decides each sale id once, as SellLead does. The real store
 * and the real buyers are exercised by the integration and crash tests.
 */
import type { LeadSale } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { type CallerContext, DomainError, OperationPendingError, PreconditionFailureError, type RevisionedWrite } from "@leadmesh/platform";
import { type CallContext, Status } from "nice-grpc-common";
import { pino } from "pino";
import type { ActivityDetail } from "../domain/activity-rules";
import { newLead } from "../domain/lead-rules";
import { leadSaleIdFor } from "../domain/sale-rules";
import { type LeadDocument, storedFields } from "../store";
import type { SaleGateway, SellLeadCall, SellOutcome } from "./buyers-gateway";
import { Distributor, type MarkerRecords } from "./distribute";
import { type LeadRecords, LeadWriter } from "./lead-writer";
import type { DistributionMarker, MarkerOpening } from "./markers";
import { DistributionRecovery } from "./recovery";
import { releaseLeadSale } from "./release";

const TENANT = "acme";
const QUALIFIED = LeadStatus[LeadStatus.LEAD_STATUS_QUALIFIED];
const SOLD = LeadStatus[LeadStatus.LEAD_STATUS_SOLD];

/** Leads in memory; write() is the revisioned write's contract: the change applies to the latest revision, re-read on a lost race. */
class MemoryLeads implements LeadRecords {
  readonly documents = new Map<string, LeadDocument>();
  readonly activities = new Map<string, { leadId: string; detail: ActivityDetail }>();
  /** Awaited before each write reads the lead (a slow claim write). */
  beforeWrite: (() => Promise<void>) | undefined;
  /** The next write lands, then throws (its answer lost, as on a socket timeout). */
  loseNextWriteAnswer = false;

  async get(tenantId: string, id: string): Promise<LeadDocument | null> {
    const document = this.documents.get(id);
    return document?.tenantId === tenantId ? structuredClone(document) : null;
  }

  async write(request: RevisionedWrite<LeadDocument>): Promise<{ before: LeadDocument; after: LeadDocument }> {
    await this.beforeWrite?.();
    const result = await this.apply(request);
    if (this.loseNextWriteAnswer) {
      this.loseNextWriteAnswer = false;
      throw new Error("socket timeout: the write's answer was lost");
    }
    return result;
  }

  private async apply(request: RevisionedWrite<LeadDocument>): Promise<{ before: LeadDocument; after: LeadDocument }> {
    for (;;) {
      const current = await request.read();
      const changes = await request.change(current);
      if (!changes) return { before: current, after: current };
      if (this.documents.get(current._id)?.revision !== current.revision) continue;
      const after = { ...current, ...changes, ...request.stamp?.(), revision: current.revision + 1 };
      this.documents.set(after._id, structuredClone(after));
      return { before: current, after };
    }
  }

  async insertActivity(
    _tenantId: string,
    leadId: string,
    _authorId: string,
    detail: ActivityDetail,
    _now: Date,
    id = `a${this.activities.size}`,
  ): Promise<unknown> {
    if (!this.activities.has(id)) this.activities.set(id, { leadId, detail });
    return undefined;
  }

  add(status = QUALIFIED): LeadDocument {
    const input = newLead(Lead.fromPartial({ firstName: "Ada", email: "ada@example.com", source: LeadSource.LEAD_SOURCE_WEB_FORM }));
    const id = `lead-${this.documents.size + 1}`;
    const document: LeadDocument = {
      _id: id,
      tenantId: TENANT,
      ...storedFields(input),
      status,
      createTime: new Date(0),
      updateTime: new Date(0),
      deleteTime: null,
      revision: 1,
    };
    this.documents.set(id, document);
    return document;
  }

  now(id: string): LeadDocument {
    const document = this.documents.get(id);
    if (!document) throw new Error(`no lead ${id}`);
    return document;
  }
}

/** The marker collection's contract (markers.ts): open upserts a new opening, close and defer only touch the opening they name. */
class MemoryMarkers implements MarkerRecords {
  readonly markers = new Map<string, DistributionMarker>();
  private openings = 0;
  async open(marker: MarkerOpening): Promise<string> {
    this.openings += 1;
    const openId = `open-${this.openings}`;
    this.markers.set(marker._id, { ...marker, openId, attempts: 0, nextAttemptTime: null });
    return openId;
  }
  async close(leadSaleId: string, openId: string | null): Promise<void> {
    if ((this.markers.get(leadSaleId)?.openId ?? null) === openId) this.markers.delete(leadSaleId);
  }
  async due(before: Date, now: Date, limit: number): Promise<DistributionMarker[]> {
    return [...this.markers.values()]
      .filter((marker) => marker.startTime < before && (!marker.nextAttemptTime || marker.nextAttemptTime <= now))
      .sort((a, b) => a.startTime.getTime() - b.startTime.getTime())
      .slice(0, limit)
      .map((marker) => ({ ...marker }));
  }
  async defer(leadSaleId: string, openId: string | null, attempts: number, nextAttemptTime: Date): Promise<void> {
    const marker = this.markers.get(leadSaleId);
    if (marker && (marker.openId ?? null) === openId) this.markers.set(leadSaleId, { ...marker, attempts, nextAttemptTime });
  }
}

type Script = "sell" | "refuse" | "unavailable";

/**
 * buyers' SellLead as leads sees it: each sale id's outcome is decided by
 * the first call that reaches a decision and answered alike afterwards;
 * "unavailable" decides nothing. `hold` keeps calls waiting until released.
 */
class ScriptedBuyers implements SaleGateway {
  script: Script = "sell";
  /** Sale ids whose calls fail before deciding anything, whatever the script. */
  readonly failing = new Set<string>();
  /** The next decision is made, then its answer is lost on the way back (leads sees an error). */
  loseNextAnswer = false;
  readonly calls: SellLeadCall[] = [];
  private readonly decided = new Map<string, SellOutcome>();
  private held: (() => void)[] | undefined;

  hold(): void {
    this.held = [];
  }
  release(): void {
    for (const resume of this.held ?? []) resume();
    this.held = undefined;
  }
  get waiting(): number {
    return this.held?.length ?? 0;
  }

  async sellLead(call: SellLeadCall, _context?: unknown, signal?: AbortSignal): Promise<SellOutcome> {
    this.calls.push(call);
    if (this.held) {
      await new Promise<void>((resume, reject) => {
        this.held?.push(resume);
        signal?.addEventListener("abort", () => reject(new Error("CANCELLED: the call was aborted")));
      });
    }
    if (call.validateOnly) return { kind: "sold", sale: sale(call, LeadSaleState.LEAD_SALE_STATE_PENDING) };
    if (this.failing.has(call.leadSaleId)) throw new Error("connect ECONNREFUSED buyers");
    const known = this.decided.get(call.leadSaleId);
    if (known) return known;
    if (this.script === "unavailable") throw new Error("connect ECONNREFUSED buyers");
    const outcome: SellOutcome =
      this.script === "sell"
        ? { kind: "sold", sale: sale(call, LeadSaleState.LEAD_SALE_STATE_SOLD) }
        : {
            kind: "refused",
            error: new PreconditionFailureError("NO_MATCHING_BUYER", `no buyer can take lead ${call.lead.id}`, [
              { type: "BUYER_SKIPPED", subject: "buyers/b-1", description: "BUYER_SKIP_REASON_DAILY_CAP: 10 of 10 sold today" },
            ]),
          };
    this.decided.set(call.leadSaleId, outcome);
    if (this.loseNextAnswer) {
      this.loseNextAnswer = false;
      throw new Error("DEADLINE_EXCEEDED: the answer was lost");
    }
    return outcome;
  }

  /** The buyer returns sale D (buyers' ReturnLeadSale): every later SellLead(D) answers that D was returned. */
  returnSale(leadSaleId: string): void {
    const known = this.decided.get(leadSaleId);
    if (known?.kind !== "sold") throw new Error(`sale ${leadSaleId} was not sold`);
    this.decided.set(leadSaleId, { kind: "returned", buyerId: known.sale.buyerId });
  }

  close(): void {}
}

function sale(call: SellLeadCall, state: LeadSaleState): LeadSale {
  return {
    id: state === LeadSaleState.LEAD_SALE_STATE_PENDING ? "" : call.leadSaleId,
    tenantId: call.tenantId,
    leadId: call.lead.id,
    buyerId: call.buyerId || "b-1",
    price: { currencyCode: "USD", amountMinor: "1250" },
    state,
    returnReason: 0,
    returnComment: "",
    createTime: new Date(1000),
    updateTime: new Date(1000),
    sellTime: state === LeadSaleState.LEAD_SALE_STATE_SOLD ? new Date(1000) : undefined,
    returnTime: undefined,
    etag: "1",
    returnDeadline: undefined,
  };
}

function setup() {
  let now = new Date("2026-12-02T12:00:00Z");
  const clock = () => now;
  const leads = new MemoryLeads();
  const markers = new MemoryMarkers();
  const buyers = new ScriptedBuyers();
  const cached = new Map<string, Lead>();
  const writer = new LeadWriter(
    leads,
    async (lead) => {
      cached.set(lead.id, lead);
      return lead;
    },
    clock,
  );
  const logger = pino({ level: "silent" });
  const distributor = new Distributor({ writer, markers, buyers, logger });
  const recovery = new DistributionRecovery(distributor, markers, writer, { sweepMs: 1000, staleMs: 30_000 }, logger);
  const context = (actorId = "manager-1", kind: "user" | "service" = "user") =>
    ({
      caller: { kind, tenantId: TENANT, actorId, roles: [3], sessionId: "", tokenId: "", tokenExpiresAt: 0, peer: "ingress" },
      signal: new AbortController().signal,
      metadata: new Map(),
    }) as unknown as CallContext & CallerContext;
  const distribute = (leadId: string, requestId = "", buyerId = "", validateOnly = false) =>
    distributor.distribute({ leadId, requestId, buyerId, validateOnly }, context());
  const advance = (ms: number) => {
    now = new Date(now.getTime() + ms);
  };
  return { leads, markers, buyers, cached, writer, distributor, recovery, context, distribute, advance };
}

async function failure(call: Promise<unknown>): Promise<DomainError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    return error as DomainError;
  }
  throw new Error("expected the call to fail");
}

describe("DistributeLead", () => {
  it("sells a QUALIFIED lead: SOLD with its sale, one status change, marker closed, the cache holding the sold lead", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    const { lead, sale: summary } = await t.distribute(_id);
    expect(summary).toEqual({
      leadSaleId: t.buyers.calls[0]?.leadSaleId,
      buyerId: "b-1",
      price: { currencyCode: "USD", amountMinor: "1250" },
      sellTime: new Date(1000),
    });
    expect(lead).toMatchObject({ status: LeadStatus.LEAD_STATUS_SOLD, sale: summary, etag: "3" });
    expect(t.leads.now(_id)).toMatchObject({ status: SOLD, distribution: null, sale: { priceMinor: 1250, currencyCode: "USD", buyerId: "b-1" } });
    expect([...t.leads.activities.values()]).toEqual([
      { leadId: _id, detail: { $case: "statusChange", value: { fromStatus: LeadStatus.LEAD_STATUS_QUALIFIED, toStatus: LeadStatus.LEAD_STATUS_SOLD } } },
    ]);
    expect(t.markers.markers.size).toBe(0);
    expect(t.cached.get(_id)).toEqual(lead);
    // buyers saw the lead as claimed (its criteria are matched on it), for the tenant, with no buyer named.
    expect(t.buyers.calls[0]).toMatchObject({
      tenantId: TENANT,
      buyerId: "",
      validateOnly: false,
      lead: { id: _id, status: LeadStatus.LEAD_STATUS_QUALIFIED },
    });
  });

  it("lets one of many concurrent distributions claim the lead; the others get ABORTED, then FAILED_PRECONDITION once sold", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.hold();
    const first = t.distribute(_id);
    // Wait until the winner is at buyers (holding the claim).
    for (let i = 0; i < 100 && t.buyers.waiting === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(t.buyers.waiting).toBe(1);
    const rivals = await Promise.all([1, 2, 3, 4].map(() => failure(t.distribute(_id))));
    for (const rival of rivals) expect(rival).toMatchObject({ code: Status.ABORTED, reason: "DISTRIBUTION_IN_PROGRESS" });
    // The losers' fresh sale ids left no markers behind; only the winner's.
    expect(t.markers.markers.size).toBe(1);
    t.buyers.release();
    const { sale: sold } = await first;
    expect(t.buyers.calls).toHaveLength(1);
    const late = await failure(t.distribute(_id));
    expect(late).toMatchObject({ code: Status.FAILED_PRECONDITION, message: `lead "${_id}" is already sold (sale ${sold?.leadSaleId})` });
  });

  it("settles distributions that all read the lead free: one claim lands, the others lose at the claim and leave no marker", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.hold();
    // Started together: every call reads the lead before any claim is written.
    const calls = [1, 2, 3, 4, 5].map(() =>
      t.distribute(_id).then(
        () => "sold",
        (error: DomainError) => error.reason,
      ),
    );
    for (let i = 0; i < 100 && t.buyers.waiting === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    t.buyers.release();
    expect((await Promise.all(calls)).sort()).toEqual([
      "DISTRIBUTION_IN_PROGRESS",
      "DISTRIBUTION_IN_PROGRESS",
      "DISTRIBUTION_IN_PROGRESS",
      "DISTRIBUTION_IN_PROGRESS",
      "sold",
    ]);
    expect(t.buyers.calls).toHaveLength(1);
    expect(t.markers.markers.size).toBe(0);
  });

  it("answers a retry with the same request_id with the same sale, asking buyers nothing more", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    const first = await t.distribute(_id, "req-1");
    const again = await t.distribute(_id, "req-1");
    expect(again).toEqual(first);
    expect(t.buyers.calls).toHaveLength(1);
    expect((await failure(t.distribute(_id, "req-2"))).code).toBe(Status.FAILED_PRECONDITION);
  });

  it("relays no match with the reasons per buyer, and leaves the lead QUALIFIED and free", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.script = "refuse";
    const error = await failure(t.distribute(_id));
    expect(error).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "NO_MATCHING_BUYER" });
    expect(error.preconditionViolations).toEqual([
      { type: "BUYER_SKIPPED", subject: "buyers/b-1", description: "BUYER_SKIP_REASON_DAILY_CAP: 10 of 10 sold today" },
    ]);
    expect(t.leads.now(_id)).toMatchObject({ status: QUALIFIED, distribution: null });
    expect(t.markers.markers.size).toBe(0);
    // Free again: once a buyer can take it, it sells.
    t.buyers.script = "sell";
    expect((await t.distribute(_id)).lead?.status).toBe(LeadStatus.LEAD_STATUS_SOLD);
  });

  it("keeps the claim when buyers cannot be reached: UNAVAILABLE naming the sale, status and delete frozen, a retry resumes", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.script = "unavailable";
    const error = await failure(t.distribute(_id, "req-1"));
    expect(error).toBeInstanceOf(OperationPendingError);
    const pendingId = t.buyers.calls[0]?.leadSaleId;
    expect(error).toMatchObject({
      code: Status.UNAVAILABLE,
      message: `distribution of lead "${_id}" is pending and completes automatically (sale ${pendingId})`,
      metadata: { lead_sale_id: pendingId },
    });
    expect(t.leads.now(_id).distribution).toMatchObject({ leadSaleId: pendingId, requestId: "req-1", actorId: "manager-1" });
    expect([...t.markers.markers.keys()]).toEqual([pendingId]);
    // Another request cannot start while the outcome is unknown.
    expect((await failure(t.distribute(_id, "req-2"))).code).toBe(Status.ABORTED);
    t.buyers.script = "sell";
    const { sale: resumed } = await t.distribute(_id, "req-1");
    expect(resumed?.leadSaleId).toBe(pendingId);
    expect(t.buyers.calls.map((call) => call.leadSaleId)).toEqual([pendingId, pendingId]);
    expect(t.markers.markers.size).toBe(0);
  });

  it("previews with validate_only: the would-be sale without an id, nothing claimed", async () => {
    const t = setup();
    const lead = t.leads.add();
    const preview = await t.distribute(lead._id, "", "b-7", true);
    expect(preview.sale).toEqual({ leadSaleId: "", buyerId: "b-7", price: { currencyCode: "USD", amountMinor: "1250" }, sellTime: undefined });
    expect(t.leads.now(lead._id)).toEqual(lead);
    expect(t.markers.markers.size).toBe(0);
  });

  it("refuses leads that are not QUALIFIED and invalid requests before anything is claimed", async () => {
    const t = setup();
    const fresh = t.leads.add(LeadStatus[LeadStatus.LEAD_STATUS_NEW]);
    expect((await failure(t.distribute(fresh._id))).code).toBe(Status.FAILED_PRECONDITION);
    expect((await failure(t.distribute("no-such-lead"))).code).toBe(Status.NOT_FOUND);
    const invalid = await failure(t.distribute("", "not a request id!", "bad buyer"));
    expect(invalid.fieldViolations.map((violation) => violation.field)).toEqual(["lead_id", "buyer_id", "request_id"]);
    expect(t.buyers.calls).toHaveLength(0);
    expect(t.markers.markers.size).toBe(0);
  });
});

describe("recovery", () => {
  it("completes a stale claim whose outcome was unknown, and only once it is stale", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.script = "unavailable";
    await failure(t.distribute(_id));
    t.buyers.script = "sell";
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 0, deferred: 0 });
    t.advance(30_001);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 1, pending: 0, deferred: 0 });
    expect(t.leads.now(_id)).toMatchObject({ status: SOLD, distribution: null });
    expect(t.markers.markers.size).toBe(0);
    // The status change is the distributing user's, not the sweeper's.
    expect([...t.leads.activities.values()]).toHaveLength(1);
  });

  it("keeps a claim buyers still cannot answer, and clears one buyers refused", async () => {
    const t = setup();
    const stuck = t.leads.add();
    const refused = t.leads.add();
    t.buyers.script = "unavailable";
    await failure(t.distribute(stuck._id));
    await failure(t.distribute(refused._id));
    t.advance(30_001);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 2, deferred: 0 });
    t.buyers.script = "refuse";
    // Backed off for sweepMs after a failure.
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 0, deferred: 0 });
    t.advance(1000);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 2, pending: 0, deferred: 0 });
    expect(t.leads.now(refused._id)).toMatchObject({ status: QUALIFIED, distribution: null });
    expect(t.markers.markers.size).toBe(0);
  });

  it("stops at shutdown without waiting out a SellLead in flight, leaving the claim to the next sweep", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.script = "unavailable";
    await failure(t.distribute(_id));
    t.advance(30_001);
    t.buyers.script = "sell";
    t.buyers.hold();
    t.recovery.start();
    for (let i = 0; i < 100 && t.buyers.waiting === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(t.buyers.waiting).toBe(1);
    await t.recovery.stop();
    expect(t.leads.now(_id).distribution).not.toBeNull();
    expect(t.markers.markers.size).toBe(1);
    t.buyers.release();
    // Another replica's sweep (or this one's after a restart) completes it.
    const next = new DistributionRecovery(t.distributor, t.markers, t.writer, { sweepMs: 1000, staleMs: 30_000 }, pino({ level: "silent" }));
    t.advance(1000);
    expect(await next.sweep()).toEqual({ closed: 0, completed: 1, pending: 0, deferred: 0 });
    expect(t.leads.now(_id).status).toBe(SOLD);
  });

  it("closes markers whose lead no longer references their sale (recorded before a crash, or never claimed)", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    await t.distribute(_id);
    await t.markers.open({ _id: "recorded-before-crash", tenantId: TENANT, leadId: _id, startTime: new Date(0) });
    await t.markers.open({ _id: "never-claimed", tenantId: TENANT, leadId: "gone", startTime: new Date(0) });
    expect(await t.recovery.sweep()).toEqual({ closed: 2, completed: 0, pending: 0, deferred: 0 });
    expect(t.buyers.calls).toHaveLength(1);
  });
});

describe("ReleaseLeadSale", () => {
  it("puts the lead back to QUALIFIED once, remembering the buyer, and answers later calls unchanged", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    const { sale: sold } = await t.distribute(_id);
    const leadSaleId = sold?.leadSaleId ?? "";
    const asBuyers = t.context("buyers", "service");
    const { lead } = await releaseLeadSale(t, { leadId: _id, leadSaleId }, asBuyers);
    expect(lead).toMatchObject({ status: LeadStatus.LEAD_STATUS_QUALIFIED, sale: undefined, returnedBuyerIds: ["b-1"] });
    const again = await releaseLeadSale(t, { leadId: _id, leadSaleId }, asBuyers);
    expect(again.lead).toEqual(lead);
    expect((await releaseLeadSale(t, { leadId: _id, leadSaleId: "another-sale" }, asBuyers)).lead).toEqual(lead);
    expect([...t.leads.activities.values()].map((activity) => activity.detail)).toEqual([
      { $case: "statusChange", value: { fromStatus: LeadStatus.LEAD_STATUS_QUALIFIED, toStatus: LeadStatus.LEAD_STATUS_SOLD } },
      { $case: "statusChange", value: { fromStatus: LeadStatus.LEAD_STATUS_SOLD, toStatus: LeadStatus.LEAD_STATUS_QUALIFIED } },
    ]);
    // Distributable again, under a new sale.
    const resold = await t.distribute(_id);
    expect(resold.sale?.leadSaleId).not.toBe(leadSaleId);
    expect(t.buyers.calls.at(-1)?.lead.returnedBuyerIds).toEqual(["b-1"]);
  });
});

describe("returned sales", () => {
  const asBuyers = (t: ReturnType<typeof setup>) => t.context("buyers", "service");

  it("refuses a retry with the request_id of a returned sale: FAILED_PRECONDITION, lead QUALIFIED, buyers not asked", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    const { sale: sold } = await t.distribute(_id, "req-1");
    const leadSaleId = sold?.leadSaleId ?? "";
    t.buyers.returnSale(leadSaleId);
    await releaseLeadSale(t, { leadId: _id, leadSaleId }, asBuyers(t));
    const calls = t.buyers.calls.length;

    const retry = await failure(t.distribute(_id, "req-1"));
    expect(retry).toMatchObject({
      code: Status.FAILED_PRECONDITION,
      message: `request_id was used for sale ${leadSaleId} of lead "${_id}", which was returned; use a new request_id to distribute the lead again`,
      metadata: { lead_sale_id: leadSaleId, lead_sale_state: "RETURNED" },
    });
    expect(t.buyers.calls).toHaveLength(calls);
    expect(t.leads.now(_id)).toMatchObject({ status: QUALIFIED, sale: null, distribution: null, returnedBuyerIds: ["b-1"], pastSaleIds: [leadSaleId] });
    expect(t.markers.markers.size).toBe(0);
    // A new request_id sells it again.
    expect((await t.distribute(_id, "req-2")).lead?.status).toBe(LeadStatus.LEAD_STATUS_SOLD);
  });

  it("never records a sale buyers answer as returned: the lead is released instead, and the caller told", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    // Sold at buyers, the answer lost: the lead stays claimed by D.
    t.buyers.loseNextAnswer = true;
    await failure(t.distribute(_id, "req-1"));
    const leadSaleId = t.buyers.calls[0]?.leadSaleId ?? "";
    t.buyers.returnSale(leadSaleId);
    // The client's retry resumes D: buyers says D was returned.
    const retry = await failure(t.distribute(_id, "req-1"));
    expect(retry).toMatchObject({ code: Status.FAILED_PRECONDITION, metadata: { lead_sale_id: leadSaleId, lead_sale_state: "RETURNED" } });
    expect(t.leads.now(_id)).toMatchObject({ status: QUALIFIED, sale: null, distribution: null, returnedBuyerIds: ["b-1"], pastSaleIds: [leadSaleId] });
    expect(t.markers.markers.size).toBe(0);
  });

  it("recovers a sale returned before leads recorded it: QUALIFIED, the buyer in returnedBuyerIds, never SOLD", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.loseNextAnswer = true;
    await failure(t.distribute(_id));
    const leadSaleId = t.buyers.calls[0]?.leadSaleId ?? "";
    t.buyers.returnSale(leadSaleId);
    t.advance(30_001);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 1, pending: 0, deferred: 0 });
    expect(t.leads.now(_id)).toMatchObject({ status: QUALIFIED, sale: null, distribution: null, returnedBuyerIds: ["b-1"], pastSaleIds: [leadSaleId] });
    expect(t.markers.markers.size).toBe(0);
    // Nothing was ever SOLD: no status change at all.
    expect(t.leads.activities.size).toBe(0);
  });

  it("releases a lead whose distribution still holds the returned sale (ReleaseLeadSale before the sale was recorded)", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.loseNextAnswer = true;
    await failure(t.distribute(_id, "req-1"));
    const leadSaleId = t.buyers.calls[0]?.leadSaleId ?? "";
    t.buyers.returnSale(leadSaleId);
    const { lead } = await releaseLeadSale(t, { leadId: _id, leadSaleId }, asBuyers(t));
    expect(lead).toMatchObject({ status: LeadStatus.LEAD_STATUS_QUALIFIED, sale: undefined, returnedBuyerIds: ["b-1"] });
    expect(t.leads.now(_id)).toMatchObject({ distribution: null, pastSaleIds: [leadSaleId] });
    expect(t.markers.markers.size).toBe(0);
    // Recovery has nothing left that could record D as SOLD.
    t.advance(60_000);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 0, deferred: 0 });
    expect(t.leads.now(_id).status).toBe(QUALIFIED);
    expect((await failure(t.distribute(_id, "req-1"))).code).toBe(Status.FAILED_PRECONDITION);
  });
});

describe("request_id fingerprint", () => {
  it("refuses a request_id reused with another buyer_id (INVALID_ARGUMENT), whether its sale is recorded or pending", async () => {
    const t = setup();
    const sold = t.leads.add();
    await t.distribute(sold._id, "req-1", "b-7");
    expect((await t.distribute(sold._id, "req-1", "b-7")).sale?.buyerId).toBe("b-7");
    const mismatch = await failure(t.distribute(sold._id, "req-1", ""));
    expect(mismatch).toMatchObject({ code: Status.INVALID_ARGUMENT, fieldViolations: [{ field: "request_id" }] });

    const pending = t.leads.add();
    t.buyers.script = "unavailable";
    await failure(t.distribute(pending._id, "req-1", "b-7"));
    t.buyers.script = "sell";
    expect((await failure(t.distribute(pending._id, "req-1", "b-8"))).code).toBe(Status.INVALID_ARGUMENT);
    // The pending distribution is untouched, and its own retry completes it.
    expect(t.leads.now(pending._id).distribution).toMatchObject({ buyerId: "b-7" });
    expect((await t.distribute(pending._id, "req-1", "b-7")).sale?.buyerId).toBe("b-7");
  });
});

describe("markers", () => {
  /** Holds lead writes until released, so a test can act while a claim write is on its way. */
  function slowWrites(t: ReturnType<typeof setup>): { waiting: () => boolean; release: () => void } {
    let resume: (() => void) | undefined;
    let held = false;
    t.leads.beforeWrite = () =>
      new Promise<void>((resolve) => {
        held = true;
        resume = resolve;
      });
    return {
      waiting: () => held,
      release: () => {
        t.leads.beforeWrite = undefined;
        resume?.();
      },
    };
  }

  it("re-opens a stale marker for a retry, so recovery never closes it under the retry's claim", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    // An attempt with req-1 read the lead free, lost the claim to another distribution and left its marker (age 0).
    const retried = leadSaleIdFor(TENANT, _id, "req-1");
    await t.markers.open({ _id: retried, tenantId: TENANT, leadId: _id, startTime: t.writer.clock() });
    // Long after, req-1 is retried while buyers are down.
    t.buyers.script = "unavailable";
    t.advance(120_000);
    const writes = slowWrites(t);
    const retry = failure(t.distribute(_id, "req-1"));
    for (let i = 0; i < 100 && !writes.waiting(); i++) await new Promise((resolve) => setImmediate(resolve));
    // Recovery sweeps while the retry's claim is on its way: the marker is fresh, not stale.
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 0, deferred: 0 });
    writes.release();
    expect((await retry).code).toBe(Status.UNAVAILABLE);
    expect(t.leads.now(_id).distribution?.leadSaleId).toBe(retried);
    expect([...t.markers.markers.keys()]).toEqual([retried]);
    // Recovery finishes it once buyers answer.
    t.buyers.script = "sell";
    t.advance(30_001);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 1, pending: 0, deferred: 0 });
    expect(t.leads.now(_id).status).toBe(SOLD);
  });

  it("re-opens a marker closed while the claim write was on its way, once the claim lands", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.buyers.script = "unavailable";
    const writes = slowWrites(t);
    const call = failure(t.distribute(_id));
    for (let i = 0; i < 100 && !writes.waiting(); i++) await new Promise((resolve) => setImmediate(resolve));
    // A sweep that read the lead before the claim closes the marker (as an unreferenced one).
    const [opened] = [...t.markers.markers.values()];
    await t.markers.close(opened?._id ?? "", opened?.openId ?? null);
    writes.release();
    expect((await call).code).toBe(Status.UNAVAILABLE);
    const claimed = t.leads.now(_id).distribution?.leadSaleId;
    expect([...t.markers.markers.keys()]).toEqual([claimed]);
  });

  it("keeps the marker when a claim write fails without a refusal (it may have landed), and recovery completes it", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    t.leads.loseNextWriteAnswer = true;
    const error = await t.distribute(_id).then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    expect(error?.message).toMatch(/socket timeout/);
    const claimed = t.leads.now(_id).distribution?.leadSaleId;
    expect(claimed).toBeDefined();
    expect([...t.markers.markers.keys()]).toEqual([claimed]);
    t.advance(30_001);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 1, pending: 0, deferred: 0 });
    expect(t.leads.now(_id).status).toBe(SOLD);
  });

  it("closes a marker whose lead never mentions it only after the stale age plus the claim budget", async () => {
    const t = setup();
    const { _id } = t.leads.add();
    await t.markers.open({ _id: "claim-on-its-way", tenantId: TENANT, leadId: _id, startTime: t.writer.clock() });
    t.advance(30_001);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 0, deferred: 1 });
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 0, deferred: 0 });
    t.advance(10_000);
    expect(await t.recovery.sweep()).toEqual({ closed: 1, completed: 0, pending: 0, deferred: 0 });
    expect(t.markers.markers.size).toBe(0);
  });
});

describe("recovery backoff", () => {
  it("rotates past markers that keep failing, so newer ones are recovered", async () => {
    const t = setup();
    t.buyers.script = "unavailable";
    const stuck: string[] = [];
    for (let i = 0; i < 100; i++) {
      await failure(t.distribute(t.leads.add()._id));
      stuck.push(t.buyers.calls.at(-1)?.leadSaleId ?? "");
    }
    t.advance(1);
    const fresh = t.leads.add();
    await failure(t.distribute(fresh._id));
    for (const id of stuck) t.buyers.failing.add(id);
    t.buyers.script = "sell";
    t.advance(30_001);
    // The 100 oldest fill the first batch and fail; they wait out their backoff, the newer one goes next.
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 0, pending: 100, deferred: 0 });
    t.advance(500);
    expect(await t.recovery.sweep()).toEqual({ closed: 0, completed: 1, pending: 0, deferred: 0 });
    expect(t.leads.now(fresh._id).status).toBe(SOLD);
    // Each failure doubles the wait: sweepMs, then 2 x sweepMs...
    expect(t.markers.markers.get(stuck[0] ?? "")).toMatchObject({ attempts: 1 });
    t.advance(500);
    expect((await t.recovery.sweep()).pending).toBe(100);
    t.advance(1000);
    expect((await t.recovery.sweep()).pending).toBe(0);
    t.advance(1000);
    expect((await t.recovery.sweep()).pending).toBe(100);
    expect(t.markers.markers.get(stuck[0] ?? "")).toMatchObject({ attempts: 3 });
  });
});
