/**
 * Lead distribution across the mesh (leads ⇄ buyers over mTLS), through
 * Envoy's REST API with real tokens, as the frontend drives it: exactly one
 * buyer wins a lead however many distribute calls race for it, caps and
 * balances hold under concurrent distribution, the caller learns why nobody
 * matched, a return refunds once however often it is retried and the lead is
 * never sold to that buyer again, and another tenant sees none of it.
 * After each scenario every invariant of the design is checked over the
 * whole tenant (test/harness/distribution-invariants.ts).
 */
import { randomUUID } from "node:crypto";
import { Status } from "nice-grpc";
import { mapBounded, pollUntil } from "../harness/bounded";
import {
  type Api,
  createBuyer,
  createQualifiedLead,
  distribute,
  expectOk,
  fundedBuyer,
  getBuyer,
  getLead,
  getSale,
  leadSales,
  ledgerEntries,
  minor,
  type Reply,
  returnSale,
  skipReasons,
  topUp,
} from "../harness/distribution";
import { checkDistributionInvariants } from "../harness/distribution-invariants";
import { registerTenant, rest } from "../harness/identity";

jest.setTimeout(180_000);

const CHARGE = "BUYER_LEDGER_ENTRY_TYPE_CHARGE";
const REFUND = "BUYER_LEDGER_ENTRY_TYPE_REFUND";

async function tenantApi(label: string): Promise<Api> {
  return { token: (await registerTenant(label)).accessToken };
}

/** Status, gRPC code and message of a reply, for readable failure output. */
const summary = (reply: Reply) => ({ status: reply.status, code: reply.json?.code, message: reply.json?.message });

/**
 * Distributes with a request id and retries while the answer is 503 (the
 * distribution is pending and completes by itself): what a client does after
 * a timeout. Resolves with the final reply and how many 503s came first.
 */
async function distributeSettled(api: Api, leadId: string, requestId = randomUUID()): Promise<{ reply: Reply; pending: number }> {
  let pending = 0;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const reply = await distribute(api, leadId, { requestId });
    if (reply.status !== 503 || Date.now() > deadline) return { reply, pending };
    pending += 1;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe("50 concurrent distribute calls for one lead", () => {
  it("sell it once: one 200 with the sale, the others a clear 409/400, one charge, lead SOLD", async () => {
    const api = await tenantApi("dist-race");
    const buyer = await fundedBuyer(api, 100_000, { priceMinor: 1_000 });
    const lead = await createQualifiedLead(api);

    const replies = await Promise.all(Array.from({ length: 50 }, () => distribute(api, lead.id)));

    const won = replies.filter((reply) => reply.status === 200);
    const lost = replies.filter((reply) => reply.status !== 200);
    expect(won).toHaveLength(1);
    const sale = won[0].json.sale;
    expect(sale).toMatchObject({ buyerId: buyer.id, price: { currencyCode: "USD", amountMinor: "1000" }, leadSaleId: expect.any(String) });
    expect(won[0].json.lead).toMatchObject({ id: lead.id, status: "LEAD_STATUS_SOLD", sale: { leadSaleId: sale.leadSaleId, buyerId: buyer.id } });
    // Losers learn why: another distribution is in progress (ABORTED, 409) or the lead is already sold (FAILED_PRECONDITION, 400).
    for (const reply of lost) {
      expect(reply.headers.get("content-type")).toContain("application/json");
      const { code, message } = reply.json ?? {};
      if (reply.status === 409) {
        expect({ code, message }).toEqual({ code: Status.ABORTED, message: expect.stringMatching(/in progress/) });
      } else {
        expect(summary(reply)).toEqual({ status: 400, code: Status.FAILED_PRECONDITION, message: expect.stringMatching(/already sold/) });
      }
    }

    const charges = (await ledgerEntries(api, buyer.id)).filter((entry) => entry.type === CHARGE);
    expect(charges).toEqual([expect.objectContaining({ leadId: lead.id, leadSaleId: sale.leadSaleId, amount: { currencyCode: "USD", amountMinor: "-1000" } })]);
    expect(minor((await getBuyer(api, buyer.id)).json.buyer.balance)).toBe(99_000n);
    expect((await getLead(api, lead.id)).json.lead).toMatchObject({ status: "LEAD_STATUS_SOLD", sale: { leadSaleId: sale.leadSaleId } });
    expect(await leadSales(api, "-", `lead_id = "${lead.id}"`)).toEqual([
      expect.objectContaining({ id: sale.leadSaleId, buyerId: buyer.id, state: "LEAD_SALE_STATE_SOLD" }),
    ]);
    // A retry with another request id is refused; the sale stays the one sale.
    expect(summary(await distribute(api, lead.id, { requestId: randomUUID() }))).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION });
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });

  it("with one request id (a client retrying after timeouts) answer the same sale every time, charged once", async () => {
    const api = await tenantApi("dist-retry");
    const buyer = await fundedBuyer(api, 10_000, { priceMinor: 2_500 });
    const lead = await createQualifiedLead(api);
    const requestId = randomUUID();

    const replies = await Promise.all(Array.from({ length: 20 }, () => distributeSettled(api, lead.id, requestId)));

    // Each call either answers the sale or is told a distribution is in progress; never a second sale.
    const sold = replies.filter(({ reply }) => reply.status === 200).map(({ reply }) => reply.json.sale.leadSaleId);
    expect(sold.length).toBeGreaterThanOrEqual(1);
    expect(new Set(sold).size).toBe(1);
    for (const { reply } of replies.filter(({ reply }) => reply.status !== 200)) expect(summary(reply)).toMatchObject({ status: 409, code: Status.ABORTED });
    // Once decided, the same request id answers the same sale.
    const again = await distribute(api, lead.id, { requestId });
    expect(summary(again).status).toBe(200);
    expect(again.json.sale.leadSaleId).toBe(sold[0]);
    expect((await ledgerEntries(api, buyer.id)).filter((entry) => entry.type === CHARGE)).toHaveLength(1);
    expect(minor((await getBuyer(api, buyer.id)).json.buyer.balance)).toBe(7_500n);
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });
});

