import { Role } from "@leadmesh/contracts/common/v1/access";
import { DomainError, Violations } from "@leadmesh/platform";
import { admin, agent, caller, manager, reasonOf, service, violationsOf } from "../../test/fixtures";
import { checkNotSelf, checkProfileChange, checkServiceNamedTenant, checkServiceTenant, inviteAs, resolveTenantId, resolveUserId } from "./permissions";
import type { NewUser } from "./user-rules";

const invitee = (roles: Role[], managerId = ""): NewUser => ({ email: "new@example.com", displayName: "New", roles, departmentId: "", managerId });

describe('"me"', () => {
  it("is the calling user, or the caller's tenant", () => {
    expect(resolveUserId(agent, "me", "id")).toBe("u-agent");
    expect(resolveUserId(agent, "u-other", "id")).toBe("u-other");
    expect(resolveTenantId(agent, "me")).toBe("acme");
    expect(resolveTenantId(agent, "globex")).toBe("globex");
  });

  it("is not a user for service callers", () => {
    expect(violationsOf(() => resolveUserId(service, "me", "id")).id).toMatch(/service caller must pass a user id/);
  });
});

describe("checkProfileChange", () => {
  it("lets users change their own display name, title and phone", () => {
    expect(() => checkProfileChange(agent, "u-agent", ["displayName", "title", "phone"])).not.toThrow();
    expect(() => checkProfileChange(manager, "u-manager", ["phone"])).not.toThrow();
  });

  it("keeps department and manager for admins", () => {
    expect(() => checkProfileChange(agent, "u-agent", ["title", "departmentId", "managerId"])).toThrow("only admins may change department_id and manager_id");
    expect(reasonOf(() => checkProfileChange(manager, "u-manager", ["managerId"]))).toBe("PERMISSION_DENIED");
    expect(() => checkProfileChange(admin, "u-admin", ["departmentId", "managerId"])).not.toThrow();
    expect(() => checkProfileChange(admin, "u-other", ["displayName", "departmentId"])).not.toThrow();
  });

  it("refuses other users' profiles to non-admins", () => {
    expect(reasonOf(() => checkProfileChange(manager, "u-agent", ["title"]))).toBe("PERMISSION_DENIED");
  });
});

describe("inviteAs", () => {
  it("lets managers invite agents only, reporting to them by default", () => {
    expect(inviteAs(manager, invitee([Role.ROLE_AGENT]))).toMatchObject({ roles: [Role.ROLE_AGENT], managerId: "u-manager" });
    expect(inviteAs(manager, invitee([Role.ROLE_AGENT], "u-other")).managerId).toBe("u-other");
    expect(reasonOf(() => inviteAs(manager, invitee([Role.ROLE_AGENT, Role.ROLE_MANAGER])))).toBe("PERMISSION_DENIED");
    expect(reasonOf(() => inviteAs(manager, invitee([Role.ROLE_ADMIN])))).toBe("PERMISSION_DENIED");
  });

  it("lets admins grant any role without a default manager", () => {
    expect(inviteAs(admin, invitee([Role.ROLE_ADMIN, Role.ROLE_MANAGER]))).toMatchObject({ managerId: "" });
    const managingAdmin = caller("user", "u-boss", Role.ROLE_MANAGER, Role.ROLE_ADMIN);
    expect(inviteAs(managingAdmin, invitee([Role.ROLE_MANAGER])).managerId).toBe("u-boss");
  });
});

describe("checkServiceTenant", () => {
  it("requires the tenant the calling service named (leadmesh-tenant)", () => {
    const check = (tenantId: string) => {
      const violations = new Violations();
      checkServiceTenant(service, tenantId, "tenant_id", violations);
      violations.throwIfAny();
    };
    expect(() => check("acme")).not.toThrow();
    expect(violationsOf(() => check("globex"))).toEqual({ tenant_id: "must be the tenant the calling service named (leadmesh-tenant)" });
    expect(violationsOf(() => check(""))).toEqual({ tenant_id: "is required" });
  });

  it("refuses every tenant to a service that named none", () => {
    const violations = new Violations();
    checkServiceTenant({ ...service, tenantId: "" }, "acme", "tenant_id", violations);
    expect(violationsOf(() => violations.throwIfAny())).toEqual({ tenant_id: "must be the tenant the calling service named (leadmesh-tenant)" });
  });
});

describe("checkServiceNamedTenant", () => {
  const path = "/users.v1.UserService/ListUsers";

  it("refuses a calling service that named no tenant, saying how to name one", () => {
    const anonymousTenant = { ...service, tenantId: "" };
    expect(reasonOf(() => checkServiceNamedTenant(anonymousTenant, path))).toBe("PERMISSION_DENIED");
    expect(() => checkServiceNamedTenant(anonymousTenant, path)).toThrow(
      'service "auth" named no tenant for /users.v1.UserService/ListUsers: send the tenant id in metadata leadmesh-tenant',
    );
  });

  it("lets services that named a tenant, and users, through", () => {
    expect(() => checkServiceNamedTenant(service, path)).not.toThrow();
    expect(() => checkServiceNamedTenant(agent, path)).not.toThrow();
  });
});

describe("checkNotSelf", () => {
  it("stops admins from suspending or deleting themselves", () => {
    expect(reasonOf(() => checkNotSelf(admin, "u-admin", "delete"))).toBe("FAILED_PRECONDITION");
    expect(() => checkNotSelf(admin, "u-admin", "suspend")).toThrow(DomainError);
    expect(() => checkNotSelf(admin, "u-agent", "delete")).not.toThrow();
  });
});
