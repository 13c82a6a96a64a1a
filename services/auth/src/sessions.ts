/**
 * Sessions in Redis. A session is one refresh-token family: the refresh
 * token is "<session id>.<secret>", only the secret's SHA-256 is stored, and
 * every use rotates it. A secret that was already spent and is presented
 * again means the family leaked: the whole session is revoked (RFC 9700
 * refresh token rotation with reuse detection).
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

const sessionKey = (sid: string) => `auth:session:${sid}`;
const spentKey = (sid: string) => `auth:session:${sid}:spent`;
const userSessionsKey = (tenantId: string, userId: string) => `auth:user-sessions:${tenantId}:${userId}`;
const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/** Atomic rotate: compare the presented secret's hash with the current one; remember spent ones. */
const ROTATE = `
local current = redis.call('HGET', KEYS[1], 'refreshHash')
if not current then return 'invalid' end
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'refreshHash', ARGV[2], 'lastRefreshTime', ARGV[3], 'expireTime', ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('PEXPIREAT', KEYS[2], ARGV[4])
  return 'rotated'
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'reused' end
return 'invalid'
`;

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
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
    const outcome = (await this.redis.eval(ROTATE, 2, sessionKey(sid), spentKey(sid), sha256(secret), next.hash, String(now), String(expireTime))) as string;
    if (outcome === "invalid") return { kind: "invalid" };
    const session = await this.get(sid);
    if (!session) return { kind: "invalid" };
    if (outcome === "reused") return { kind: "reused", session };
    await this.redis.pexpireat(userSessionsKey(session.tenantId, session.userId), expireTime);
    return { kind: "rotated", session, refreshToken: next.token };
  }

  async get(sid: string): Promise<SessionRecord | undefined> {
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
