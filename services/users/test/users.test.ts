/**
 * users.v1.UserService over real gRPC against real FerretDB and Redis, with
 * real token verification (test-signed tokens) and revocation.
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { type User, UserStatus } from "@leadmesh/contracts/users/v1/user";
import { Revocations } from "@leadmesh/platform";
import { Redis } from "ioredis";
import { Status } from "nice-grpc";
import type { RichClientError } from "nice-grpc-error-details";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken } from "../../../test/harness/tokens";
import { codeOf, connect, details, rpcError, type TestTenant, useUsersService } from "./harness";

const users = useUsersService();
const redis = new Redis(meshInfo().redisUrl);
afterAll(() => redis.quit());
/** The mesh-wide revocation list the users service writes (the auth service enforces the session cuts on refresh). */
const revocations = new Revocations(redis);

/** The user's session cut (unix ms), checked to be one made during this test. */
async function sessionCutSince(startedMs: number, tenant: string, userId: string): Promise<number> {
  const cut = (await revocations.userSecurityState(tenant, userId)).sessionsRevokedBefore;
  expect(cut).toBeGreaterThanOrEqual(startedMs - 1000);
  expect(cut).toBeLessThanOrEqual(Date.now() + 1000);
  return cut;
}
const tenantFor = (label: string) => users.tenantFor(label);

describe("CreateUser / InviteUser / GetUser", () => {
  it("creates an ACTIVE user for the auth service, normalizing the email", async () => {
    const t = await tenantFor("create");
    const { user } = await t.service.users.createUser({
      tenantId: t.tenant,
      email: " Grace@Example.COM ",
      displayName: " Grace ",
      roles: [Role.ROLE_MANAGER, Role.ROLE_AGENT],
    });
    expect(user).toMatchObject({
      tenantId: t.tenant,
      email: "grace@example.com",
      displayName: "Grace",
      roles: [Role.ROLE_AGENT, Role.ROLE_MANAGER],
      status: UserStatus.USER_STATUS_ACTIVE,
      etag: "1",
    });
    expect(user!.id).toMatch(/^[0-9a-f]{24}$/);
    expect(user!.createTime).toBeInstanceOf(Date);
    expect((await t.admin.users.getUser({ id: user!.id })).user).toEqual(user);
  });

  it("lets a service create users only in the tenant of its token", async () => {
    const t = await tenantFor("create-tenant");
    const error = await rpcError(
      t.service.users.createUser({ tenantId: "some-other-tenant", email: "x@example.com", displayName: "X", roles: [Role.ROLE_AGENT] }),
    );
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["tenant_id"] });
    // Users cannot call internal RPCs at all.
    expect(await codeOf(t.admin.users.createUser({ tenantId: t.tenant, email: "x@example.com", displayName: "X", roles: [Role.ROLE_AGENT] }))).toBe(
      Status.PERMISSION_DENIED,
    );
  });

  it("invites users as INVITED and reports every invalid field", async () => {
    const t = await tenantFor("invite");
    const { user } = await t.admin.users.inviteUser({ email: "new@example.com", displayName: "New", roles: [Role.ROLE_ADMIN] });
    expect(user).toMatchObject({ status: UserStatus.USER_STATUS_INVITED, roles: [Role.ROLE_ADMIN], managerId: "" });
    const error = await rpcError(t.admin.users.inviteUser({ email: "nope", displayName: "", roles: [Role.ROLE_SERVICE], departmentId: "missing-department" }));
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELDS", fields: ["email", "display_name", "roles"] });
    const references = await rpcError(
      t.admin.users.inviteUser({ email: "ref@example.com", displayName: "Ref", roles: [Role.ROLE_AGENT], departmentId: "d404", managerId: "u404" }),
    );
    expect(details(references).fields).toEqual(["department_id", "manager_id"]);
  });

  it("keeps emails unique per tenant, ignoring case", async () => {
    const a = await tenantFor("unique-a");
    const b = await tenantFor("unique-b");
    await a.admin.users.inviteUser({ email: "dup@example.com", displayName: "First", roles: [Role.ROLE_AGENT] });
    const duplicate = await rpcError(a.admin.users.inviteUser({ email: "DUP@Example.com", displayName: "Second", roles: [Role.ROLE_AGENT] }));
    expect(details(duplicate)).toMatchObject({ code: Status.ALREADY_EXISTS, reason: "ALREADY_EXISTS" });
    expect(await codeOf(a.service.users.createUser({ tenantId: a.tenant, email: "dup@example.com", displayName: "Third", roles: [Role.ROLE_AGENT] }))).toBe(
      Status.ALREADY_EXISTS,
    );
    // Another tenant may use the same address.
    await b.admin.users.inviteUser({ email: "dup@example.com", displayName: "Elsewhere", roles: [Role.ROLE_AGENT] });
  });

  it('resolves "me" to the calling user, and refuses it for services', async () => {
    const t = await tenantFor("me");
    const agentId = await t.createUser("Agent", [Role.ROLE_AGENT]);
    const agent = t.as(agentId, "agent");
    expect((await agent.users.getUser({ id: "me" })).user).toMatchObject({ id: agentId, displayName: "Agent" });
    expect(details(await rpcError(t.service.users.getUser({ id: "me" })))).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["id"] });
    expect((await t.service.users.getUser({ id: agentId })).user!.id).toBe(agentId);
  });

  it("answers NOT_FOUND for unknown ids and INVALID_ARGUMENT for malformed ones", async () => {
    const t = await tenantFor("missing");
    const missing = await rpcError(t.admin.users.getUser({ id: "aaaaaaaaaaaaaaaaaaaaaaaa" }));
    expect(details(missing)).toMatchObject({ code: Status.NOT_FOUND, metadata: { resource_type: "user", resource_id: "aaaaaaaaaaaaaaaaaaaaaaaa" } });
    expect(await codeOf(t.admin.users.getUser({ id: "../etc" }))).toBe(Status.INVALID_ARGUMENT);
  });
});

