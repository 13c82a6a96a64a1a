import { BuyerSkipReason } from "@leadmesh/contracts/buyers/v1/lead_sale";
import fc from "fast-check";
import {
  type CounterKeys,
  countedSale,
  normalizedPostalCode,
  rankBuyers,
  rotationKey,
  type SaleBuyer,
  type SaleLead,
  salesToday,
  skipDescription,
  skipReason,
  skipReasonOf,
} from "./matching";

const NOW = new Date("2026-12-02T16:00:00Z");
const KEYS: CounterKeys = { day: "2026-12-02", month: "2026-12" };

function buyer(overrides: Partial<SaleBuyer> = {}): SaleBuyer {
  return {
    id: "b1",
    paused: false,
    deleted: false,
    criteria: { sources: [], countryCodes: [], minScore: 0, maxScore: 0, postalCodePrefixes: [], tags: [], maxLeadAgeMs: 0 },
    priceMinor: 1000,
    priceCurrencyCode: "USD",
    balanceMinor: 5000,
    balanceCurrencyCode: "USD",
    dailyCap: 0,
    monthlyCap: 0,
    counters: { day: KEYS.day, dayCount: 0, month: KEYS.month, monthCount: 0 },
    ...overrides,
  };
}

function criteria(overrides: Partial<SaleBuyer["criteria"]>): SaleBuyer["criteria"] {
  return { ...buyer().criteria, ...overrides };
}

const lead: SaleLead = {
  id: "lead-1",
  source: "LEAD_SOURCE_WEB_FORM",
  countryCode: "GB",
  score: 60,
  postalCode: "sw1a 1aa",
  tags: ["solar", "roofing"],
  createTime: new Date(NOW.getTime() - 3_600_000),
  returnedBuyerIds: [],
};

function reasonOf(candidate: SaleBuyer, forLead: SaleLead = lead, keys: CounterKeys = KEYS) {
  return skipReason(candidate, forLead, NOW, keys)?.reason;
}

