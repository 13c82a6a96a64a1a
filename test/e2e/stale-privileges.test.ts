/**
 * No access token outlives the roles or status it carries (issue 10): while
 * an admin demotes, suspends or deletes a user, that user's sessions keep
 * refreshing as fast as they can. Once the change has answered, every token
 * minted before, during or after it either is refused or carries the user's
 * current roles; a suspended or deleted user has no working token at all.
 *
 * The refresh chains run until the change answers (bounded per chain), so
 * every round covers the whole span of the change: the read of the old
 * roles before the write, the write, the revocations around it. Enough
 * rounds that the old whole-second cut's window (a token minted in the cut
 * second with roles read before the write) was hit on the shared machine.
 */
import { PASSWORD, type RegisteredTenant, registerTenant, rest } from "../harness/identity";

const ROLE_ROUNDS = 12;
const SUSPENSION_ROUNDS = 6;
const DELETION_ROUNDS = 4;
const SESSIONS = 4;
/** Refreshes per chain and round at most: bounds a round even if the change never answered. */
const MAX_CHAIN_LENGTH = 40;

interface Member {
  id: string;
  email: string;
}

/** A token that still authenticated after the change answered, though it should not have. */
interface Survivor {
  round: string;
  roles: string[];
  iat: number;
  status: number;
}

const claimsOf = (token: string): { roles: string[]; iat: number } => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());

async function invite(tenant: RegisteredTenant, label: string): Promise<Member> {
  const email = `${label}@${tenant.tenantId}.example`;
  const invited = await rest("POST", "/api/v1/users:invite", { body: { email, displayName: label, roles: ["ROLE_MANAGER"] }, token: tenant.accessToken });
  expect(invited.status).toBe(200);
  const reset = await rest("POST", "/api/v1/auth:requestPasswordReset", { body: { tenantId: tenant.tenantId, email } });
  expect(reset.status).toBe(200);
  const done = await rest("POST", "/api/v1/auth:resetPassword", { body: { resetToken: reset.json.devResetToken, newPassword: PASSWORD } });
  expect(done.status).toBe(200);
  return { id: invited.json.user.id, email };
}

/** Refresh tokens of `count` new sessions; one after another, so parallel sign-ins do not trip the account throttle. */
async function signIn(tenant: RegisteredTenant, member: Member, count: number): Promise<string[]> {
  const refreshTokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const login = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: member.email, password: PASSWORD } });
    expect(login.status).toBe(200);
    refreshTokens.push(login.json.tokens.refreshToken);
  }
  return refreshTokens;
}

/** Retries of a refresh answered 409 (the account changed while its token was minted), as a client would: same refresh token, within its grace period. */
const MAX_REFRESH_RETRIES = 3;

async function refresh(refreshToken: string): Promise<{ accessToken: string; refreshToken: string } | undefined> {
  for (let attempt = 0; ; attempt++) {
    const response = await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken } });
    if (response.status === 200) return response.json.tokens;
    if (response.status === 409 && attempt < MAX_REFRESH_RETRIES) continue;
    // Suspension and deletion end the sessions: 401/403 is the expected end of a chain; anything else is a failure.
    expect([401, 403]).toContain(response.status);
    return undefined;
  }
}

/**
 * Runs `change` while every session refreshes in a loop until it answers.
 * Returns the change's status, every access token minted, and each
 * session's latest refresh token (undefined once the session ended).
 */
async function race(refreshTokens: string[], change: () => Promise<{ status: number }>) {
  let changing = true;
  const changed = change().finally(() => {
    changing = false;
  });
  const chains = refreshTokens.map(async (first) => {
    const minted: string[] = [];
    let current: string | undefined = first;
    for (let i = 0; current !== undefined && i < MAX_CHAIN_LENGTH && (changing || i === 0); i++) {
      const tokens = await refresh(current);
      if (tokens) minted.push(tokens.accessToken);
      current = tokens?.refreshToken;
    }
    return { minted, latest: current };
  });
  const [{ status }, results] = await Promise.all([changed, Promise.all(chains)]);
  return { status, minted: results.flatMap((result) => result.minted), latest: results.map((result) => result.latest) };
}