describe("200 leads distributed concurrently to buyers with small caps and balances", () => {
  it("respect every cap and balance exactly, and every lead is sold with one charge or unsold with the reasons", async () => {
    const api = await tenantApi("dist-load");
    // What each buyer can take: its daily cap, monthly cap or balance, whichever binds first (85 in all, fewer than the leads).
    const capped = await fundedBuyer(api, 300 * 40, { displayName: "daily cap 20", priceMinor: 300, dailyCap: 20 });
    const poor = await fundedBuyer(api, 300 * 12 + 150, { displayName: "balance for 12", priceMinor: 300, dailyCap: 30 });
    const monthly = await fundedBuyer(api, 200 * 100, { displayName: "monthly cap 18", priceMinor: 200, dailyCap: 25, monthlyCap: 18 });
    const cheap = await fundedBuyer(api, 100 * 35, { displayName: "balance for 35", priceMinor: 100 });
    const capacity = { [capped.id]: 20, [poor.id]: 12, [monthly.id]: 18, [cheap.id]: 35 };
    const leads = await mapBounded(
      Array.from({ length: 200 }, (_, index) => index),
      10,
      (index) => createQualifiedLead(api, { firstName: `Load ${index}` }),
    );

    const started = Date.now();
    const outcomes = await mapBounded(leads, 20, (lead) => distributeSettled(api, lead.id));
    const elapsedMs = Date.now() - started;

    const sold = outcomes.filter(({ reply }) => reply.status === 200);
    const unsold = outcomes.filter(({ reply }) => reply.status !== 200);
    // Capacity never returns (no refunds here), so a lead goes unsold only once every buyer is exhausted: all of it is used.
    expect(sold).toHaveLength(85);
    const salesPerBuyer = new Map<string, number>();
    for (const { reply } of sold) salesPerBuyer.set(reply.json.sale.buyerId, (salesPerBuyer.get(reply.json.sale.buyerId) ?? 0) + 1);
    expect(Object.fromEntries(salesPerBuyer)).toEqual(capacity);
    const expectedReasons = [
      `buyers/${capped.id} BUYER_SKIP_REASON_DAILY_CAP`,
      `buyers/${poor.id} BUYER_SKIP_REASON_INSUFFICIENT_BALANCE`,
      `buyers/${monthly.id} BUYER_SKIP_REASON_MONTHLY_CAP`,
      `buyers/${cheap.id} BUYER_SKIP_REASON_INSUFFICIENT_BALANCE`,
    ].sort();
    for (const { reply } of unsold) {
      expect(summary(reply)).toEqual({ status: 400, code: Status.FAILED_PRECONDITION, message: expect.stringMatching(/no buyer can take lead/) });
      expect(skipReasons(reply.json).sort()).toEqual(expectedReasons);
    }

    const buyers = await Promise.all([capped, poor, monthly, cheap].map(async (buyer) => (await getBuyer(api, buyer.id)).json.buyer));
    expect(buyers.map((buyer) => ({ id: buyer.id, balance: buyer.balance.amountMinor, salesToday: buyer.salesToday }))).toEqual([
      { id: capped.id, balance: String(300 * 20), salesToday: "20" },
      { id: poor.id, balance: "150", salesToday: "12" },
      { id: monthly.id, balance: String(200 * 82), salesToday: "18" },
      { id: cheap.id, balance: "0", salesToday: "35" },
    ]);
    const pending = outcomes.reduce((total, outcome) => total + outcome.pending, 0);
    console.log(`200 distributions, 20 in flight: ${elapsedMs} ms (${((200 * 1000) / elapsedMs).toFixed(1)}/s), ${pending} pending (503) answers retried`);
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });
});

