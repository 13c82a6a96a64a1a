import { InvalidArgumentError } from "@leadmesh/platform";
import { userFilter } from "./user-query";

describe("userFilter", () => {
  it("compiles the ListUsers fields", () => {
    expect(userFilter('status = ACTIVE AND manager_id = "u1"')).toEqual({
      $and: [{ status: { $eq: "USER_STATUS_ACTIVE" } }, { managerId: { $eq: "u1" } }],
    });
    expect(userFilter("")).toEqual({});
  });

  it("compares emails case-insensitively, however nested", () => {
    expect(userFilter('email = "Ada@Example.com"')).toEqual({ email: { $eq: "ada@example.com" } });
    expect(userFilter('NOT (email = "A@X.io" OR department_id = "D1")')).toEqual({
      $nor: [{ $or: [{ email: { $eq: "a@x.io" } }, { departmentId: { $eq: "D1" } }] }],
    });
  });

  it("keeps timestamps and refuses undeclared fields", () => {
    expect(userFilter("create_time >= 2026-01-01T00:00:00Z")).toEqual({ createTime: { $gte: new Date("2026-01-01T00:00:00Z") } });
    expect(() => userFilter('phone = "+1"')).toThrow(InvalidArgumentError);
  });
});
