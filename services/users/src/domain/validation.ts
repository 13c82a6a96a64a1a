/**
 * Field checks shared by users, tenants and departments. Each check returns
 * a description of what is wrong, or undefined when the value is valid, so
 * callers can collect every violation of a request before answering.
 */
import { Violations } from "@leadmesh/platform";

const EMAIL = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const E164 = /^\+[1-9]\d{6,14}$/;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export type Check<T> = (value: T) => string | undefined;

/** Free text of at most `max` characters, without control characters; `required` rejects blanks. */
export function text(max: number, required: boolean): Check<string> {
  return (value) => {
    if (required && value.trim() === "") return "is required";
    if (value.length > max) return `must be at most ${max} characters (got ${value.length})`;
    if (/[\u0000-\u001f\u007f]/.test(value)) return "must not contain control characters";
    return undefined;
  };
}

export const checkEmail: Check<string> = (value) => {
  if (value === "") return "is required";
  return value.length <= 254 && EMAIL.test(value) ? undefined : "must be a valid email address such as ada@example.com";
};

export const checkPhone: Check<string> = (value) => (value === "" || E164.test(value) ? undefined : "must be in E.164 format, e.g. +14155550123");

/** An optional reference to another record (user or department id). */
export const checkOptionalId: Check<string> = (value) => (value === "" || ID.test(value) ? undefined : "must be an id of 1-64 characters [A-Za-z0-9_-]");

/** Emails are compared case-insensitively: this is the form stored, looked up and indexed. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Validates a required id of a request; throws INVALID_ARGUMENT when it is missing or malformed. */
export function requireId(id: string, field: string): string {
  const violations = new Violations();
  if (id.trim() === "") violations.add(field, "is required");
  else if (!ID.test(id)) violations.add(field, "is not a valid id");
  violations.throwIfAny();
  return id;
}

/** Throws INVALID_ARGUMENT for a missing request message field (`user`, `tenant`, `department`). */
export function requireMessage<T>(value: T | undefined, field: string): T {
  if (value === undefined) {
    const violations = new Violations();
    violations.add(field, "is required");
    violations.throwIfAny();
  }
  return value as T;
}
