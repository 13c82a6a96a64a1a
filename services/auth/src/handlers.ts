/**
 * auth.v1.AuthService: one function per RPC.
 */
import type { CallContext } from "nice-grpc-common";
import type { AuthServiceImplementation, TokenPair } from "@leadmesh/contracts/auth/v1/auth";
import { UserStatus, type User } from "@leadmesh/contracts/users/v1/user";
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import {
  DomainError,
  NotFoundError,
  permissionDenied,
  unauthenticated,
  Violations,
  type CallerContext,
  type Revocations,
} from "@leadmesh/platform";
import type { CredentialStore } from "./credentials";
import { emailKey } from "./credentials";
import { checkPasswordPolicy, type Passwords } from "./passwords";
import type { SessionRecord, SessionStore } from "./sessions";
import type { SigningKeys } from "./signing-keys";
import type { LoginThrottle } from "./throttle";
import type { TokenIssuer } from "./tokens";
import type { UsersGateway } from "./users-gateway";

type Context = CallContext & CallerContext;

export interface AuthDependencies {
  credentials: CredentialStore;
  passwords: Passwords;
  sessions: SessionStore;
  keys: SigningKeys;
  tokens: TokenIssuer;
  throttle: LoginThrottle;
  users: UsersGateway;
  revocations: Revocations;
  redis: Redis;
  refreshTokenTtlSeconds: number;
  devMode: boolean;
}

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,189}\.[^\s@]{1,60}$/;
const RESET_TTL_SECONDS = 1800;
const resetKey = (token: string) => `auth:reset:${createHash("sha256").update(token).digest("base64url")}`;
/** One message for every failed sign-in, so answers do not reveal which accounts exist. */
const BAD_CREDENTIALS = "invalid email or password";

/**
 * Client address for throttling. Behind the edge Envoy (use_remote_address)
 * the last x-forwarded-for entry is the address Envoy saw; earlier entries
 * are whatever the client claimed and are ignored. Without the header (a
 * direct in-mesh call) it is the TCP peer.
 */
