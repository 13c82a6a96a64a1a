/**
 * Sign-in throttling in Redis, two fixed windows:
 *  - per account: failed sign-ins; at the limit the account is throttled
 *    until its window ends (a success resets the count);
 *  - per client address: all attempts, against password spraying.
 */
import type { Redis } from "ioredis";
import { ResourceExhaustedError } from "@leadmesh/platform";

export interface ThrottleLimits {
  maxFailures: number;
  failureWindowSeconds: number;
  maxAttemptsPerAddress: number;
  addressWindowSeconds: number;
}

const accountKey = (tenantId: string, emailKey: string) => `auth:throttle:account:${tenantId}:${emailKey}`;
const addressKey = (address: string) => `auth:throttle:address:${address}`;

export class LoginThrottle {
  constructor(
    private readonly redis: Redis,
    private readonly limits: ThrottleLimits,
  ) {}

  /** Counts this attempt for the address and refuses when either limit is reached. */
  async admit(tenantId: string, emailKey: string, address: string): Promise<void> {
    const [[, attempts], [, addressTtl], [, failures], [, accountTtl]] = (await this.redis
      .multi()
      .incr(addressKey(address))
      .pttl(addressKey(address))
      .get(accountKey(tenantId, emailKey))
      .pttl(accountKey(tenantId, emailKey))
      .exec()) as [Error | null, number][];
    if ((addressTtl as number) < 0) await this.redis.pexpire(addressKey(address), this.limits.addressWindowSeconds * 1000);
    if (Number(failures ?? 0) >= this.limits.maxFailures) {
      throw new ResourceExhaustedError("too many failed sign-ins for this account; try again later", Math.max(accountTtl as number, 1000), { scope: "account" });
    }
    if ((attempts as number) > this.limits.maxAttemptsPerAddress) {
      const ttl = (addressTtl as number) < 0 ? this.limits.addressWindowSeconds * 1000 : (addressTtl as number);
      throw new ResourceExhaustedError("too many sign-in attempts from this address; try again later", ttl, { scope: "address" });
    }
  }

  async recordFailure(tenantId: string, emailKey: string): Promise<void> {
    const key = accountKey(tenantId, emailKey);
    const [[, count]] = (await this.redis.multi().incr(key).exec()) as [Error | null, number][];
    if (count === 1) await this.redis.expire(key, this.limits.failureWindowSeconds);
  }

  async recordSuccess(tenantId: string, emailKey: string): Promise<void> {
    await this.redis.del(accountKey(tenantId, emailKey));
  }
}
