/**
 * Money: whole minor units (cents) with an ISO 4217 currency code, never a
 * floating-point amount. On the wire an amount is common.v1.Amount, whose
 * int64 amount_minor arrives as a decimal string; stored, it is a JS number,
 * exact only up to 2^53, so every stored amount (prices, balances, entries)
 * stays within ±MAX_STORED_MINOR and sums of two of them are still exact.
 */
import type { Amount } from "@leadmesh/contracts/common/v1/amount";
import type { Violations } from "@leadmesh/platform";

/** Bound of every stored amount: 9e15 < 2^53 (9.007e15), so a stored amount is an exact JS integer. */
export const MAX_STORED_MINOR = 9e15;
/** Largest single top-up or credit (TopUpBuyer): 10^12 minor units. */
export const MAX_TOP_UP_MINOR = 1e12;

const CURRENCY = /^[A-Z]{3}$/;
/** A canonical int64 decimal: no sign but "-", no leading zeros, no blanks, no exponent. */
const INT64 = /^-?(0|[1-9][0-9]*)$/;

export interface Money {
  currencyCode: string;
  amountMinor: number;
}

export function checkCurrency(value: string): string | undefined {
  return CURRENCY.test(value) ? undefined : "must be an ISO 4217 currency code of three capital letters, e.g. USD";
}

/**
 * Parses an int64 decimal (amount_minor, caps) strictly. Returns a
 * description of what is wrong instead of a number when it is not an
 * integer within ±MAX_STORED_MINOR.
 */
export function parseMinor(raw: string): number | string {
  if (!INT64.test(raw)) return `must be a whole number of minor units, got "${raw.slice(0, 40)}"`;
  // Digits beyond the bound are refused before Number() could round them.
  const digits = raw.startsWith("-") ? raw.slice(1) : raw;
  if (digits.length > 16 || Math.abs(Number(raw)) > MAX_STORED_MINOR) return `must be between -${MAX_STORED_MINOR} and ${MAX_STORED_MINOR}`;
  return Number(raw);
}

export interface AmountRule {
  /** Smallest accepted amount (1 for "positive"). */
  min: number;
  max: number;
}

/**
 * A request's Amount as Money, recording a violation per bad part under
 * `field` ("buyer.price_per_lead.amount_minor", ".currency_code"). Returns
 * undefined when the amount is missing or invalid.
 */
export function parseAmount(amount: Amount | undefined, field: string, rule: AmountRule, violations: Violations): Money | undefined {
  if (!amount) {
    violations.add(field, "is required");
    return undefined;
  }
  const currencyProblem = checkCurrency(amount.currencyCode);
  if (currencyProblem) violations.add(`${field}.currency_code`, currencyProblem);
  const parsed = parseMinor(amount.amountMinor);
  if (typeof parsed === "string") {
    violations.add(`${field}.amount_minor`, parsed);
    return undefined;
  }
  if (parsed < rule.min || parsed > rule.max) {
    violations.add(`${field}.amount_minor`, `must be between ${rule.min} and ${rule.max} minor units (got ${parsed})`);
    return undefined;
  }
  return currencyProblem ? undefined : { currencyCode: amount.currencyCode, amountMinor: parsed };
}

/** The wire form of stored money. */
export function toAmount(currencyCode: string, amountMinor: number): Amount {
  return { currencyCode, amountMinor: String(amountMinor) };
}
