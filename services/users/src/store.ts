/**
 * The collections the users service owns: `users` (with `user_revisions`),
 * `tenants` and `departments`. Enums are stored by name (USER_STATUS_ACTIVE,
 * ROLE_AGENT) so documents stay readable and survive enum renumbering. Every
 * query carries tenantId (a tenant's own document is keyed by it): there is
 * no method here that can read across tenants.
 *
 * Uniqueness comes from unique indexes, the one constraint both FerretDB and
 * MongoDB enforce atomically: emails per tenant ({tenantId, emailKey}) and
 * department names per tenant ({tenantId, nameKey}); tenant ids are _ids.
 *
 * User writes go through the platform's revision claims (RevisionedWrites,
 * in `user_revisions`), the compare-and-set that works on FerretDB and
 * MongoDB; the claims double as the user's change history. Tenants and
 * departments carry no etag: their updates are last-writer-wins.
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import type { PageCursor } from "@leadmesh/contracts/common/v1/pagination";
import type { Department } from "@leadmesh/contracts/users/v1/department";
import type { Tenant } from "@leadmesh/contracts/users/v1/tenant";
import { type User, UserStatus } from "@leadmesh/contracts/users/v1/user";
import {
  AlreadyExistsError,
  ensureIndexes,
  ensureRevisionClaimIndexes,
  etagOf,
  fetchPage,
  findIn,
  isDuplicateKey,
  type MongoQuery,
  type RevisionClaim,
  type RevisionedWrite,
  RevisionedWrites,
  type SortOrder,
} from "@leadmesh/platform";
import { type Collection, type Db, ObjectId } from "mongodb";
import { type DepartmentInput, departmentNameKey } from "./domain/department-rules";
import { type ChainLink, MAX_CHAIN_DEPTH } from "./domain/hierarchy";
import { DEFAULT_TIME_ZONE, type TenantChanges, type TenantInput } from "./domain/tenant-rules";
import type { NewUser, Profile } from "./domain/user-rules";

export interface UserDocument {
  _id: string;
  tenantId: string;
  /** Lower-cased; what filters compare. */
  email: string;
  /** The unique key of the email within the tenant: `email`, or "deleted:<id>" once deleted, which frees the address. */
  emailKey: string;
  displayName: string;
  /** Lower-cased display name, the ListUsers sort key. */
  displayNameKey: string;
  /** Role names, e.g. ["ROLE_AGENT"]. */
  roles: string[];
  /** UserStatus name. */
  status: string;
  departmentId: string;
  managerId: string;
  title: string;
  phone: string;
  createTime: Date;
  updateTime: Date;
  deleteTime: Date | null;
  /** Incremented on every write; the etag is derived from it. */
  revision: number;
}

export type UserChanges = Partial<Omit<UserDocument, "_id" | "tenantId" | "createTime" | "revision">>;

export interface TenantDocument {
  /** The tenant id. */
  _id: string;
  displayName: string;
  /** IANA time zone; absent on tenants registered before time zones existed (they work in UTC: toTenant). */
  timeZone?: string;
  createTime: Date;
  updateTime: Date;
}

export interface DepartmentDocument {
  _id: string;
  tenantId: string;
  displayName: string;
  /** Lower-cased trimmed name, unique per tenant. */
  nameKey: string;
  headUserId: string;
  createTime: Date;
  updateTime: Date;
}

export function newId(): string {
  return new ObjectId().toHexString();
}

export async function ensureUserIndexes(db: Db): Promise<void> {
  await ensureIndexes(db.collection("users"), [
    { key: { tenantId: 1, emailKey: 1 }, name: "tenant_email", unique: true },
    { key: { tenantId: 1, displayNameKey: 1, _id: 1 }, name: "tenant_display_name" },
    { key: { tenantId: 1, createTime: -1, _id: -1 }, name: "tenant_create_time" },
    { key: { tenantId: 1, managerId: 1 }, name: "tenant_manager" },
    { key: { tenantId: 1, departmentId: 1 }, name: "tenant_department" },
  ]);
  await ensureRevisionClaimIndexes(db, "user_revisions");
  await ensureIndexes(db.collection("departments"), [{ key: { tenantId: 1, nameKey: 1 }, name: "tenant_name", unique: true }]);
}

export class UserStore {
  private readonly users: Collection<UserDocument>;
  private readonly writes: RevisionedWrites<UserDocument>;

