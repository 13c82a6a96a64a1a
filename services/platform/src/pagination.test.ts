import { InvalidPageTokenError, Violations } from "./errors";
import { afterCursor, decodePageToken, encodePageToken, parseOrderBy, queryFingerprint, resolvePageSize } from "./pagination";

const orderable = { create_time: { path: "createTime", kind: "date" as const }, score: { path: "score", kind: "number" as const } };

describe("pagination", () => {
  it("defaults, caps and rejects page sizes as AIP-158 says", () => {
    const violations = new Violations();
    expect(resolvePageSize(0, violations)).toBe(50);
    expect(resolvePageSize(5000, violations)).toBe(1000);
    expect(resolvePageSize(7, violations)).toBe(7);
    expect(violations.count).toBe(0);
    resolvePageSize(-1, violations);
    expect(violations.count).toBe(1);
  });

  it("round-trips a page token bound to its query", () => {
    const fingerprint = queryFingerprint("tenant", "status = NEW");
    const token = encodePageToken({ queryFingerprint: fingerprint, lastSortValue: "2026-01-01T00:00:00.000Z", lastId: "abc" });
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken(token, fingerprint)).toEqual({ queryFingerprint: fingerprint, lastSortValue: "2026-01-01T00:00:00.000Z", lastId: "abc" });
    expect(decodePageToken("", fingerprint)).toBeUndefined();
  });

  it("rejects a token from another query, and garbage", () => {
    const token = encodePageToken({ queryFingerprint: queryFingerprint("a"), lastSortValue: "1", lastId: "x" });
    expect(() => decodePageToken(token, queryFingerprint("b"))).toThrow(/different filter or order_by/);
    expect(() => decodePageToken("%%%", queryFingerprint("b"))).toThrow(InvalidPageTokenError);
    expect(() => decodePageToken("AAAA", queryFingerprint("b"))).toThrow(InvalidPageTokenError);
  });

  it("parses order_by with a default and tie-breaks on _id", () => {
    const violations = new Violations();
    expect(parseOrderBy("", orderable, "create_time desc", violations)).toEqual({ path: "createTime", kind: "date", descending: true });
    expect(parseOrderBy("score", orderable, "create_time desc", violations)).toEqual({ path: "score", kind: "number", descending: false });
    expect(violations.count).toBe(0);
    parseOrderBy("email desc", orderable, "create_time desc", violations);
    expect(violations.count).toBe(1);
  });

  it("selects items strictly after the cursor in the sort direction", () => {
    const order = { path: "score", kind: "number" as const, descending: true };
    expect(afterCursor(order, { queryFingerprint: "f", lastSortValue: "40", lastId: "id9" })).toEqual({
      $or: [{ score: { $lt: 40 } }, { score: { $eq: 40 }, _id: { $lt: "id9" } }],
    });
    expect(afterCursor(order, undefined)).toEqual({});
  });
});
