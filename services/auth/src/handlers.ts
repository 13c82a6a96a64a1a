/**
 * auth.v1.AuthService: one function per RPC.
 */

import type { BlockList } from "node:net";
import type { AuthServiceImplementation, TokenPair } from "@leadmesh/contracts/auth/v1/auth";
import { type User, UserStatus } from "@leadmesh/contracts/users/v1/user";
import {
  type CallerContext,
  checkEmail,
  checkTenantId,
  DomainError,
  InvalidArgumentError,
  NotFoundError,
  normalizeEmail,
  PermissionDeniedError,
  type Revocations,
  text,
  UnauthenticatedError,
  Violations,
} from "@leadmesh/platform";
import { type CallContext, Status } from "nice-grpc-common";
import { clientAddress } from "./client-address";
import type { CredentialStore } from "./credentials";
import { emailKey } from "./credentials";
import { PasswordResets } from "./password-resets";
import { checkPasswordPolicy, type Passwords } from "./passwords";
import type { SessionRecord, SessionStore } from "./sessions";
import type { SigningKeys } from "./signing-keys";
import type { Throttles } from "./throttle";
import type { TokenIssuer } from "./tokens";
import type { UsersGateway } from "./users-gateway";

type Context = CallContext & CallerContext;

export interface AuthDependencies {
  credentials: CredentialStore;
  passwords: Passwords;
  sessions: SessionStore;
  keys: SigningKeys;
  tokens: TokenIssuer;
  throttles: Throttles;
  resets: PasswordResets;
  users: UsersGateway;
  revocations: Revocations;
  trustedProxies: BlockList;
  devMode: boolean;
}

const checkTenantDisplayName = text({ max: 200, required: true });
const checkDisplayName = text({ max: 100, required: true });
/** One message for every failed sign-in, so answers do not reveal which accounts exist. */
const BAD_CREDENTIALS = "invalid email or password";