describe("a lead no buyer can take", () => {
  it("answers FAILED_PRECONDITION with one BUYER_SKIPPED reason per buyer, and changes nothing", async () => {
    const api = await tenantApi("dist-nomatch");
    const french = await fundedBuyer(api, 10_000, { displayName: "France only", criteria: { countryCodes: ["FR"] } });
    const paused = await fundedBuyer(api, 10_000, { displayName: "paused" });
    expectOk(await rest("POST", `/api/v1/buyers/${paused.id}:pause`, { token: api.token, body: {} }), "pausing");
    const broke = await createBuyer(api, { displayName: "no balance", priceMinor: 500 });
    const picky = await fundedBuyer(api, 10_000, { displayName: "score 90+", criteria: { minScore: 90 } });
    const lead = await createQualifiedLead(api, { countryCode: "DE", score: 40 });
    const requestId = randomUUID();

    const reply = await distribute(api, lead.id, { requestId });

    expect(summary(reply)).toEqual({ status: 400, code: Status.FAILED_PRECONDITION, message: expect.stringContaining(`no buyer can take lead "${lead.id}"`) });
    expect(reply.json.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "NO_MATCHING_BUYER" })]),
    );
    expect(skipReasons(reply.json).sort()).toEqual(
      [
        `buyers/${french.id} BUYER_SKIP_REASON_CRITERIA`,
        `buyers/${paused.id} BUYER_SKIP_REASON_PAUSED`,
        `buyers/${broke.id} BUYER_SKIP_REASON_INSUFFICIENT_BALANCE`,
        `buyers/${picky.id} BUYER_SKIP_REASON_CRITERIA`,
      ].sort(),
    );
    // Each reason also says why in words after its name.
    const violations = reply.json.details.find((detail: { "@type": string }) => detail["@type"].endsWith("PreconditionFailure")).violations;
    for (const violation of violations) expect(violation.description).toMatch(/^BUYER_SKIP_REASON_[A-Z_]+: \S/);
    expect(await ledgerEntries(api, broke.id)).toEqual([]);
    expect((await getLead(api, lead.id)).json.lead).toMatchObject({ status: "LEAD_STATUS_QUALIFIED" });
    expect((await getLead(api, lead.id)).json.lead.sale).toBeUndefined();

    // validate_only names the same reasons and writes nothing.
    const dryRun = await distribute(api, lead.id, { validateOnly: true });
    expect(summary(dryRun)).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION });
    expect(skipReasons(dryRun.json)).toHaveLength(4);

    // Once a buyer can take it: validate_only answers the would-be sale, a new request id sells it,
    // while the failed request id keeps its decided outcome (its sale was sealed as never made).
    const willing = await fundedBuyer(api, 10_000, { displayName: "anything", priceMinor: 800 });
    const wouldBe = await distribute(api, lead.id, { validateOnly: true });
    expect(summary(wouldBe).status).toBe(200);
    expect(wouldBe.json.sale).toMatchObject({ buyerId: willing.id, price: { amountMinor: "800" } });
    expect(wouldBe.json.sale.leadSaleId ?? "").toBe("");
    expect(wouldBe.json.lead.status).toBe("LEAD_STATUS_QUALIFIED");
    expect(await ledgerEntries(api, willing.id)).toHaveLength(1);
    expect(summary(await distribute(api, lead.id, { requestId }))).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION });
    const sold = await distribute(api, lead.id, { requestId: randomUUID() });
    expect(summary(sold).status).toBe(200);
    expect(sold.json.sale.buyerId).toBe(willing.id);
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });

  it("sells to a named buyer only if it can take the lead (a manual sale)", async () => {
    const api = await tenantApi("dist-manual");
    const best = await fundedBuyer(api, 10_000, { priceMinor: 900 });
    const chosen = await fundedBuyer(api, 10_000, { priceMinor: 100, criteria: { sources: ["LEAD_SOURCE_REFERRAL"] } });
    const lead = await createQualifiedLead(api, { source: "LEAD_SOURCE_WEB_FORM" });

    const refused = await distribute(api, lead.id, { buyerId: chosen.id });
    expect(summary(refused)).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION });
    expect(skipReasons(refused.json)).toEqual([`buyers/${chosen.id} BUYER_SKIP_REASON_CRITERIA`]);
    expect(summary(await distribute(api, lead.id, { buyerId: "no-such-buyer" }))).toMatchObject({ status: 404, code: Status.NOT_FOUND });

    const referral = await createQualifiedLead(api, { source: "LEAD_SOURCE_REFERRAL" });
    const manual = await distribute(api, referral.id, { buyerId: chosen.id });
    expect(summary(manual).status).toBe(200);
    expect(manual.json.sale).toMatchObject({ buyerId: chosen.id, price: { amountMinor: "100" } });
    expect(await ledgerEntries(api, best.id)).toHaveLength(1);
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });
});

