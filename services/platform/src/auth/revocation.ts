/**
 * The mesh-wide revocation list, in Redis, checked on every authenticated
 * call with one MGET. Entries live as long as the longest access token can,
 * after which the token has expired anyway.
 *  - a token (jti): logout of that token;
 *  - a session (sid): logout, session revocation, refresh-token reuse;
 *  - a user: every token issued up to that second (suspension, deletion,
 *    role change) — later logins are unaffected.
 */
import type { Redis } from "ioredis";
import type { AccessTokenClaims } from "./jwt";

/** Upper bound of any access token's lifetime; the auth service refuses a longer TTL. */
export const MAX_ACCESS_TOKEN_TTL_SECONDS = 3600;

const tokenKey = (jti: string) => `auth:revoked:jti:${jti}`;
const sessionKey = (sid: string) => `auth:revoked:sid:${sid}`;
const userKey = (tenant: string, sub: string) => `auth:revoked:user:${tenant}:${sub}`;

export class Revocations {
  constructor(private readonly redis: Redis) {}

  async isRevoked(claims: AccessTokenClaims): Promise<boolean> {
    const [token, session, user] = await this.redis.mget(
      tokenKey(claims.jti),
      claims.sid ? sessionKey(claims.sid) : tokenKey(`${claims.jti}:none`),
      userKey(claims.tenant, claims.sub),
    );
    if (token !== null || session !== null) return true;
    return user !== null && claims.iat < Number(user);
  }

  async revokeToken(jti: string): Promise<void> {
    await this.redis.set(tokenKey(jti), "1", "EX", MAX_ACCESS_TOKEN_TTL_SECONDS);
  }

  async revokeSessions(sids: string[]): Promise<void> {
    if (sids.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const sid of sids) pipeline.set(sessionKey(sid), "1", "EX", MAX_ACCESS_TOKEN_TTL_SECONDS);
    await pipeline.exec();
  }

  /**
   * Revokes every token of the user issued up to now. Token iat has whole
   * seconds, so the cut is the next second; issuers call waitForFreshSecond
   * before minting, so a token issued right after (a new login) survives.
   */
  async revokeUser(tenantId: string, userId: string): Promise<void> {
    const nextSecond = Math.floor(Date.now() / 1000) + 1;
    await this.redis.set(userKey(tenantId, userId), String(nextSecond), "EX", MAX_ACCESS_TOKEN_TTL_SECONDS);
  }

  /** Waits (under a second) until tokens minted now are past any user revocation cut. */
  async waitForFreshSecond(tenantId: string, userId: string): Promise<void> {
    const cut = Number((await this.redis.get(userKey(tenantId, userId))) ?? 0);
    const waitMs = cut * 1000 - Date.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs + 5));
  }
}