/** Tokens that still authenticate (anything but 401) although `allowed` says they must not. */
async function survivors(round: string, tokens: string[], allowed: (roles: string[]) => boolean): Promise<Survivor[]> {
  const found: Survivor[] = [];
  for (const token of tokens) {
    const { roles, iat } = claimsOf(token);
    const response = await rest("GET", "/api/v1/users/me", { token });
    if (response.status === 401) {
      expect(response.json.message).toMatch(/^access token rejected: it (has been|was) revoked/);
      continue;
    }
    if (!allowed(roles)) found.push({ round, roles, iat, status: response.status });
  }
  return found;
}

describe("no stale privileges: tokens minted while roles or status change", () => {
  let tenant: RegisteredTenant;
  beforeAll(async () => {
    tenant = await registerTenant("stale");
  });

  it("never leaves a working token with the old roles after a demotion, however the refreshes interleave", async () => {
    const member = await invite(tenant, "demoted");
    let sessions = await signIn(tenant, member, SESSIONS);
    const stale: Survivor[] = [];
    let oldRoleTokens = 0;
    for (let round = 0; round < ROLE_ROUNDS; round++) {
      const promoted = await rest("POST", `/api/v1/users/${member.id}:changeRoles`, { body: { roles: ["ROLE_MANAGER"] }, token: tenant.accessToken });
      expect(promoted.status).toBe(200);
      const result = await race(sessions, () =>
        rest("POST", `/api/v1/users/${member.id}:changeRoles`, { body: { roles: ["ROLE_AGENT"] }, token: tenant.accessToken }),
      );
      expect(result.status).toBe(200);
      oldRoleTokens += result.minted.filter((token) => claimsOf(token).roles.includes("manager")).length;
      stale.push(...(await survivors(`demotion ${round}`, result.minted, (roles) => roles.join() === "agent")));
      // Sessions live on through a role change, and refresh into working tokens with the new roles.
      const next: string[] = [];
      for (const latest of result.latest) {
        expect(latest).toBeDefined();
        const tokens = await refresh(latest as string);
        expect(tokens && claimsOf(tokens.accessToken).roles).toEqual(["agent"]);
        expect((await rest("GET", "/api/v1/users/me", { token: tokens?.accessToken })).status).toBe(200);
        next.push(tokens?.refreshToken as string);
      }
      sessions = next;
    }
    // The race was real: tokens with the old roles were minted while the demotion ran.
    expect(oldRoleTokens).toBeGreaterThan(0);
    expect(stale).toEqual([]);
  });

  it("never leaves a working token after a suspension, however the refreshes interleave", async () => {
    const member = await invite(tenant, "suspended");
    const stale: Survivor[] = [];
    for (let round = 0; round < SUSPENSION_ROUNDS; round++) {
      const sessions = await signIn(tenant, member, SESSIONS);
      const result = await race(sessions, () => rest("POST", `/api/v1/users/${member.id}:suspend`, { body: {}, token: tenant.accessToken }));
      expect(result.status).toBe(200);
      stale.push(...(await survivors(`suspension ${round}`, result.minted, () => false)));
      // Suspension ends the sessions for good.
      for (const latest of result.latest) if (latest !== undefined) expect(await refresh(latest)).toBeUndefined();
      const reactivated = await rest("POST", `/api/v1/users/${member.id}:reactivate`, { body: {}, token: tenant.accessToken });
      expect(reactivated.status).toBe(200);
    }
    expect(stale).toEqual([]);
  });

  it("never leaves a working token after a deletion, however the refreshes interleave", async () => {
    const stale: Survivor[] = [];
    for (let round = 0; round < DELETION_ROUNDS; round++) {
      const member = await invite(tenant, `deleted-${round}`);
      const sessions = await signIn(tenant, member, SESSIONS);
      const result = await race(sessions, () => rest("DELETE", `/api/v1/users/${member.id}`, { token: tenant.accessToken }));
      expect(result.status).toBe(200);
      stale.push(...(await survivors(`deletion ${round}`, result.minted, () => false)));
      for (const latest of result.latest) if (latest !== undefined) expect(await refresh(latest)).toBeUndefined();
    }
    expect(stale).toEqual([]);
  });
});
