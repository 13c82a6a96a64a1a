/**
 * Password-reset tokens in Redis, only their SHA-256 stored. A user has at
 * most one live token: requesting a new one, using one, or changing the
 * password cancels the previous, so an old reset link cannot take over an
 * account that was recovered since.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

const TTL_SECONDS = 1800;
const hashOf = (token: string) => createHash("sha256").update(token).digest("base64url");
const tokenKey = (hash: string) => `auth:reset:${hash}`;
const userKey = (tenantId: string, userId: string) => `auth:reset-user:${tenantId}:${userId}`;

export interface ResetClaim {
  tenantId: string;
  userId: string;
}

export class PasswordResets {
  constructor(private readonly redis: Redis) {}

  static isToken(value: string): boolean {
    return /^[A-Za-z0-9_-]{43}$/.test(value);
  }

  /** A new token for the user; any earlier one stops working. */
  async issue(tenantId: string, userId: string): Promise<string> {
    const token = randomBytes(32).toString("base64url");
    const hash = hashOf(token);
    const previous = await this.redis.getset(userKey(tenantId, userId), hash);
    const pipeline = this.redis
      .multi()
      .set(tokenKey(hash), JSON.stringify({ tenantId, userId }), "EX", TTL_SECONDS)
      .expire(userKey(tenantId, userId), TTL_SECONDS);
    if (previous) pipeline.del(tokenKey(previous));
    await pipeline.exec();
    return token;
  }

  /** Spends a token: the claim if it was the user's live one, otherwise undefined. */
  async consume(token: string): Promise<ResetClaim | undefined> {
    const hash = hashOf(token);
    const raw = await this.redis.getdel(tokenKey(hash));
    if (!raw) return undefined;
    const claim = JSON.parse(raw) as ResetClaim;
    const live = await this.redis.get(userKey(claim.tenantId, claim.userId));
    if (live !== hash) return undefined;
    await this.redis.del(userKey(claim.tenantId, claim.userId));
    return claim;
  }

  async cancel(tenantId: string, userId: string): Promise<void> {
    const live = await this.redis.getdel(userKey(tenantId, userId));
    if (live) await this.redis.del(tokenKey(live));
  }
}