describe("returning a sale", () => {
  it("refunds once however often it is retried concurrently, and the lead is never sold to that buyer again", async () => {
    const api = await tenantApi("dist-return");
    const first = await fundedBuyer(api, 10_000, { displayName: "first", priceMinor: 1_200 });
    const second = await fundedBuyer(api, 10_000, { displayName: "second", priceMinor: 1_000 });
    const lead = await createQualifiedLead(api);
    const sold = expectOk(await distribute(api, lead.id), "distributing");
    expect(sold.json.sale.buyerId).toBe(first.id);
    const saleId = sold.json.sale.leadSaleId;

    const returns = await Promise.all(Array.from({ length: 10 }, () => returnSale(api, saleId)));

    // Every retry answers the returned sale (a concurrent one may be told to retry: ABORTED), never a second refund.
    expect(returns.filter((reply) => reply.status === 200).length).toBeGreaterThanOrEqual(1);
    for (const reply of returns) {
      if (reply.status === 200) expect(reply.json.leadSale).toMatchObject({ id: saleId, state: "LEAD_SALE_STATE_RETURNED" });
      else expect(summary(reply)).toMatchObject({ status: 409, code: Status.ABORTED });
    }
    // The lead's release may finish in the background (the sweeper); wait for it, bounded.
    const released = await pollUntil(
      "the returned lead to be QUALIFIED again",
      async () => {
        const current = (await getLead(api, lead.id)).json.lead;
        return current.status === "LEAD_STATUS_QUALIFIED" ? current : undefined;
      },
      20_000,
    );
    expect(released.returnedBuyerIds).toEqual([first.id]);
    expect(released.sale).toBeUndefined();
    expect((await getSale(api, saleId)).json.leadSale).toMatchObject({
      state: "LEAD_SALE_STATE_RETURNED",
      returnReason: "LEAD_SALE_RETURN_REASON_INVALID_CONTACT",
      returnTime: expect.any(String),
    });
    const ledger = await ledgerEntries(api, first.id);
    expect(ledger.filter((entry) => entry.type === REFUND)).toEqual([
      expect.objectContaining({ leadSaleId: saleId, leadId: lead.id, amount: { currencyCode: "USD", amountMinor: "1200" } }),
    ]);
    expect(minor((await getBuyer(api, first.id)).json.buyer.balance)).toBe(10_000n);
    // Another retry later still answers it as it is.
    expect(summary(await returnSale(api, saleId)).status).toBe(200);
    expect((await ledgerEntries(api, first.id)).filter((entry) => entry.type === REFUND)).toHaveLength(1);

    // Redistribution skips the buyer that returned it, even when named.
    const named = await distribute(api, lead.id, { buyerId: first.id });
    expect(summary(named)).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION });
    expect(skipReasons(named.json)).toEqual([`buyers/${first.id} BUYER_SKIP_REASON_RETURNED_BEFORE`]);
    const resold = expectOk(await distribute(api, lead.id), "redistributing");
    expect(resold.json.sale.buyerId).toBe(second.id);
    expectOk(await returnSale(api, resold.json.sale.leadSaleId), "returning the second sale");
    await pollUntil(
      "the lead to be released by the second buyer",
      async () => ((await getLead(api, lead.id)).json.lead.returnedBuyerIds?.length === 2 ? true : undefined),
      20_000,
    );
    const nobody = await distribute(api, lead.id);
    expect(summary(nobody)).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION });
    expect(skipReasons(nobody.json).sort()).toEqual(
      [`buyers/${first.id} BUYER_SKIP_REASON_RETURNED_BEFORE`, `buyers/${second.id} BUYER_SKIP_REASON_RETURNED_BEFORE`].sort(),
    );
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });

  it("is refused once the return window has passed", async () => {
    const api = await tenantApi("dist-window");
    await fundedBuyer(api, 10_000, { priceMinor: 500, returnWindow: "1s" });
    const lead = await createQualifiedLead(api);
    const saleId = expectOk(await distribute(api, lead.id), "distributing").json.sale.leadSaleId;
    const sale = (await getSale(api, saleId)).json.leadSale;
    expect(Date.parse(sale.returnDeadline) - Date.parse(sale.sellTime)).toBe(1_000);
    await pollUntil("the return window to pass", async () => (Date.now() > Date.parse(sale.returnDeadline) + 50 ? true : undefined), 5_000, 100);
    const late = await returnSale(api, saleId);
    expect(summary(late)).toMatchObject({ status: 400, code: Status.FAILED_PRECONDITION, message: expect.stringMatching(/window|deadline/) });
    expect((await getLead(api, lead.id)).json.lead.status).toBe("LEAD_STATUS_SOLD");
    expect(await checkDistributionInvariants(api)).toEqual([]);
  });
});

