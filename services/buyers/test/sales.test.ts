/**
 * The sale side of buyers.v1.BuyerService on the real test mesh (FerretDB,
 * Redis, users for the tenant's time zone, leads for the release of a
 * returned lead), over mTLS: SellLead as the `leads` identity acting in the
 * tenant, the rest as a tenant admin (a token signed with the auth
 * service's key). Leads are made up here: SellLead matches the lead it is
 * given, and a release of a lead leads does not hold answers NOT_FOUND,
 * which completes the return (leads-gateway.ts).
 */
import { randomUUID } from "node:crypto";
import { Buyer, BuyerLedgerEntryType } from "@leadmesh/contracts/buyers/v1/buyer";
import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import { type LeadSale, LeadSaleReturnReason, LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { MongoClient } from "mongodb";
import { Status } from "nice-grpc";
import { ErrorInfo, PreconditionFailure, RichClientError } from "nice-grpc-error-details";
import { grpcClient, serviceClient, uniqueTenant } from "../../../test/harness/clients";
import { authSignedToken } from "../../../test/harness/identity";
import { meshInfo } from "../../../test/harness/mesh-info";

jest.setTimeout(120_000);

const CURRENCY = "USD";
let address: string;

beforeAll(() => {
  address = `127.0.0.1:${meshInfo().services.buyers.grpc}`;
});

interface Tenant {
  id: string;
  admin: ReturnType<typeof grpcClient<typeof BuyerServiceDefinition>>["client"];
  leads: ReturnType<typeof serviceClient<typeof BuyerServiceDefinition>>["client"];
}

const closers: Array<() => void> = [];
afterAll(() => {
  for (const close of closers) close();
});

async function tenant(label: string): Promise<Tenant> {
  const id = uniqueTenant(label);
  const admin = grpcClient(BuyerServiceDefinition, address, await authSignedToken({ tenant: id, roles: ["admin"], sub: "admin-1" }));
  const leads = serviceClient(BuyerServiceDefinition, address, "leads", id);
  closers.push(admin.close, leads.close);
  return { id, admin: admin.client, leads: leads.client };
}

interface BuyerOptions {
  priceMinor?: number;
  balanceMinor?: number;
  dailyCap?: number;
  monthlyCap?: number;
  countryCodes?: string[];
  returnWindowSeconds?: number;
}

async function buyer(t: Tenant, options: BuyerOptions = {}) {
  const { buyer: created } = await t.admin.createBuyer({
    buyer: {
      displayName: `Buyer ${randomUUID().slice(0, 8)}`,
      pricePerLead: { currencyCode: CURRENCY, amountMinor: String(options.priceMinor ?? 1000) },
      dailyCap: String(options.dailyCap ?? 0),
      monthlyCap: String(options.monthlyCap ?? 0),
      criteria: { sources: [], countryCodes: options.countryCodes ?? [], minScore: 0, maxScore: 0, postalCodePrefixes: [], tags: [], maxLeadAge: undefined },
      returnWindow: options.returnWindowSeconds === undefined ? undefined : { seconds: String(options.returnWindowSeconds), nanos: 0 },
    },
  });
  const id = created?.id as string;
  if ((options.balanceMinor ?? 0) > 0) {
    await t.admin.topUpBuyer({ id, amount: { currencyCode: CURRENCY, amountMinor: String(options.balanceMinor) }, requestId: randomUUID() });
  }
  return id;
}

function lead(t: Tenant, overrides: Partial<Lead> = {}): Lead {
  return Lead.fromPartial({
    id: `lead-${randomUUID()}`,
    tenantId: t.id,
    firstName: "Ada",
    email: "ada@example.com",
    source: LeadSource.LEAD_SOURCE_WEB_FORM,
    status: LeadStatus.LEAD_STATUS_QUALIFIED,
    score: 50,
    countryCode: "GB",
    createTime: new Date(),
    ...overrides,
  });
}

function sell(t: Tenant, saleId: string, forLead: Lead, extra: { buyerId?: string; validateOnly?: boolean } = {}) {
  return t.leads.sellLead({ leadSaleId: saleId, lead: forLead, buyerId: extra.buyerId ?? "", validateOnly: extra.validateOnly ?? false });
}

/** The sale, or the error's code, NO_MATCHING_BUYER violations as "buyers/<id> <REASON>" and reason. */
async function outcome(call: Promise<{ leadSale?: LeadSale }>) {
  try {
    return { sale: (await call).leadSale as LeadSale };
  } catch (error) {
    if (!(error instanceof RichClientError)) throw error;
    const info = error.extra.find((detail) => detail.$type === ErrorInfo.$type) as ErrorInfo | undefined;
    const failure = error.extra.find((detail) => detail.$type === PreconditionFailure.$type) as PreconditionFailure | undefined;
    return {
      code: error.code,
      reason: info?.reason,
      metadata: info?.metadata,
      message: error.details,
      skips: (failure?.violations ?? []).map((violation) => `${violation.type} ${violation.subject} ${violation.description.split(":")[0]}`).sort(),
    };
  }
}

async function ledger(t: Tenant, buyerId: string) {
  const { ledgerEntries } = await t.admin.listBuyerLedgerEntries({ buyerId, pageSize: 1000 });
  return ledgerEntries;
}

async function balanceOf(t: Tenant, buyerId: string): Promise<bigint> {
  const { buyer: current } = await t.admin.getBuyer({ id: buyerId });
  return BigInt(current?.balance?.amountMinor ?? "NaN");
}

/** The buyer's ledger adds up to its balance, which is never negative; answers the entries. */
async function expectLedgerMatchesBalance(t: Tenant, buyerId: string) {
  const entries = await ledger(t, buyerId);
  const sum = entries.reduce((total, entry) => total + BigInt(entry.amount?.amountMinor ?? "0"), 0n);
  const balance = await balanceOf(t, buyerId);
  expect(sum).toBe(balance);
  expect(balance >= 0n).toBe(true);
  return entries;
}

const charges = (entries: Awaited<ReturnType<typeof ledger>>) => entries.filter((entry) => entry.type === BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CHARGE);
const refunds = (entries: Awaited<ReturnType<typeof ledger>>) => entries.filter((entry) => entry.type === BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_REFUND);

describe("SellLead", () => {
  it("sells to the highest price; validate_only names that buyer and charges nothing", async () => {
    const t = await tenant("sell-rank");
    const cheap = await buyer(t, { priceMinor: 500, balanceMinor: 10_000 });
    const best = await buyer(t, { priceMinor: 900, balanceMinor: 10_000 });
    const middle = await buyer(t, { priceMinor: 700, balanceMinor: 10_000 });
    const forLead = lead(t);

    const validated = (await sell(t, randomUUID(), forLead, { validateOnly: true })).leadSale;
    expect(validated).toMatchObject({
      id: "",
      buyerId: best,
      state: LeadSaleState.LEAD_SALE_STATE_PENDING,
      price: { currencyCode: CURRENCY, amountMinor: "900" },
    });
    expect(charges(await ledger(t, best))).toHaveLength(0);

    const saleId = randomUUID();
    const sold = (await sell(t, saleId, forLead)).leadSale;
    expect(sold).toMatchObject({ id: saleId, tenantId: t.id, leadId: forLead.id, buyerId: best, state: LeadSaleState.LEAD_SALE_STATE_SOLD });
    expect(sold?.price).toEqual({ currencyCode: CURRENCY, amountMinor: "900" });
    expect(sold!.returnDeadline!.getTime() - sold!.sellTime!.getTime()).toBe(7 * 86_400_000);
    expect(await balanceOf(t, best)).toBe(9_100n);
    for (const other of [cheap, middle]) expect(await balanceOf(t, other)).toBe(10_000n);
    const [charge] = charges(await expectLedgerMatchesBalance(t, best));
    expect(charge).toMatchObject({ leadSaleId: saleId, leadId: forLead.id, amount: { currencyCode: CURRENCY, amountMinor: "-900" }, actorId: "leads" });

    // A retry answers the recorded sale; GetLeadSale and ListLeadSales show it.
    expect((await sell(t, saleId, forLead)).leadSale).toEqual(sold);
    expect((await t.admin.getLeadSale({ id: saleId })).leadSale).toEqual(sold);
    const listed = await t.admin.listLeadSales({
      buyerId: "-",
      pageSize: 10,
      pageToken: "",
      filter: `lead_id = "${forLead.id}" AND state = SOLD`,
      orderBy: "",
    });
    expect(listed.leadSales.map((sale) => sale.id)).toEqual([saleId]);
    expect((await t.admin.listLeadSales({ buyerId: cheap, pageSize: 10, pageToken: "", filter: "", orderBy: "sell_time desc" })).leadSales).toEqual([]);
  });

  it("skips buyers for their reasons and says why nobody took the lead; the sealed sale answers the same forever", async () => {
    const t = await tenant("sell-skip");
    const paused = await buyer(t, { balanceMinor: 10_000 });
    await t.admin.pauseBuyer({ id: paused, etag: "" });
    const capped = await buyer(t, { balanceMinor: 10_000, dailyCap: 1 });
    await sell(t, randomUUID(), lead(t), { buyerId: capped });
    const poor = await buyer(t, { priceMinor: 2_000, balanceMinor: 1_999 });
    const elsewhere = await buyer(t, { balanceMinor: 10_000, countryCodes: ["US"] });

    const saleId = randomUUID();
    const forLead = lead(t);
    const refused = await outcome(sell(t, saleId, forLead));
    expect(refused).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "NO_MATCHING_BUYER" });
    expect(refused.skips).toEqual(
      [
        `BUYER_SKIPPED buyers/${paused} BUYER_SKIP_REASON_PAUSED`,
        `BUYER_SKIPPED buyers/${capped} BUYER_SKIP_REASON_DAILY_CAP`,
        `BUYER_SKIPPED buyers/${poor} BUYER_SKIP_REASON_INSUFFICIENT_BALANCE`,
        `BUYER_SKIPPED buyers/${elsewhere} BUYER_SKIP_REASON_CRITERIA`,
      ].sort(),
    );

    // The poor buyer can now pay, but sale D was sealed: its outcome does not change. A new sale id sells.
    await t.admin.topUpBuyer({ id: poor, amount: { currencyCode: CURRENCY, amountMinor: "1" }, requestId: randomUUID() });
    expect(await outcome(sell(t, saleId, forLead))).toEqual(refused);
    expect((await sell(t, randomUUID(), forLead)).leadSale).toMatchObject({ buyerId: poor, state: LeadSaleState.LEAD_SALE_STATE_SOLD });
    expect(await balanceOf(t, poor)).toBe(0n);

    // A named buyer that does not exist in the tenant is NOT_FOUND; a lead returned by a buyer is never sold to it again.
    expect(await outcome(sell(t, randomUUID(), lead(t), { buyerId: "no-such-buyer" }))).toMatchObject({
      code: Status.NOT_FOUND,
      reason: "NOT_FOUND",
      metadata: { resource_type: "buyer", resource_id: "no-such-buyer" },
    });
    const returned = await outcome(sell(t, randomUUID(), lead(t, { countryCode: "US", returnedBuyerIds: [elsewhere] }), { buyerId: elsewhere }));
    expect(returned).toMatchObject({ code: Status.FAILED_PRECONDITION, skips: [`BUYER_SKIPPED buyers/${elsewhere} BUYER_SKIP_REASON_RETURNED_BEFORE`] });
  });

  it("50 concurrent sales of different leads to a buyer with daily cap 5 charge exactly 5", async () => {
    const t = await tenant("sell-cap");
    const capped = await buyer(t, { priceMinor: 1_000, balanceMinor: 100_000, dailyCap: 5 });
    const results = await Promise.all(Array.from({ length: 50 }, () => outcome(sell(t, randomUUID(), lead(t)))));

    const sold = results.filter((result) => "sale" in result);
    expect(sold).toHaveLength(5);
    for (const refused of results.filter((result) => !("sale" in result))) {
      expect(refused).toMatchObject({
        code: Status.FAILED_PRECONDITION,
        reason: "NO_MATCHING_BUYER",
        skips: [`BUYER_SKIPPED buyers/${capped} BUYER_SKIP_REASON_DAILY_CAP`],
      });
    }
    const entries = await expectLedgerMatchesBalance(t, capped);
    expect(charges(entries)).toHaveLength(5);
    expect(await balanceOf(t, capped)).toBe(95_000n);
    expect((await t.admin.getBuyer({ id: capped })).buyer).toMatchObject({ salesToday: "5", salesThisMonth: "5" });
  });

  it("concurrent sales never overdraw a balance", async () => {
    const t = await tenant("sell-balance");
    const thin = await buyer(t, { priceMinor: 1_000, balanceMinor: 3_500 });
    const results = await Promise.all(Array.from({ length: 20 }, () => outcome(sell(t, randomUUID(), lead(t)))));
    expect(results.filter((result) => "sale" in result)).toHaveLength(3);
    expect(charges(await expectLedgerMatchesBalance(t, thin))).toHaveLength(3);
    expect(await balanceOf(t, thin)).toBe(500n);
  });

  it("30 concurrent calls with the same sale id charge once and all answer the same sale", async () => {
    const t = await tenant("sell-same");
    const buyers = [await buyer(t, { balanceMinor: 10_000 }), await buyer(t, { balanceMinor: 10_000 })];
    const saleId = randomUUID();
    const forLead = lead(t);
    const results = await Promise.all(Array.from({ length: 30 }, () => outcome(sell(t, saleId, forLead))));

    const sales = results.map((result) => ("sale" in result ? result.sale : result));
    const first = sales[0] as LeadSale;
    expect(first).toMatchObject({ id: saleId, state: LeadSaleState.LEAD_SALE_STATE_SOLD });
    for (const sale of sales) expect(sale).toEqual(first);
    const allCharges = [...charges(await expectLedgerMatchesBalance(t, buyers[0]!)), ...charges(await expectLedgerMatchesBalance(t, buyers[1]!))];
    expect(allCharges.map((entry) => [entry.buyerId, entry.leadSaleId])).toEqual([[first.buyerId, saleId]]);
  });

  it("a seal and a charge of one sale exclude each other: two sales racing for one slot, one sold, the other sealed for good", async () => {
    const t = await tenant("sell-seal");
    const single = await buyer(t, { balanceMinor: 10_000, dailyCap: 1 });
    const [d, e] = [randomUUID(), randomUUID()];
    const [leadD, leadE] = [lead(t), lead(t)];
    const calls = Array.from({ length: 24 }, (_, index) => (index % 2 === 0 ? outcome(sell(t, d, leadD)) : outcome(sell(t, e, leadE))));
    const results = await Promise.all(calls);
    const ofD = results.filter((_, index) => index % 2 === 0);
    const ofE = results.filter((_, index) => index % 2 === 1);

    // Every call of one sale agrees; exactly one of the two sales was made.
    for (const group of [ofD, ofE]) for (const result of group) expect(result).toEqual(group[0]);
    const soldGroups = [ofD[0], ofE[0]].filter((result) => result && "sale" in result);
    expect(soldGroups).toHaveLength(1);
    const sealed = [ofD[0], ofE[0]].find((result) => result && !("sale" in result));
    expect(sealed).toMatchObject({ code: Status.FAILED_PRECONDITION, skips: [`BUYER_SKIPPED buyers/${single} BUYER_SKIP_REASON_DAILY_CAP`] });
    expect(charges(await expectLedgerMatchesBalance(t, single))).toHaveLength(1);

    // Room for more later does not reopen the sealed sale.
    await t.admin.updateBuyer({ buyer: Buyer.fromPartial({ id: single, dailyCap: "10" }), updateMask: ["daily_cap"] });
    const sealedId = "sale" in (ofD[0] ?? {}) ? e : d;
    expect(await outcome(sell(t, sealedId, sealedId === d ? leadD : leadE))).toEqual(sealed);
    expect(charges(await expectLedgerMatchesBalance(t, single))).toHaveLength(1);
  });
  it("records a sale whose caller died after the charge with the return window of the charge, not the buyer's window by then", async () => {
    const t = await tenant("sell-window");
    const only = await buyer(t, { balanceMinor: 10_000, returnWindowSeconds: 3_600 });
    const saleId = randomUUID();
    const forLead = lead(t);
    const first = (await sell(t, saleId, forLead)).leadSale as LeadSale;
    expect(first.returnDeadline!.getTime() - first.sellTime!.getTime()).toBe(3_600_000);
    // What a kill -9 at buyers.sell.after-charge leaves: the charge landed, no sale document. The buyer's window changes before the recovery call.
    await t.admin.updateBuyer({ buyer: Buyer.fromPartial({ id: only, returnWindow: { seconds: "7200", nanos: 0 } }), updateMask: ["return_window"] });
    const mongo = new MongoClient(meshInfo().mongoUrl);
    try {
      expect((await mongo.db("buyers").collection<{ _id: string }>("lead_sales").deleteOne({ _id: saleId })).deletedCount).toBe(1);
    } finally {
      await mongo.close();
    }
    const recovered = (await sell(t, saleId, forLead)).leadSale as LeadSale;
    expect(recovered).toMatchObject({ id: saleId, buyerId: only, sellTime: first.sellTime, returnDeadline: first.returnDeadline });
    expect(charges(await expectLedgerMatchesBalance(t, only))).toHaveLength(1);
  });

  it("calls that find no buyer once their own sale took the last of a balance answer that sale, never a seal", async () => {
    const t = await tenant("sell-own");
    const only = await buyer(t, { priceMinor: 1_000, balanceMinor: 1_000 });
    const saleId = randomUUID();
    const forLead = lead(t);
    // Calls arriving after the charge see the buyer without money: they seal, the seal finds the charge, and they answer the sale.
    const results = await Promise.all(Array.from({ length: 20 }, () => outcome(sell(t, saleId, forLead))));
    for (const result of results)
      expect(result).toEqual({ sale: expect.objectContaining({ id: saleId, buyerId: only, state: LeadSaleState.LEAD_SALE_STATE_SOLD }) });
    const late = await outcome(sell(t, saleId, forLead));
    expect(late).toEqual(results[0]);
    expect(charges(await expectLedgerMatchesBalance(t, only))).toHaveLength(1);
    const mongo = new MongoClient(meshInfo().mongoUrl);
    try {
      expect(
        await mongo
          .db("buyers")
          .collection("buyer_revisions")
          .countDocuments({ _id: `sealed:sale:${saleId}` } as never),
      ).toBe(0);
    } finally {
      await mongo.close();
    }
  });
});

