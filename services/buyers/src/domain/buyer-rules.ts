/**
 * Pure buyer rules: what a valid new buyer is and how an update mask
 * applies. No I/O, unit-tested in isolation (buyer-rules.test.ts).
 */
import { type Buyer, BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import { requireMessage, Violations } from "@leadmesh/platform";
import { type BuyerInput, CRITERION_RULES, checkInvariants, DEFAULT_RETURN_WINDOW_SECONDS, emptyCriteria, FIELD_RULES, READ_ONLY_PATHS } from "./buyer-fields";

const EMPTY_CRITERIA_MESSAGE = { sources: [], countryCodes: [], minScore: 0, maxScore: 0, postalCodePrefixes: [], tags: [], maxLeadAge: undefined };

/** Validates a buyer for CreateBuyer: ACTIVE unless it says PAUSED, 7-day return window unless set. Throws INVALID_ARGUMENT with every violation. */
export function newBuyer(buyer: Buyer | undefined): BuyerInput {
  const request = requireMessage(buyer, "buyer");
  const violations = new Violations();
  const next: BuyerInput = {
    displayName: "",
    contactEmail: "",
    contactPhone: "",
    company: "",
    state: BuyerState.BUYER_STATE_ACTIVE,
    criteria: emptyCriteria(),
    pricePerLead: { currencyCode: "", amountMinor: 0 },
    dailyCap: 0,
    monthlyCap: 0,
    returnWindowSeconds: DEFAULT_RETURN_WINDOW_SECONDS,
  };
  for (const rule of FIELD_RULES) rule.apply(request, next, violations, "create");
  checkInvariants(next, violations);
  violations.throwIfAny();
  return next;
}

/** One resolved update-mask path: a top-level field or one criterion. */
type UpdatePath = { kind: "field"; rule: (typeof FIELD_RULES)[number] } | { kind: "criterion"; rule: (typeof CRITERION_RULES)[number] };

function toSnakeCase(path: string): string {
  return path.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

const UPDATABLE = [...FIELD_RULES.map((rule) => rule.path), ...CRITERION_RULES.map((rule) => `criteria.${rule.path}`)].join(", ");

/**
 * The paths an UpdateBuyer writes. With a mask, exactly the named ones
 * ("*" = every field); without one (AIP-134), every field the request sets,
 * where a set criteria message replaces the whole criteria.
 */
export function updatePaths(patch: Buyer, updateMask: string[] | undefined, violations: Violations): UpdatePath[] {
  const paths = (updateMask ?? []).map((path) => toSnakeCase(path.trim())).filter((path) => path !== "");
  if (paths.length === 0) return FIELD_RULES.filter((rule) => rule.isSet(patch)).map((rule) => ({ kind: "field", rule }));
  if (paths.includes("*")) {
    if (paths.length > 1) violations.add("update_mask", '"*" cannot be combined with other paths');
    return FIELD_RULES.map((rule) => ({ kind: "field", rule }));
  }
  const resolved: UpdatePath[] = [];
  for (const path of new Set(paths)) {
    const field = FIELD_RULES.find((rule) => rule.path === path);
    const criterion = path.startsWith("criteria.") ? CRITERION_RULES.find((rule) => `criteria.${rule.path}` === path) : undefined;
    if (field) resolved.push({ kind: "field", rule: field });
    else if (criterion) resolved.push({ kind: "criterion", rule: criterion });
    else if (READ_ONLY_PATHS.has(path) || path.startsWith("balance."))
      violations.add("update_mask", `"${path}" cannot be updated (output only, or moved by top-ups and sales)`);
    else violations.add("update_mask", `"${path}" is not an updatable field of Buyer; updatable: ${UPDATABLE}`);
  }
  // "criteria" with "criteria.x": the whole replacement already decides x.
  const wholeCriteria = resolved.some((path) => path.kind === "field" && path.rule.path === "criteria");
  return wholeCriteria ? resolved.filter((path) => path.kind === "field") : resolved;
}

export interface BuyerChange {
  next: BuyerInput;
  /** Whether any stored value differs from the current one. */
  changed: boolean;
}

/**
 * Applies an UpdateBuyer to the current buyer and validates the result.
 * The price's currency is the buyer's for good: its balance and ledger are
 * kept in it.
 */
export function applyUpdate(current: BuyerInput, patch: Buyer, updateMask: string[] | undefined): BuyerChange {
  const violations = new Violations();
  const paths = updatePaths(patch, updateMask, violations);
  violations.throwIfAny();
  if (paths.length === 0) {
    violations.add("update_mask", "names no field to update, and the buyer sets none");
    violations.throwIfAny();
  }
  const next: BuyerInput = structuredClone(current);
  for (const path of paths) {
    if (path.kind === "field") path.rule.apply(patch, next, violations, "update");
    else path.rule.apply(patch.criteria ?? EMPTY_CRITERIA_MESSAGE, next.criteria, violations, `buyer.criteria.${path.rule.path}`);
  }
  if (next.pricePerLead.currencyCode !== current.pricePerLead.currencyCode) {
    violations.add("buyer.price_per_lead.currency_code", `must stay ${current.pricePerLead.currencyCode}, the currency of the buyer's balance`);
  }
  checkInvariants(next, violations);
  violations.throwIfAny();
  return { next, changed: JSON.stringify(next) !== JSON.stringify(current) };
}
