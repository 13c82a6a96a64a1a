/**
 * A read cache for single-resource reads (Get by id), shared by every
 * replica of a service through Redis. Key: `cache:<service>:<resource>:
 * <tenant>:<id>`; value: the resource's protobuf bytes behind its revision
 * (cache-entry.ts). It stores resources, never access decisions: callers
 * apply the caller's visibility rules to what it returns, exactly as to a
 * database read.
 *
 * How it is used: a read calls `read()` (get; on a miss, take a fill lease
 * on the empty key, load from the database and fill only if the lease is
 * still there); every write calls `put` (or `tombstone` for a hard
 * delete) with the resource it wrote, AFTER the database write and BEFORE the
 * RPC acknowledges. Fills and puts are one compare-and-set on the revision in
 * Redis (Lua, EVALSHA): an entry only ever moves to a newer revision.
 *
 * The consistency promise, while Redis answers:
 * 1. Monotonic per key: a fill carrying an older read never replaces a newer
 *    revision, whichever reaches Redis last. Nor does it fill a key that a
 *    write, an eviction or an expiry emptied while it read: a miss first
 *    leaves a lease ("F:<token>", SET NX) on the empty key and fills only if
 *    the lease is still there (FILL_IF_LEASED_LUA). Without it, a reader that
 *    read revision r, then saw the key evicted after a write of r+1 was
 *    acknowledged, would put r back.
 * 2. A write (update, delete, undelete, create) is visible to every replica's
 *    next read: its entry is in Redis before the client hears of it.
 * 3. So a read never returns a revision older than one the same client
 *    already saw acknowledged, by a write or a read: a miss awaits its fill
 *    before answering, so what a client saw is in Redis (or a newer one is).
 * 4. A deleted resource is never served from an older entry: a delete moves
 *    the entry to its revision (a tombstone for a hard delete, answered as
 *    "not found" without the database), which no racing fill can undo.
 * 5. Keys are tenant-scoped and a hit is checked against the tenant asked
 *    for; an entry of another tenant is never returned.
 *
 * Bounds that hold whatever happens: entries live ENTRY_TTL_MS (60 s) from
 * their last write; a fill whose database read began more than
 * MAX_FILL_AGE_MS (30 s) earlier is dropped, so a fill can never outlive the
 * entry of a write that followed its read. This needs a Redis that does not
 * evict live keys early (noeviction, which the shared Redis needs anyway for
 * its revocations).
 *
 * When Redis fails (down, or slower than OPERATION_TIMEOUT_MS = 50 ms per
 * operation): reads fall back to the database, writes still succeed (the
 * database is the truth); failures are counted (leadmesh_read_cache_failures
 * _total) and logged once per change of state, never returned to callers. A
 * write whose put failed is remembered by its process and written again (the
 * same compare-and-set) every REPAIR_INTERVAL_MS (250 ms) until Redis takes
 * it. The promise in that degraded case: until that repair lands, reads of
 * that key may return the revision before the write (never an older one than
 * the cache held); at most until the entry's TTL ends (60 s after it was
 * last written) if the writing process dies first or holds more than
 * MAX_PENDING_REPAIRS keys. Promises 1, 4 and 5 hold throughout.
 */

import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "../logger";
import { decodeEntry, type EntryKind, encodeEntry, FILL_IF_LEASED_LUA, fillLease, STORE_IF_NEWER_LUA } from "./cache-entry";
import { type CacheMetrics, type CacheOperation, cacheMetrics } from "./cache-metrics";

export const ENTRY_TTL_MS = 60_000;
export const MAX_FILL_AGE_MS = ENTRY_TTL_MS / 2;
/** Redis answers these in well under a millisecond; beyond this the database is the faster answer. */
export const OPERATION_TIMEOUT_MS = 50;
export const REPAIR_INTERVAL_MS = 250;
export const MAX_PENDING_REPAIRS = 10_000;

/** How the cache stores one kind of resource (ts-proto messages: `Message.encode(v).finish()` / `Message.decode`). */
export interface ResourceCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
  /** The resource's revision: higher is newer (the number behind its etag). */
  revisionOf(value: T): number;
  tenantOf(value: T): string;
}

export interface ReadCacheOptions<T> {
  redis: Redis;
  /** Key namespace: `cache:<service>:<resource>:…`. */
  service: string;
  resource: string;
  codec: ResourceCodec<T>;
  logger: Logger;
  ttlMs?: number;
  timeoutMs?: number;
}

/** What a key holds: the resource, a tombstone (gone as of `revision`), or nothing usable. */
export type CacheLookup<T> =
  | { kind: "hit"; value: T; revision: number }
  | { kind: "tombstone"; revision: number }
  /** `unavailable`: Redis did not answer (a fill would most likely fail too). */
  | { kind: "miss"; unavailable: boolean };

