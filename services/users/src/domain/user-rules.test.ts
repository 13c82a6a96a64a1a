import { Role } from "@leadmesh/contracts/common/v1/access";
import { User } from "@leadmesh/contracts/users/v1/user";
import { Violations } from "@leadmesh/platform";
import { violationsOf } from "../../test/fixtures";
import { applyProfileUpdate, assignableRoles, newUser, profileOf } from "./user-rules";

describe("newUser", () => {
  it("normalizes the email, trims text and sorts and deduplicates roles", () => {
    expect(newUser({ email: "  Ada@Example.COM ", displayName: " Ada ", roles: [Role.ROLE_MANAGER, Role.ROLE_AGENT, Role.ROLE_MANAGER] })).toEqual({
      email: "ada@example.com",
      displayName: "Ada",
      roles: [Role.ROLE_AGENT, Role.ROLE_MANAGER],
      departmentId: "",
      managerId: "",
    });
  });

  it("reports every invalid field", () => {
    const violations = violationsOf(() =>
      newUser({ email: "not-an-email", displayName: "x".repeat(101), roles: [], departmentId: "no spaces", managerId: "../x" }),
    );
    expect(Object.keys(violations).sort()).toEqual(["department_id", "display_name", "email", "manager_id", "roles"]);
    expect(violations.display_name).toBe("must be at most 100 characters (got 101)");
    expect(violations.roles).toMatch(/at least one/);
  });

  it("requires an email and a display name", () => {
    expect(violationsOf(() => newUser({ email: "", displayName: " ", roles: [Role.ROLE_AGENT] }))).toEqual({
      email: "is required",
      display_name: "is required",
    });
  });

  it("never assigns ROLE_SERVICE or unknown roles", () => {
    expect(violationsOf(() => newUser({ email: "a@example.com", displayName: "A", roles: [Role.ROLE_AGENT, Role.ROLE_SERVICE] })).roles).toMatch(
      /ROLE_SERVICE/,
    );
    expect(violationsOf(() => newUser({ email: "a@example.com", displayName: "A", roles: [Role.ROLE_UNSPECIFIED] }))).toHaveProperty(["roles"]);
    expect(violationsOf(() => newUser({ email: "a@example.com", displayName: "A", roles: [42 as Role] })).roles).toMatch(/got 42/);
  });
});

describe("assignableRoles", () => {
  it("uses the given field name", () => {
    const violations = new Violations();
    assignableRoles([], violations, "user.roles");
    expect(() => violations.throwIfAny()).toThrow(/user\.roles/);
  });
});

describe("applyProfileUpdate", () => {
  const current = profileOf(User.fromPartial({ displayName: "Ada", title: "Agent", phone: "+14155550123" }));

  it("updates exactly the masked fields, clearing those left empty", () => {
    const { next, changed } = applyProfileUpdate(current, User.fromPartial({ title: "Lead agent" }), ["title", "phone"]);
    expect(next).toEqual({ displayName: "Ada", title: "Lead agent", phone: "", departmentId: "", managerId: "" });
    expect(changed.sort()).toEqual(["phone", "title"]);
  });

  it("accepts camelCase mask paths as sent through REST", () => {
    expect(applyProfileUpdate(current, User.fromPartial({ displayName: "Grace" }), ["displayName"]).next.displayName).toBe("Grace");
  });

  it("without a mask updates the fields the request sets, ignoring output-only ones", () => {
    const patch = User.fromPartial({ title: "Boss", email: "other@example.com", roles: [Role.ROLE_ADMIN], etag: "3" });
    expect(applyProfileUpdate(current, patch, undefined)).toEqual({ next: { ...current, title: "Boss" }, changed: ["title"] });
    expect(violationsOf(() => applyProfileUpdate(current, User.fromPartial({ email: "x@example.com" }), []))).toEqual({
      update_mask: "names no field to update, and the user sets none",
    });
  });

  it("reports no change when values are equal", () => {
    expect(applyProfileUpdate(current, User.fromPartial({ displayName: " Ada " }), undefined).changed).toEqual([]);
  });

  it("explains why a field cannot be updated", () => {
    const violations = violationsOf(() => applyProfileUpdate(current, User.fromPartial({}), ["email"]));
    expect(violations.update_mask).toMatch(/set at creation only/);
    expect(violationsOf(() => applyProfileUpdate(current, User.fromPartial({}), ["roles"])).update_mask).toMatch(/ChangeUserRoles/);
    expect(violationsOf(() => applyProfileUpdate(current, User.fromPartial({}), ["status"])).update_mask).toMatch(/SuspendUser/);
    expect(violationsOf(() => applyProfileUpdate(current, User.fromPartial({}), ["nickname"])).update_mask).toMatch(/not a field of User/);
  });

  it("validates the new values", () => {
    expect(
      violationsOf(() => applyProfileUpdate(current, User.fromPartial({ phone: "0800 123", managerId: "bad id!" }), ["display_name", "phone", "manager_id"])),
    ).toEqual({
      "user.display_name": "is required",
      "user.phone": "must be in E.164 format, e.g. +14155550123",
      "user.manager_id": "must be an id of 1-64 characters [A-Za-z0-9_-]",
    });
  });

  it('"*" replaces every updatable field', () => {
    const { next } = applyProfileUpdate(current, User.fromPartial({ displayName: "Grace", departmentId: "d1" }), ["*"]);
    expect(next).toEqual({ displayName: "Grace", title: "", phone: "", departmentId: "d1", managerId: "" });
  });
});
