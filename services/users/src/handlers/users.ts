/**
 * users.v1.UserService: one function per RPC. Each validates the request,
 * calls the store / domain rules and maps the result; errors are thrown as
 * platform DomainErrors and mapped to gRPC statuses by the kernel. Who may
 * call each RPC at all is the platform's job (access rules in proto/); the
 * row- and field-level rules are in src/domain.
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { type User, UserStatus } from "@leadmesh/contracts/users/v1/user";
import { UserServiceDefinition, type UserServiceImplementation } from "@leadmesh/contracts/users/v1/users";
import {
  type CallerContext,
  checkEmail,
  decodePageToken,
  NotFoundError,
  normalizeEmail,
  parseOrderBy,
  queryFingerprint,
  type Revocations,
  requireId,
  requireMessage,
  resolvePageSize,
  Violations,
} from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { checkNotDeleted, type LifecycleAction, nextStatus } from "../domain/lifecycle";
import { checkNotSelf, checkProfileChange, checkServiceTenant, inviteAs, resolveUserId } from "../domain/permissions";
import { DEFAULT_USER_ORDER, USER_ORDER_FIELDS, userFilter } from "../domain/user-query";
import { applyProfileUpdate, assignableRoles, newUser, type Profile } from "../domain/user-rules";
import { profileChanges, profileOfDocument, rolesOf, statusOf, toUser, type UserChanges, type UserDocument, type UserStore } from "../store";
import { requiringNamedTenant } from "./named-tenant";
import type { References } from "./references";

type Context = CallContext & CallerContext;

type Change = (current: UserDocument) => UserChanges | undefined | Promise<UserChanges | undefined>;

export function userHandlers(
  store: UserStore,
  references: References,
  revocations: Revocations,
  clock: () => Date = () => new Date(),
): UserServiceImplementation<CallerContext> {
  /** The user if it exists in the caller's tenant; NOT_FOUND otherwise (no existence leak across tenants). */
  async function existing(context: Context, id: string): Promise<UserDocument> {
    const document = await store.get(context.caller.tenantId, id);
    if (!document) throw new NotFoundError("user", id);
    return document;
  }

  /** The id of a request ("me" resolved), validated. */
  function userId(context: Context, id: string, field: string): string {
    return requireId(resolveUserId(context.caller, id, field), field);
  }

  /** Read-modify-write of a user the caller can see (optimistic concurrency: RevisionedWrites.write). */
  async function writeUser(context: Context, id: string, clientEtag: string, change: Change): Promise<UserDocument> {
    const { after } = await store.write({
      id,
      actorId: context.caller.actorId,
      clientEtag,
      read: () => existing(context, id),
      change,
      stamp: () => ({ updateTime: clock() }),
    });
    return after;
  }

  /**
   * A write after which the user's existing tokens must die (suspension,
   * deletion, new roles): it publishes the user's security version (platform
   * auth/revocation.ts), the document's revision, which the write bumps
   * atomically with the change. Published before the write too, so a
   * failing Redis aborts the call with nothing changed; and after it, before
   * the call answers, so from the answer on every token minted from the old
   * state (a refresh racing the write included) is refused, whatever the
   * timing. A change that turns out to be a no-op publishes the current
   * revision anyway: it may be the retry of a call whose write landed but
   * whose publication failed. The cost of that: tokens minted before the
   * user's last profile edit are refused and refreshed. Activation and
   * reactivation only grant (no token of an inactive user verifies or can
   * be minted), so they publish nothing; a user never changes tenant.
   */
  async function writeRevoking(
    context: Context,
    id: string,
    options: { endSessions: boolean },
    change: (current: UserDocument) => UserChanges | undefined,
  ): Promise<UserDocument> {
    const tenantId = context.caller.tenantId;
    const current = await existing(context, id);
    // Tried first: a refused change (FAILED_PRECONDITION) publishes nothing.
    const changes = change(current);
    await revocations.publishUserChange(tenantId, id, current.revision, options);
    if (!changes) return current;
    const after = await writeUser(context, id, "", change);
    await revocations.publishUserChange(tenantId, id, after.revision, options);
    return after;
  }

  /** New roles: the current access tokens die, the sessions live on and refresh into tokens with the new roles. */
  function writeRevokingTokens(context: Context, id: string, change: (current: UserDocument) => UserChanges | undefined): Promise<UserDocument> {
    return writeRevoking(context, id, { endSessions: false }, change);
  }

  /**
   * Suspension, deletion: the sessions end for good, so no refresh token
   * issued so far works again, not even after a reactivation (the user
   * signs in anew). The current access tokens die with them.
   */
  function writeEndingSessions(context: Context, id: string, change: (current: UserDocument) => UserChanges | undefined): Promise<UserDocument> {
    return writeRevoking(context, id, { endSessions: true }, change);
  }

  function lifecycle(id: string, action: LifecycleAction): (current: UserDocument) => UserChanges | undefined {
    return (current) => {
      const status = nextStatus(id, statusOf(current), action);
      if (status === undefined) return undefined;
      const changes: UserChanges = { status: UserStatus[status] };
      // Deleted users are kept for history but free their email for a new user.
      if (status === UserStatus.USER_STATUS_DELETED) Object.assign(changes, { deleteTime: clock(), emailKey: `deleted:${id}` });
      return changes;
    };
  }

  return requiringNamedTenant(UserServiceDefinition, {
    async getUser(request, context) {
      const document = await existing(context, userId(context, request.id, "id"));
      return { user: toUser(document) };
    },

    async listUsers(request, context) {
      const violations = new Violations();
      const pageSize = resolvePageSize(request.pageSize, violations);
      const order = parseOrderBy(request.orderBy, USER_ORDER_FIELDS, DEFAULT_USER_ORDER, violations);
      violations.throwIfAny();
      const query = userFilter(request.filter);
      const fingerprint = queryFingerprint(context.caller.tenantId, request.filter.trim(), order);
      const cursor = decodePageToken(request.pageToken, fingerprint);
      const page = await store.list(context.caller.tenantId, query, order, pageSize, cursor, fingerprint);
      return { users: page.items.map(toUser), nextPageToken: page.nextPageToken };
    },

    async inviteUser(request, context) {
      const tenantId = context.caller.tenantId;
      const invitee = inviteAs(context.caller, newUser(request));
      const violations = new Violations();
      await references.department(tenantId, invitee.departmentId, "department_id", violations);
      await references.manager(tenantId, undefined, invitee.managerId, "manager_id", violations);
      violations.throwIfAny();
      return { user: toUser(await store.insert(tenantId, invitee, UserStatus.USER_STATUS_INVITED, clock())) };
    },

    async createUser(request, context) {
      const violations = new Violations();
      checkServiceTenant(context.caller, request.tenantId, "tenant_id", violations);
      violations.throwIfAny();
      const user = newUser({ email: request.email, displayName: request.displayName, roles: request.roles });
      return { user: toUser(await store.insert(context.caller.tenantId, user, UserStatus.USER_STATUS_ACTIVE, clock())) };
    },

    async updateUser(request, context) {
      const patch = requireMessage<User>(request.user, "user");
      const id = userId(context, patch.id, "user.id");
      const tenantId = context.caller.tenantId;
      const after = await writeUser(context, id, patch.etag, async (current) => {
        checkNotDeleted(id, statusOf(current));
        const { next, changed } = applyProfileUpdate(profileOfDocument(current), patch, request.updateMask);
        checkProfileChange(context.caller, id, changed);
        if (changed.length === 0) return undefined;
        const violations = new Violations();
        if (changed.includes("departmentId")) await references.department(tenantId, next.departmentId, "user.department_id", violations);
        if (changed.includes("managerId")) await references.manager(tenantId, id, next.managerId, "user.manager_id", violations);
        violations.throwIfAny();
        return profileChanges(Object.fromEntries(changed.map((field) => [field, next[field]])) as Partial<Profile>);
      });
      return { user: toUser(after) };
    },

    async changeUserRoles(request, context) {
      const id = userId(context, request.id, "id");
      // Existence first: another tenant's user id answers NOT_FOUND whatever the body.
      await existing(context, id);
      const violations = new Violations();
      const roles = assignableRoles(request.roles, violations);
      violations.throwIfAny();
      const names = roles.map((role) => Role[role]);
      const after = await writeRevokingTokens(context, id, (current) => {
        checkNotDeleted(id, statusOf(current));
        const unchanged = rolesOf(current).join() === roles.join();
        return unchanged ? undefined : { roles: names };
      });
      return { user: toUser(after) };
    },

    async suspendUser(request, context) {
      const id = userId(context, request.id, "id");
      // After the tenant-scoped read: another tenant's id is NOT_FOUND, whoever the caller is.
      const change = lifecycle(id, "suspend");
      return {
        user: toUser(
          await writeEndingSessions(context, id, (current) => {
            checkNotSelf(context.caller, id, "suspend");
            return change(current);
          }),
        ),
      };
    },

    async reactivateUser(request, context) {
      const id = userId(context, request.id, "id");
      return { user: toUser(await writeUser(context, id, "", lifecycle(id, "reactivate"))) };
    },

    async deleteUser(request, context) {
      const id = userId(context, request.id, "id");
      // After the tenant-scoped read: another tenant's id is NOT_FOUND, whoever the caller is.
      const change = lifecycle(id, "delete");
      return {
        user: toUser(
          await writeEndingSessions(context, id, (current) => {
            checkNotSelf(context.caller, id, "delete");
            return change(current);
          }),
        ),
      };
    },

    async activateUser(request, context) {
      const violations = new Violations();
      checkServiceTenant(context.caller, request.tenantId, "tenant_id", violations);
      violations.throwIfAny();
      const id = requireId(request.id, "id");
      return { user: toUser(await writeUser(context, id, "", lifecycle(id, "activate"))) };
    },

    async lookupUser(request, context) {
      const violations = new Violations();
      checkServiceTenant(context.caller, request.tenantId, "tenant_id", violations);
      const email = normalizeEmail(request.email);
      violations.check("email", email, checkEmail);
      violations.throwIfAny();
      const document = await store.findByEmail(context.caller.tenantId, email);
      if (!document) throw new NotFoundError("user", email);
      return { user: toUser(document) };
    },
  });
}
