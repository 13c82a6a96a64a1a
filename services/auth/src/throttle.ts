/**
 * Fixed-window rate limits in Redis. Taking a slot is one atomic INCR, so
 * concurrent attempts cannot slip past the limit while earlier ones are still
 * being checked (a password hash takes milliseconds): every attempt counts
 * the moment it starts, and a successful sign-in gives the account's
 * budget back.
 */

import { ResourceExhaustedError } from "@leadmesh/platform";
import type { Redis } from "ioredis";

const TAKE = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
`;

export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    /** What is limited, for keys and messages, e.g. "sign-in attempts for this account". */
    private readonly name: string,
    private readonly prefix: string,
    private readonly max: number,
    private readonly windowSeconds: number,
  ) {}

  private key(subject: string): string {
    return `auth:throttle:${this.prefix}:${subject}`;
  }

  /** Counts one attempt; RESOURCE_EXHAUSTED with a retry hint when over the limit. */
  async take(subject: string): Promise<void> {
    const [count, ttl] = (await this.redis.eval(TAKE, 1, this.key(subject), String(this.windowSeconds * 1000))) as [number, number];
    if (count > this.max) {
      throw new ResourceExhaustedError(`too many ${this.name}; try again later`, Math.max(ttl, 1000), { scope: this.prefix });
    }
  }

  async reset(subject: string): Promise<void> {
    await this.redis.del(this.key(subject));
  }
}

export interface Throttles {
  /** Sign-ins per account (tenant + email); a success resets it. Also guards ChangePassword. */
  account: RateLimiter;
  /** Unauthenticated credential operations per client address (sign-in, registration, reset). */
  address: RateLimiter;
  /** Password-reset requests per account. */
  reset: RateLimiter;
}

export interface ThrottleLimits {
  maxFailures: number;
  failureWindowSeconds: number;
  maxAttemptsPerAddress: number;
  addressWindowSeconds: number;
}

export function createThrottles(redis: Redis, limits: ThrottleLimits): Throttles {
  return {
    account: new RateLimiter(redis, "sign-in attempts for this account", "account", limits.maxFailures, limits.failureWindowSeconds),
    address: new RateLimiter(redis, "attempts from this address", "address", limits.maxAttemptsPerAddress, limits.addressWindowSeconds),
    reset: new RateLimiter(redis, "password reset requests for this account", "reset", 3, 900),
  };
}
