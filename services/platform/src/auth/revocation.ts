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

/**
 * Revocation entries outlive every token they can concern: the longest
 * lifetime, plus the verification leeway (30 s), plus clock skew between
 * services.
 */
const REVOCATION_TTL_SECONDS = MAX_ACCESS_TOKEN_TTL_SECONDS + 30 + 120;

/** Session cuts outlive the longest possible session (refresh TTL ≤ 365 days). */
const SESSION_CUT_TTL_SECONDS = 366 * 86400;

const tokenKey = (jti: string) => `auth:revoked:jti:${jti}`;
const sessionKey = (sid: string) => `auth:revoked:sid:${sid}`;
const userKey = (tenant: string, sub: string) => `auth:revoked:user:${tenant}:${sub}`;
const sessionCutKey = (tenant: string, sub: string) => `auth:revoked:sessions-before:${tenant}:${sub}`;

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
    await this.redis.set(tokenKey(jti), "1", "EX", REVOCATION_TTL_SECONDS);
  }

  async revokeSessions(sids: string[]): Promise<void> {
    if (sids.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const sid of sids) pipeline.set(sessionKey(sid), "1", "EX", REVOCATION_TTL_SECONDS);
    await pipeline.exec();
  }

  /**
   * Revokes every token of the user issued up to now. Token iat has whole
   * seconds, so the cut is the next second; issuers call waitForFreshSecond
   * before minting, so a token issued right after (a new login) survives.
   */
  async revokeUser(tenantId: string, userId: string): Promise<void> {
    // Redis' clock, not this process's: every service cuts on the same time.
    const nextSecond = (await this.nowMs()) / 1000 + 1;
    await this.redis.set(userKey(tenantId, userId), String(Math.floor(nextSecond)), "EX", REVOCATION_TTL_SECONDS);
  }

  /** Current revocation cut of the user (unix seconds; 0 = none): token issuers compare it before and after minting. */
  async userCut(tenantId: string, userId: string): Promise<number> {
    return Number((await this.redis.get(userKey(tenantId, userId))) ?? 0);
  }

  /**
   * Ends every session the user has so far (suspension, deletion): their
   * refresh tokens stop working for good, even if the user is reactivated.
   * Also revokes the current access tokens.
   */
  async revokeUserSessions(tenantId: string, userId: string): Promise<void> {
    await this.redis.set(sessionCutKey(tenantId, userId), String(await this.nowMs()), "EX", SESSION_CUT_TTL_SECONDS);
    await this.revokeUser(tenantId, userId);
  }

  /** Sessions of the user created before this instant (unix ms; 0 = none) are revoked. */
  async sessionsRevokedBefore(tenantId: string, userId: string): Promise<number> {
    return Number((await this.redis.get(sessionCutKey(tenantId, userId))) ?? 0);
  }

  private async nowMs(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** Waits (under a second) until tokens minted now are past any user revocation cut. */
  async waitForFreshSecond(tenantId: string, userId: string): Promise<void> {
    const cut = await this.userCut(tenantId, userId);
    const waitMs = cut * 1000 - (await this.nowMs());
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs + 5));
  }
}
