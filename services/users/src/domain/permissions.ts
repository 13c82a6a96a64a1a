/**
 * Row- and field-level rules on top of the RPC access rules the platform
 * enforces from proto/ (who may call at all). Here: whose profile fields a
 * caller may change, what a manager may grant, what "me" means, and which
 * tenant a calling service may act for.
 */
import { Role } from "@leadmesh/contracts/common/v1/access";
import { type Caller, FailedPreconditionError, hasAnyRole, PermissionDeniedError, Violations } from "@leadmesh/platform";
import { ADMIN_ONLY_FIELDS, type NewUser, type ProfileField } from "./user-rules";

export const ME = "me";

export function isAdmin(caller: Caller): boolean {
  return caller.kind === "user" && hasAnyRole(caller, Role.ROLE_ADMIN);
}

/** Resolves the "me" alias of a user id: the calling user. A calling service is no user, so it must pass an id. */
export function resolveUserId(caller: Caller, id: string, field: string): string {
  if (id !== ME) return id;
  if (caller.kind !== "user") {
    const violations = new Violations();
    violations.add(field, `"me" names the calling user; a ${caller.kind} caller must pass a user id`);
    violations.throwIfAny();
  }
  return caller.actorId;
}

/** Resolves the "me" alias of a tenant id: the caller's tenant. */
export function resolveTenantId(caller: Caller, id: string): string {
  return id === ME ? caller.tenantId : id;
}

/**
 * Users may change their own display_name, title and phone; admins anyone's,
 * plus department_id and manager_id. Checked on the fields that actually
 * change, so a client may send back a user it read unchanged.
 */
export function checkProfileChange(caller: Caller, userId: string, changed: readonly ProfileField[]): void {
  if (isAdmin(caller)) return;
  if (caller.actorId !== userId) throw new PermissionDeniedError("only admins may update other users");
  const adminOnly = changed.filter((field) => ADMIN_ONLY_FIELDS.includes(field));
  if (adminOnly.length > 0) {
    const names = adminOnly.map((field) => field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)).join(" and ");
    throw new PermissionDeniedError(`only admins may change ${names}`);
  }
}

/**
 * InviteUser as the caller may do it: managers who are not admins may grant
 * ROLE_AGENT only, and a manager's invitee reports to them unless another
 * manager is named.
 */
export function inviteAs(caller: Caller, invitee: NewUser): NewUser {
  const manager = caller.kind === "user" && hasAnyRole(caller, Role.ROLE_MANAGER);
  if (!isAdmin(caller) && invitee.roles.some((role) => role !== Role.ROLE_AGENT)) {
    throw new PermissionDeniedError("managers may only invite agents (roles: [ROLE_AGENT]); ask an admin to grant other roles");
  }
  return manager && invitee.managerId === "" ? { ...invitee, managerId: caller.actorId } : invitee;
}

/**
 * Service-only RPCs name the tenant explicitly in the request; it must be the
 * tenant the calling service named for the whole call (metadata
 * leadmesh-tenant), so one slip cannot write into another tenant.
 */
export function checkServiceTenant(caller: Caller, tenantId: string, field: string, violations: Violations): void {
  if (tenantId === "") violations.add(field, "is required");
  else if (tenantId !== caller.tenantId) violations.add(field, "must be the tenant the calling service named (leadmesh-tenant)");
}

/**
 * Every users RPC reads or writes one tenant's data, the caller's. A service
 * caller has a tenant only when it names one (metadata leadmesh-tenant); one
 * that names none would otherwise see an empty tenant (no users, nothing
 * found) instead of learning it called wrongly.
 */
export function checkServiceNamedTenant(caller: Caller, path: string): void {
  if (caller.kind === "service" && caller.tenantId === "") {
    throw new PermissionDeniedError(`service "${caller.actorId}" named no tenant for ${path}: send the tenant id in metadata leadmesh-tenant`);
  }
}

/** Admins may not suspend or delete themselves: a tenant must not lock out the admin acting on it. */
export function checkNotSelf(caller: Caller, userId: string, action: "suspend" | "delete"): void {
  if (caller.actorId === userId && caller.kind === "user") {
    throw new FailedPreconditionError(`you cannot ${action} yourself; ask another admin`, { resource_id: userId });
  }
}
