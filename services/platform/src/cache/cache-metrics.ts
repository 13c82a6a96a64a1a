/**
 * Read cache metrics, served with the kernel's (metrics.ts). One set per
 * process however many caches or servers (tests start several); each cache
 * binds its label children once, so counting a hit costs no label lookup.
 */
import { Counter, Gauge } from "prom-client";
import { kernelRegistry } from "../metrics";

export type LookupResult = "hit" | "miss" | "tombstone";
export type CacheOperation = "get" | "fill" | "put" | "tombstone" | "repair";

let lookups: Counter<"cache" | "result"> | undefined;
let failures: Counter<"cache" | "operation"> | undefined;
let staleWrites: Counter<"cache" | "operation"> | undefined;
let pendingRepairs: Gauge<"cache"> | undefined;

function counters() {
  lookups ??= new Counter({
    name: "leadmesh_read_cache_lookups_total",
    help: "Read cache lookups by result: hit (served from Redis), miss (read from the database), tombstone (a deleted resource, answered without the database)",
    labelNames: ["cache", "result"],
    registers: [kernelRegistry],
  });
  failures ??= new Counter({
    name: "leadmesh_read_cache_failures_total",
    help: "Read cache operations that failed or timed out (the call went on without the cache), by operation",
    labelNames: ["cache", "operation"],
    registers: [kernelRegistry],
  });
  staleWrites ??= new Counter({
    name: "leadmesh_read_cache_stale_writes_total",
    help: "Fills and puts the compare-and-set refused because the key already held that revision or a newer one",
    labelNames: ["cache", "operation"],
    registers: [kernelRegistry],
  });
  pendingRepairs ??= new Gauge({
    name: "leadmesh_read_cache_pending_repairs",
    help: "Entries of acknowledged writes whose cache update failed, waiting to be written again when Redis answers",
    labelNames: ["cache"],
    registers: [kernelRegistry],
  });
  return { lookups, failures, staleWrites, pendingRepairs };
}

export interface CacheMetrics {
  lookup(result: LookupResult): void;
  failure(operation: CacheOperation): void;
  staleWrite(operation: "fill" | "put" | "tombstone" | "repair"): void;
  pendingRepairs(count: number): void;
}

export function cacheMetrics(cache: string): CacheMetrics {
  const all = counters();
  const byResult = { hit: all.lookups.labels(cache, "hit"), miss: all.lookups.labels(cache, "miss"), tombstone: all.lookups.labels(cache, "tombstone") };
  const pending = all.pendingRepairs.labels(cache);
  return {
    lookup: (result) => byResult[result].inc(),
    failure: (operation) => all.failures.inc({ cache, operation }),
    staleWrite: (operation) => all.staleWrites.inc({ cache, operation }),
    pendingRepairs: (count) => pending.set(count),
  };
}