export function clientAddress(context: Pick<CallContext, "metadata" | "peer">): string {
  const forwarded = context.metadata.get("x-forwarded-for");
  const lastHop = forwarded?.split(",").pop()?.trim();
  if (lastHop) return lastHop.slice(0, 100);
  return context.peer.replace(/^ipv[46]:/, "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
}

export function authHandlers(deps: AuthDependencies): AuthServiceImplementation<CallerContext> {
  const { credentials, passwords, sessions, tokens, users, revocations } = deps;

  async function issue(user: User, session: SessionRecord, refreshToken: string): Promise<TokenPair> {
    const access = await tokens.userToken(user.tenantId, user.id, user.roles, session.id);
    return {
      accessToken: access.token,
      tokenType: "Bearer",
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: Math.round((session.expireTime - Date.now()) / 1000),
      sessionId: session.id,
    };
  }

  async function startSession(user: User, context: Context): Promise<TokenPair> {
    const { session, refreshToken } = await sessions.create(user.tenantId, user.id, context.metadata.get("user-agent") ?? "", clientAddress(context));
    return issue(user, session, refreshToken);
  }

  async function endSessions(list: Pick<SessionRecord, "id" | "tenantId" | "userId">[]): Promise<number> {
    const ended = await sessions.delete(list);
    await revocations.revokeSessions(ended);
    return ended.length;
  }

  function requireSignInFields(tenantId: string, email: string, violations: Violations) {
    if (!TENANT_ID.test(tenantId)) violations.add("tenant_id", "must be 1-63 characters of [a-z0-9-], starting with a letter or digit");
    if (!EMAIL.test(email.trim()) || email.length > 254) violations.add("email", "must be a valid email address");
  }

  async function activeUser(tenantId: string, userId: string): Promise<User> {
    const user = await users.getUser(tenantId, userId);
    if (!user || user.status === UserStatus.USER_STATUS_DELETED) throw unauthenticated(BAD_CREDENTIALS);
    if (user.status !== UserStatus.USER_STATUS_ACTIVE) throw permissionDenied(`the account is ${UserStatus[user.status].replace("USER_STATUS_", "").toLowerCase()}`);
    return user;
  }

  return {
    async register(request, context) {
      const violations = new Violations();
      requireSignInFields(request.tenantId, request.email, violations);
      checkPasswordPolicy(request.password, "password", violations);
      if (request.tenantDisplayName.trim() === "" || request.tenantDisplayName.length > 200) violations.add("tenant_display_name", "must be 1-200 characters");
      if (request.displayName.trim() === "" || request.displayName.length > 100) violations.add("display_name", "must be 1-100 characters");
      violations.throwIfAny();
      const passwordHash = await passwords.hash(request.password);
      // Without cross-service transactions: tenant, then admin, then password.
      // A failure after the tenant exists leaves it without users; registering
      // the same tenant id again then answers ALREADY_EXISTS (see README).
      await users.createTenant(request.tenantId, request.tenantDisplayName.trim());
      const user = await users.createAdmin(request.tenantId, request.email.trim(), request.displayName.trim());
      await credentials.setPassword(user.tenantId, user.id, user.email, passwordHash);
      return { user, tokens: await startSession(user, context) };
    },

    async login(request, context) {
      const violations = new Violations();
      requireSignInFields(request.tenantId, request.email, violations);
      if (request.password === "") violations.add("password", "is required");
      violations.throwIfAny();
      const key = emailKey(request.email);
      await deps.throttle.admit(request.tenantId, key, clientAddress(context));
      const stored = await credentials.byEmail(request.tenantId, request.email);
      if (!(await passwords.verify(stored?.passwordHash, request.password))) {
        await deps.throttle.recordFailure(request.tenantId, key);
        throw unauthenticated(BAD_CREDENTIALS);
      }
      await deps.throttle.recordSuccess(request.tenantId, key);
      const user = await activeUser(request.tenantId, stored!._id);
      return { user, tokens: await startSession(user, context) };
    },

    async refreshToken(request) {
      const outcome = await sessions.rotate(request.refreshToken.trim());
      if (outcome.kind === "invalid") throw unauthenticated("refresh token is invalid, expired or revoked; sign in again");
      if (outcome.kind === "reused") {
        await endSessions([outcome.session]);
        throw unauthenticated("refresh token was already used: the session has been revoked; sign in again");
      }
      let user: User;
      try {
        user = await activeUser(outcome.session.tenantId, outcome.session.userId);
      } catch (error) {
        await endSessions([outcome.session]);
        throw error;
      }
      return { tokens: await issue(user, outcome.session, outcome.refreshToken) };
    },

    async logout(_request, context) {
      const { caller } = context;
      await revocations.revokeToken(caller.tokenId);
      if (caller.sessionId) await endSessions([{ id: caller.sessionId, tenantId: caller.tenantId, userId: caller.actorId }]);
      return {};
    },

    async logoutEverywhere(_request, context) {
      const { caller } = context;
      await revocations.revokeToken(caller.tokenId);
      return { revokedSessions: await endSessions(await sessions.listForUser(caller.tenantId, caller.actorId)) };
    },

    async listSessions(_request, context) {
      const { caller } = context;
      const list = await sessions.listForUser(caller.tenantId, caller.actorId);
      return {
        sessions: list.map((session) => ({
          id: session.id,
          createTime: new Date(session.createTime),
          lastRefreshTime: new Date(session.lastRefreshTime),
          expireTime: new Date(session.expireTime),
          userAgent: session.userAgent,
          clientAddress: session.clientAddress,
          current: session.id === caller.sessionId,
        })),
      };
    },

    async revokeSession(request, context) {
      const { caller } = context;
      const session = request.id ? await sessions.get(request.id) : undefined;
      if (!session || session.tenantId !== caller.tenantId || session.userId !== caller.actorId) throw new NotFoundError("session", request.id);
      await endSessions([session]);
      return {};
    },

    async changePassword(request, context) {
      const { caller } = context;
      const violations = new Violations();
      if (request.currentPassword === "") violations.add("current_password", "is required");
      checkPasswordPolicy(request.newPassword, "new_password", violations);
      if (request.newPassword === request.currentPassword) violations.add("new_password", "must differ from the current password");
      violations.throwIfAny();
      const stored = await credentials.byUser(caller.tenantId, caller.actorId);
      if (!(await passwords.verify(stored?.passwordHash, request.currentPassword))) {
        throw new DomainError(3, "INVALID_FIELDS", "the current password is wrong", {}, [{ field: "current_password", description: "is wrong" }]);
      }
      await credentials.setPassword(caller.tenantId, caller.actorId, stored!.emailKey, await passwords.hash(request.newPassword));
      const others = (await sessions.listForUser(caller.tenantId, caller.actorId)).filter((session) => session.id !== caller.sessionId);
      return { revokedSessions: await endSessions(others) };
    },

    async requestPasswordReset(request) {
      const violations = new Violations();
      requireSignInFields(request.tenantId, request.email, violations);
      violations.throwIfAny();
      const user = await users.lookupUser(request.tenantId, request.email.trim());
      if (!user || (user.status !== UserStatus.USER_STATUS_ACTIVE && user.status !== UserStatus.USER_STATUS_INVITED)) return { devResetToken: "" };
      const token = randomBytes(32).toString("base64url");
      await deps.redis.set(resetKey(token), JSON.stringify({ tenantId: user.tenantId, userId: user.id }), "EX", RESET_TTL_SECONDS);
      // Delivery is the notification service's job; the token is never logged.
      return { devResetToken: deps.devMode ? token : "" };
    },

    async resetPassword(request) {
      const violations = new Violations();
      if (!/^[A-Za-z0-9_-]{43}$/.test(request.resetToken)) violations.add("reset_token", "is not a valid reset token");
      checkPasswordPolicy(request.newPassword, "new_password", violations);
      violations.throwIfAny();
      const claim = await deps.redis.getdel(resetKey(request.resetToken));
      if (!claim) {
        throw new DomainError(3, "INVALID_FIELDS", "the reset token is invalid, expired or already used", {}, [{ field: "reset_token", description: "is invalid, expired or already used" }]);
      }
      const { tenantId, userId } = JSON.parse(claim) as { tenantId: string; userId: string };
      const user = await users.getUser(tenantId, userId);
      if (!user || (user.status !== UserStatus.USER_STATUS_ACTIVE && user.status !== UserStatus.USER_STATUS_INVITED)) {
        throw permissionDenied("the account cannot sign in");
      }
      await credentials.setPassword(tenantId, userId, user.email, await passwords.hash(request.newPassword));
      if (user.status === UserStatus.USER_STATUS_INVITED) await users.activateUser(tenantId, userId);
      await endSessions(await sessions.listForUser(tenantId, userId));
      return {};
    },

    async getJwks() {
      return { keys: await deps.keys.published() };
    },
  };
}