const SCRIPT_COMMAND = "leadmeshStoreIfNewer";
const LEASED_FILL_COMMAND = "leadmeshFillIfLeased";
type ScriptedRedis = Redis & {
  [SCRIPT_COMMAND](key: string, revision: number, entry: Buffer, ttlMs: number): Promise<number>;
  [LEASED_FILL_COMMAND](key: string, lease: string, entry: Buffer | string, ttlMs: number): Promise<number>;
};

interface PendingRepair {
  revision: number;
  entry: Buffer;
}

class CacheTimeout extends Error {}

export class ReadCache<T> {
  private readonly redis: ScriptedRedis;
  private readonly codec: ResourceCodec<T>;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly name: string;
  private readonly ttlMs: number;
  private readonly timeoutMs: number;
  private readonly metrics: CacheMetrics;
  private readonly pending = new Map<string, PendingRepair>();
  private repairTimer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(options: ReadCacheOptions<T>) {
    for (const [field, value] of [
      ["service", options.service],
      ["resource", options.resource],
    ]) {
      if (!/^[a-z][a-z0-9-]*$/.test(value)) throw new Error(`read cache: ${field} must be lowercase letters, digits and dashes, got "${value}"`);
    }
    // defineCommand sends EVALSHA and falls back to EVAL once after NOSCRIPT (a restarted or flushed Redis).
    if (!(SCRIPT_COMMAND in options.redis)) options.redis.defineCommand(SCRIPT_COMMAND, { numberOfKeys: 1, lua: STORE_IF_NEWER_LUA });
    if (!(LEASED_FILL_COMMAND in options.redis)) options.redis.defineCommand(LEASED_FILL_COMMAND, { numberOfKeys: 1, lua: FILL_IF_LEASED_LUA });
    this.redis = options.redis as ScriptedRedis;
    this.codec = options.codec;
    this.logger = options.logger;
    this.name = `${options.service}/${options.resource}`;
    this.prefix = `cache:${options.service}:${options.resource}:`;
    this.ttlMs = options.ttlMs ?? ENTRY_TTL_MS;
    this.timeoutMs = options.timeoutMs ?? OPERATION_TIMEOUT_MS;
    this.metrics = cacheMetrics(this.name);
  }

  /** The Redis key of a resource (tests inspect it). Ids and tenants are validated ids: no ":" inside. */
  keyOf(tenantId: string, id: string): string {
    return `${this.prefix}${tenantId}:${id}`;
  }

  /**
   * The resource from the cache, or from `load` (the database, tenant-scoped)
   * on a miss, filling the cache before answering. null: not found (a
   * tombstone or nothing in the database). Never fails because of Redis.
   */
  async read(tenantId: string, id: string, load: () => Promise<T | null>): Promise<T | null> {
    const cached = await this.get(tenantId, id);
    if (cached.kind === "hit") return cached.value;
    if (cached.kind === "tombstone") return null;
    const key = this.keyOf(tenantId, id);
    // Another reader's lease, or Redis not answering: read the database and leave the key alone.
    const lease = cached.unavailable ? undefined : await this.takeLease(key);
    let value: T | null;
    try {
      value = await load();
    } catch (error) {
      // Release the lease (if still ours), so other readers may fill meanwhile.
      if (lease) void this.attempt("fill", this.redis[LEASED_FILL_COMMAND](key, lease, "", this.ttlMs));
      throw error;
    }
    if (lease) {
      const entry = value === null ? "" : encodeEntry(this.codec.revisionOf(value), "live", this.codec.encode(value));
      const written = await this.attempt("fill", this.redis[LEASED_FILL_COMMAND](key, lease, entry, this.ttlMs));
      if (written === 0) this.metrics.staleWrite("fill");
    }
    return value;
  }

  /** A lease on the empty key for this reader's fill, or undefined when another reader holds one (or Redis fails). */
  private async takeLease(key: string): Promise<string | undefined> {
    const lease = fillLease(randomBytes(9).toString("base64url"));
    // Expires with the fill's own age limit: a reader stuck longer never fills.
    const taken = await this.attempt("fill", this.redis.set(key, lease, "PX", MAX_FILL_AGE_MS, "NX"));
    return taken === "OK" ? lease : undefined;
  }

