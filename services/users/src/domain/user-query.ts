/**
 * ListUsers filters and orderings. Emails are stored lower-cased, so an
 * email comparison in a filter is lower-cased too (case-insensitive, like
 * LookupUser). Display names are ordered case-insensitively.
 */
import { UserStatus } from "@leadmesh/contracts/users/v1/user";
import { compileFilter, enumFilterValues, type FilterFields, type MongoQuery, type OrderableField } from "@leadmesh/platform";

export const USER_FILTER_FIELDS: FilterFields = {
  status: { path: "status", type: { kind: "enum", values: enumFilterValues(UserStatus, "USER_STATUS_") } },
  department_id: { path: "departmentId", type: { kind: "string" } },
  manager_id: { path: "managerId", type: { kind: "string" } },
  email: { path: "email", type: { kind: "string" } },
  create_time: { path: "createTime", type: { kind: "timestamp" } },
};

export const USER_ORDER_FIELDS: Record<string, OrderableField> = {
  display_name: { path: "displayNameKey", kind: "string" },
  create_time: { path: "createTime", kind: "date" },
};

export const DEFAULT_USER_ORDER = "display_name";

/** Compiles an AIP-160 ListUsers filter to a store query. */
export function userFilter(filter: string): MongoQuery {
  return lowerCaseAt(compileFilter(filter, USER_FILTER_FIELDS), "email") as MongoQuery;
}

/** Lower-cases the string operands of every condition on `path`, however deeply nested in $and/$or/$nor. */
function lowerCaseAt(node: unknown, path: string): unknown {
  if (Array.isArray(node)) return node.map((item) => lowerCaseAt(item, path));
  if (node === null || typeof node !== "object" || node instanceof Date) return node;
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, key === path ? lowerCaseOperands(value) : lowerCaseAt(value, path)]));
}

function lowerCaseOperands(condition: unknown): unknown {
  if (typeof condition === "string") return condition.toLowerCase();
  if (condition === null || typeof condition !== "object") return condition;
  return Object.fromEntries(Object.entries(condition).map(([operator, operand]) => [operator, typeof operand === "string" ? operand.toLowerCase() : operand]));
}