describe("LookupUser and ActivateUser (auth service)", () => {
  it("finds users by email case-insensitively within the token's tenant", async () => {
    const t = await tenantFor("lookup");
    const { user } = await t.admin.users.inviteUser({ email: "ada@example.com", displayName: "Ada", roles: [Role.ROLE_AGENT] });
    expect((await t.service.users.lookupUser({ tenantId: t.tenant, email: "ADA@example.com" })).user!.id).toBe(user!.id);
    expect(await codeOf(t.service.users.lookupUser({ tenantId: t.tenant, email: "nobody@example.com" }))).toBe(Status.NOT_FOUND);
    expect(details(await rpcError(t.service.users.lookupUser({ tenantId: "elsewhere", email: "ada@example.com" }))).fields).toEqual(["tenant_id"]);
    expect(details(await rpcError(t.service.users.lookupUser({ tenantId: t.tenant, email: "bad" }))).fields).toEqual(["email"]);
  });

  it("activates INVITED users (again: no change) but not suspended ones", async () => {
    const t = await tenantFor("activate");
    const { user } = await t.admin.users.inviteUser({ email: "inv@example.com", displayName: "Inv", roles: [Role.ROLE_AGENT] });
    const active = (await t.service.users.activateUser({ tenantId: t.tenant, id: user!.id })).user!;
    expect(active).toMatchObject({ status: UserStatus.USER_STATUS_ACTIVE, etag: "2" });
    expect((await t.service.users.activateUser({ tenantId: t.tenant, id: user!.id })).user!.etag).toBe("2");
    await t.admin.users.suspendUser({ id: user!.id });
    expect(await codeOf(t.service.users.activateUser({ tenantId: t.tenant, id: user!.id }))).toBe(Status.FAILED_PRECONDITION);
  });
});

