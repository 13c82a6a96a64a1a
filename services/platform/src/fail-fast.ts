/**
 * Fail fast on a known-down dependency. While a dependency is down (its
 * latest check failed, or it gave no answer for 1.5 s: HealthMonitor.isDown;
 * slow is not down), calls that need it are refused at
 * once with UNAVAILABLE (reason DEPENDENCY_UNAVAILABLE, naming it, with a
 * google.rpc.RetryInfo) instead of waiting for a driver timeout: the Mongo
 * driver would wait out its server selection on every call, and a service
 * that sits behind no health-checking proxy (direct gRPC, a proxy that has
 * not noticed yet) would hold each caller that long for nothing.
 *
 * Which calls need what: every RPC of a service needs every dependency the
 * service declares, unless the service says otherwise (`ServiceSpec.
 * dependencyNeeds`). That default is honest for all RPCs so far: each one
 * reads or writes its datastore, and every authenticated call also checks
 * the Redis revocation list. An RPC that declares fewer needs is still
 * protected by the driver timeouts (mongo.ts, redis.ts) if it does reach a
 * dead dependency.
 *
 * It runs before authentication, which itself needs Redis (revocations).
 */
import { DependencyUnavailableError } from "./errors";
import type { HealthMonitor } from "./health";

/** gRPC path ("/pkg.Service/Method") → names of the dependency checks it needs. */
export type DependencyNeeds = Readonly<Record<string, readonly string[]>>;

/** The part of the health state that decides whether a call may proceed. */
export type DependencyState = Pick<HealthMonitor, "isDown" | "checkIntervalMs">;

/**
 * Needs of every RPC: the declared ones, everything for the rest. Throws
 * before anything listens when a declaration names an RPC the service does
 * not serve or a dependency it does not check (a typo would otherwise
 * silently switch fail-fast off for that RPC).
 */
export function dependencyNeedsOf(
  rpcPaths: Iterable<string>,
  dependencyNames: readonly string[],
  declared: DependencyNeeds = {},
): Map<string, readonly string[]> {
  const needs = new Map<string, readonly string[]>();
  for (const path of rpcPaths) needs.set(path, declared[path] ?? dependencyNames);
  const problems: string[] = [];
  for (const [path, names] of Object.entries(declared)) {
    if (!needs.has(path)) problems.push(`${path} is not an RPC of this service`);
    for (const name of names) {
      if (!dependencyNames.includes(name)) problems.push(`${path} needs "${name}", which is not a checked dependency (${dependencyNames.join(", ")})`);
    }
  }
  if (problems.length > 0) throw new Error(`invalid dependency needs: ${problems.join("; ")}`);
  return needs;
}

/** Throws DependencyUnavailableError when a dependency the RPC at `path` needs is down. */
export function dependencyGate(health: DependencyState, needs: ReadonlyMap<string, readonly string[]>): (path: string) => void {
  // Two check rounds: a returning dependency is noticed at the next round at
  // the earliest, and a round can itself take up to the check timeout.
  const retryAfterMs = 2 * health.checkIntervalMs;
  return (path) => {
    const names = needs.get(path);
    if (!names) return;
    for (const name of names) if (health.isDown(name)) throw new DependencyUnavailableError(name, retryAfterMs);
  };
}
