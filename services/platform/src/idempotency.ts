/**
 * Request ids for retry-safe creates (AIP-155), kept in Redis: the first
 * attempt claims the key, later attempts with the same id get the result of
 * the first. A claim that never completes (crash mid-request) expires after
 * `pendingTtlSeconds` so the client can retry.
 */
import type { Redis } from "ioredis";
import { DomainError, Violations } from "./errors";
import { Status } from "nice-grpc-common";

export type Claim = { kind: "claimed" } | { kind: "completed"; resultId: string };

const REQUEST_ID = /^[A-Za-z0-9_-]{1,100}$/;
const PENDING = "\u0000pending";

export class IdempotencyKeys {
  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
    private readonly ttlSeconds = 24 * 3600,
    private readonly pendingTtlSeconds = 60,
  ) {}

  static validate(requestId: string, violations: Violations, field = "request_id"): void {
    if (requestId !== "" && !REQUEST_ID.test(requestId)) violations.add(field, "must be 1-100 characters of [A-Za-z0-9_-], e.g. a UUID");
  }

  private key(tenantId: string, requestId: string): string {
    return `idem:${this.namespace}:${tenantId}:${requestId}`;
  }

  async claim(tenantId: string, requestId: string): Promise<Claim> {
    const key = this.key(tenantId, requestId);
    const claimed = await this.redis.set(key, PENDING, "EX", this.pendingTtlSeconds, "NX");
    if (claimed === "OK") return { kind: "claimed" };
    const existing = await this.redis.get(key);
    if (existing === null) return this.claim(tenantId, requestId);
    if (existing === PENDING) {
      throw new DomainError(Status.ABORTED, "FAILED_PRECONDITION", `a request with request_id "${requestId}" is still in progress; retry shortly`, {
        request_id: requestId,
      });
    }
    return { kind: "completed", resultId: existing };
  }

  async complete(tenantId: string, requestId: string, resultId: string): Promise<void> {
    await this.redis.set(this.key(tenantId, requestId), resultId, "EX", this.ttlSeconds);
  }

  async release(tenantId: string, requestId: string): Promise<void> {
    await this.redis.del(this.key(tenantId, requestId));
  }
}
