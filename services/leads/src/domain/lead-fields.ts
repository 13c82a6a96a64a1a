/**
 * The mutable fields of a lead and how each is validated. One table serves
 * create validation, update masks and the implicit mask of an update without
 * update_mask, so a new field is added in one place.
 */
import { type Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { checkOptionalEmail, checkOptionalId, checkPhone, isSpecifiedEnumValue, specifiedEnumNames, text, type Violations } from "@leadmesh/platform";

/** Lead as the domain sees it: only the fields a client may set. */
export type LeadInput = Pick<
  Lead,
  "firstName" | "lastName" | "email" | "phone" | "company" | "source" | "status" | "assigneeId" | "score" | "tags" | "attributes" | "countryCode" | "postalCode"
>;

export type LeadFieldName = keyof LeadInput;

interface FieldRule<K extends LeadFieldName> {
  /** proto field name, used in update masks and field violations. */
  protoName: string;
  isSet(value: LeadInput[K]): boolean;
  /** Returns a description of what is wrong, or undefined when valid. */
  check(value: LeadInput[K]): string | undefined;
}

const TAG = /^[a-z0-9_-]{1,50}$/;
const ATTRIBUTE_KEY = /^[a-z][a-z0-9_]{0,62}$/;
const COUNTRY = /^[A-Z]{2}$/;
const POSTAL = /^[A-Za-z0-9][A-Za-z0-9 -]{0,19}$/;

const checkAttributeValue = text({ max: 1000, multiline: true });

/** A text field: set when not empty. */
function textField(max: number, required: boolean) {
  return { isSet: (value: string) => value !== "", check: text({ max, required }) };
}

export const LEAD_FIELDS: { [K in LeadFieldName]: FieldRule<K> } = {
  firstName: { protoName: "first_name", ...textField(100, true) },
  lastName: { protoName: "last_name", ...textField(100, false) },
  email: { protoName: "email", isSet: (value) => value !== "", check: checkOptionalEmail },
  phone: { protoName: "phone", isSet: (value) => value !== "", check: checkPhone },
  company: { protoName: "company", ...textField(200, false) },
  source: {
    protoName: "source",
    isSet: (value) => value !== LeadSource.LEAD_SOURCE_UNSPECIFIED,
    check: (value) => (isSpecifiedEnumValue(LeadSource, value) ? undefined : `must be one of ${specifiedEnumNames(LeadSource)}`),
  },
  status: {
    protoName: "status",
    isSet: (value) => value !== LeadStatus.LEAD_STATUS_UNSPECIFIED,
    check: (value) => (isSpecifiedEnumValue(LeadStatus, value) ? undefined : `must be one of ${specifiedEnumNames(LeadStatus)}`),
  },
  assigneeId: { protoName: "assignee_id", isSet: (value) => value !== "", check: checkOptionalId },
  score: {
    protoName: "score",
    isSet: (value) => value !== 0,
    check: (value) => (Number.isInteger(value) && value >= 0 && value <= 100 ? undefined : "must be between 0 and 100"),
  },
  tags: {
    protoName: "tags",
    isSet: (value) => value.length > 0,
    check(value) {
      if (value.length > 20) return `must have at most 20 entries (got ${value.length})`;
      const bad = value.find((tag) => !TAG.test(tag));
      if (bad !== undefined) return `"${bad}" is not a valid tag: 1-50 characters of [a-z0-9_-]`;
      if (new Set(value).size !== value.length) return "must not repeat a tag";
      return undefined;
    },
  },
  attributes: {
    protoName: "attributes",
    isSet: (value) => Object.keys(value).length > 0,
    check(value) {
      const entries = Object.entries(value);
      if (entries.length > 50) return `must have at most 50 entries (got ${entries.length})`;
      for (const [key, item] of entries) {
        if (!ATTRIBUTE_KEY.test(key)) return `key "${key.slice(0, 70)}" must match [a-z][a-z0-9_]{0,62}`;
        const problem = checkAttributeValue(item);
        if (problem) return `value of "${key}" ${problem}`;
      }
      return undefined;
    },
  },
  countryCode: {
    protoName: "country_code",
    isSet: (value) => value !== "",
    check: (value) => (value === "" || COUNTRY.test(value) ? undefined : "must be an ISO 3166-1 alpha-2 code in capitals, e.g. US"),
  },
  postalCode: {
    protoName: "postal_code",
    isSet: (value) => value !== "",
    check: (value) => (value === "" || POSTAL.test(value) ? undefined : "must be 1-20 characters of letters, digits, spaces and dashes"),
  },
};

export const LEAD_FIELD_NAMES = Object.keys(LEAD_FIELDS) as LeadFieldName[];

export const FIELD_BY_PROTO_NAME = new Map(LEAD_FIELD_NAMES.map((name) => [LEAD_FIELDS[name].protoName, name]));

export function checkField<K extends LeadFieldName>(name: K, value: LeadInput[K], violations: Violations, prefix: string): void {
  violations.check(`${prefix}.${LEAD_FIELDS[name].protoName}`, value, LEAD_FIELDS[name].check);
}