  constructor(db: Db) {
    this.users = db.collection<UserDocument>("users");
    this.writes = new RevisionedWrites("user", this.users, db.collection<RevisionClaim>("user_revisions"));
  }

  /** Throws ALREADY_EXISTS when the email is taken in the tenant. */
  async insert(tenantId: string, user: NewUser, status: UserStatus, now: Date): Promise<UserDocument> {
    const document: UserDocument = {
      _id: newId(),
      tenantId,
      email: user.email,
      emailKey: user.email,
      displayName: user.displayName,
      displayNameKey: user.displayName.toLowerCase(),
      roles: user.roles.map((role) => Role[role]),
      status: UserStatus[status],
      departmentId: user.departmentId,
      managerId: user.managerId,
      title: "",
      phone: "",
      createTime: now,
      updateTime: now,
      deleteTime: null,
      revision: 1,
    };
    try {
      await this.users.insertOne(document);
    } catch (error) {
      if (isDuplicateKey(error)) throw new AlreadyExistsError("user", `with email "${user.email}"`);
      throw error;
    }
    return document;
  }

  get(tenantId: string, id: string): Promise<UserDocument | null> {
    return this.users.findOne({ _id: id, tenantId });
  }

  /** The user holding the (normalized) email in the tenant; deleted users no longer hold one. */
  findByEmail(tenantId: string, email: string): Promise<UserDocument | null> {
    return this.users.findOne({ tenantId, emailKey: email });
  }

  list(tenantId: string, query: MongoQuery, order: SortOrder, pageSize: number, cursor: PageCursor | undefined, fingerprint: string) {
    const combined = Object.keys(query).length === 0 ? { tenantId } : { $and: [{ tenantId }, query] };
    return fetchPage<UserDocument>(findIn(this.users), combined, order, pageSize, cursor, fingerprint);
  }

  /** Read-modify-write with optimistic concurrency (see RevisionedWrites.write). */
  write(request: RevisionedWrite<UserDocument>): Promise<{ before: UserDocument; after: UserDocument }> {
    return this.writes.write(request);
  }

  /**
   * The chain above a prospective manager, for domain/hierarchy.ts: starts at
   * `managerId` and follows manager_id upwards until the top, a missing user,
   * `stopAt` (the user being changed) or MAX_CHAIN_DEPTH links.
   */
  async managerChain(tenantId: string, managerId: string, stopAt: string | undefined): Promise<ChainLink[]> {
    const chain: ChainLink[] = [];
    const seen = new Set<string>();
    let next = managerId;
    while (next !== "" && !seen.has(next) && chain.length < MAX_CHAIN_DEPTH) {
      seen.add(next);
      const user = await this.users.findOne({ _id: next, tenantId }, { projection: { managerId: 1, status: 1 } });
      if (!user) break;
      chain.push({ id: user._id, managerId: user.managerId, deleted: user.status === UserStatus[UserStatus.USER_STATUS_DELETED] });
      if (user.managerId === stopAt) break;
      next = user.managerId;
    }
    return chain;
  }

  /** Whether any user that is not deleted is in the department. */
  async departmentHasUsers(tenantId: string, departmentId: string): Promise<boolean> {
    const found = await this.users
      .find({ tenantId, departmentId, status: { $ne: UserStatus[UserStatus.USER_STATUS_DELETED] } }, { projection: { _id: 1 } })
      .limit(1)
      .toArray();
    return found.length > 0;
  }
}

export class TenantStore {
  private readonly tenants: Collection<TenantDocument>;

  constructor(db: Db) {
    this.tenants = db.collection<TenantDocument>("tenants");
  }

  /** Throws ALREADY_EXISTS when the id is taken. */
  async insert(input: TenantInput, now: Date): Promise<TenantDocument> {
    const document: TenantDocument = { _id: input.id, displayName: input.displayName, timeZone: input.timeZone, createTime: now, updateTime: now };
    try {
      await this.tenants.insertOne(document);
    } catch (error) {
      if (isDuplicateKey(error)) throw new AlreadyExistsError("tenant", `"${input.id}"`);
      throw error;
    }
    return document;
  }

  get(tenantId: string): Promise<TenantDocument | null> {
    return this.tenants.findOne({ _id: tenantId });
  }

  update(tenantId: string, changes: TenantChanges, now: Date): Promise<TenantDocument | null> {
    return this.tenants.findOneAndUpdate({ _id: tenantId }, { $set: { ...changes, updateTime: now } }, { returnDocument: "after" });
  }
}

