/**
 * Readiness from real dependency state. Each dependency contributes a check
 * (a Mongo ping, a Redis PING) that runs every `intervalMs` with a
 * `timeoutMs` budget; the service is SERVING only while all checks pass.
 * With the defaults (500 ms interval, 1 s timeout) a lost dependency flips
 * the status within ~1.5 s, inside the 2 s the platform promises.
 *
 * Recovery needs `recoveryRounds` passing rounds in a row: right after a
 * database restart the driver's first pings can pass and fail alternately,
 * and a flapping status makes Envoy route to a host that cannot serve.
 *
 * The serving status is for load balancers; calls ask a narrower question,
 * `isDown(name)`: did the latest check of that dependency fail? That is what
 * fail-fast.ts rejects calls on. It is neither the draining state (calls in
 * flight at shutdown must finish) nor the recovery run (a dependency whose
 * check passed again can serve the calls that reach the service directly).
 */
import { EventEmitter } from "node:events";
import type { Logger } from "./logger";

export type ServingStatus = "SERVING" | "NOT_SERVING";

export interface DependencyCheck {
  name: string;
  check(): Promise<unknown>;
}

export interface HealthMonitorOptions {
  intervalMs?: number;
  timeoutMs?: number;
  recoveryRounds?: number;
}

export class HealthMonitor extends EventEmitter<{ change: [ServingStatus] }> {
  private current: ServingStatus = "NOT_SERVING";
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private readonly failing = new Map<string, string>();
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly recoveryRounds: number;
  private passingRounds = 0;
  /** Failed after having served: only then is a steady run needed (a client still connecting at startup is no outage). */
  private hasFailed = false;

  constructor(
    private readonly checks: DependencyCheck[],
    private readonly logger: Logger,
    options: HealthMonitorOptions = {},
  ) {
    super();
    this.intervalMs = options.intervalMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.recoveryRounds = options.recoveryRounds ?? 3;
  }

  get status(): ServingStatus {
    return this.current;
  }

  /** Names of failing dependencies with their last error, for logs and the startup banner. */
  get failures(): ReadonlyMap<string, string> {
    return this.failing;
  }

  /** Names of every checked dependency, in declaration order. */
  get dependencyNames(): string[] {
    return this.checks.map((dependency) => dependency.name);
  }

  /** True while the latest check of `name` failed: the dependency is known to be down. */
  isDown(name: string): boolean {
    return this.failing.has(name);
  }

  /** How often dependencies are checked: the soonest a recovery can be noticed. */
  get checkIntervalMs(): number {
    return this.intervalMs;
  }

  /** Runs the first round of checks, then keeps checking in the background. */
  async start(): Promise<void> {
    await this.runChecks();
    const loop = async () => {
      await this.runChecks();
      if (this.timer) this.timer = setTimeout(loop, this.intervalMs).unref();
    };
    this.timer = setTimeout(loop, this.intervalMs).unref();
  }

  /** Permanently NOT_SERVING: used at shutdown so load balancers stop sending traffic first. */
  drain(): void {
    this.draining = true;
    this.stop();
    this.update("NOT_SERVING");
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async runChecks(): Promise<void> {
    await Promise.all(
      this.checks.map(async (dependency) => {
        try {
          await withTimeout(dependency.check(), this.timeoutMs, `${dependency.name} did not answer within ${this.timeoutMs} ms`);
          if (this.failing.delete(dependency.name)) this.logger.info({ dependency: dependency.name }, "dependency recovered");
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          if (!this.failing.has(dependency.name)) this.logger.warn({ dependency: dependency.name, reason }, "dependency check failed");
          this.failing.set(dependency.name, reason);
        }
      }),
    );
    if (this.failing.size > 0) {
      this.passingRounds = 0;
      // Before the first SERVING the clients may still be connecting (the
      // first Redis PING can run before the socket is up): not a flapping
      // dependency, so a (re)started process serves at its first passing round.
      if (this.current === "SERVING") this.hasFailed = true;
    } else {
      this.passingRounds++;
    }
    // At start one passing round is enough; after a failure, a steady run is needed.
    const healthy = this.failing.size === 0 && (!this.hasFailed || this.passingRounds >= this.recoveryRounds);
    if (!this.draining) this.update(healthy ? "SERVING" : "NOT_SERVING");
  }

  private update(status: ServingStatus): void {
    if (status === this.current) return;
    this.current = status;
    this.logger.info({ status }, "serving status changed");
    this.emit("change", status);
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
