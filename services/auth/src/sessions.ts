/**
 * Sessions in Redis. A session is one refresh-token family: the refresh
 * token is "<session id>.<secret>", only the secret's SHA-256 is stored, and
 * every use rotates it. A secret that was already spent and is presented
 * again means the family leaked: the whole session is revoked (RFC 9700
 * refresh token rotation with reuse detection).
 *
 * Two exceptions keep honest clients signed in: the token just spent may be
 * presented again within a short grace period (two tabs refreshing at once,
 * a retry after a lost response) and gets the same successor; and only the
 * last SPENT_KEPT spent hashes are remembered, so a session refreshed for
 * months does not grow without bound. Sessions also end after an absolute
 * maximum lifetime, however often they are refreshed.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

export interface SessionRecord {
  id: string;
  tenantId: string;
  userId: string;
  createTime: number;
  lastRefreshTime: number;
  expireTime: number;
  userAgent: string;
  clientAddress: string;
}

export type RotationResult =
  | { kind: "rotated"; session: SessionRecord; refreshToken: string }
  | { kind: "reused"; session: SessionRecord }
  | { kind: "invalid" };

/** How long the refresh token just spent is still answered with its successor. */
const GRACE_MS = 15_000;
const SPENT_KEPT = 100;

const sessionKey = (sid: string) => `auth:session:${sid}`;
const spentKey = (sid: string) => `auth:session:${sid}:spent`;
const userSessionsKey = (tenantId: string, userId: string) => `auth:user-sessions:${tenantId}:${userId}`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/**
 * Atomic rotate: compare the presented secret's hash with the current one,
 * remember the spent one, and answer a repeat within the grace period with
 * the same successor. The successor is kept in plain text for those seconds
 * only, the price of not logging out two tabs that refresh together.
 */
const ROTATE = `
local s = redis.call('HMGET', KEYS[1], 'refreshHash', 'prevHash', 'prevToken', 'prevUntil', 'createTime')
if not s[1] then return {'invalid'} end
local now = tonumber(ARGV[4])
if now - tonumber(s[5] or '0') > tonumber(ARGV[7]) then return {'invalid'} end
if s[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'refreshHash', ARGV[2], 'prevHash', ARGV[1], 'prevToken', ARGV[3], 'prevUntil', tostring(now + tonumber(ARGV[6])), 'lastRefreshTime', ARGV[4], 'expireTime', ARGV[5])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[8]) + 1))
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
  redis.call('PEXPIREAT', KEYS[2], ARGV[5])
  return {'rotated'}
end
if s[2] == ARGV[1] and now < tonumber(s[4] or '0') then return {'grace', s[3]} end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {'reused'} end
return {'invalid'}
`;

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
    private readonly maxLifetimeSeconds: number,
  ) {}

  private newSecret(sid: string): { token: string; hash: string } {
    const secret = randomBytes(32).toString("base64url");
    return { token: `${sid}.${secret}`, hash: sha256(secret) };
  }

  async create(tenantId: string, userId: string, userAgent: string, clientAddress: string): Promise<{ session: SessionRecord; refreshToken: string }> {
    const now = Date.now();
    const session: SessionRecord = {
      id: randomUUID(),
      tenantId,
      userId,
      createTime: now,
      lastRefreshTime: now,
      expireTime: now + this.ttlSeconds * 1000,
      userAgent: userAgent.slice(0, 300),
      clientAddress: clientAddress.slice(0, 100),
    };
    const { token, hash } = this.newSecret(session.id);
    await this.redis
      .multi()
      .hset(sessionKey(session.id), { ...stringify(session), refreshHash: hash })
      .pexpireat(sessionKey(session.id), session.expireTime)
      .sadd(userSessionsKey(tenantId, userId), session.id)
      .pexpireat(userSessionsKey(tenantId, userId), session.expireTime)
      .exec();
    return { session, refreshToken: token };
  }

  async rotate(refreshToken: string): Promise<RotationResult> {
    const match = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/.exec(refreshToken);
    if (!match) return { kind: "invalid" };
    const [, sid, secret] = match;
    const next = this.newSecret(sid);
    const now = Date.now();
    const expireTime = now + this.ttlSeconds * 1000;
    const [outcome, graceToken] = (await this.redis.eval(
      ROTATE,
      2,
      sessionKey(sid),
      spentKey(sid),
      sha256(secret),
      next.hash,
      next.token,
      String(now),
      String(expireTime),
      String(GRACE_MS),
      String(this.maxLifetimeSeconds * 1000),
      String(SPENT_KEPT),
    )) as [string, string | undefined];
    if (outcome === "invalid") return { kind: "invalid" };
    const session = await this.get(sid);
    if (!session) return { kind: "invalid" };
    if (outcome === "reused") return { kind: "reused", session };
    if (outcome === "grace") {
      if (graceToken === undefined) throw new Error(`refresh script answered "grace" without the token it handed out (session ${sid})`);
      return { kind: "rotated", session, refreshToken: graceToken };
    }
    await this.redis.pexpireat(userSessionsKey(session.tenantId, session.userId), expireTime);
    return { kind: "rotated", session, refreshToken: next.token };
  }

  /** Session ids are UUIDs; anything else is not looked up (it could name another kind of key). */
  static isSessionId(value: string): boolean {
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
  }

  async get(sid: string): Promise<SessionRecord | undefined> {
    if (!SessionStore.isSessionId(sid)) return undefined;
    const fields = await this.redis.hgetall(sessionKey(sid));
    if (!fields.tenantId) return undefined;
    return {
      id: sid,
      tenantId: fields.tenantId,
      userId: fields.userId,
      createTime: Number(fields.createTime),
      lastRefreshTime: Number(fields.lastRefreshTime),
      expireTime: Number(fields.expireTime),
      userAgent: fields.userAgent ?? "",
      clientAddress: fields.clientAddress ?? "",
    };
  }

  async listForUser(tenantId: string, userId: string): Promise<SessionRecord[]> {
    const sids = await this.redis.smembers(userSessionsKey(tenantId, userId));
    const sessions = await Promise.all(sids.map((sid) => this.get(sid)));
    const live = sessions.filter((session): session is SessionRecord => session !== undefined);
    const gone = sids.filter((sid) => !live.some((session) => session.id === sid));
    if (gone.length > 0) await this.redis.srem(userSessionsKey(tenantId, userId), ...gone);
    return live.sort((a, b) => b.lastRefreshTime - a.lastRefreshTime);
  }

  /** Deletes sessions; returns the ids that existed. Callers also put them on the revocation list. */
  async delete(sessions: Pick<SessionRecord, "id" | "tenantId" | "userId">[]): Promise<string[]> {
    if (sessions.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const session of sessions) {
      pipeline.del(sessionKey(session.id), spentKey(session.id));
      pipeline.srem(userSessionsKey(session.tenantId, session.userId), session.id);
    }
    await pipeline.exec();
    return sessions.map((session) => session.id);
  }
}

function stringify(session: SessionRecord): Record<string, string> {
  return Object.fromEntries(Object.entries(session).map(([key, value]) => [key, String(value)]));
}