describe("UpdateUser", () => {
  let t: TestTenant;
  let agentId: string;
  let managerId: string;
  let departmentId: string;

  beforeAll(async () => {
    t = await tenantFor("update");
    agentId = await t.createUser("Agent", [Role.ROLE_AGENT]);
    managerId = await t.createUser("Manager", [Role.ROLE_MANAGER]);
    departmentId = (await t.admin.departments.createDepartment({ department: { displayName: "Inbound" } })).department!.id;
  });

  it("lets users change their own display name, title and phone", async () => {
    const agent = t.as(agentId, "agent");
    const { user } = await agent.users.updateUser({ user: { id: "me", displayName: "Agent Smith", title: "Closer", phone: "+14155550123" } });
    expect(user).toMatchObject({ id: agentId, displayName: "Agent Smith", title: "Closer", phone: "+14155550123" });
    expect(details(await rpcError(agent.users.updateUser({ user: { id: agentId, phone: "555" } })))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      fields: ["user.phone"],
    });
  });

  it("keeps department, manager and other users' profiles for admins", async () => {
    const agent = t.as(agentId, "agent");
    expect(await codeOf(agent.users.updateUser({ user: { id: agentId, departmentId }, updateMask: ["department_id"] }))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(agent.users.updateUser({ user: { id: "me", managerId } }))).toBe(Status.PERMISSION_DENIED);
    // Another user's profile is refused by the RPC's access rule already.
    expect(await codeOf(agent.users.updateUser({ user: { id: managerId, title: "x" } }))).toBe(Status.PERMISSION_DENIED);
    // Sending back unchanged admin-only fields is fine.
    const current = (await agent.users.getUser({ id: "me" })).user!;
    expect((await agent.users.updateUser({ user: { ...current, title: "Senior closer" } })).user!.title).toBe("Senior closer");
  });

  it("lets admins set department and manager, validating both", async () => {
    const { user } = await t.admin.users.updateUser({ user: { id: agentId, departmentId, managerId, title: "Agent" } });
    expect(user).toMatchObject({ departmentId, managerId, title: "Agent" });
    const missing = await rpcError(t.admin.users.updateUser({ user: { id: agentId, departmentId: "d404", managerId: "u404" } }));
    expect(details(missing)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["user.department_id", "user.manager_id"] });
    const self = await rpcError(t.admin.users.updateUser({ user: { id: agentId, managerId: agentId } }));
    expect(self.details).toMatch(/own manager/);
    // agent → manager already; manager → agent would close a loop.
    const cycle = await rpcError(t.admin.users.updateUser({ user: { id: managerId, managerId: agentId } }));
    expect(details(cycle).fields).toEqual(["user.manager_id"]);
    expect(cycle.details).toMatch(/cycle/);
    // Clearing with an explicit mask.
    const cleared = (await t.admin.users.updateUser({ user: { id: agentId }, updateMask: ["manager_id"] })).user!;
    expect(cleared).toMatchObject({ managerId: "", departmentId });
  });

  it("refuses stale etags and output-only fields", async () => {
    const before = (await t.admin.users.getUser({ id: managerId })).user!;
    await t.admin.users.updateUser({ user: { id: managerId, title: "Team lead", etag: before.etag } });
    const stale = await rpcError(t.admin.users.updateUser({ user: { id: managerId, title: "Other", etag: before.etag } }));
    expect(details(stale)).toMatchObject({ code: Status.ABORTED, reason: "ETAG_MISMATCH", metadata: { current_etag: String(Number(before.etag) + 1) } });
    expect(details(await rpcError(t.admin.users.updateUser({ user: { id: managerId }, updateMask: ["email"] }))).fields).toEqual(["update_mask"]);
    expect(details(await rpcError(t.admin.users.updateUser({}))).fields).toEqual(["user"]);
  });

  it("loses no update under concurrent writers", async () => {
    const id = await t.createUser("Racer", [Role.ROLE_AGENT]);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => t.admin.users.updateUser({ user: { id, title: `t${i}` } })));
    const succeeded = outcomes.filter((outcome) => outcome.status === "fulfilled").length;
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") expect((outcome.reason as RichClientError).code).toBe(Status.ABORTED);
    }
    expect(succeeded).toBeGreaterThan(0);
    expect((await t.admin.users.getUser({ id })).user!.etag).toBe(String(1 + succeeded));
  });
});