  async get(tenantId: string, id: string): Promise<CacheLookup<T>> {
    const bytes = await this.attempt("get", this.redis.getBuffer(this.keyOf(tenantId, id)));
    if (bytes === undefined) return this.lookup({ kind: "miss", unavailable: true });
    const entry = bytes ? decodeEntry(bytes) : undefined;
    if (!entry) return this.lookup({ kind: "miss", unavailable: false });
    if (entry.kind === "tombstone") return this.lookup({ kind: "tombstone", revision: entry.revision });
    let value: T;
    try {
      value = this.codec.decode(entry.payload);
    } catch (error) {
      this.logger.warn({ err: error, cache: this.name, key: this.keyOf(tenantId, id) }, "read cache entry does not decode; reading the database");
      return this.lookup({ kind: "miss", unavailable: false });
    }
    // The tenant is in the key already; a mismatch would be a bug elsewhere, and must not leak.
    if (this.codec.tenantOf(value) !== tenantId) {
      this.logger.error({ cache: this.name, key: this.keyOf(tenantId, id) }, "read cache entry belongs to another tenant; ignored");
      return this.lookup({ kind: "miss", unavailable: false });
    }
    return this.lookup({ kind: "hit", value, revision: entry.revision });
  }

  /** Caches what a read found, unless the key holds that revision or newer, or the read is too old to be trusted (see MAX_FILL_AGE_MS). */
  async fill(tenantId: string, id: string, value: T, readStartedAt: number): Promise<void> {
    if (performance.now() - readStartedAt > MAX_FILL_AGE_MS) return;
    await this.store(
      "fill",
      this.keyOf(tenantId, id),
      this.codec.revisionOf(value),
      encodeEntry(this.codec.revisionOf(value), "live", this.codec.encode(value)),
    );
  }

  /** Records what a write wrote; await it before acknowledging the write. On failure the entry is repaired later (see header). */
  put(tenantId: string, id: string, value: T): Promise<void> {
    return this.storeAfterWrite("put", tenantId, id, this.codec.revisionOf(value), "live", this.codec.encode(value));
  }

  /** Records a hard delete as of `revision`: reads answer "not found" and no older fill can bring the resource back. */
  tombstone(tenantId: string, id: string, revision: number): Promise<void> {
    return this.storeAfterWrite("tombstone", tenantId, id, revision, "tombstone");
  }

  /** Stops repairing (shutdown). Pending repairs are dropped: the TTL bounds them. */
  close(): void {
    clearInterval(this.repairTimer);
    this.repairTimer = undefined;
  }

  private async storeAfterWrite(operation: "put" | "tombstone", tenantId: string, id: string, revision: number, kind: EntryKind, payload?: Uint8Array) {
    const key = this.keyOf(tenantId, id);
    const entry = encodeEntry(revision, kind, payload);
    if (!(await this.store(operation, key, revision, entry))) this.remember(key, { revision, entry });
  }

  /** One compare-and-set; false when it failed (not when it was refused as stale). */
  private async store(operation: "fill" | "put" | "tombstone" | "repair", key: string, revision: number, entry: Buffer): Promise<boolean> {
    const written = await this.attempt(operation, this.redis[SCRIPT_COMMAND](key, revision, entry, this.ttlMs));
    if (written === undefined) return false;
    if (written === 0) this.metrics.staleWrite(operation);
    return true;
  }

  private remember(key: string, repair: PendingRepair): void {
    const known = this.pending.get(key);
    if (known && known.revision >= repair.revision) return;
    if (!known && this.pending.size >= MAX_PENDING_REPAIRS) {
      this.logger.warn({ cache: this.name, key, limit: MAX_PENDING_REPAIRS }, "read cache repair list full; this key relies on its TTL");
      return;
    }
    this.pending.set(key, repair);
    this.metrics.pendingRepairs(this.pending.size);
    this.repairTimer ??= setInterval(() => void this.repair(), REPAIR_INTERVAL_MS).unref();
  }

  private async repair(): Promise<void> {
    for (const [key, repair] of [...this.pending]) {
      if (!(await this.store("repair", key, repair.revision, repair.entry))) return;
      // A newer failed write may have replaced it meanwhile: keep that one.
      if (this.pending.get(key) === repair) this.pending.delete(key);
    }
    this.metrics.pendingRepairs(this.pending.size);
    if (this.pending.size === 0) this.close();
  }

  /** The command's result, or undefined when it failed or took longer than the timeout (counted, logged once per change). */
  private async attempt<R>(operation: CacheOperation, command: Promise<R>): Promise<R | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CacheTimeout(`read cache ${operation} took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      const result = await Promise.race([command, timeout]);
      if (this.failing) {
        this.failing = false;
        this.logger.info({ cache: this.name }, "read cache answering again");
      }
      return result;
    } catch (error) {
      // The command may still settle later; nobody waits for it.
      command.catch(() => undefined);
      this.metrics.failure(operation);
      if (!this.failing) {
        this.failing = true;
        this.logger.warn({ err: error, cache: this.name, operation }, "read cache unavailable; reads go to the database until it answers");
      }
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private lookup(result: CacheLookup<T>): CacheLookup<T> {
    this.metrics.lookup(result.kind);
    return result;
  }
}
