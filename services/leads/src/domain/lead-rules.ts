/**
 * Pure lead rules: what a valid new lead is, how an update mask applies and
 * which invariants hold across fields. No I/O, unit-tested in isolation.
 */
import { type Lead, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { requireMessage, Violations } from "@leadmesh/platform";
import { checkField, FIELD_BY_PROTO_NAME, LEAD_FIELD_NAMES, LEAD_FIELDS, type LeadFieldName, type LeadInput } from "./lead-fields";

const OUTPUT_ONLY = new Set(["id", "tenant_id", "create_time", "update_time", "delete_time", "etag", "sale", "returned_buyer_ids"]);

/** Only a distribution sells a lead (DistributeLead); a client cannot create or mark one SOLD. */
const SOLD_BY_DISTRIBUTION_ONLY = "LEAD_STATUS_SOLD is set by DistributeLead only, not by clients";

/** Copies the client-settable fields of a request lead, trimming surrounding blanks of text fields. */
export function inputOf(lead: Lead): LeadInput {
  return {
    firstName: lead.firstName.trim(),
    lastName: lead.lastName.trim(),
    email: lead.email.trim(),
    phone: lead.phone.trim(),
    company: lead.company.trim(),
    source: lead.source,
    status: lead.status,
    assigneeId: lead.assigneeId.trim(),
    score: lead.score,
    tags: [...lead.tags],
    attributes: { ...lead.attributes },
    countryCode: lead.countryCode.trim(),
    postalCode: lead.postalCode.trim(),
  };
}

function checkInvariants(lead: LeadInput, violations: Violations, prefix: string): void {
  if (lead.email === "" && lead.phone === "") {
    violations.add(`${prefix}.email`, "a lead needs an email or a phone number");
  }
}

/** Validates a lead for CreateLead; status defaults to NEW. Throws INVALID_ARGUMENT with every violation. */
export function newLead(lead: Lead | undefined): LeadInput {
  const input = inputOf(requireMessage(lead, "lead"));
  const violations = new Violations();
  if (input.status === LeadStatus.LEAD_STATUS_UNSPECIFIED) input.status = LeadStatus.LEAD_STATUS_NEW;
  for (const name of LEAD_FIELD_NAMES) checkField(name, input[name], violations, "lead");
  if (input.status === LeadStatus.LEAD_STATUS_SOLD) violations.add("lead.status", SOLD_BY_DISTRIBUTION_ONLY);
  checkInvariants(input, violations, "lead");
  violations.throwIfAny();
  return input;
}

/**
 * Resolves the fields an UpdateLead touches. With a mask, exactly the named
 * fields (clearing those left at their default); "*" means every mutable
 * field. Without a mask (AIP-134), every field the request sets.
 */
export function updatedFields(patch: Lead, updateMask: string[] | undefined, violations: Violations): LeadFieldName[] {
  const paths = (updateMask ?? []).map((path) => path.trim()).filter((path) => path !== "");
  if (paths.length === 0) {
    return LEAD_FIELD_NAMES.filter((name) => (LEAD_FIELDS[name].isSet as (v: unknown) => boolean)(inputOf(patch)[name]));
  }
  if (paths.includes("*")) {
    if (paths.length > 1) violations.add("update_mask", '"*" cannot be combined with other paths');
    return [...LEAD_FIELD_NAMES];
  }
  const fields: LeadFieldName[] = [];
  for (const path of paths) {
    const snake = path.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
    const name = FIELD_BY_PROTO_NAME.get(snake);
    if (name) {
      if (!fields.includes(name)) fields.push(name);
    } else if (OUTPUT_ONLY.has(snake)) {
      violations.add("update_mask", `"${path}" is output only and cannot be updated`);
    } else {
      violations.add("update_mask", `"${path}" is not a field of Lead; updatable: ${LEAD_FIELD_NAMES.map((n) => LEAD_FIELDS[n].protoName).join(", ")}`);
    }
  }
  return fields;
}

export interface LeadChange {
  next: LeadInput;
  /** Fields whose value actually changed. */
  changed: LeadFieldName[];
}

/** Applies an update to the current lead and validates the result. */
export function applyUpdate(current: LeadInput, patch: Lead, updateMask: string[] | undefined): LeadChange {
  const violations = new Violations();
  const fields = updatedFields(patch, updateMask, violations);
  violations.throwIfAny();
  if (fields.length === 0) {
    violations.add("update_mask", "names no field to update, and the lead sets none");
    violations.throwIfAny();
  }
  const requested = inputOf(patch);
  const next: LeadInput = { ...current, tags: [...current.tags], attributes: { ...current.attributes } };
  for (const name of fields) {
    (next as Record<LeadFieldName, unknown>)[name] = requested[name];
    checkField(name, next[name], violations, "lead");
  }
  checkInvariants(next, violations, "lead");
  const changed = fields.filter((name) => JSON.stringify(next[name]) !== JSON.stringify(current[name]));
  // Unchanged SOLD passes: a read-modify-write of a sold lead with "*" sends its status back as it is.
  if (changed.includes("status") && next.status === LeadStatus.LEAD_STATUS_SOLD) violations.add("lead.status", SOLD_BY_DISTRIBUTION_ONLY);
  violations.throwIfAny();
  return { next, changed };
}