describe("managers inviting", () => {
  it("may invite agents only, who report to them unless told otherwise", async () => {
    const t = await tenantFor("manager-invite");
    const managerId = await t.createUser("Manager", [Role.ROLE_MANAGER]);
    const manager = t.as(managerId, "manager");
    const { user } = await manager.users.inviteUser({ email: "agent@example.com", displayName: "Agent", roles: [Role.ROLE_AGENT] });
    expect(user).toMatchObject({ managerId, roles: [Role.ROLE_AGENT], status: UserStatus.USER_STATUS_INVITED });
    const other = await manager.users.inviteUser({ email: "agent2@example.com", displayName: "Agent 2", roles: [Role.ROLE_AGENT], managerId: t.adminId });
    expect(other.user!.managerId).toBe(t.adminId);
    const escalation = await rpcError(manager.users.inviteUser({ email: "boss@example.com", displayName: "Boss", roles: [Role.ROLE_AGENT, Role.ROLE_ADMIN] }));
    expect(details(escalation)).toMatchObject({ code: Status.PERMISSION_DENIED, reason: "PERMISSION_DENIED" });
    // Agents may not invite at all (access rule).
    const agent = t.as(user!.id, "agent");
    expect(await codeOf(agent.users.inviteUser({ email: "x@example.com", displayName: "X", roles: [Role.ROLE_AGENT] }))).toBe(Status.PERMISSION_DENIED);
  });
});

