/**
 * When to restart a crashed process, and when to stop trying: the decision
 * part of the local launcher's supervisor, kept pure so its arithmetic is
 * unit-tested without processes or clocks.
 *
 * Exponential backoff (like systemd's RestartSec steps or pm2's
 * exp-backoff-restart-delay): a process that crashes once is back almost at
 * once, one that keeps crashing waits longer each time, so a broken service
 * does not burn the (shared, two-core) machine. A run that stayed up for
 * `stableAfterMs` counts as healthy and resets the backoff. Too many crashes
 * within `crashWindowMs` is a crash loop: restarting will not fix it, so the
 * supervisor gives up and says so.
 */
export interface RestartPolicyOptions {
  /** Delay before the first restart. */
  initialDelayMs: number;
  /** Upper bound of the doubling delay. */
  maxDelayMs: number;
  /** A run at least this long resets the backoff to `initialDelayMs`. */
  stableAfterMs: number;
  /** Give up once this many crashes fall within `crashWindowMs`. */
  maxCrashes: number;
  crashWindowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialDelayMs: 100,
  maxDelayMs: 3_200,
  stableAfterMs: 10_000,
  maxCrashes: 5,
  crashWindowMs: 30_000,
};

export type RestartDecision =
  | { action: "restart"; delayMs: number; /** 1 for the first restart since the last stable run. */ attempt: number }
  | { action: "give-up"; crashes: number; windowMs: number };

export class RestartPolicy {
  private crashTimes: number[] = [];
  private attempt = 0;

  constructor(readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** Called when the process exited on its own at `now` after running for `uptimeMs`. */
  onCrash(now: number, uptimeMs: number): RestartDecision {
    if (uptimeMs >= this.options.stableAfterMs) this.attempt = 0;
    this.crashTimes = [...this.crashTimes.filter((time) => now - time < this.options.crashWindowMs), now];
    if (this.crashTimes.length >= this.options.maxCrashes) {
      return { action: "give-up", crashes: this.crashTimes.length, windowMs: this.options.crashWindowMs };
    }
    this.attempt += 1;
    const delayMs = Math.min(this.options.initialDelayMs * 2 ** (this.attempt - 1), this.options.maxDelayMs);
    return { action: "restart", delayMs, attempt: this.attempt };
  }
}
