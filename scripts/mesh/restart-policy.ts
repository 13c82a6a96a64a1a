/**
 * When to restart a crashed process, and when to stop trying: the decision
 * part of the local launcher's supervisor, kept pure so its arithmetic is
 * unit-tested without processes or clocks.
 *
 * Exponential backoff (like systemd's RestartSec steps or pm2's
 * exp-backoff-restart-delay): a process that crashes once is back almost at
 * once, one that keeps crashing waits longer each time, so a broken service
 * does not burn the (shared, two-core) machine. A run that stayed up for
 * `stableAfterMs` counts as healthy and starts over. `maxCrashes` crashes in
 * a row, none of them after a stable run, is a crash loop: restarting will
 * not fix it, so the supervisor gives up and says so. (Counting in a row
 * rather than within a time window also catches a service that starts
 * slowly and then crashes, and does not depend on how fast this machine
 * starts a process.)
 */
export interface RestartPolicyOptions {
  /** Delay before the first restart. */
  initialDelayMs: number;
  /** Upper bound of the doubling delay. */
  maxDelayMs: number;
  /** A run at least this long resets the backoff and the crash count. */
  stableAfterMs: number;
  /** Give up at this many crashes in a row without a stable run. */
  maxCrashes: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialDelayMs: 100,
  maxDelayMs: 3_200,
  stableAfterMs: 10_000,
  maxCrashes: 5,
};

export type RestartDecision =
  | { action: "restart"; delayMs: number /** 1 for the first restart since the last stable run. */; attempt: number }
  | { action: "give-up" /** In a row, none after a stable run. */; crashes: number; stableAfterMs: number };

export class RestartPolicy {
  /** Crashes since the last stable run, which is also the restart attempt. */
  private attempt = 0;

  constructor(readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** Called when the process exited on its own after running for `uptimeMs`. */
  onCrash(uptimeMs: number): RestartDecision {
    if (uptimeMs >= this.options.stableAfterMs) this.attempt = 0;
    if (this.attempt + 1 >= this.options.maxCrashes) {
      return { action: "give-up", crashes: this.attempt + 1, stableAfterMs: this.options.stableAfterMs };
    }
    this.attempt += 1;
    const delayMs = Math.min(this.options.initialDelayMs * 2 ** (this.attempt - 1), this.options.maxDelayMs);
    return { action: "restart", delayMs, attempt: this.attempt };
  }
}