describe("ReturnLeadSale", () => {
  async function soldSale(t: Tenant, options: BuyerOptions = {}) {
    const buyerId = await buyer(t, { priceMinor: 1_200, balanceMinor: 5_000, ...options });
    const sale = (await sell(t, randomUUID(), lead(t), { buyerId })).leadSale as LeadSale;
    return { buyerId, sale };
  }

  it("refunds once when retried 10 times concurrently, and answers the returned sale", async () => {
    const t = await tenant("return-once");
    const { buyerId, sale } = await soldSale(t);
    expect(await balanceOf(t, buyerId)).toBe(3_800n);
    const request = { id: sale.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_INVALID_CONTACT, returnComment: "bounces", etag: "" };
    const answers = await Promise.all(Array.from({ length: 10 }, () => t.admin.returnLeadSale(request)));

    for (const { leadSale } of answers) {
      expect(leadSale).toMatchObject({
        id: sale.id,
        state: LeadSaleState.LEAD_SALE_STATE_RETURNED,
        returnReason: request.returnReason,
        returnComment: "bounces",
      });
    }
    const entries = await expectLedgerMatchesBalance(t, buyerId);
    expect(refunds(entries).map((entry) => [entry.leadSaleId, entry.amount?.amountMinor])).toEqual([[sale.id, "1200"]]);
    expect(await balanceOf(t, buyerId)).toBe(5_000n);
    // Caps are not given back: the sale still counts today.
    expect((await t.admin.getBuyer({ id: buyerId })).buyer?.salesToday).toBe("1");

    const again = await t.admin.returnLeadSale({ ...request, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE });
    expect(again.leadSale).toMatchObject({ state: LeadSaleState.LEAD_SALE_STATE_RETURNED, returnReason: request.returnReason });
    expect(refunds(await expectLedgerMatchesBalance(t, buyerId))).toHaveLength(1);
    const listed = await t.admin.listLeadSales({
      buyerId,
      pageSize: 10,
      pageToken: "",
      filter: "state = RETURNED AND return_reason = INVALID_CONTACT",
      orderBy: "",
    });
    expect(listed.leadSales.map((item) => item.id)).toEqual([sale.id]);
  });

  it("never answers a returned sale as sold: every SellLead of its id answers the same final FAILED_PRECONDITION naming the return", async () => {
    const t = await tenant("return-resell");
    const { buyerId, sale } = await soldSale(t);
    await t.admin.returnLeadSale({ id: sale.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE, returnComment: "", etag: "" });
    // leads retrying DistributeLead with the request_id of that sale calls SellLead with the same sale id: it must not be recorded as sold again.
    const forLead = lead(t, { id: sale.leadId });
    const expected = {
      code: Status.FAILED_PRECONDITION,
      reason: "FAILED_PRECONDITION",
      message: `lead sale ${sale.id} of lead ${sale.leadId} was returned by buyer ${buyerId}`,
      metadata: { lead_sale_state: "RETURNED", buyer_id: buyerId, lead_sale_id: sale.id, lead_id: sale.leadId },
    };
    const answers = await Promise.all(Array.from({ length: 3 }, () => outcome(sell(t, sale.id, forLead))));
    for (const answer of answers) expect(answer).toMatchObject(expected);
    expect(await outcome(sell(t, sale.id, forLead))).toEqual(answers[0]);
    const entries = await expectLedgerMatchesBalance(t, buyerId);
    expect([charges(entries).length, refunds(entries).length]).toEqual([1, 1]);
    expect(await balanceOf(t, buyerId)).toBe(5_000n);
  });

  it("makes the marker of a return young again on every attempt: an old failed attempt's marker is never taken for this one's", async () => {
    const t = await tenant("return-marker");
    const { sale } = await soldSale(t);
    const mongo = new MongoClient(meshInfo().mongoUrl);
    try {
      const markers = mongo.db("buyers").collection<{ _id: string; tenantId: string; startTime: Date }>("lead_sale_returns");
      // An attempt of long ago failed before marking the sale (here: its marker as it left it).
      const old = new Date(Date.now() - 120_000);
      await markers.insertOne({ _id: sale.id, tenantId: t.id, startTime: old });
      const before = Date.now();
      const stale = await outcome(
        t.admin.returnLeadSale({ id: sale.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE, returnComment: "", etag: "7" }),
      );
      expect(stale).toMatchObject({ code: Status.ABORTED });
      const marker = await markers.findOne({ _id: sale.id });
      expect(marker?.startTime.getTime()).toBeGreaterThanOrEqual(before - 1_000);
      expect(marker).toMatchObject({ tenantId: t.id, attempts: 0 });
      // The sweeper (every 5 s) leaves a young marker of a SOLD sale alone; a successful attempt closes it.
      await t.admin.returnLeadSale({ id: sale.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE, returnComment: "", etag: "" });
      expect(await markers.countDocuments({ _id: sale.id })).toBe(0);
    } finally {
      await mongo.close();
    }
  });

  it("refuses a return after the window, without comment for OTHER, with a stale etag, and of another tenant's sale", async () => {
    const t = await tenant("return-refused");
    const { buyerId, sale } = await soldSale(t, { returnWindowSeconds: 0 });
    // A zero window closes at the sale itself; wait until the clock is past it.
    while (Date.now() <= sale.returnDeadline!.getTime()) await new Promise((resolve) => setTimeout(resolve, 5));
    const late = await outcome(
      t.admin.returnLeadSale({ id: sale.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE, returnComment: "", etag: "" }),
    );
    expect(late).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "FAILED_PRECONDITION" });
    expect(late).toHaveProperty("message", expect.stringContaining("return window"));
    expect(refunds(await expectLedgerMatchesBalance(t, buyerId))).toHaveLength(0);

    const open = (await soldSale(t)).sale;
    const other = await outcome(
      t.admin.returnLeadSale({ id: open.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_OTHER, returnComment: " ", etag: "" }),
    );
    expect(other).toMatchObject({ code: Status.INVALID_ARGUMENT });
    const stale = await outcome(
      t.admin.returnLeadSale({ id: open.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_NO_CONSENT, returnComment: "", etag: "7" }),
    );
    expect(stale).toMatchObject({ code: Status.ABORTED, reason: "ETAG_MISMATCH" });

    const stranger = await tenant("return-stranger");
    const hidden = await outcome(
      stranger.admin.returnLeadSale({ id: open.id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_NO_CONSENT, returnComment: "", etag: "" }),
    );
    expect(hidden).toMatchObject({ code: Status.NOT_FOUND });
    expect(await outcome(stranger.admin.getLeadSale({ id: open.id }))).toMatchObject({ code: Status.NOT_FOUND });

    const withEtag = await t.admin.returnLeadSale({
      id: open.id,
      returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_NO_CONSENT,
      returnComment: "",
      etag: open.etag,
    });
    expect(withEtag.leadSale?.state).toBe(LeadSaleState.LEAD_SALE_STATE_RETURNED);
  });
});

