/**
 * The views sell.ts gives matching of a stored buyer and of the lead leads
 * sends: they must read the same names the buyer store writes (LeadSource
 * names in criteria, BUYER_STATE_* states, seconds), or every buyer would
 * silently match or miss.
 */
import { BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import { BuyerSkipReason } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { Lead, LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import type { RevisionClaim } from "@leadmesh/platform";
import { emptyCriteria } from "../domain/buyer-fields";
import { type BuyerDocument, storedFields } from "../store";
import { skipReason } from "./matching";
import { chargeOfClaim, saleBuyerOf, saleLeadOf, saleOperationId } from "./sell";

const NOW = new Date("2026-12-02T12:00:00Z");
const KEYS = { day: "2026-12-02", month: "2026-12" };

function stored(overrides: { state?: BuyerState; sources?: LeadSource[]; maxLeadAgeSeconds?: number | null; deleted?: boolean } = {}): BuyerDocument {
  const fields = storedFields({
    displayName: "Acme",
    contactEmail: "",
    contactPhone: "",
    company: "",
    state: overrides.state ?? BuyerState.BUYER_STATE_ACTIVE,
    criteria: { ...emptyCriteria(), sources: overrides.sources ?? [], maxLeadAgeSeconds: overrides.maxLeadAgeSeconds ?? null },
    pricePerLead: { currencyCode: "USD", amountMinor: 700 },
    dailyCap: 3,
    monthlyCap: 0,
    returnWindowSeconds: 3600,
  });
  return {
    _id: "buyer-1",
    tenantId: "acme",
    ...fields,
    currencyCode: "USD",
    balanceMinor: 700,
    counters: { day: KEYS.day, dayCount: 2, month: KEYS.month, monthCount: 2 },
    createTime: NOW,
    updateTime: NOW,
    deleteTime: overrides.deleted ? NOW : null,
    revision: 3,
  };
}

const lead = Lead.fromPartial({ id: "lead-1", source: LeadSource.LEAD_SOURCE_WEB_FORM, createTime: new Date(NOW.getTime() - 120_000), returnedBuyerIds: [] });

const reasonOf = (document: BuyerDocument, forLead: Lead = lead) => skipReason(saleBuyerOf(document), saleLeadOf(forLead), NOW, KEYS)?.reason;

describe("saleBuyerOf / saleLeadOf", () => {
  it("read a stored active buyer with room and money as eligible", () => {
    expect(reasonOf(stored())).toBeUndefined();
    expect(saleBuyerOf(stored())).toMatchObject({ priceMinor: 700, balanceMinor: 700, dailyCap: 3, priceCurrencyCode: "USD", balanceCurrencyCode: "USD" });
  });

  it("read the stored state names and the delete time", () => {
    expect(reasonOf(stored({ state: BuyerState.BUYER_STATE_PAUSED }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_PAUSED);
    expect(reasonOf(stored({ deleted: true }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_PAUSED);
  });

  it("compare the lead's source by the name the store keeps", () => {
    expect(reasonOf(stored({ sources: [LeadSource.LEAD_SOURCE_WEB_FORM] }))).toBeUndefined();
    expect(reasonOf(stored({ sources: [LeadSource.LEAD_SOURCE_REFERRAL] }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA);
  });

  it("turn the stored maximum lead age in seconds into milliseconds", () => {
    expect(reasonOf(stored({ maxLeadAgeSeconds: 120 }))).toBeUndefined();
    expect(reasonOf(stored({ maxLeadAgeSeconds: 119 }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA);
  });

  it("count the stored counters against the caps", () => {
    const full = { ...stored(), counters: { day: KEYS.day, dayCount: 3, month: KEYS.month, monthCount: 3 } };
    expect(reasonOf(full)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_DAILY_CAP);
  });
});

describe("saleOperationId", () => {
  it("names the charge of a sale, one operation per sale id", () => {
    expect(saleOperationId("d-1")).toBe("sale:d-1");
  });
});

describe("chargeOfClaim", () => {
  const claim = (entry: Record<string, unknown>): RevisionClaim => ({
    _id: "buyer-1:4",
    tenantId: "acme",
    subjectId: "buyer-1",
    opId: "sale:d-1",
    revision: 4,
    actorId: "leads",
    fields: ["balanceMinor", "counters"],
    createTime: NOW,
    entry: { type: "CHARGE", amountMinor: -700, currencyCode: "USD", balanceAfterMinor: 0, leadSaleId: "d-1", leadId: "lead-1", ...entry },
  });
  /** The buyer as it is now: its window changed to a day since the charge. */
  const buyers = { get: async () => ({ ...stored(), returnWindowSeconds: 86_400 }) };

  it("dates the sale from the return window recorded on the charge, not the buyer's window by now", async () => {
    expect(await chargeOfClaim(buyers, claim({ returnWindowSeconds: 3_600 }), "lead-1", "d-1")).toEqual({
      buyerId: "buyer-1",
      priceMinor: 700,
      currencyCode: "USD",
      sellTime: NOW,
      returnWindowSeconds: 3_600,
    });
  });

  it("falls back to the buyer's current window for a charge recorded without one", async () => {
    expect((await chargeOfClaim(buyers, claim({}), "lead-1", "d-1")).returnWindowSeconds).toBe(86_400);
  });
});
