/**
 * Fault injection for the crash tests: `crashPoint("buyers.sell.after-charge")`
 * kills the process with SIGKILL (what `kill -9` does: no handlers, no
 * flushing, no graceful drain) when LEADMESH_CRASH_POINTS names that step.
 * The tests of multi-step protocols (lead distribution, sale returns) use it
 * to cut the flow at each step and prove recovery, which a kill from outside
 * at a random time cannot aim at.
 *
 * LEADMESH_CRASH_POINTS: comma-separated step names, each optionally with
 * "@n" to crash on the n-th pass only (default: the first).
 * LEADMESH_CRASH_ONCE_DIR: a directory shared by the processes of a test;
 * a step crashes only if `<dir>/<step>` does not exist yet and creates it
 * first, so a supervisor's restart (same environment) does not crash again
 * and the test can see which step fired. Crash points are refused
 * under NODE_ENV=production (crashPoints() throws at startup), so a
 * production process never honours it.
 */

import { closeSync, openSync } from "node:fs";
import { join } from "node:path";

export const CRASH_POINTS_ENV = "LEADMESH_CRASH_POINTS";
export const CRASH_ONCE_DIR_ENV = "LEADMESH_CRASH_ONCE_DIR";

interface Armed {
  /** Passes left before the kill (1: the next one). */
  remaining: number;
}

let armed: Map<string, Armed> | undefined;
let onceDir: string | undefined;

/** Parses and arms LEADMESH_CRASH_POINTS; throws on a malformed value or in production. */
export function armCrashPoints(env: NodeJS.ProcessEnv = process.env): ReadonlyMap<string, number> {
  const value = env[CRASH_POINTS_ENV]?.trim() ?? "";
  armed = new Map();
  onceDir = env[CRASH_ONCE_DIR_ENV] || undefined;
  if (value === "") return new Map();
  if (env.NODE_ENV === "production") throw new Error(`${CRASH_POINTS_ENV} is set, but crash points are test-only and refused under NODE_ENV=production`);
  for (const item of value.split(",")) {
    const match = /^([a-z0-9][a-z0-9.-]*)(?:@([1-9][0-9]{0,5}))?$/.exec(item.trim());
    if (!match) throw new Error(`${CRASH_POINTS_ENV}: "${item}" is not a step name (a.b-c, optionally @n)`);
    armed.set(match[1] as string, { remaining: Number(match[2] ?? 1) });
  }
  return new Map([...armed].map(([name, point]) => [name, point.remaining]));
}

/** Kills this process with SIGKILL if `step` is armed and this is its chosen pass; otherwise does nothing. */
export function crashPoint(step: string): void {
  if (!armed) armCrashPoints();
  const point = armed?.get(step);
  if (!point) return;
  point.remaining -= 1;
  if (point.remaining > 0) return;
  if (onceDir !== undefined) {
    try {
      // Exclusive create: of all processes sharing the directory, exactly one crashes at this step.
      closeSync(openSync(join(onceDir, step), "wx"));
    } catch {
      return;
    }
  }
  // stderr is unbuffered for pipes and files: the test reads this line to know where the process died.
  process.stderr.write(`leadmesh crash point "${step}": SIGKILL\n`);
  process.kill(process.pid, "SIGKILL");
}