describe("skipReason", () => {
  it("takes an active buyer with empty criteria, money and room under its caps", () => {
    expect(skipReason(buyer({ dailyCap: 5, monthlyCap: 50 }), lead, NOW, KEYS)).toBeUndefined();
  });

  it("skips paused and deleted buyers as PAUSED, before anything else", () => {
    expect(reasonOf(buyer({ paused: true, balanceMinor: 0 }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_PAUSED);
    expect(reasonOf(buyer({ deleted: true }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_PAUSED);
  });

  it.each([
    ["sources", criteria({ sources: ["LEAD_SOURCE_REFERRAL"] })],
    ["country_codes", criteria({ countryCodes: ["US", "DE"] })],
    ["min_score", criteria({ minScore: 61 })],
    ["max_score", criteria({ maxScore: 59 })],
    ["postal_code_prefixes", criteria({ postalCodePrefixes: ["SW2", "94"] })],
    ["tags", criteria({ tags: ["insurance"] })],
    ["max_lead_age", criteria({ maxLeadAgeMs: 3_599_999 })],
  ])("skips a lead outside %s as CRITERIA", (_name, buyerCriteria) => {
    const skip = skipReason(buyer({ criteria: buyerCriteria }), lead, NOW, KEYS);
    expect(skip?.reason).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA);
    expect(skip?.text).not.toBe("");
  });

  it("accepts a lead inside every criterion (bounds inclusive, postal codes ignoring case and spaces, any one tag)", () => {
    const inside = criteria({
      sources: ["LEAD_SOURCE_WEB_FORM"],
      countryCodes: ["GB"],
      minScore: 60,
      maxScore: 60,
      postalCodePrefixes: ["94", "S W1a"],
      tags: ["insurance", "roofing"],
      maxLeadAgeMs: 3_600_000,
    });
    expect(reasonOf(buyer({ criteria: inside }))).toBeUndefined();
  });

  it("does not match a lead without country, postal code or create_time where those criteria are set", () => {
    const bare = { ...lead, countryCode: "", postalCode: "", createTime: undefined };
    expect(reasonOf(buyer({ criteria: criteria({ countryCodes: ["GB"] }) }), bare)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA);
    expect(reasonOf(buyer({ criteria: criteria({ postalCodePrefixes: ["SW"] }) }), bare)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA);
    expect(reasonOf(buyer({ criteria: criteria({ maxLeadAgeMs: 60_000 }) }), bare)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA);
    expect(reasonOf(buyer(), bare)).toBeUndefined();
  });

  it("never sells a lead again to a buyer that returned it", () => {
    expect(reasonOf(buyer(), { ...lead, returnedBuyerIds: ["b0", "b1"] })).toBe(BuyerSkipReason.BUYER_SKIP_REASON_RETURNED_BEFORE);
  });

  it("never mixes currencies", () => {
    expect(reasonOf(buyer({ priceCurrencyCode: "EUR" }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_CURRENCY);
  });

  it("skips a buyer at its daily or monthly cap, counting only the current period", () => {
    const atDaily = buyer({ dailyCap: 5, counters: { day: KEYS.day, dayCount: 5, month: KEYS.month, monthCount: 5 } });
    expect(reasonOf(atDaily)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_DAILY_CAP);
    expect(reasonOf(atDaily, lead, { day: "2026-12-03", month: KEYS.month })).toBeUndefined();
    const atMonthly = buyer({ dailyCap: 5, monthlyCap: 20, counters: { day: "2026-12-01", dayCount: 5, month: KEYS.month, monthCount: 20 } });
    expect(reasonOf(atMonthly)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_MONTHLY_CAP);
    expect(reasonOf(atMonthly, lead, { day: "2027-01-01", month: "2027-01" })).toBeUndefined();
  });

  it("skips a buyer whose balance is below its price, and takes one with exactly the price", () => {
    expect(reasonOf(buyer({ balanceMinor: 999 }))).toBe(BuyerSkipReason.BUYER_SKIP_REASON_INSUFFICIENT_BALANCE);
    expect(reasonOf(buyer({ balanceMinor: 1000 }))).toBeUndefined();
  });

  it("never takes a buyer at a cap or short of money, whatever else holds (property)", () => {
    const counters = fc.record({
      day: fc.constantFrom(KEYS.day, "2026-12-01"),
      dayCount: fc.nat(20),
      month: fc.constantFrom(KEYS.month, "2026-11"),
      monthCount: fc.nat(100),
    });
    const anyBuyer = fc.record({
      paused: fc.boolean(),
      dailyCap: fc.nat(10),
      monthlyCap: fc.nat(50),
      priceMinor: fc.integer({ min: 1, max: 10_000 }),
      balanceMinor: fc.integer({ min: 0, max: 20_000 }),
      counters,
    });
    fc.assert(
      fc.property(anyBuyer, (fields) => {
        const candidate = buyer(fields);
        const taken = skipReason(candidate, lead, NOW, KEYS) === undefined;
        if (!taken) return;
        expect(candidate.paused).toBe(false);
        expect(candidate.balanceMinor).toBeGreaterThanOrEqual(candidate.priceMinor);
        if (candidate.dailyCap > 0) expect(salesToday(candidate.counters, KEYS)).toBeLessThan(candidate.dailyCap);
        // One more sale keeps the buyer within its caps.
        const after = countedSale(candidate.counters, KEYS);
        if (candidate.dailyCap > 0) expect(after.dayCount).toBeLessThanOrEqual(candidate.dailyCap);
        if (candidate.monthlyCap > 0) expect(after.monthCount).toBeLessThanOrEqual(candidate.monthlyCap);
      }),
    );
  });

  it("selling to a buyer until it is skipped never exceeds its daily cap (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 8 }), fc.nat(12), (dailyCap, startCount, balanceLeads) => {
        let candidate = buyer({
          dailyCap,
          balanceMinor: balanceLeads * 1000,
          counters: { day: KEYS.day, dayCount: startCount, month: KEYS.month, monthCount: startCount },
        });
        let sold = 0;
        while (skipReason(candidate, lead, NOW, KEYS) === undefined) {
          candidate = { ...candidate, balanceMinor: candidate.balanceMinor - candidate.priceMinor, counters: countedSale(candidate.counters, KEYS) };
          sold += 1;
        }
        expect(sold).toBe(Math.max(0, Math.min(dailyCap - startCount, balanceLeads)));
        expect(candidate.balanceMinor).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});

describe("countedSale", () => {
  it("restarts the counts of an earlier day or month at one", () => {
    expect(countedSale({ day: "2026-11-30", dayCount: 7, month: "2026-11", monthCount: 70 }, KEYS)).toEqual({ ...KEYS, dayCount: 1, monthCount: 1 });
    expect(countedSale({ day: "2026-12-01", dayCount: 7, month: KEYS.month, monthCount: 70 }, KEYS)).toEqual({ ...KEYS, dayCount: 1, monthCount: 71 });
    expect(countedSale({ ...KEYS, dayCount: 2, monthCount: 9 }, KEYS)).toEqual({ ...KEYS, dayCount: 3, monthCount: 10 });
  });
});

describe("normalizedPostalCode", () => {
  it("ignores case and every kind of space", () => {
    expect(normalizedPostalCode(" sw1a\t1aa ")).toBe("SW1A1AA");
  });
});

describe("rankBuyers", () => {
  const ranked = fc.uniqueArray(fc.record({ id: fc.stringMatching(/^[a-f0-9]{1,8}$/), priceMinor: fc.integer({ min: 1, max: 5 }), salesToday: fc.nat(3) }), {
    selector: (entry) => entry.id,
    maxLength: 12,
  });

  it("puts the highest price first, then the fewest sales today", () => {
    const order = rankBuyers(
      [
        { id: "cheap", priceMinor: 500, salesToday: 0 },
        { id: "busy", priceMinor: 900, salesToday: 4 },
        { id: "idle", priceMinor: 900, salesToday: 1 },
      ],
      "lead-1",
    ).map((entry) => entry.id);
    expect(order).toEqual(["idle", "busy", "cheap"]);
  });

  it("breaks full ties by a rotation fixed per lead, which differs between leads", () => {
    const equal = ["b1", "b2", "b3", "b4"].map((id) => ({ id, priceMinor: 100, salesToday: 0 }));
    const firstPick = new Set<string>();
    for (let index = 0; index < 40; index++) {
      const leadId = `lead-${index}`;
      const order = rankBuyers(equal, leadId).map((entry) => entry.id);
      expect(order).toEqual(rankBuyers([...equal].reverse(), leadId).map((entry) => entry.id));
      const keys = order.map((id) => rotationKey(leadId, id));
      expect(keys).toEqual([...keys].sort());
      firstPick.add(order[0] as string);
    }
    // Every buyer wins some of the 40 leads: the rotation spreads ties.
    expect(firstPick.size).toBe(4);
  });

  it("is a total order independent of the input order (property)", () => {
    fc.assert(
      fc.property(ranked, fc.string(), fc.func(fc.integer()), (buyers, leadId, shuffleKey) => {
        const shuffled = [...buyers].sort((a, b) => shuffleKey(a.id) - shuffleKey(b.id));
        const order = rankBuyers(buyers, leadId);
        expect(rankBuyers(shuffled, leadId)).toEqual(order);
        expect(order).toHaveLength(buyers.length);
        for (let index = 1; index < order.length; index++) {
          const [before, after] = [order[index - 1], order[index]] as [(typeof order)[number], (typeof order)[number]];
          // Adjacent pairs strictly ordered by (price desc, sales today asc, rotation asc).
          const key = (entry: typeof before) => [-entry.priceMinor, entry.salesToday, rotationKey(leadId, entry.id)] as const;
          const [a, b] = [key(before), key(after)];
          const strictlyBefore = a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])));
          expect(strictlyBefore).toBe(true);
        }
      }),
    );
  });
});

describe("skipDescription", () => {
  it("starts with the reason's enum name, which skipReasonOf reads back", () => {
    const description = skipDescription({ reason: BuyerSkipReason.BUYER_SKIP_REASON_DAILY_CAP, text: "5 of 5 leads sold today" });
    expect(description).toBe("BUYER_SKIP_REASON_DAILY_CAP: 5 of 5 leads sold today");
    expect(skipReasonOf(description)).toBe(BuyerSkipReason.BUYER_SKIP_REASON_DAILY_CAP);
    expect(skipReasonOf("nonsense")).toBe(BuyerSkipReason.BUYER_SKIP_REASON_UNSPECIFIED);
  });
});