describe("the returns sweeper", () => {
  it("finishes a return whose call died after marking the sale: refunds once and closes the marker", async () => {
    const t = await tenant("return-sweep");
    const buyerId = await buyer(t, { priceMinor: 1_500, balanceMinor: 4_000 });
    const sale = (await sell(t, randomUUID(), lead(t), { buyerId })).leadSale as LeadSale;
    // What step (a) leaves when the process dies right after it (crash point buyers.return.after-mark): the sale RETURNED, nothing refunded, the marker.
    const mongo = new MongoClient(meshInfo().mongoUrl);
    try {
      const db = mongo.db("buyers");
      const marked = await db.collection<{ _id: string }>("lead_sales").updateOne(
        { _id: sale.id },
        {
          $set: {
            state: "LEAD_SALE_STATE_RETURNED",
            returnReason: "LEAD_SALE_RETURN_REASON_DUPLICATE",
            returnTime: new Date(),
            refunded: false,
            leadReleased: false,
          },
        },
      );
      expect(marked.modifiedCount).toBe(1);
      await db
        .collection<{ _id: string; tenantId: string; startTime: Date }>("lead_sale_returns")
        .insertOne({ _id: sale.id, tenantId: t.id, startTime: new Date() });

      // The sweeper runs every BUYERS_SWEEP_MS (default 5 s) on every replica.
      const deadline = Date.now() + 30_000;
      while ((await db.collection("lead_sale_returns").countDocuments({ _id: sale.id } as never)) > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await db.collection("lead_sale_returns").countDocuments({ _id: sale.id } as never)).toBe(0);
      expect(await db.collection("lead_sales").findOne({ _id: sale.id } as never)).toMatchObject({ refunded: true, leadReleased: true });
    } finally {
      await mongo.close();
    }
    const entries = await expectLedgerMatchesBalance(t, buyerId);
    expect(refunds(entries).map((entry) => entry.leadSaleId)).toEqual([sale.id]);
    expect(await balanceOf(t, buyerId)).toBe(4_000n);
    // A client retrying the return afterwards gets the returned sale, still refunded once.
    const retried = await t.admin.returnLeadSale({
      id: sale.id,
      returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE,
      returnComment: "",
      etag: "",
    });
    expect(retried.leadSale?.state).toBe(LeadSaleState.LEAD_SALE_STATE_RETURNED);
    expect(refunds(await expectLedgerMatchesBalance(t, buyerId))).toHaveLength(1);
  });
});

