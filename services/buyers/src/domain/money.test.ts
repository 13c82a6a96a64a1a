import { Violations } from "@leadmesh/platform";
import { MAX_STORED_MINOR, parseAmount, parseMinor, toAmount } from "./money";

function violationsOf(run: (violations: Violations) => void) {
  const violations = new Violations();
  run(violations);
  try {
    violations.throwIfAny();
    return [];
  } catch (error) {
    return (error as { fieldViolations: { field: string }[] }).fieldViolations.map((violation) => violation.field);
  }
}

describe("parseMinor", () => {
  it("accepts canonical int64 decimals within ±9e15", () => {
    expect(parseMinor("0")).toBe(0);
    expect(parseMinor("1250")).toBe(1250);
    expect(parseMinor("-42")).toBe(-42);
    expect(parseMinor("9000000000000000")).toBe(MAX_STORED_MINOR);
    expect(parseMinor("-9000000000000000")).toBe(-MAX_STORED_MINOR);
  });

  it.each(["", " 1", "1 ", "+1", "01", "-0x1", "1e3", "1.5", "12,50", "NaN", "Infinity", "--1", "-"])("refuses %j", (raw) => {
    expect(typeof parseMinor(raw)).toBe("string");
  });

  it("refuses amounts beyond ±9e15 instead of rounding them", () => {
    expect(typeof parseMinor("9000000000000001")).toBe("string");
    expect(typeof parseMinor("-9000000000000001")).toBe("string");
    expect(typeof parseMinor("9223372036854775807")).toBe("string");
    expect(typeof parseMinor("99999999999999999999999999")).toBe("string");
  });
});

describe("parseAmount", () => {
  const positive = { min: 1, max: 1e12 };

  it("returns the money when currency and amount are valid", () => {
    const violations = new Violations();
    expect(parseAmount({ currencyCode: "EUR", amountMinor: "1999" }, "amount", positive, violations)).toEqual({ currencyCode: "EUR", amountMinor: 1999 });
    expect(violations.count).toBe(0);
  });

  it("names each bad part", () => {
    expect(violationsOf((v) => parseAmount(undefined, "amount", positive, v))).toEqual(["amount"]);
    expect(violationsOf((v) => parseAmount({ currencyCode: "eur", amountMinor: "1" }, "amount", positive, v))).toEqual(["amount.currency_code"]);
    expect(violationsOf((v) => parseAmount({ currencyCode: "EURO", amountMinor: "abc" }, "amount", positive, v))).toEqual([
      "amount.currency_code",
      "amount.amount_minor",
    ]);
    expect(violationsOf((v) => parseAmount({ currencyCode: "USD", amountMinor: "0" }, "amount", positive, v))).toEqual(["amount.amount_minor"]);
    expect(violationsOf((v) => parseAmount({ currencyCode: "USD", amountMinor: "-5" }, "amount", positive, v))).toEqual(["amount.amount_minor"]);
    expect(violationsOf((v) => parseAmount({ currencyCode: "USD", amountMinor: "1000000000001" }, "amount", positive, v))).toEqual(["amount.amount_minor"]);
  });

  it("writes stored money back as an int64 string", () => {
    expect(toAmount("JPY", -1500)).toEqual({ currencyCode: "JPY", amountMinor: "-1500" });
  });
});