describe("lifecycle and token revocation", () => {
  it("suspends only ACTIVE users, reactivates only SUSPENDED ones, and ends their tokens and sessions on suspension", async () => {
    const t = await tenantFor("suspend");
    const agentId = await t.createUser("Agent", [Role.ROLE_AGENT]);
    const agent = t.as(agentId, "agent");
    expect((await agent.users.getUser({ id: "me" })).user!.status).toBe(UserStatus.USER_STATUS_ACTIVE);

    const started = Date.now();
    expect((await revocations.userSecurityState(t.tenant, agentId)).sessionsRevokedBefore).toBe(0);
    const suspended = (await t.admin.users.suspendUser({ id: agentId })).user!;
    expect(suspended.status).toBe(UserStatus.USER_STATUS_SUSPENDED);
    // Every session so far ends for good: reactivation does not bring its refresh tokens back.
    const cut = await sessionCutSince(started, t.tenant, agentId);
    const revoked = await rpcError(agent.users.getUser({ id: "me" }));
    expect(revoked.code).toBe(Status.UNAUTHENTICATED);
    expect(revoked.details).toMatch(/revoked: the user.s roles or status changed after it was issued/);
    expect(await codeOf(t.admin.users.suspendUser({ id: agentId }))).toBe(Status.FAILED_PRECONDITION);

    expect((await t.admin.users.reactivateUser({ id: agentId })).user!.status).toBe(UserStatus.USER_STATUS_ACTIVE);
    expect(await codeOf(t.admin.users.reactivateUser({ id: agentId }))).toBe(Status.FAILED_PRECONDITION);
    const state = await revocations.userSecurityState(t.tenant, agentId);
    expect(state.sessionsRevokedBefore).toBe(cut);
    // The old token stays dead; a token issued after the revocation (with the current security version, as the auth service mints it) works.
    expect(await codeOf(agent.users.getUser({ id: "me" }))).toBe(Status.UNAUTHENTICATED);
    expect(state.version).toBe(Number(suspended.etag));
    const fresh = connect(users.address, mintToken({ tenant: t.tenant, sub: agentId, roles: ["agent"], sv: state.version }));
    expect((await fresh.users.getUser({ id: "me" })).user!.id).toBe(agentId);
    fresh.close();

    const { user: invited } = await t.admin.users.inviteUser({ email: "inv@example.com", displayName: "Invited", roles: [Role.ROLE_AGENT] });
    expect(details(await rpcError(t.admin.users.suspendUser({ id: invited!.id })))).toMatchObject({
      code: Status.FAILED_PRECONDITION,
      reason: "FAILED_PRECONDITION",
    });
    expect(await codeOf(t.admin.users.suspendUser({ id: t.adminId }))).toBe(Status.FAILED_PRECONDITION);
  });

  it("deletes users idempotently, keeps them for history, frees their email and ends their tokens and sessions", async () => {
    const t = await tenantFor("delete");
    const { user } = await t.service.users.createUser({ tenantId: t.tenant, email: "gone@example.com", displayName: "Gone", roles: [Role.ROLE_AGENT] });
    const gone = t.as(user!.id, "agent");
    await gone.users.getUser({ id: "me" });

    const started = Date.now();
    const deleted = (await t.admin.users.deleteUser({ id: user!.id })).user!;
    await sessionCutSince(started, t.tenant, user!.id);
    expect(deleted).toMatchObject({ status: UserStatus.USER_STATUS_DELETED, email: "gone@example.com" });
    expect(deleted.deleteTime).toBeInstanceOf(Date);
    expect(await codeOf(gone.users.getUser({ id: "me" }))).toBe(Status.UNAUTHENTICATED);
    expect((await t.admin.users.deleteUser({ id: user!.id })).user).toEqual(deleted);
    expect((await t.admin.users.getUser({ id: user!.id })).user!.status).toBe(UserStatus.USER_STATUS_DELETED);

    expect(await codeOf(t.admin.users.updateUser({ user: { id: user!.id, title: "x" } }))).toBe(Status.FAILED_PRECONDITION);
    expect(await codeOf(t.admin.users.reactivateUser({ id: user!.id }))).toBe(Status.FAILED_PRECONDITION);
    expect(await codeOf(t.admin.users.changeUserRoles({ id: user!.id, roles: [Role.ROLE_ADMIN] }))).toBe(Status.FAILED_PRECONDITION);
    expect(await codeOf(t.service.users.lookupUser({ tenantId: t.tenant, email: "gone@example.com" }))).toBe(Status.NOT_FOUND);
    const again = (await t.admin.users.inviteUser({ email: "Gone@example.com", displayName: "Back", roles: [Role.ROLE_AGENT] })).user!;
    expect(again.id).not.toBe(user!.id);

    const self = await rpcError(t.admin.users.deleteUser({ id: "me" }));
    expect(self.code).toBe(Status.FAILED_PRECONDITION);
    expect(self.details).toMatch(/yourself/);
    expect(await codeOf(t.as(t.adminId, "agent").users.deleteUser({ id: again.id }))).toBe(Status.PERMISSION_DENIED);
  });

  it("replaces roles and revokes the user's access tokens but not their sessions, so refreshed tokens carry the new roles", async () => {
    const t = await tenantFor("roles");
    const id = await t.createUser("Promoted", [Role.ROLE_AGENT]);
    const before = t.as(id, "agent");
    await before.users.getUser({ id: "me" });
    const { user } = await t.admin.users.changeUserRoles({ id, roles: [Role.ROLE_MANAGER, Role.ROLE_AGENT] });
    expect(user!.roles).toEqual([Role.ROLE_AGENT, Role.ROLE_MANAGER]);
    expect(await codeOf(before.users.getUser({ id: "me" }))).toBe(Status.UNAUTHENTICATED);
    // Only the access tokens die: the sessions stay, so a refresh yields tokens with the new roles.
    // The security version is the revision of the role change: tokens minted before it are refused.
    expect(await revocations.userSecurityState(t.tenant, id)).toEqual({ version: Number(user!.etag), sessionsRevokedBefore: 0 });
    expect(details(await rpcError(t.admin.users.changeUserRoles({ id, roles: [] })))).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["roles"] });
    expect(details(await rpcError(t.admin.users.changeUserRoles({ id, roles: [Role.ROLE_SERVICE] })))).toMatchObject({ fields: ["roles"] });
    // Unchanged roles: nothing written.
    expect((await t.admin.users.changeUserRoles({ id, roles: [Role.ROLE_AGENT, Role.ROLE_MANAGER] })).user!.etag).toBe(user!.etag);
  });
});