describe("the returns sweeper's deferral on FerretDB", () => {
  it("finishes a return whose deferral is over and leaves one deferred until its time", async () => {
    const t = await tenant("return-deferred");
    const buyerId = await buyer(t, { priceMinor: 1_000, balanceMinor: 5_000 });
    const [due, deferred] = [
      (await sell(t, randomUUID(), lead(t), { buyerId })).leadSale as LeadSale,
      (await sell(t, randomUUID(), lead(t), { buyerId })).leadSale as LeadSale,
    ];
    const mongo = new MongoClient(meshInfo().mongoUrl);
    try {
      const db = mongo.db("buyers");
      const markers = db.collection<{ _id: string; tenantId: string; startTime: Date; attempts: number; nextAttemptTime: Date }>("lead_sale_returns");
      const started = new Date(Date.now() - 600_000);
      for (const [sale, nextAttemptTime] of [
        [due, new Date(Date.now() - 1_000)],
        [deferred, new Date(Date.now() + 3_600_000)],
      ] as const) {
        // As a return that died after marking the sale, then failed 4 sweeps, leaves it.
        await db.collection<{ _id: string }>("lead_sales").updateOne(
          { _id: sale.id },
          {
            $set: {
              state: "LEAD_SALE_STATE_RETURNED",
              returnReason: "LEAD_SALE_RETURN_REASON_DUPLICATE",
              returnTime: new Date(),
              refunded: false,
              leadReleased: false,
            },
          },
        );
        await markers.insertOne({ _id: sale.id, tenantId: t.id, startTime: started, attempts: 4, nextAttemptTime });
      }
      const deadline = Date.now() + 30_000;
      while ((await markers.countDocuments({ _id: due.id })) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await markers.countDocuments({ _id: due.id })).toBe(0);
      expect(await db.collection<{ _id: string }>("lead_sales").findOne({ _id: due.id })).toMatchObject({ refunded: true, leadReleased: true });
      // Deferred for an hour: untouched, still due later.
      expect(await markers.findOne({ _id: deferred.id })).toMatchObject({ attempts: 4 });
      expect(await db.collection<{ _id: string }>("lead_sales").findOne({ _id: deferred.id })).toMatchObject({ refunded: false });
      await markers.deleteOne({ _id: deferred.id });
    } finally {
      await mongo.close();
    }
    expect(refunds(await expectLedgerMatchesBalance(t, buyerId)).map((entry) => entry.leadSaleId)).toEqual([due.id]);
  });
});
