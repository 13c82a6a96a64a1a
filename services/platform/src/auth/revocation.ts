/**
 * The mesh-wide revocation list, in Redis, checked on every authenticated
 * call with one MGET. Entries live as long as the longest access token can,
 * after which the token has expired anyway.
 *  - a token (jti): logout of that token;
 *  - a session (sid): logout, session revocation, refresh-token reuse;
 *  - a user: the user's security version (below).
 *
 * Security version (issue 10: a demoted user kept "manager" for the life of
 * a token minted in the same second as the revocation cut). A whole-second
 * cut on `iat` cannot tell a token minted from roles read before a write
 * from one minted after it; a version can. The users service, after every
 * write that changes what a token asserts (roles, status, deletion; a user
 * never changes tenant), publishes the user document's revision here with a
 * monotonic max. The revision is RevisionedWrites' counter, bumped
 * atomically with the write, so it never goes backwards, not even after this
 * key is lost or expired. The auth service reads the published version
 * BEFORE it reads the user, embeds it in the token (claim `sv`), and re-reads
 * it after signing: a changed version means a change landed meanwhile, and
 * it mints again. Verification refuses a token whose `sv` is below the
 * published version.
 *
 * Why no timing can slip through: a token carrying version V >= the version
 * P a change published was minted from a read of the version after P was
 * published, hence after the change's write committed, and its user was
 * read after that: it carries the new roles. Every token read before carries
 * less than P and dies the moment P is published, before the change answers.
 * Profile edits bump the revision without publishing it; that is harmless,
 * tokens carry the published value, not the document's.
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
const userVersionKey = (tenant: string, sub: string) => `auth:revoked:user-version:${tenant}:${sub}`;
const sessionCutKey = (tenant: string, sub: string) => `auth:revoked:sessions-before:${tenant}:${sub}`;

/**
 * Publishes a user's security version: raises it to ARGV[1] (never lowers
 * it: publications of concurrent changes may arrive in any order) and, when
 * ARGV[3] is "1", ends every session created up to now (Redis' clock, in
 * ms: every service cuts on the same time). Atomic, so a token issuer never
 * sees the new version without the session cut. Answers the version now in
 * force.
 */
const PUBLISH_USER_CHANGE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local version = tonumber(ARGV[1])
if version > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  version = current
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if ARGV[3] == '1' then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)), 'EX', ARGV[4])
end
return version
`;

/** What a token issuer must know about a user before minting. */
export interface UserSecurityState {
  /** Security version to embed in the token (claim sv); 0 while none is published. */
  version: number;
  /** Sessions of the user created before this instant (unix ms; 0 = none) are revoked. */
  sessionsRevokedBefore: number;
}

/** Why a token is refused; the kernel answers UNAUTHENTICATED with it. */
export const STALE_TOKEN_MESSAGE = "it was revoked: the user's roles or status changed after it was issued; refresh it or sign in again";

export class Revocations {
  constructor(private readonly redis: Redis) {}

  /** Why the token may no longer be used, or undefined if it may. One round trip. */
  async rejection(claims: AccessTokenClaims): Promise<string | undefined> {
    const [token, session, version] = await this.redis.mget(
      tokenKey(claims.jti),
      claims.sid ? sessionKey(claims.sid) : tokenKey(`${claims.jti}:none`),
      userVersionKey(claims.tenant, claims.sub),
    );
    if (token !== null || session !== null) return "it has been revoked";
    // A token without sv predates security versions: version 0.
    if (version !== null && (claims.sv ?? 0) < Number(version)) return STALE_TOKEN_MESSAGE;
    return undefined;
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
   * After a change of what the user's tokens assert (roles, status,
   * deletion): every token minted with an older version is refused from now
   * on. `revision` is the user document's revision after the change. With
   * `endSessions` (suspension, deletion) the sessions that exist now end for
   * good: their refresh tokens stop working, even after a reactivation.
   * Returns the version in force.
   */
  async publishUserChange(tenantId: string, userId: string, revision: number, options: { endSessions: boolean }): Promise<number> {
    if (!Number.isSafeInteger(revision) || revision < 0) throw new Error(`security version of user ${tenantId}/${userId} must be a revision, got ${revision}`);
    const version = await this.redis.eval(
      PUBLISH_USER_CHANGE,
      2,
      userVersionKey(tenantId, userId),
      sessionCutKey(tenantId, userId),
      String(revision),
      String(REVOCATION_TTL_SECONDS),
      options.endSessions ? "1" : "0",
      String(SESSION_CUT_TTL_SECONDS),
    );
    return Number(version);
  }

  /** The user's security version and session cut, in one round trip: token issuers read it before the user, and the version again after signing. */
  async userSecurityState(tenantId: string, userId: string): Promise<UserSecurityState> {
    const [version, sessionCut] = await this.redis.mget(userVersionKey(tenantId, userId), sessionCutKey(tenantId, userId));
    return { version: Number(version ?? 0), sessionsRevokedBefore: Number(sessionCut ?? 0) };
  }

  /** The user's security version alone (0 while none is published). */
  async userVersion(tenantId: string, userId: string): Promise<number> {
    return Number((await this.redis.get(userVersionKey(tenantId, userId))) ?? 0);
  }
}
