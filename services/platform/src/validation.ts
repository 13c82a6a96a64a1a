/**
 * The field checks every service shares: email, E.164 phone, resource and
 * tenant ids, bounded text. One definition of each, so a value one service
 * accepts is never refused by another (auth once took emails users refused).
 *
 * A check returns a description of what is wrong, or undefined when the value
 * is valid, so a handler can collect every violation of a request (Violations)
 * before answering. Checks take the value as it will be stored: callers trim
 * (and normalize emails) first.
 */
import { Violations } from "./errors";

export type Check<T> = (value: T) => string | undefined;

/** RFC 5321: a path is at most 256 octets including the angle brackets. */
export const MAX_EMAIL_LENGTH = 254;
const MAX_EMAIL_LOCAL_PART = 64;
const MAX_DOMAIN_LENGTH = 253;
/** RFC 5322 atext: a local part is dot-separated runs of these (no quoted strings, no comments). */
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
/** A DNS label: letters, digits and inner hyphens, 1-63 characters. */
const DOMAIN_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** E.164: a plus, a country code not starting with 0, at most 15 digits in all. */
const E164 = /^\+[1-9]\d{6,14}$/;
const RESOURCE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Tenant ids end up in hostnames and keys: DNS-label-like, lower case. */
const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** C0 and C1 controls and DEL; a lone UTF-16 surrogate is not text either (it cannot be stored as UTF-8). */
const CONTROL = /\p{Cc}/u;
const LINE_BREAKS_AND_TABS = /[\t\n\r]/g;
const LONE_SURROGATE = /\p{Cs}/u;

const EMAIL_PROBLEM = "must be a valid email address such as ada@example.com";

/** Emails are compared case-insensitively: this is the form stored, looked up and indexed. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** A required email address: ASCII dot-atom local part (≤ 64), a domain name with at least two labels, ≤ 254 in all. */
export const checkEmail: Check<string> = (value) => {
  if (value === "") return "is required";
  if (value.length > MAX_EMAIL_LENGTH) return `must be at most ${MAX_EMAIL_LENGTH} characters`;
  const at = value.lastIndexOf("@");
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (at < 1 || local.length > MAX_EMAIL_LOCAL_PART || !LOCAL_PART.test(local)) return EMAIL_PROBLEM;
  const labels = domain.split(".");
  const validDomain =
    domain.length <= MAX_DOMAIN_LENGTH && labels.length >= 2 && labels.every((label) => DOMAIN_LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1]);
  return validDomain ? undefined : EMAIL_PROBLEM;
};

/** An email that may be left empty. */
export const checkOptionalEmail: Check<string> = (value) => (value === "" ? undefined : checkEmail(value));

/** A phone number that may be left empty; when set, E.164. */
export const checkPhone: Check<string> = (value) => (value === "" || E164.test(value) ? undefined : "must be in E.164 format, e.g. +14155550123");

/** A required resource id (users, leads, departments, …). */
export const checkId: Check<string> = (value) => {
  if (value === "") return "is required";
  return RESOURCE_ID.test(value) ? undefined : "must be an id of 1-64 characters [A-Za-z0-9_-]";
};

/** An optional reference to another record (a user or department id). */
export const checkOptionalId: Check<string> = (value) => (value === "" ? undefined : checkId(value));

export const checkTenantId: Check<string> = (value) => {
  if (value === "") return "is required";
  return TENANT_ID.test(value) ? undefined : "must be 1-63 characters of [a-z0-9-], starting with a letter or digit";
};

/** Length as a person counts it: Unicode code points, not UTF-16 units (an emoji is one, not two). */
export function codePointLength(value: string): number {
  let count = 0;
  for (let index = 0; index < value.length; index++) {
    const unit = value.charCodeAt(index);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && index + 1 < value.length) {
      const next = value.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) index++;
    }
    count++;
  }
  return count;
}

export interface TextRule {
  /** Most code points allowed. */
  max: number;
  /** Rejects an empty or blank value. */
  required?: boolean;
  /** Free text (notes, summaries) may hold line breaks and tabs; names and titles may not. */
  multiline?: boolean;
}

/** Bounded text without control characters or broken Unicode. */
export function text(rule: TextRule): Check<string> {
  return (value) => {
    if (rule.required && value.trim() === "") return "is required";
    // Code points never outnumber UTF-16 units: only a value long in units needs counting.
    const length = value.length > rule.max ? codePointLength(value) : value.length;
    if (length > rule.max) return `must be at most ${rule.max} characters (got ${length})`;
    if (CONTROL.test(rule.multiline ? value.replace(LINE_BREAKS_AND_TABS, "") : value)) return "must not contain control characters";
    if (LONE_SURROGATE.test(value)) return "must be valid Unicode text";
    return undefined;
  };
}

/** A required id of a request; throws INVALID_ARGUMENT when it is missing or malformed. */
export function requireId(id: string, field: string): string {
  const violations = new Violations();
  violations.check(field, id, checkId);
  violations.throwIfAny();
  return id;
}

/** A required request message field (`user`, `lead`, `department`); throws INVALID_ARGUMENT when it is absent. */
export function requireMessage<T>(value: T | undefined, field: string): T {
  if (value === undefined) {
    const violations = new Violations();
    violations.add(field, "is required");
    violations.throwIfAny();
  }
  return value as T;
}
