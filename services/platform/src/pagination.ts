/**
 * Keyset (cursor) pagination shared by every List RPC (AIP-158). A page token
 * is a common.v1.PageCursor: the sort value and id of the last item, plus a
 * fingerprint of the query, serialized and base64url-encoded. Keyset paging
 * stays correct while items are inserted, and costs the same on page 1000 as
 * on page 1 (no skip).
 */
import { createHash } from "node:crypto";
import { PageCursor } from "@leadmesh/contracts/common/v1/pagination";
import type { Collection, Filter } from "mongodb";
import { InvalidPageTokenError, type Violations } from "./errors";
import type { MongoQuery } from "./filter";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** AIP-158: 0 means the default, larger than the maximum is coerced down, negative is an error. */
export function resolvePageSize(pageSize: number, violations: Violations, field = "page_size"): number {
  if (pageSize < 0) violations.add(field, "must not be negative");
  if (pageSize <= 0) return DEFAULT_PAGE_SIZE;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

export type SortKind = "date" | "number" | "string";

export interface SortOrder {
  /** Document path of the sort field. */
  path: string;
  kind: SortKind;
  descending: boolean;
}

export interface OrderableField {
  path: string;
  kind: SortKind;
}

/**
 * Parses an AIP-132 order_by of one field ("create_time desc"). Ties are
 * always broken by _id in the same direction, which keeps pages stable.
 */
export function parseOrderBy(orderBy: string, fields: Readonly<Record<string, OrderableField>>, fallback: string, violations: Violations): SortOrder {
  const text = orderBy.trim() === "" ? fallback : orderBy.trim();
  const match = /^([a-z_][a-z0-9_]*)(?:\s+(asc|desc))?$/.exec(text);
  const field = match ? fields[match[1]] : undefined;
  if (!match || !field) {
    violations.add("order_by", `must be one of ${Object.keys(fields).join(", ")}, optionally followed by " desc"`);
    const [name] = fallback.split(/\s+/);
    return { ...fields[name], descending: fallback.endsWith(" desc") };
  }
  return { path: field.path, kind: field.kind, descending: match[2] === "desc" };
}

export function queryFingerprint(...parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("base64url").slice(0, 16);
}

export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(PageCursor.encode(cursor).finish()).toString("base64url");
}

export function decodePageToken(token: string, expectedFingerprint: string): PageCursor | undefined {
  if (token === "") return undefined;
  let cursor: PageCursor;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error("not base64url");
    cursor = PageCursor.decode(Buffer.from(token, "base64url"));
  } catch {
    throw new InvalidPageTokenError("it is not a token this service issued");
  }
  if (cursor.queryFingerprint !== expectedFingerprint) {
    throw new InvalidPageTokenError("it belongs to a different filter or order_by; start again without page_token");
  }
  if (cursor.lastId === "") throw new InvalidPageTokenError("it is not a token this service issued");
  return cursor;
}

export function sortValueToString(value: unknown, kind: SortKind): string {
  if (kind === "date") return value instanceof Date ? value.toISOString() : "";
  return String(value ?? "");
}

function sortValueFromString(raw: string, kind: SortKind): unknown {
  if (kind === "date") {
    const date = new Date(raw);
    if (Number.isNaN(date.getTime())) throw new InvalidPageTokenError("it is corrupt");
    return date;
  }
  if (kind === "number") {
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new InvalidPageTokenError("it is corrupt");
    return value;
  }
  return raw;
}

/** Query condition selecting the items after the cursor in the given order. */
export function afterCursor(order: SortOrder, cursor: PageCursor | undefined): MongoQuery {
  if (!cursor) return {};
  const value = sortValueFromString(cursor.lastSortValue, order.kind);
  const beyond = order.descending ? "$lt" : "$gt";
  return {
    $or: [{ [order.path]: { [beyond]: value } }, { [order.path]: { $eq: value }, _id: { [beyond]: cursor.lastId } }],
  };
}

export function mongoSort(order: SortOrder): Record<string, 1 | -1> {
  const direction = order.descending ? -1 : 1;
  return order.path === "_id" ? { _id: direction } : { [order.path]: direction, _id: direction };
}

/**
 * Runs one page: fetches pageSize + 1 items to learn whether another page
 * exists without a count query, and builds the next token from the last item.
 */
/** fetchPage's `find` over a MongoDB collection (filter, sort, limit), the one every store's list uses. */
export function findIn<T extends { _id: string }>(collection: Collection<T>) {
  return (query: MongoQuery, sort: Record<string, 1 | -1>, limit: number): Promise<T[]> =>
    collection
      .find(query as Filter<T>)
      .sort(sort)
      .limit(limit)
      .toArray() as Promise<T[]>;
}

export async function fetchPage<T extends { _id: string }>(
  find: (query: MongoQuery, sort: Record<string, 1 | -1>, limit: number) => Promise<T[]>,
  query: MongoQuery,
  order: SortOrder,
  pageSize: number,
  cursor: PageCursor | undefined,
  fingerprint: string,
): Promise<{ items: T[]; nextPageToken: string }> {
  const after = afterCursor(order, cursor);
  const conditions = [query, after].filter((part) => Object.keys(part).length > 0);
  const combined = conditions.length === 0 ? {} : conditions.length === 1 ? conditions[0] : { $and: conditions };
  const found = await find(combined, mongoSort(order), pageSize + 1);
  if (found.length <= pageSize) return { items: found, nextPageToken: "" };
  const items = found.slice(0, pageSize);
  const last = items[items.length - 1] as T & Record<string, unknown>;
  const nextPageToken = encodePageToken({
    queryFingerprint: fingerprint,
    lastSortValue: sortValueToString(readPath(last, order.path), order.kind),
    lastId: last._id,
  });
  return { items, nextPageToken };
}

function readPath(document: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], document);
}
