/**
 * The client-settable fields of a buyer and how each is read from a request
 * and validated. One table, keyed by update-mask path, serves CreateBuyer
 * (every field), UpdateBuyer with update_mask (the named paths, including
 * "criteria" and "criteria.<field>") and UpdateBuyer without one (the fields
 * the request sets), so a new field is added in one place.
 *
 * Reading a field parses it too (int64 strings, durations, amounts): a
 * value that cannot be parsed or is out of range is a field violation under
 * its request path ("buyer.criteria.min_score"), never an exception.
 */
import { type Buyer, type BuyerCriteria, BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import type { Duration } from "@leadmesh/contracts/google/protobuf/duration";
import { LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import { checkOptionalEmail, checkPhone, isSpecifiedEnumValue, specifiedEnumNames, text, type Violations } from "@leadmesh/platform";
import { MAX_STORED_MINOR, type Money, parseAmount, parseMinor } from "./money";

export const DAY_SECONDS = 86_400;
export const DEFAULT_RETURN_WINDOW_SECONDS = 7 * DAY_SECONDS;
export const MAX_RETURN_WINDOW_SECONDS = 90 * DAY_SECONDS;
export const MIN_LEAD_AGE_SECONDS = 60;
export const MAX_LEAD_AGE_SECONDS = 365 * DAY_SECONDS;

/** What a buyer accepts, parsed (enums as numbers). */
export interface CriteriaInput {
  sources: LeadSource[];
  countryCodes: string[];
  minScore: number;
  /** 0: no maximum. */
  maxScore: number;
  postalCodePrefixes: string[];
  tags: string[];
  /** null: leads of any age. */
  maxLeadAgeSeconds: number | null;
}

/** A buyer as the domain sees it: only what a client may set, parsed. */
export interface BuyerInput {
  displayName: string;
  contactEmail: string;
  contactPhone: string;
  company: string;
  state: BuyerState;
  criteria: CriteriaInput;
  pricePerLead: Money;
  /** 0: unlimited. */
  dailyCap: number;
  /** 0: unlimited. */
  monthlyCap: number;
  returnWindowSeconds: number;
}

export type Mode = "create" | "update";

interface FieldRule {
  /** The update-mask path and the field's name in violations (under "buyer."). */
  path: string;
  /** Whether the request sets the field (UpdateBuyer without update_mask). */
  isSet(buyer: Buyer): boolean;
  /** Reads the request's value into `next`, recording violations under `buyer.<path>`. */
  apply(buyer: Buyer, next: BuyerInput, violations: Violations, mode: Mode): void;
}

interface CriterionRule {
  path: string;
  isSet(criteria: BuyerCriteria): boolean;
  apply(criteria: BuyerCriteria, next: CriteriaInput, violations: Violations, field: string): void;
}

const COUNTRY = /^[A-Z]{2}$/;
const POSTAL_PREFIX = /^[A-Za-z0-9][A-Za-z0-9 -]{0,19}$/;
const TAG = /^[a-z0-9_-]{1,50}$/;
const INT64 = /^-?(0|[1-9][0-9]*)$/;

export function emptyCriteria(): CriteriaInput {
  return { sources: [], countryCodes: [], minScore: 0, maxScore: 0, postalCodePrefixes: [], tags: [], maxLeadAgeSeconds: null };
}

const EMPTY_BUYER_CRITERIA: BuyerCriteria = {
  sources: [],
  countryCodes: [],
  minScore: 0,
  maxScore: 0,
  postalCodePrefixes: [],
  tags: [],
  maxLeadAge: undefined,
};

/**
 * Whole seconds of a Duration within [min, max]; undefined (with a
 * violation) otherwise. Fractions of a second are refused, not rounded.
 */
export function parseDuration(duration: Duration, field: string, min: number, max: number, violations: Violations): number | undefined {
  const seconds = INT64.test(duration.seconds) && duration.seconds.length <= 16 ? Number(duration.seconds) : Number.NaN;
  if (Number.isNaN(seconds) || duration.nanos !== 0) {
    violations.add(field, "must be a whole number of seconds");
    return undefined;
  }
  if (seconds < min || seconds > max) {
    violations.add(field, `must be between ${min} s and ${max} s (got ${seconds} s)`);
    return undefined;
  }
  return seconds;
}

function listCheck<T>(values: T[], max: number, valid: (value: T) => boolean, what: string): string | undefined {
  if (values.length > max) return `must have at most ${max} entries (got ${values.length})`;
  const bad = values.find((value) => !valid(value));
  if (bad !== undefined) return `"${String(bad).slice(0, 60)}" is not ${what}`;
  if (new Set(values).size !== values.length) return "must not repeat an entry";
  return undefined;
}

function score(criteria: BuyerCriteria, key: "minScore" | "maxScore", next: CriteriaInput, violations: Violations, field: string): void {
  const value = criteria[key];
  if (Number.isInteger(value) && value >= 0 && value <= 100) next[key] = value;
  else violations.add(field, "must be between 0 and 100");
}

export const CRITERION_RULES: CriterionRule[] = [
  {
    path: "sources",
    isSet: (criteria) => criteria.sources.length > 0,
    apply(criteria, next, violations, field) {
      const problem = listCheck(
        criteria.sources,
        20,
        (source) => isSpecifiedEnumValue(LeadSource, source),
        `a lead source (${specifiedEnumNames(LeadSource)})`,
      );
      if (problem) violations.add(field, problem);
      else next.sources = [...criteria.sources];
    },
  },
  {
    path: "country_codes",
    isSet: (criteria) => criteria.countryCodes.length > 0,
    apply(criteria, next, violations, field) {
      const codes = criteria.countryCodes.map((code) => code.trim());
      const problem = listCheck(codes, 250, (code) => COUNTRY.test(code), "an ISO 3166-1 alpha-2 code in capitals, e.g. US");
      if (problem) violations.add(field, problem);
      else next.countryCodes = codes;
    },
  },
  {
    path: "min_score",
    isSet: (criteria) => criteria.minScore !== 0,
    apply: (criteria, next, violations, field) => score(criteria, "minScore", next, violations, field),
  },
  {
    path: "max_score",
    isSet: (criteria) => criteria.maxScore !== 0,
    apply: (criteria, next, violations, field) => score(criteria, "maxScore", next, violations, field),
  },
  {
    path: "postal_code_prefixes",
    isSet: (criteria) => criteria.postalCodePrefixes.length > 0,
    apply(criteria, next, violations, field) {
      const prefixes = criteria.postalCodePrefixes.map((prefix) => prefix.trim());
      const problem = listCheck(prefixes, 500, (prefix) => POSTAL_PREFIX.test(prefix), "a postal-code prefix of 1-20 letters, digits, spaces and dashes");
      if (problem) violations.add(field, problem);
      else next.postalCodePrefixes = prefixes;
    },
  },
  {
    path: "tags",
    isSet: (criteria) => criteria.tags.length > 0,
    apply(criteria, next, violations, field) {
      const problem = listCheck(criteria.tags, 20, (tag) => TAG.test(tag), "a tag of 1-50 characters of [a-z0-9_-]");
      if (problem) violations.add(field, problem);
      else next.tags = [...criteria.tags];
    },
  },
  {
    path: "max_lead_age",
    isSet: (criteria) => criteria.maxLeadAge !== undefined,
    apply(criteria, next, violations, field) {
      if (criteria.maxLeadAge === undefined) {
        next.maxLeadAgeSeconds = null;
        return;
      }
      const seconds = parseDuration(criteria.maxLeadAge, field, MIN_LEAD_AGE_SECONDS, MAX_LEAD_AGE_SECONDS, violations);
      if (seconds !== undefined) next.maxLeadAgeSeconds = seconds;
    },
  },
];

function textRule(path: string, key: "displayName" | "contactEmail" | "contactPhone" | "company", check: (value: string) => string | undefined): FieldRule {
  return {
    path,
    isSet: (buyer) => buyer[key] !== "",
    apply(buyer, next, violations) {
      const value = buyer[key].trim();
      const problem = check(value);
      if (problem) violations.add(`buyer.${path}`, problem);
      else next[key] = value;
    },
  };
}

function capRule(path: string, key: "dailyCap" | "monthlyCap"): FieldRule {
  return {
    path,
    isSet: (buyer) => buyer[key] !== "0" && buyer[key] !== "",
    apply(buyer, next, violations) {
      const parsed = parseMinor(buyer[key] === "" ? "0" : buyer[key]);
      if (typeof parsed === "string") violations.add(`buyer.${path}`, parsed.replace("minor units", "leads"));
      else if (parsed < 0) violations.add(`buyer.${path}`, "must not be negative (0 means unlimited)");
      else next[key] = parsed;
    },
  };
}

export const FIELD_RULES: FieldRule[] = [
  textRule("display_name", "displayName", text({ max: 200, required: true })),
  textRule("contact_email", "contactEmail", checkOptionalEmail),
  textRule("contact_phone", "contactPhone", checkPhone),
  textRule("company", "company", text({ max: 200 })),
  {
    path: "state",
    isSet: (buyer) => buyer.state !== BuyerState.BUYER_STATE_UNSPECIFIED,
    apply(buyer, next, violations, mode) {
      // Unset on create means ACTIVE (the default already in `next`); an update naming state must say which.
      if (buyer.state === BuyerState.BUYER_STATE_UNSPECIFIED && mode === "create") return;
      if (isSpecifiedEnumValue(BuyerState, buyer.state)) next.state = buyer.state;
      else violations.add("buyer.state", `must be one of ${specifiedEnumNames(BuyerState)}`);
    },
  },
  {
    path: "criteria",
    isSet: (buyer) => buyer.criteria !== undefined,
    apply(buyer, next, violations) {
      // The whole criteria: unset criteria fields are cleared.
      next.criteria = emptyCriteria();
      for (const rule of CRITERION_RULES) rule.apply(buyer.criteria ?? EMPTY_BUYER_CRITERIA, next.criteria, violations, `buyer.criteria.${rule.path}`);
    },
  },
  {
    path: "price_per_lead",
    isSet: (buyer) => buyer.pricePerLead !== undefined,
    apply(buyer, next, violations) {
      const price = parseAmount(buyer.pricePerLead, "buyer.price_per_lead", { min: 1, max: MAX_STORED_MINOR }, violations);
      if (price) next.pricePerLead = price;
    },
  },
  capRule("daily_cap", "dailyCap"),
  capRule("monthly_cap", "monthlyCap"),
  {
    path: "return_window",
    isSet: (buyer) => buyer.returnWindow !== undefined,
    apply(buyer, next, violations) {
      if (buyer.returnWindow === undefined) {
        next.returnWindowSeconds = DEFAULT_RETURN_WINDOW_SECONDS;
        return;
      }
      const seconds = parseDuration(buyer.returnWindow, "buyer.return_window", 0, MAX_RETURN_WINDOW_SECONDS, violations);
      if (seconds !== undefined) next.returnWindowSeconds = seconds;
    },
  },
];

/** Paths of Buyer a client can never write: output only, or moved only by top-ups and sales. */
export const READ_ONLY_PATHS = new Set(["id", "tenant_id", "balance", "sales_today", "sales_this_month", "create_time", "update_time", "delete_time", "etag"]);

/** Invariants across fields, checked on the buyer as it will be stored. */
export function checkInvariants(buyer: BuyerInput, violations: Violations): void {
  const { minScore, maxScore } = buyer.criteria;
  if (maxScore !== 0 && maxScore < minScore) violations.add("buyer.criteria.max_score", `must be at least min_score (${minScore}) when set`);
}
