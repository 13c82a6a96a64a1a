/**
 * Minting access tokens for users at sign-in and refresh. Services never get
 * tokens: inside the mesh a service is known by its certificate identity
 * (mTLS), so no token with role "service" is minted here, and the platform
 * refuses one if it ever arrives.
 *
 * A token must never assert roles or a status older than the latest change
 * (issue 10). Each token carries the user's security version (claim sv; the
 * scheme is described in platform auth/revocation.ts), and minting follows
 * one order: read the version (with the session cut), then the user, sign,
 * then read the version again. A change that lands anywhere in between
 * publishes a higher version, so the token just signed would be refused by
 * every verifier: it is thrown away and minted anew from a fresh read, a
 * few times at most; under endless churn the caller is told to retry
 * (ABORTED) instead of receiving a token that is dead on arrival. No clock
 * is involved: the old whole-second cut (and its wait for the next second)
 * is gone.
 */
import { randomUUID } from "node:crypto";
import { Role } from "@leadmesh/contracts/common/v1/access";
import type { User } from "@leadmesh/contracts/users/v1/user";
import { ConcurrentCallError, type Revocations, roleClaim, signJwt, UnauthenticatedError } from "@leadmesh/platform";
import type { SigningKeys } from "./signing-keys";

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
}

/** Whom a token is for, and how to read them as they are now. */
export interface TokenRequest {
  tenantId: string;
  userId: string;
  sessionId: string;
  /** When the session was created (unix ms): a session older than the user's session cut (suspension, deletion) gets no token. */
  sessionCreateTime: number;
  /** Reads the user and refuses one that may not sign in (suspended, deleted). Called after the version is read. */
  readUser: () => Promise<User>;
}

/** Mints in a row before giving up, each after a change landed during the previous one: one change publishes its version twice (before and after its write). */
const MAX_MINTS = 4;

export class TokenIssuer {
  constructor(
    private readonly keys: SigningKeys,
    private readonly revocations: Revocations,
    private readonly settings: TokenSettings,
  ) {}

  /** An access token with the user's current roles, and the user it was minted from. */
  async userToken(request: TokenRequest): Promise<{ user: User; token: string; expiresIn: number }> {
    const { tenantId, userId } = request;
    for (let attempt = 1; attempt <= MAX_MINTS; attempt++) {
      const state = await this.revocations.userSecurityState(tenantId, userId);
      if (request.sessionCreateTime < state.sessionsRevokedBefore) throw new UnauthenticatedError("the session has been revoked; sign in again");
      const user = await request.readUser();
      const roles = user.roles.filter((role) => role !== Role.ROLE_SERVICE).map(roleClaim);
      const token = await this.mint(tenantId, userId, roles, request.sessionId, state.version);
      if ((await this.revocations.userVersion(tenantId, userId)) === state.version) {
        return { user, token, expiresIn: this.settings.accessTokenTtlSeconds };
      }
    }
    throw new ConcurrentCallError(`the account of user ${userId} kept changing while its access token was minted; retry`, {
      tenant_id: tenantId,
      user_id: userId,
    });
  }

  private async mint(tenant: string, sub: string, roles: string[], sid: string, securityVersion: number): Promise<string> {
    const key = await this.keys.current();
    const now = Math.floor(Date.now() / 1000);
    const ttl = this.settings.accessTokenTtlSeconds;
    return signJwt(
      {
        iss: this.settings.issuer,
        aud: this.settings.audience,
        sub,
        tenant,
        roles,
        jti: randomUUID(),
        sid,
        sv: securityVersion,
        iat: now,
        nbf: now,
        exp: now + ttl,
      },
      key.kid,
      key.privateKey,
    );
  }
}
