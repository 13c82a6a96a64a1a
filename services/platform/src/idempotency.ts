/**
 * Request ids for retry-safe creates (AIP-155), kept in Redis: the first
 * attempt claims the key, later attempts with the same id get the result of
 * the first. A claim that never completes (crash mid-request) expires after
 * `pendingTtlSeconds` so the client can retry.
 *
 * A request id belongs to the caller who sent it (tenant + actor), so one
 * user's id can neither collide with nor reveal another user's result. The
 * claim stores a fingerprint of the request: reusing an id for a different
 * request is the client's bug, refused with INVALID_ARGUMENT instead of
 * silently answering with the first result.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { ConcurrentCallError, InvalidArgumentError, type Violations } from "./errors";

export type Claim = { kind: "claimed" } | { kind: "completed"; resultId: string };

/** One attempt of an idempotent request. */
export interface IdempotentRequest {
  tenantId: string;
  /** caller.actorId: user id or service name. */
  actorId: string;
  requestId: string;
  /** What was asked for (requestFingerprint of the request's payload). */
  fingerprint: string;
}

const REQUEST_ID = /^[A-Za-z0-9_-]{1,100}$/;
/** Stored value: "<state> <fingerprint>", state "pending" or "done:<resultId>". */
const PENDING = "pending";
const DONE = "done:";

/** sha256 (hex) of a request's encoded payload, e.g. `Lead.encode(lead).finish()`. */
export function requestFingerprint(encoded: Uint8Array): string {
  return createHash("sha256").update(encoded).digest("hex");
}

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

  private key(request: IdempotentRequest): string {
    // Tenant and actor ids are encoded so neither can smuggle in a ":" and shift the other parts.
    const caller = [request.tenantId, request.actorId].map(encodeURIComponent).join(":");
    return `idem:${this.namespace}:${caller}:${request.requestId}`;
  }

  async claim(request: IdempotentRequest): Promise<Claim> {
    const key = this.key(request);
    const claimed = await this.redis.set(key, `${PENDING} ${request.fingerprint}`, "EX", this.pendingTtlSeconds, "NX");
    if (claimed === "OK") return { kind: "claimed" };
    const existing = await this.redis.get(key);
    if (existing === null) return this.claim(request);
    const separator = existing.lastIndexOf(" ");
    const [state, fingerprint] = [existing.slice(0, separator), existing.slice(separator + 1)];
    if (fingerprint !== request.fingerprint) {
      throw new InvalidArgumentError([
        { field: "request_id", description: "was already used with a different request; use a new request_id for a new request" },
      ]);
    }
    if (state === PENDING) {
      throw new ConcurrentCallError(`a request with request_id "${request.requestId}" is still in progress; retry shortly`, {
        request_id: request.requestId,
      });
    }
    return { kind: "completed", resultId: state.slice(DONE.length) };
  }

  async complete(request: IdempotentRequest, resultId: string): Promise<void> {
    await this.redis.set(this.key(request), `${DONE}${resultId} ${request.fingerprint}`, "EX", this.ttlSeconds);
  }

  async release(request: IdempotentRequest): Promise<void> {
    await this.redis.del(this.key(request));
  }
}
