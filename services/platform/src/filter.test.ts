import { InvalidArgumentError } from "./errors";
import { compileFilter, enumFilterValues, type FilterFields } from "./filter";

enum Status {
  STATUS_UNSPECIFIED = 0,
  STATUS_NEW = 1,
  STATUS_WON = 2,
}

const fields: FilterFields = {
  status: { path: "status", type: { kind: "enum", values: enumFilterValues(Status as unknown as Record<string, string | number>, "STATUS_") } },
  owner: { path: "ownerId", type: { kind: "string" } },
  score: { path: "score", type: { kind: "integer" } },
  create_time: { path: "createTime", type: { kind: "timestamp" } },
};

function violation(filter: string): string {
  try {
    compileFilter(filter, fields);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as InvalidArgumentError).fieldViolations[0].description;
  }
  throw new Error(`filter ${filter} was accepted`);
}

describe("AIP-160 filters", () => {
  it("is empty for an empty filter", () => {
    expect(compileFilter("  ", fields)).toEqual({});
  });

  it("compiles a comparison on a declared field to its document path", () => {
    expect(compileFilter('owner = "u-1"', fields)).toEqual({ ownerId: { $eq: "u-1" } });
    expect(compileFilter("score>=50", fields)).toEqual({ score: { $gte: 50 } });
  });

  it("accepts enum values with or without their prefix and stores full names", () => {
    expect(compileFilter("status = NEW", fields)).toEqual({ status: { $eq: "STATUS_NEW" } });
    expect(compileFilter("status != STATUS_WON", fields)).toEqual({ status: { $ne: "STATUS_WON" } });
  });

  it("parses timestamps, quoted or not", () => {
    const expected = { createTime: { $gte: new Date("2026-01-01T00:00:00Z") } };
    expect(compileFilter('create_time >= "2026-01-01T00:00:00Z"', fields)).toEqual(expected);
    expect(compileFilter("create_time >= 2026-01-01T00:00:00Z", fields)).toEqual(expected);
  });

  it("binds OR tighter than AND, as AIP-160 says", () => {
    expect(compileFilter("score > 1 AND status = NEW OR status = WON", fields)).toEqual({
      $and: [{ score: { $gt: 1 } }, { $or: [{ status: { $eq: "STATUS_NEW" } }, { status: { $eq: "STATUS_WON" } }] }],
    });
  });

  it("treats juxtaposition as AND and supports parentheses and NOT", () => {
    expect(compileFilter('(status = NEW OR status = WON) NOT owner = "x"', fields)).toEqual({
      $and: [{ $or: [{ status: { $eq: "STATUS_NEW" } }, { status: { $eq: "STATUS_WON" } }] }, { $nor: [{ ownerId: { $eq: "x" } }] }],
    });
  });

  it("explains what is wrong", () => {
    expect(violation("password = 1")).toMatch(/field "password" cannot be filtered on; allowed: status, owner, score, create_time/);
    expect(violation("status = DONE")).toMatch(/"status" takes one of STATUS_NEW, STATUS_WON, got "DONE"/);
    expect(violation("status > NEW")).toMatch(/only supports = and !=/);
    expect(violation("score = high")).toMatch(/takes an integer/);
    expect(violation('create_time > "yesterday"')).toMatch(/RFC 3339/);
    expect(violation("(status = NEW")).toMatch(/expected "\)"/);
    expect(violation('owner = "abc')).toMatch(/unterminated string/);
    expect(violation("score = 1 )")).toMatch(/unexpected input at offset 10/);
    expect(violation("owner")).toMatch(/expected a comparison operator/);
    expect(violation("owner = ;")).toMatch(/unexpected character/);
  });

  it("refuses pathologically long filters", () => {
    expect(violation(Array.from({ length: 60 }, () => "score = 1").join(" AND "))).toMatch(/more than 50 comparisons/);
    expect(violation("x".repeat(2001))).toMatch(/longer than 2000/);
  });
});
