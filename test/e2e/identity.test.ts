/**
 * Identity end to end, through Envoy (jwt_authn) to the real auth, users and
 * leads services on FerretDB and Redis.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { signJwt } from "@leadmesh/platform";
import { serviceClient, uniqueTenant } from "../harness/clients";
import { authSignedToken, PASSWORD, registerTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";
import { TEST_AUDIENCE, TEST_ISSUER } from "../harness/tokens";

const newLead = { firstName: "Grace", email: "grace@example.com", source: "LEAD_SOURCE_REFERRAL" };

describe("register → login → leads → refresh → logout", () => {
  it("runs the whole session lifecycle over REST", async () => {
    const tenant = await registerTenant("flow");
    const created = await rest("POST", "/api/v1/leads", { body: newLead, token: tenant.accessToken });
    expect(created.status).toBe(200);
    expect(created.json.lead.tenantId).toBe(tenant.tenantId);

    const login = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: tenant.email.toUpperCase(), password: PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.json.tokens).toMatchObject({ tokenType: "Bearer", expiresIn: 900 });
    const me = await rest("GET", "/api/v1/users/me", { token: login.json.tokens.accessToken });
    expect(me.json.user).toMatchObject({ id: tenant.adminId, roles: ["ROLE_ADMIN"], status: "USER_STATUS_ACTIVE" });

    const refreshed = await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: login.json.tokens.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.tokens.refreshToken).not.toBe(login.json.tokens.refreshToken);
    expect(refreshed.json.tokens.sessionId).toBe(login.json.tokens.sessionId);
    const token = refreshed.json.tokens.accessToken;
    expect((await rest("GET", "/api/v1/leads", { token })).json.leads).toHaveLength(1);

    const sessions = await rest("GET", "/api/v1/auth/sessions", { token });
    expect(sessions.json.sessions.map((session: { id: string }) => session.id).sort()).toEqual([tenant.sessionId, login.json.tokens.sessionId].sort());
    expect(sessions.json.sessions.find((session: { current: boolean }) => session.current).id).toBe(login.json.tokens.sessionId);

    expect((await rest("POST", "/api/v1/auth:logout", { body: {}, token })).status).toBe(200);
    const after = await rest("GET", "/api/v1/leads", { token });
    expect(after.status).toBe(401);
    expect(after.json).toMatchObject({ code: 16, message: expect.stringMatching(/revoked/) });
    expect((await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: refreshed.json.tokens.refreshToken } })).status).toBe(401);
    // The other session is untouched.
    expect((await rest("GET", "/api/v1/leads", { token: tenant.accessToken })).status).toBe(200);
  });

  it("answers a repeat of the token just spent with the same successor (two tabs), within the grace period", async () => {
    const tenant = await registerTenant("grace");
    const [a, b] = await Promise.all([
      rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: tenant.refreshToken } }),
      rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: tenant.refreshToken } }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.json.tokens.refreshToken).toBe(b.json.tokens.refreshToken);
    expect((await rest("GET", "/api/v1/leads", { token: b.json.tokens.accessToken })).status).toBe(200);
  });

  it("detects refresh token reuse and revokes the whole session", async () => {
    const tenant = await registerTenant("reuse");
    const first = await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: tenant.refreshToken } });
    expect(first.status).toBe(200);
    const second = await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: first.json.tokens.refreshToken } });
    expect(second.status).toBe(200);
    // The original token is now two rotations old: presenting it means the family leaked.
    const replay = await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: tenant.refreshToken } });
    expect(replay.status).toBe(401);
    expect(replay.json.message).toMatch(/already used: the session has been revoked/);
    // The family is gone: the legitimate successor and the session's access tokens die too.
    expect((await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: second.json.tokens.refreshToken } })).status).toBe(401);
    expect((await rest("GET", "/api/v1/leads", { token: second.json.tokens.accessToken })).status).toBe(401);
    expect((await rest("GET", "/api/v1/leads", { token: tenant.accessToken })).status).toBe(401);
  });

  it("records the client address Envoy saw, not one the client claims", async () => {
    const tenant = await registerTenant("address");
    const login = await rest("POST", "/api/v1/auth:login", {
      body: { tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD },
      headers: { "x-forwarded-for": "6.6.6.6", "user-agent": "matrix-test/1.0" },
    });
    const sessions = await rest("GET", "/api/v1/auth/sessions", { token: login.json.tokens.accessToken });
    const current = sessions.json.sessions.find((session: { current: boolean }) => session.current);
    const registered = sessions.json.sessions.find((session: { id: string }) => session.id === tenant.sessionId);
    // Envoy records the loopback client as this host's own address; whatever it is, the claim is ignored.
    expect(current).toMatchObject({ userAgent: "matrix-test/1.0" });
    expect(current.clientAddress).not.toBe("6.6.6.6");
    expect(current.clientAddress).toBe(registered.clientAddress);
  });

  it("logs out everywhere", async () => {
    const tenant = await registerTenant("everywhere");
    const second = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD } });
    const result = await rest("POST", "/api/v1/auth:logoutEverywhere", { body: {}, token: second.json.tokens.accessToken });
    expect(result.json.revokedSessions).toBe(2);
    expect((await rest("GET", "/api/v1/leads", { token: tenant.accessToken })).status).toBe(401);
  });
});

describe("registration", () => {
  it("refuses a taken tenant id, but adopts a tenant left without users by a failed registration", async () => {
    const taken = await registerTenant("taken");
    const again = await rest("POST", "/api/v1/auth:register", {
      body: { tenantId: taken.tenantId, tenantDisplayName: "Again", email: "other@x.example", password: PASSWORD, displayName: "Other" },
    });
    expect(again.status).toBe(409);

    // A registration that died after creating the tenant: the tenant exists, nobody in it.
    const abandoned = uniqueTenant("abandoned");
    const { client, close } = serviceClient(TenantServiceDefinition, `127.0.0.1:${meshInfo().services.users.grpc}`, "auth", abandoned);
    await client.createTenant({ tenant: { id: abandoned, displayName: "Half done" } });
    close();
    const retry = await rest("POST", "/api/v1/auth:register", {
      body: { tenantId: abandoned, tenantDisplayName: "Done", email: "admin@abandoned.example", password: PASSWORD, displayName: "Admin" },
    });
    expect(retry.status).toBe(200);
    expect(retry.json.user).toMatchObject({ tenantId: abandoned, roles: ["ROLE_ADMIN"] });
  });
});

describe("rejected tokens", () => {
  it("answers 401 JSON at the edge for a missing, malformed, unsigned, foreign-key or tampered token", async () => {
    const tenant = await registerTenant("reject");
    const [header, payload, signature] = tenant.accessToken.split(".");
    const decoded = JSON.parse(Buffer.from(payload, "base64url").toString());
    const elevated = Buffer.from(JSON.stringify({ ...decoded, roles: ["admin", "service"] })).toString("base64url");
    const unsigned = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const foreign = signJwt({ ...decoded, jti: randomUUID() }, JSON.parse(Buffer.from(header, "base64url").toString()).kid, stranger);
    const unknownKid = signJwt({ ...decoded, jti: randomUUID() }, "no-such-key", stranger);
    for (const token of [
      undefined,
      "garbage",
      unsigned,
      foreign,
      unknownKid,
      `${header}.${elevated}.${signature}`,
      `${header}.${payload}.${signature.slice(0, -4)}AAAA`,
    ]) {
      const response = await rest("GET", "/api/v1/leads", { token });
      expect(response.status).toBe(401);
      expect(response.json.code).toBe(16);
    }
  });

  it("rejects tokens signed with the real key but expired, or for another issuer or audience", async () => {
    const tenant = await registerTenant("claims");
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      await authSignedToken({ tenant: tenant.tenantId, roles: ["admin"], iat: now - 4000, exp: now - 3000 }),
      await authSignedToken({ tenant: tenant.tenantId, roles: ["admin"], iss: "https://evil.example" }),
      await authSignedToken({ tenant: tenant.tenantId, roles: ["admin"], aud: "another-api" }),
    ];
    for (const token of cases) expect((await rest("GET", "/api/v1/leads", { token })).status).toBe(401);
    // The same key with correct claims is accepted: the failures above are the claims.
    const good = await authSignedToken({ tenant: tenant.tenantId, roles: ["admin"], iss: TEST_ISSUER, aud: TEST_AUDIENCE });
    expect((await rest("GET", "/api/v1/leads", { token: good })).status).toBe(200);
  });
});

describe("tenant isolation and roles over REST", () => {
  it("answers 404 across tenants and 403 for an insufficient role", async () => {
    const a = await registerTenant("iso-a");
    const b = await registerTenant("iso-b");
    const lead = (await rest("POST", "/api/v1/leads", { body: newLead, token: a.accessToken })).json.lead;
    expect((await rest("GET", `/api/v1/leads/${lead.id}`, { token: b.accessToken })).status).toBe(404);
    expect((await rest("DELETE", `/api/v1/leads/${lead.id}`, { token: b.accessToken })).status).toBe(404);
    expect((await rest("GET", `/api/v1/users/${a.adminId}`, { token: b.accessToken })).status).toBe(404);
    const agent = await authSignedToken({ tenant: a.tenantId, roles: ["agent"] });
    const denied = await rest("DELETE", `/api/v1/leads/${lead.id}`, { token: agent });
    expect(denied.status).toBe(403);
    expect(denied.json.code).toBe(7);
  });
});

describe("invitations, password reset and suspension", () => {
  it("lets an invited agent set a password, sign in, and be cut off when suspended", async () => {
    const tenant = await registerTenant("invite");
    const admin = tenant.accessToken;
    const invited = await rest("POST", "/api/v1/users:invite", {
      body: { email: "agent@invite.example", displayName: "Alan Agent", roles: ["ROLE_AGENT"] },
      token: admin,
    });
    expect(invited.status).toBe(200);
    expect(invited.json.user.status).toBe("USER_STATUS_INVITED");
    const signInBefore = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: "agent@invite.example", password: PASSWORD } });
    expect(signInBefore.status).toBe(401);

    const reset = await rest("POST", "/api/v1/auth:requestPasswordReset", { body: { tenantId: tenant.tenantId, email: "agent@invite.example" } });
    expect(reset.status).toBe(200);
    const resetToken = reset.json.devResetToken;
    expect(resetToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await rest("POST", "/api/v1/auth:resetPassword", { body: { resetToken, newPassword: "short" } })).status).toBe(400);
    expect((await rest("POST", "/api/v1/auth:resetPassword", { body: { resetToken, newPassword: PASSWORD } })).status).toBe(200);
    expect((await rest("POST", "/api/v1/auth:resetPassword", { body: { resetToken, newPassword: PASSWORD } })).status).toBe(400);
    // Only the newest reset link works.
    const first = (await rest("POST", "/api/v1/auth:requestPasswordReset", { body: { tenantId: tenant.tenantId, email: "agent@invite.example" } })).json
      .devResetToken;
    const second = (await rest("POST", "/api/v1/auth:requestPasswordReset", { body: { tenantId: tenant.tenantId, email: "agent@invite.example" } })).json
      .devResetToken;
    expect((await rest("POST", "/api/v1/auth:resetPassword", { body: { resetToken: first, newPassword: "someone else's password" } })).status).toBe(400);
    expect((await rest("POST", "/api/v1/auth:resetPassword", { body: { resetToken: second, newPassword: PASSWORD } })).status).toBe(200);
    // Three requests per account per 15 minutes.
    const fourth = await rest("POST", "/api/v1/auth:requestPasswordReset", { body: { tenantId: tenant.tenantId, email: "agent@invite.example" } });
    expect(fourth.status).toBe(429);
    const unknown = await rest("POST", "/api/v1/auth:requestPasswordReset", { body: { tenantId: tenant.tenantId, email: "nobody@invite.example" } });
    expect(unknown.status).toBe(200);
    expect(unknown.json.devResetToken).toBe("");

    const login = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: "agent@invite.example", password: PASSWORD } });
    expect(login.status).toBe(200);
    expect(login.json.user).toMatchObject({ status: "USER_STATUS_ACTIVE", roles: ["ROLE_AGENT"] });
    const agent = login.json.tokens.accessToken;
    expect((await rest("GET", "/api/v1/leads", { token: agent })).status).toBe(200);
    expect((await rest("POST", `/api/v1/users/${invited.json.user.id}:suspend`, { body: {}, token: agent })).status).toBe(403);

    expect((await rest("POST", `/api/v1/users/${invited.json.user.id}:suspend`, { body: {}, token: admin })).status).toBe(200);
    expect((await rest("GET", "/api/v1/leads", { token: agent })).status).toBe(401);
    expect((await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: login.json.tokens.refreshToken } })).status).not.toBe(200);
    const suspendedLogin = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: "agent@invite.example", password: PASSWORD } });
    expect(suspendedLogin.status).toBe(403);

    expect((await rest("POST", `/api/v1/users/${invited.json.user.id}:reactivate`, { body: {}, token: admin })).status).toBe(200);
    // Suspension ended the old sessions for good: reactivation does not revive their refresh tokens.
    expect((await rest("POST", "/api/v1/auth:refresh", { body: { refreshToken: login.json.tokens.refreshToken } })).status).toBe(401);
    const again = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: "agent@invite.example", password: PASSWORD } });
    expect(again.status).toBe(200);
    expect((await rest("GET", "/api/v1/leads", { token: again.json.tokens.accessToken })).status).toBe(200);
  });

  it("changes a password and ends the other sessions", async () => {
    const tenant = await registerTenant("password");
    const other = await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD } });
    const wrong = await rest("POST", "/api/v1/auth:changePassword", {
      body: { currentPassword: "nope nope nope", newPassword: "a brand new password" },
      token: tenant.accessToken,
    });
    expect(wrong.status).toBe(400);
    const changed = await rest("POST", "/api/v1/auth:changePassword", {
      body: { currentPassword: PASSWORD, newPassword: "a brand new password" },
      token: tenant.accessToken,
    });
    expect(changed.json.revokedSessions).toBe(1);
    expect((await rest("GET", "/api/v1/leads", { token: other.json.tokens.accessToken })).status).toBe(401);
    expect((await rest("GET", "/api/v1/leads", { token: tenant.accessToken })).status).toBe(200);
    expect((await rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD } })).status).toBe(401);
  });
});

describe("login throttling", () => {
  it("engages after repeated failures with 429 and a retry hint, and releases after the window", async () => {
    // The test mesh runs with LOGIN_MAX_FAILURES=3 and a 2 s window (test/harness/global-setup.ts).
    const tenant = await registerTenant("throttle");
    const attempt = (password: string) => rest("POST", "/api/v1/auth:login", { body: { tenantId: tenant.tenantId, email: tenant.email, password } });
    const windowOpenedAfter = Date.now();
    for (let i = 0; i < 3; i++) expect((await attempt("wrong password!")).status).toBe(401);
    const throttled = await attempt(PASSWORD);
    expect(throttled.status).toBe(429);
    expect(throttled.json.code).toBe(8);
    const retry = throttled.json.details.find((detail: { "@type": string }) => detail["@type"].endsWith("google.rpc.RetryInfo"));
    expect(retry.retryDelay).toMatch(/^\d+(\.\d+)?s$/);
    expect(Number.parseFloat(retry.retryDelay)).toBeLessThanOrEqual(2);
    // Redis ends the window: poll instead of sleeping a guessed time past it
    // (an attempt while throttled counts but does not move the window).
    const statuses: number[] = [];
    const started = Date.now();
    while (statuses.at(-1) !== 200 && Date.now() - started < 10_000) {
      statuses.push((await attempt(PASSWORD)).status);
      if (statuses.at(-1) === 429) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Refused until the window ended, then signed in: nothing else in between.
    expect(statuses.at(-1)).toBe(200);
    expect(statuses.slice(0, -1).filter((status) => status !== 429)).toEqual([]);
    expect(Date.now() - windowOpenedAfter).toBeGreaterThanOrEqual(2_000);
  });
});

describe("JWKS", () => {
  it("publishes the current and the next signing key at the edge, without a token", async () => {
    const jwks = await rest("GET", "/.well-known/jwks.json");
    expect(jwks.status).toBe(200);
    expect(jwks.json.keys.length).toBeGreaterThanOrEqual(2);
    for (const key of jwks.json.keys)
      expect(key).toMatchObject({ kty: "RSA", use: "sig", alg: "RS256", kid: expect.any(String), n: expect.any(String), e: "AQAB" });
    expect((await rest("GET", "/api/v1/auth/jwks")).json).toEqual(jwks.json);
  });
});