export class DepartmentStore {
  private readonly departments: Collection<DepartmentDocument>;

  constructor(db: Db) {
    this.departments = db.collection<DepartmentDocument>("departments");
  }

  /** Throws ALREADY_EXISTS when the name is taken in the tenant. */
  async insert(tenantId: string, input: DepartmentInput, now: Date): Promise<DepartmentDocument> {
    const document: DepartmentDocument = {
      _id: newId(),
      tenantId,
      displayName: input.displayName,
      nameKey: departmentNameKey(input.displayName),
      headUserId: input.headUserId,
      createTime: now,
      updateTime: now,
    };
    try {
      await this.departments.insertOne(document);
    } catch (error) {
      if (isDuplicateKey(error)) throw nameTaken(input.displayName);
      throw error;
    }
    return document;
  }

  get(tenantId: string, id: string): Promise<DepartmentDocument | null> {
    return this.departments.findOne({ _id: id, tenantId });
  }

  list(tenantId: string, order: SortOrder, pageSize: number, cursor: PageCursor | undefined, fingerprint: string) {
    return fetchPage<DepartmentDocument>(findIn(this.departments), { tenantId }, order, pageSize, cursor, fingerprint);
  }

  /** Returns the updated department, or null when it does not exist. Throws ALREADY_EXISTS when renamed onto a taken name. */
  async update(tenantId: string, id: string, input: DepartmentInput, now: Date): Promise<DepartmentDocument | null> {
    const nameKey = departmentNameKey(input.displayName);
    // Checked first for a clean answer; the unique index still decides a race.
    if (await this.departments.findOne({ tenantId, nameKey, _id: { $ne: id } }, { projection: { _id: 1 } })) throw nameTaken(input.displayName);
    try {
      return await this.departments.findOneAndUpdate(
        { _id: id, tenantId },
        { $set: { displayName: input.displayName, nameKey, headUserId: input.headUserId, updateTime: now } },
        { returnDocument: "after" },
      );
    } catch (error) {
      if (isDuplicateKey(error)) throw nameTaken(input.displayName);
      throw error;
    }
  }

  async delete(tenantId: string, id: string): Promise<boolean> {
    return (await this.departments.deleteOne({ _id: id, tenantId })).deletedCount === 1;
  }
}

function nameTaken(displayName: string): AlreadyExistsError {
  return new AlreadyExistsError("department", `named "${displayName}"`);
}

export function profileOfDocument(document: UserDocument): Profile {
  return {
    displayName: document.displayName,
    title: document.title,
    phone: document.phone,
    departmentId: document.departmentId,
    managerId: document.managerId,
  };
}

/** Document fields for a changed profile (keeps the sort key in step with the name). */
export function profileChanges(profile: Partial<Profile>): UserChanges {
  const changes: UserChanges = { ...profile };
  if (profile.displayName !== undefined) changes.displayNameKey = profile.displayName.toLowerCase();
  return changes;
}

export function statusOf(document: Pick<UserDocument, "status">): UserStatus {
  return enumValue(UserStatus, document.status);
}

export function rolesOf(document: Pick<UserDocument, "roles">): Role[] {
  return (document.roles ?? []).map((name) => enumValue(Role, name)).filter((role) => role !== Role.ROLE_UNSPECIFIED);
}

export function toUser(document: UserDocument): User {
  return {
    id: document._id,
    tenantId: document.tenantId,
    email: document.email,
    displayName: document.displayName,
    roles: rolesOf(document),
    status: statusOf(document),
    departmentId: document.departmentId,
    managerId: document.managerId,
    title: document.title,
    phone: document.phone,
    createTime: document.createTime,
    updateTime: document.updateTime,
    deleteTime: document.deleteTime ?? undefined,
    etag: etagOf(document),
  };
}

export function toTenant(document: TenantDocument): Tenant {
  return {
    id: document._id,
    displayName: document.displayName,
    timeZone: document.timeZone || DEFAULT_TIME_ZONE,
    createTime: document.createTime,
    updateTime: document.updateTime,
  };
}

export function toDepartment(document: DepartmentDocument): Department {
  return {
    id: document._id,
    tenantId: document.tenantId,
    displayName: document.displayName,
    headUserId: document.headUserId,
    createTime: document.createTime,
    updateTime: document.updateTime,
  };
}

function enumValue<E extends Record<string, string | number>>(enumObject: E, name: string | undefined): number {
  const value = name === undefined ? undefined : enumObject[name];
  return typeof value === "number" ? value : 0;
}
