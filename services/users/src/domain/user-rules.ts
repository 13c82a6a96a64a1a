/**
 * Pure user rules: what a valid new user is, which roles can be assigned and
 * how an UpdateUser applies to the profile. No I/O, unit-tested in isolation.
 */
import { Role } from "@leadmesh/contracts/common/v1/access";
import type { User } from "@leadmesh/contracts/users/v1/user";
import { type Check, checkEmail, checkOptionalId, checkPhone, normalizeEmail, text, Violations } from "@leadmesh/platform";
import { type MaskSpec, maskedFields } from "./update-mask";

/** Roles a user can hold. ROLE_SERVICE is the role of a calling mesh service (its certificate identity) and is never assignable. */
export const ASSIGNABLE_ROLES: readonly Role[] = [Role.ROLE_AGENT, Role.ROLE_MANAGER, Role.ROLE_ADMIN];

/** The fields UpdateUser may change. */
export type Profile = Pick<User, "displayName" | "title" | "phone" | "departmentId" | "managerId">;
export type ProfileField = keyof Profile;

/** Profile fields only admins may change (on anyone, themselves included). */
export const ADMIN_ONLY_FIELDS: readonly ProfileField[] = ["departmentId", "managerId"];

const PROFILE_CHECKS: { [K in ProfileField]: Check<string> } = {
  displayName: text({ max: 100, required: true }),
  title: text({ max: 100 }),
  phone: checkPhone,
  departmentId: checkOptionalId,
  managerId: checkOptionalId,
};

const PROFILE_MASK: MaskSpec<ProfileField> = {
  resource: "User",
  fields: {
    displayName: { protoName: "display_name", isSet: (value) => value !== "" },
    title: { protoName: "title", isSet: (value) => value !== "" },
    phone: { protoName: "phone", isSet: (value) => value !== "" },
    departmentId: { protoName: "department_id", isSet: (value) => value !== "" },
    managerId: { protoName: "manager_id", isSet: (value) => value !== "" },
  },
  notUpdatable: {
    id: "output only",
    tenant_id: "output only",
    email: "it is set at creation only",
    roles: "use ChangeUserRoles",
    status: "use SuspendUser, ReactivateUser or DeleteUser",
    create_time: "output only",
    update_time: "output only",
    delete_time: "output only",
    etag: "it guards the update; send it in user.etag",
  },
};

const protoName = (field: ProfileField) => PROFILE_MASK.fields[field].protoName;

/** Checks a role list: non-empty, assignable roles only. Returns them deduplicated and sorted. */
export function assignableRoles(roles: readonly Role[], violations: Violations, field = "roles"): Role[] {
  if (roles.length === 0) violations.add(field, "must contain at least one of ROLE_AGENT, ROLE_MANAGER, ROLE_ADMIN");
  const bad = roles.filter((role) => !ASSIGNABLE_ROLES.includes(role));
  if (bad.length > 0) {
    const names = bad.map((role) => Role[role] ?? String(role)).join(", ");
    violations.add(field, `may only contain ROLE_AGENT, ROLE_MANAGER and ROLE_ADMIN (got ${names})`);
  }
  return [...new Set(roles)].filter((role) => ASSIGNABLE_ROLES.includes(role)).sort((a, b) => a - b);
}

export interface NewUserRequest {
  email: string;
  displayName: string;
  roles: Role[];
  departmentId?: string;
  managerId?: string;
}

export interface NewUser {
  /** Normalized (trimmed, lower case). */
  email: string;
  displayName: string;
  roles: Role[];
  departmentId: string;
  managerId: string;
}

/** Validates InviteUser / CreateUser input (fields are top-level request fields). Throws INVALID_ARGUMENT with every violation. */
export function newUser(request: NewUserRequest): NewUser {
  const violations = new Violations();
  const user: NewUser = {
    email: normalizeEmail(request.email),
    displayName: request.displayName.trim(),
    roles: [],
    departmentId: (request.departmentId ?? "").trim(),
    managerId: (request.managerId ?? "").trim(),
  };
  violations.check("email", user.email, checkEmail);
  violations.check("display_name", user.displayName, PROFILE_CHECKS.displayName);
  user.roles = assignableRoles(request.roles, violations);
  for (const field of ["departmentId", "managerId"] as const) violations.check(protoName(field), user[field], PROFILE_CHECKS[field]);
  violations.throwIfAny();
  return user;
}

/** The client-settable profile of a request user, text trimmed. */
export function profileOf(user: Pick<User, ProfileField>): Profile {
  return {
    displayName: user.displayName.trim(),
    title: user.title.trim(),
    phone: user.phone.trim(),
    departmentId: user.departmentId.trim(),
    managerId: user.managerId.trim(),
  };
}

export interface ProfileChange {
  next: Profile;
  /** Fields whose value actually changed. */
  changed: ProfileField[];
}

/** Applies an UpdateUser to the current profile and validates the result. */
export function applyProfileUpdate(current: Profile, patch: User, updateMask: string[] | undefined): ProfileChange {
  const violations = new Violations();
  const requested = profileOf(patch);
  const fields = maskedFields(PROFILE_MASK, requested, updateMask, violations);
  violations.throwIfAny();
  const next: Profile = { ...current };
  for (const field of fields) {
    next[field] = requested[field];
    violations.check(`user.${protoName(field)}`, next[field], PROFILE_CHECKS[field]);
  }
  violations.throwIfAny();
  return { next, changed: fields.filter((field) => next[field] !== current[field]) };
}