export function authHandlers(deps: AuthDependencies): AuthServiceImplementation<CallerContext> {
  const { credentials, passwords, sessions, tokens, users, revocations, throttles } = deps;
  const addressOf = (context: Context) => clientAddress(context, deps.trustedProxies);

  async function activeUser(tenantId: string, userId: string, context: CallContext): Promise<User> {
    const user = await users.getUser(tenantId, userId, context);
    if (!user || user.status === UserStatus.USER_STATUS_DELETED) throw new UnauthenticatedError(BAD_CREDENTIALS);
    if (user.status !== UserStatus.USER_STATUS_ACTIVE)
      throw new PermissionDeniedError(`the account is ${UserStatus[user.status].replace("USER_STATUS_", "").toLowerCase()}`);
    return user;
  }

  /** The user as they are now and an access token minted from that (tokens.ts: no change can slip between the read and the signature). */
  async function userAndToken(session: SessionRecord, context: CallContext) {
    const { user, token, expiresIn } = await tokens.userToken({
      tenantId: session.tenantId,
      userId: session.userId,
      sessionId: session.id,
      sessionCreateTime: session.createTime,
      readUser: () => activeUser(session.tenantId, session.userId, context),
    });
    return { user, access: { token, expiresIn } };
  }

  /** The account refused the session (suspended, deleted, session cut): it ends. Anything else (an outage, churn) leaves it for a retry. */
  const endsSession = (error: unknown) => error instanceof UnauthenticatedError || error instanceof PermissionDeniedError;

  function tokenPair(access: { token: string; expiresIn: number }, session: SessionRecord, refreshToken: string): TokenPair {
    return {
      accessToken: access.token,
      tokenType: "Bearer",
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: Math.round((session.expireTime - Date.now()) / 1000),
      sessionId: session.id,
    };
  }

  async function signIn(tenantId: string, userId: string, context: Context): Promise<{ user: User; tokens: TokenPair }> {
    const { session, refreshToken } = await sessions.create(tenantId, userId, context.metadata.get("user-agent") ?? "", addressOf(context));
    try {
      const { user, access } = await userAndToken(session, context);
      return { user, tokens: tokenPair(access, session, refreshToken) };
    } catch (error) {
      // A suspended or deleted account gets no session; nor does a sign-in that failed otherwise (its refresh token never reached the client).
      await endSessions([session]);
      throw error;
    }
  }

  async function endSessions(list: Pick<SessionRecord, "id" | "tenantId" | "userId">[]): Promise<number> {
    const ended = await sessions.delete(list);
    await revocations.revokeSessions(ended);
    return ended.length;
  }

  function requireSignInFields(tenantId: string, email: string, violations: Violations) {
    violations.check("tenant_id", tenantId, checkTenantId);
    violations.check("email", normalizeEmail(email), checkEmail);
  }

  return {
    async register(request, context) {
      await throttles.address.take(addressOf(context));
      const violations = new Violations();
      requireSignInFields(request.tenantId, request.email, violations);
      checkPasswordPolicy(request.password, "password", violations);
      violations.check("tenant_display_name", request.tenantDisplayName.trim(), checkTenantDisplayName);
      violations.check("display_name", request.displayName.trim(), checkDisplayName);
      violations.throwIfAny();
      // Without cross-service transactions: tenant, then admin, then password.
      // The tenant comes first so a taken id costs no password hash. If a
      // registration failed after creating the tenant, the tenant has no
      // users: registering the same id again adopts it instead of failing.
      await users.createTenant(request.tenantId, request.tenantDisplayName.trim(), context).catch(async (error: unknown) => {
        const taken = error instanceof DomainError && error.code === Status.ALREADY_EXISTS;
        if (!taken || (await users.tenantHasUsers(request.tenantId, context))) throw error;
      });
      const passwordHash = await passwords.hash(request.password);
      const user = await users.createAdmin(request.tenantId, request.email.trim(), request.displayName.trim(), context);
      await credentials.setPassword(user.tenantId, user.id, user.email, passwordHash);
      return signIn(user.tenantId, user.id, context);
    },

    async login(request, context) {
      const violations = new Violations();
      requireSignInFields(request.tenantId, request.email, violations);
      if (request.password === "") violations.add("password", "is required");
      violations.throwIfAny();
      const account = `${request.tenantId}:${emailKey(request.email)}`;
      await throttles.address.take(addressOf(context));
      // Counted before the hash is checked, so parallel guesses cannot outrun the limit.
      await throttles.account.take(account);
      const stored = await credentials.byEmail(request.tenantId, request.email);
      // verify() hashes even without an account, so the answer takes as long either way.
      const verified = await passwords.verify(stored?.passwordHash, request.password);
      if (!verified || !stored) throw new UnauthenticatedError(BAD_CREDENTIALS);
      await throttles.account.reset(account);
      return signIn(request.tenantId, stored._id, context);
    },

    async refreshToken(request, context) {
      const outcome = await sessions.rotate(request.refreshToken.trim());
      if (outcome.kind === "invalid") throw new UnauthenticatedError("refresh token is invalid, expired or revoked; sign in again");
      const { session } = outcome;
      if (outcome.kind === "reused") {
        await endSessions([session]);
        throw new UnauthenticatedError("refresh token was already used: the session has been revoked; sign in again");
      }
      // Suspension or deletion ends every session that existed then, for good (checked by the token issuer with the security version).
      try {
        const { access } = await userAndToken(session, context);
        return { tokens: tokenPair(access, session, outcome.refreshToken) };
      } catch (error) {
        // A retry presents the same refresh token, answered within the grace period with the same successor.
        if (endsSession(error)) await endSessions([session]);
        throw error;
      }
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
      const session = await sessions.get(request.id);
      if (!session || session.tenantId !== caller.tenantId || session.userId !== caller.actorId) throw new NotFoundError("session", request.id.slice(0, 64));
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
      // Same budget as sign-in: a stolen access token must not buy unlimited password guesses.
      const account = `${caller.tenantId}:${stored?.emailKey ?? caller.actorId}`;
      await throttles.account.take(account);
      const verified = await passwords.verify(stored?.passwordHash, request.currentPassword);
      if (!verified || !stored) throw new InvalidArgumentError([{ field: "current_password", description: "is wrong" }], "the current password is wrong");
      await throttles.account.reset(account);
      await credentials.setPassword(caller.tenantId, caller.actorId, stored.emailKey, await passwords.hash(request.newPassword));
      await deps.resets.cancel(caller.tenantId, caller.actorId);
      const others = (await sessions.listForUser(caller.tenantId, caller.actorId)).filter((session) => session.id !== caller.sessionId);
      return { revokedSessions: await endSessions(others) };
    },

    async requestPasswordReset(request, context) {
      const violations = new Violations();
      requireSignInFields(request.tenantId, request.email, violations);
      violations.throwIfAny();
      await throttles.address.take(addressOf(context));
      // Counted for unknown accounts too: the answer and the work do not depend on whether it exists.
      await throttles.reset.take(`${request.tenantId}:${emailKey(request.email)}`);
      const user = await users.lookupUser(request.tenantId, request.email.trim(), context);
      const eligible = user && (user.status === UserStatus.USER_STATUS_ACTIVE || user.status === UserStatus.USER_STATUS_INVITED);
      if (!eligible) return { devResetToken: "" };
      const token = await deps.resets.issue(user.tenantId, user.id);
      // Delivery is the notification service's job; the token is never logged.
      return { devResetToken: deps.devMode ? token : "" };
    },

    async resetPassword(request, context) {
      const violations = new Violations();
      if (!PasswordResets.isToken(request.resetToken)) violations.add("reset_token", "is not a valid reset token");
      checkPasswordPolicy(request.newPassword, "new_password", violations);
      violations.throwIfAny();
      await throttles.address.take(addressOf(context));
      const claim = await deps.resets.consume(request.resetToken);
      if (!claim) {
        throw new InvalidArgumentError(
          [{ field: "reset_token", description: "is invalid, expired or already used" }],
          "the reset token is invalid, expired or already used",
        );
      }
      const user = await users.getUser(claim.tenantId, claim.userId, context);
      if (!user || (user.status !== UserStatus.USER_STATUS_ACTIVE && user.status !== UserStatus.USER_STATUS_INVITED)) {
        throw new PermissionDeniedError("the account cannot sign in");
      }
      await credentials.setPassword(claim.tenantId, claim.userId, user.email, await passwords.hash(request.newPassword));
      if (user.status === UserStatus.USER_STATUS_INVITED) await users.activateUser(claim.tenantId, claim.userId, context);
      await endSessions(await sessions.listForUser(claim.tenantId, claim.userId));
      return {};
    },

    async getJwks() {
      return { keys: await deps.keys.published() };
    },
  };
}