describe("tenant isolation", () => {
  it("another tenant can neither see nor use a tenant's buyers, leads and sales (404)", async () => {
    const a = await tenantApi("dist-iso-a");
    const b = await tenantApi("dist-iso-b");
    const buyer = await fundedBuyer(a, 10_000, { priceMinor: 500 });
    const lead = await createQualifiedLead(a);
    const saleId = expectOk(await distribute(a, lead.id), "distributing").json.sale.leadSaleId;
    const unsoldLead = await createQualifiedLead(a);
    const bLead = await createQualifiedLead(b);

    const attempts: Array<[string, Promise<Reply>]> = [
      ["GET buyer", getBuyer(b, buyer.id)],
      ["PATCH buyer", rest("PATCH", `/api/v1/buyers/${buyer.id}`, { token: b.token, body: { displayName: "Mine now" } })],
      ["DELETE buyer", rest("DELETE", `/api/v1/buyers/${buyer.id}`, { token: b.token })],
      ["pause buyer", rest("POST", `/api/v1/buyers/${buyer.id}:pause`, { token: b.token, body: {} })],
      ["top up buyer", topUp(b, buyer.id, 1_000)],
      ["ledger", rest("GET", `/api/v1/buyers/${buyer.id}/ledgerEntries`, { token: b.token })],
      ["sales of buyer", rest("GET", `/api/v1/buyers/${buyer.id}/sales`, { token: b.token })],
      ["GET sale", getSale(b, saleId)],
      ["return sale", returnSale(b, saleId)],
      ["distribute lead", distribute(b, unsoldLead.id)],
      ["distribute own lead to the other tenant's buyer", distribute(b, bLead.id, { buyerId: buyer.id })],
    ];
    const outcomes = await Promise.all(attempts.map(async ([what, reply]) => ({ what, ...summary(await reply) })));
    expect(outcomes).toEqual(attempts.map(([what]) => ({ what, status: 404, code: Status.NOT_FOUND, message: expect.any(String) })));

    expect((await rest("GET", "/api/v1/buyers", { token: b.token })).json.buyers ?? []).toEqual([]);
    expect(await leadSales(b, "-")).toEqual([]);
    // Nothing moved on tenant A's side.
    expect(minor((await getBuyer(a, buyer.id)).json.buyer.balance)).toBe(9_500n);
    expect((await getLead(a, unsoldLead.id)).json.lead.status).toBe("LEAD_STATUS_QUALIFIED");
    expect(await checkDistributionInvariants(a)).toEqual([]);
    expect(await checkDistributionInvariants(b)).toEqual([]);
  });
});
