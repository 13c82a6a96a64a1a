import { type Buyer, BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import { LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import { DomainError } from "@leadmesh/platform";
import { DEFAULT_RETURN_WINDOW_SECONDS } from "./buyer-fields";
import { applyUpdate, newBuyer } from "./buyer-rules";

const EMPTY_CRITERIA = { sources: [], countryCodes: [], minScore: 0, maxScore: 0, postalCodePrefixes: [], tags: [], maxLeadAge: undefined };

function buyer(overrides: Partial<Buyer> = {}): Buyer {
  return {
    id: "",
    tenantId: "",
    displayName: "Acme Leads",
    contactEmail: "",
    contactPhone: "",
    company: "",
    state: BuyerState.BUYER_STATE_UNSPECIFIED,
    criteria: undefined,
    pricePerLead: { currencyCode: "USD", amountMinor: "1250" },
    dailyCap: "0",
    monthlyCap: "0",
    balance: undefined,
    salesToday: "0",
    salesThisMonth: "0",
    returnWindow: undefined,
    createTime: undefined,
    updateTime: undefined,
    deleteTime: undefined,
    etag: "",
    ...overrides,
  };
}

function violatedFields(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof DomainError) return error.fieldViolations.map((violation) => violation.field);
    throw error;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("newBuyer", () => {
  it("defaults state ACTIVE, a 7-day return window, unlimited caps and empty criteria", () => {
    const input = newBuyer(buyer());
    expect(input).toMatchObject({
      displayName: "Acme Leads",
      state: BuyerState.BUYER_STATE_ACTIVE,
      pricePerLead: { currencyCode: "USD", amountMinor: 1250 },
      dailyCap: 0,
      monthlyCap: 0,
      returnWindowSeconds: DEFAULT_RETURN_WINDOW_SECONDS,
      criteria: { sources: [], countryCodes: [], minScore: 0, maxScore: 0, postalCodePrefixes: [], tags: [], maxLeadAgeSeconds: null },
    });
  });

  it("reads every field", () => {
    const input = newBuyer(
      buyer({
        displayName: "  Acme  ",
        contactEmail: "buy@acme.example.com",
        contactPhone: "+14155550123",
        company: "Acme Inc",
        state: BuyerState.BUYER_STATE_PAUSED,
        dailyCap: "5",
        monthlyCap: "100",
        returnWindow: { seconds: "0", nanos: 0 },
        criteria: {
          sources: [LeadSource.LEAD_SOURCE_WEB_FORM],
          countryCodes: ["US", "CA"],
          minScore: 10,
          maxScore: 90,
          postalCodePrefixes: ["94", "SW1 A"],
          tags: ["solar", "home-improvement"],
          maxLeadAge: { seconds: "3600", nanos: 0 },
        },
      }),
    );
    expect(input).toMatchObject({
      displayName: "Acme",
      state: BuyerState.BUYER_STATE_PAUSED,
      dailyCap: 5,
      monthlyCap: 100,
      returnWindowSeconds: 0,
      criteria: { sources: [LeadSource.LEAD_SOURCE_WEB_FORM], countryCodes: ["US", "CA"], minScore: 10, maxScore: 90, maxLeadAgeSeconds: 3600 },
    });
  });

  it("reports a violation for every bad field at once", () => {
    const fields = violatedFields(() =>
      newBuyer(
        buyer({
          displayName: " ",
          contactEmail: "not-an-email",
          contactPhone: "0800 123",
          company: "x".repeat(201),
          state: 7 as BuyerState,
          pricePerLead: { currencyCode: "usd", amountMinor: "0" },
          dailyCap: "-1",
          monthlyCap: "lots",
          returnWindow: { seconds: String(91 * 86400), nanos: 0 },
          criteria: {
            sources: [LeadSource.LEAD_SOURCE_UNSPECIFIED],
            countryCodes: ["usa"],
            minScore: 101,
            maxScore: -1,
            postalCodePrefixes: ["#1"],
            tags: ["Solar"],
            maxLeadAge: { seconds: "59", nanos: 0 },
          },
        }),
      ),
    );
    expect(fields.sort()).toEqual(
      [
        "buyer.display_name",
        "buyer.contact_email",
        "buyer.contact_phone",
        "buyer.company",
        "buyer.state",
        "buyer.price_per_lead.currency_code",
        "buyer.price_per_lead.amount_minor",
        "buyer.daily_cap",
        "buyer.monthly_cap",
        "buyer.return_window",
        "buyer.criteria.sources",
        "buyer.criteria.country_codes",
        "buyer.criteria.min_score",
        "buyer.criteria.max_score",
        "buyer.criteria.postal_code_prefixes",
        "buyer.criteria.tags",
        "buyer.criteria.max_lead_age",
      ].sort(),
    );
  });

  it("requires the price and bounds list sizes", () => {
    expect(violatedFields(() => newBuyer(buyer({ pricePerLead: undefined })))).toEqual(["buyer.price_per_lead"]);
    const tooMany = {
      ...EMPTY_CRITERIA,
      tags: Array.from({ length: 21 }, (_, index) => `t${index}`),
      countryCodes: Array.from({ length: 251 }, () => "US"),
      postalCodePrefixes: Array.from({ length: 501 }, (_, index) => `${index}`),
    };
    expect(violatedFields(() => newBuyer(buyer({ criteria: tooMany }))).sort()).toEqual([
      "buyer.criteria.country_codes",
      "buyer.criteria.postal_code_prefixes",
      "buyer.criteria.tags",
    ]);
  });

  it("requires max_score >= min_score when max_score is set", () => {
    expect(violatedFields(() => newBuyer(buyer({ criteria: { ...EMPTY_CRITERIA, minScore: 50, maxScore: 40 } })))).toEqual(["buyer.criteria.max_score"]);
    expect(newBuyer(buyer({ criteria: { ...EMPTY_CRITERIA, minScore: 50, maxScore: 0 } })).criteria.maxScore).toBe(0);
  });

  it("refuses fractional durations and a price beyond the stored bound", () => {
    expect(violatedFields(() => newBuyer(buyer({ returnWindow: { seconds: "60", nanos: 5 } })))).toEqual(["buyer.return_window"]);
    expect(violatedFields(() => newBuyer(buyer({ pricePerLead: { currencyCode: "USD", amountMinor: "9000000000000001" } })))).toEqual([
      "buyer.price_per_lead.amount_minor",
    ]);
  });
});

describe("applyUpdate", () => {
  const current = newBuyer(
    buyer({
      dailyCap: "5",
      criteria: { ...EMPTY_CRITERIA, countryCodes: ["US"], minScore: 20, tags: ["solar"] },
    }),
  );

  it("with a mask, writes exactly the named fields (clearing those left at their default)", () => {
    const { next, changed } = applyUpdate(current, buyer({ displayName: "Renamed", dailyCap: "0" }), ["display_name", "daily_cap"]);
    expect(changed).toBe(true);
    expect(next).toMatchObject({ displayName: "Renamed", dailyCap: 0, criteria: { countryCodes: ["US"], minScore: 20 } });
  });

  it('"criteria" replaces the whole criteria, "criteria.<field>" one criterion', () => {
    const whole = applyUpdate(current, buyer({ criteria: { ...EMPTY_CRITERIA, tags: ["roofing"] } }), ["criteria"]);
    expect(whole.next.criteria).toMatchObject({ countryCodes: [], minScore: 0, tags: ["roofing"] });
    const one = applyUpdate(current, buyer({ criteria: { ...EMPTY_CRITERIA, minScore: 30 } }), ["criteria.min_score"]);
    expect(one.next.criteria).toMatchObject({ countryCodes: ["US"], minScore: 30, tags: ["solar"] });
    const camel = applyUpdate(current, buyer({ criteria: { ...EMPTY_CRITERIA, maxLeadAge: { seconds: "120", nanos: 0 } } }), ["criteria.maxLeadAge"]);
    expect(camel.next.criteria.maxLeadAgeSeconds).toBe(120);
  });

  it("without a mask, writes the fields the request sets", () => {
    const { next } = applyUpdate(current, buyer({ displayName: "", pricePerLead: undefined, company: "NewCo" }), undefined);
    expect(next).toMatchObject({ displayName: "Acme Leads", company: "NewCo", dailyCap: 5 });
  });

  it("reports no change when the values are the same", () => {
    expect(applyUpdate(current, buyer({ displayName: "Acme Leads" }), ["display_name"]).changed).toBe(false);
  });

  it("refuses read-only and unknown paths, and a change of currency", () => {
    expect(violatedFields(() => applyUpdate(current, buyer(), ["balance"]))).toEqual(["update_mask"]);
    expect(violatedFields(() => applyUpdate(current, buyer(), ["sales_today", "nonsense"]))).toEqual(["update_mask", "update_mask"]);
    expect(violatedFields(() => applyUpdate(current, buyer({ pricePerLead: { currencyCode: "EUR", amountMinor: "100" } }), ["price_per_lead"]))).toEqual([
      "buyer.price_per_lead.currency_code",
    ]);
    expect(applyUpdate(current, buyer({ pricePerLead: { currencyCode: "USD", amountMinor: "100" } }), ["price_per_lead"]).next.pricePerLead.amountMinor).toBe(
      100,
    );
  });

  it("checks invariants on the result: a new max_score below the stored min_score", () => {
    expect(violatedFields(() => applyUpdate(current, buyer({ criteria: { ...EMPTY_CRITERIA, maxScore: 10 } }), ["criteria.max_score"]))).toEqual([
      "buyer.criteria.max_score",
    ]);
  });

  it("an update naming state must say which", () => {
    expect(violatedFields(() => applyUpdate(current, buyer(), ["state"]))).toEqual(["buyer.state"]);
    expect(applyUpdate(current, buyer({ state: BuyerState.BUYER_STATE_PAUSED }), ["state"]).next.state).toBe(BuyerState.BUYER_STATE_PAUSED);
  });
});