describe("tenant isolation", () => {
  it("never shows or changes one tenant's users from another", async () => {
    const a = await tenantFor("iso-a");
    const b = await tenantFor("iso-b");
    const id = await a.createUser("Alice", [Role.ROLE_AGENT]);
    for (const call of [
      b.admin.users.getUser({ id }),
      b.admin.users.updateUser({ user: { id, title: "x" } }),
      b.admin.users.suspendUser({ id }),
      b.admin.users.reactivateUser({ id }),
      b.admin.users.deleteUser({ id }),
      b.admin.users.changeUserRoles({ id, roles: [Role.ROLE_ADMIN] }),
      b.service.users.activateUser({ tenantId: b.tenant, id }),
    ]) {
      expect(await codeOf(call)).toBe(Status.NOT_FOUND);
    }
    expect((await b.admin.users.listUsers({})).users.map((user: User) => user.id)).toEqual([b.adminId]);
    // A tenant-B admin token whose sub is A's user (the fixture owner): the tenant check answers, not the self check.
    const sameSub = b.as(id, "admin");
    try {
      expect(await codeOf(sameSub.users.suspendUser({ id }))).toBe(Status.NOT_FOUND);
      expect(await codeOf(sameSub.users.deleteUser({ id }))).toBe(Status.NOT_FOUND);
    } finally {
      sameSub.close();
    }
    // A's user is untouched and still usable.
    expect((await a.admin.users.getUser({ id })).user).toMatchObject({ status: UserStatus.USER_STATUS_ACTIVE, etag: "1" });
    // B's admin may not use A's user as a manager either.
    expect(details(await rpcError(b.admin.users.updateUser({ user: { id: b.adminId, managerId: id } }))).fields).toEqual(["user.manager_id"]);
  });
});

describe("ListUsers", () => {
  let t: TestTenant;
  const names = ["delta", "Alpha", "charlie", "Echo", "bravo", "golf", "Foxtrot"];
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await tenantFor("list");
    for (const name of names) ids[name] = await t.createUser(name, [Role.ROLE_AGENT]);
    await t.admin.users.updateUser({ user: { id: ids.Echo, managerId: ids.delta } });
    await t.admin.users.updateUser({ user: { id: ids.golf, managerId: ids.delta } });
    await t.admin.users.suspendUser({ id: ids.bravo });
  });

  it("pages through every user exactly once, by display name regardless of case", async () => {
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await t.admin.users.listUsers({ pageSize: 3, pageToken });
      seen.push(...page.users.map((user) => user.displayName));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(pages).toBe(3);
    expect(seen).toEqual(["Admin", "Alpha", "bravo", "charlie", "delta", "Echo", "Foxtrot", "golf"]);
  });

  it("orders by create time and filters", async () => {
    const newest = await t.admin.users.listUsers({ orderBy: "create_time desc", pageSize: 2 });
    expect(newest.users.map((user) => user.displayName)).toEqual(["Foxtrot", "golf"]);
    const team = await t.admin.users.listUsers({ filter: `manager_id = "${ids.delta}"` });
    expect(team.users.map((user) => user.displayName)).toEqual(["Echo", "golf"]);
    expect((await t.admin.users.listUsers({ filter: "status = SUSPENDED" })).users.map((user) => user.id)).toEqual([ids.bravo]);
    const email = (await t.admin.users.getUser({ id: ids.charlie })).user!.email;
    expect((await t.admin.users.listUsers({ filter: `email = "${email.toUpperCase()}"` })).users.map((user) => user.id)).toEqual([ids.charlie]);
    expect((await t.admin.users.listUsers({ filter: "create_time > 2000-01-01T00:00:00Z AND status != SUSPENDED" })).users).toHaveLength(7);
  });

  it("is visible to agents and services, and rejects bad arguments", async () => {
    expect((await t.as(ids.Alpha, "agent").users.listUsers({})).users).toHaveLength(8);
    expect((await t.service.users.listUsers({ pageSize: 1 })).users).toHaveLength(1);
    expect(details(await rpcError(t.admin.users.listUsers({ orderBy: "email" }))).fields).toEqual(["order_by"]);
    expect(details(await rpcError(t.admin.users.listUsers({ filter: 'phone = "1"' }))).fields).toEqual(["filter"]);
    const first = await t.admin.users.listUsers({ pageSize: 2 });
    const mismatch = await rpcError(t.admin.users.listUsers({ pageSize: 2, pageToken: first.nextPageToken, orderBy: "create_time" }));
    expect(details(mismatch)).toMatchObject({ code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" });
  });
});
