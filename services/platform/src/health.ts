/**
 * Readiness from real dependency state. Each dependency contributes a check
 * (a Mongo ping, a Redis PING); the service is SERVING only while no
 * dependency is down.
 *
 * Slow is not down. A saturated database still answers, only late; calling
 * it down turns overload into an outage of every RPC (Envoy drops the host,
 * fail-fast.ts refuses every call). So a check is never cut off by a timer
 * of its own: a new one starts every `intervalMs` while earlier ones may
 * still be in flight (at most `maxInFlight`), and a late answer counts. A
 * dependency is down when
 * - its latest finished check failed: a refusal or reset arrives at once,
 *   and so does a driver's own give-up (mongo.ts, redis.ts: past their
 *   budgets the service's real calls fail too), or
 * - nothing at all has answered for `silenceLimitMs` (1.5 s): a dependency
 *   that hangs (accepts, never replies) is known down within 1.5 s of its
 *   last answer, inside the 2 s the platform promises.
 * Because checks overlap, a steadily slow dependency answers every
 * `intervalMs` whatever its latency (up to the drivers' 2 s budgets). What
 * cannot be told from a hang is a jump in reply time of more than about
 * `silenceLimitMs - intervalMs` (1 s) from one check to the next: the first
 * slow answer arrives after the limit, so that dependency is down until it
 * does. Load that builds up raises the reply time check by check instead.
 *
 * Recovery needs `recoveryRounds` passing rounds in a row: right after a
 * database restart the driver's first pings can pass and fail alternately,
 * and a flapping status makes Envoy route to a host that cannot serve. A
 * round passes when, at its tick, nothing is down and every dependency has
 * answered since the previous tick.
 *
 * The serving status is for load balancers; calls ask a narrower question,
 * `isDown(name)`: is that dependency down by the rules above? That is what
 * fail-fast.ts rejects calls on. It is neither the draining state (calls in
 * flight at shutdown must finish) nor the recovery run (a dependency that
 * answers again can serve the calls that reach the service directly).
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
  /** No answer for this long while checks are in flight: the dependency hangs. */
  silenceLimitMs?: number;
  /** Checks of one dependency in flight at once; a hung dependency gets no more than these. */
  maxInFlight?: number;
  recoveryRounds?: number;
  /** An answer slower than this is logged (once per change) as a slow dependency. */
  slowAnswerMs?: number;
}

interface DependencyState {
  check: DependencyCheck;
  inFlight: number;
  /** Increases with every check started, so that only the latest finished outcome decides. */
  started: number;
  latestSettled: number;
  answeredSinceTick: boolean;
  answeredOnce: boolean;
  silenceTimer?: NodeJS.Timeout;
  slow: boolean;
}

export class HealthMonitor extends EventEmitter<{ change: [ServingStatus] }> {
  private current: ServingStatus = "NOT_SERVING";
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private draining = false;
  private readonly failing = new Map<string, string>();
  private readonly dependencies: DependencyState[];
  private readonly intervalMs: number;
  private readonly silenceLimitMs: number;
  private readonly maxInFlight: number;
  private readonly recoveryRounds: number;
  private readonly slowAnswerMs: number;
  private passingRounds = 0;
  /** Failed after having served: only then is a steady run needed (a client still connecting at startup is no outage). */
  private hasFailed = false;

  constructor(
    checks: DependencyCheck[],
    private readonly logger: Logger,
    options: HealthMonitorOptions = {},
  ) {
    super();
    this.intervalMs = options.intervalMs ?? 500;
    this.silenceLimitMs = options.silenceLimitMs ?? 1500;
    this.maxInFlight = options.maxInFlight ?? 4;
    this.recoveryRounds = options.recoveryRounds ?? 3;
    this.slowAnswerMs = options.slowAnswerMs ?? 1000;
    this.dependencies = checks.map((check) => ({
      check,
      inFlight: 0,
      started: 0,
      latestSettled: 0,
      answeredSinceTick: false,
      answeredOnce: false,
      slow: false,
    }));
  }

  get status(): ServingStatus {
    return this.current;
  }

  /** Names of down dependencies with the reason, for logs and the startup banner. */
  get failures(): ReadonlyMap<string, string> {
    return this.failing;
  }

  /** Names of every checked dependency, in declaration order. */
  get dependencyNames(): string[] {
    return this.dependencies.map((dependency) => dependency.check.name);
  }

  /** True while `name` is known down: its latest check failed, or it has not answered for the silence limit. */
  isDown(name: string): boolean {
    return this.failing.has(name);
  }

  /** How often dependencies are checked: the soonest a recovery can be noticed. */
  get checkIntervalMs(): number {
    return this.intervalMs;
  }

  /**
   * Starts the first checks and resolves once each dependency has answered,
   * failed, or stayed silent past the limit; then keeps checking in the background.
   */
  async start(): Promise<void> {
    this.running = true;
    const firstOutcomes = this.dependencies.map((dependency) => this.firstOutcome(dependency));
    for (const dependency of this.dependencies) {
      this.armSilenceTimer(dependency);
      this.launch(dependency);
    }
    // Rounds go on while the first answers are awaited: a slow first answer
    // must not leave the next check to start only after it.
    const loop = () => {
      if (!this.running) return;
      this.tick();
      this.timer = setTimeout(loop, this.intervalMs).unref();
    };
    this.timer = setTimeout(loop, this.intervalMs).unref();
    await Promise.all(firstOutcomes);
  }

  /** Permanently NOT_SERVING: used at shutdown so load balancers stop sending traffic first. */
  drain(): void {
    this.draining = true;
    this.stop();
    this.update("NOT_SERVING");
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const dependency of this.dependencies) clearTimeout(dependency.silenceTimer);
  }

  private firstOutcome(dependency: DependencyState): Promise<void> {
    return new Promise((resolve) => {
      const settled = () => dependency.latestSettled > 0 || this.failing.has(dependency.check.name) || !this.running;
      const poll = () => (settled() ? resolve() : setTimeout(poll, 5).unref());
      poll();
    });
  }

  /** One round: judge the round that ends, then start the next checks. */
  private tick(): void {
    const allAnswered = this.dependencies.every((dependency) => dependency.answeredSinceTick);
    if (this.failing.size === 0 && allAnswered) this.passingRounds++;
    for (const dependency of this.dependencies) dependency.answeredSinceTick = false;
    this.judge();
    for (const dependency of this.dependencies) this.launch(dependency);
  }

  private launch(dependency: DependencyState): void {
    if (dependency.inFlight >= this.maxInFlight) return;
    dependency.inFlight++;
    const order = ++dependency.started;
    const startedAt = Date.now();
    const settle = (error: unknown) => {
      dependency.inFlight--;
      // An older check that finishes after a newer one says nothing newer.
      if (order < dependency.latestSettled) return;
      dependency.latestSettled = order;
      if (error === undefined) this.answered(dependency, Date.now() - startedAt);
      else this.markDown(dependency, error instanceof Error ? error.message : String(error));
    };
    // A check that throws synchronously is a failed check like any other.
    Promise.resolve()
      .then(() => dependency.check.check())
      .then(
        () => settle(undefined),
        (error: unknown) => settle(error ?? new Error(`${dependency.check.name} check failed`)),
      );
  }

  private answered(dependency: DependencyState, ms: number): void {
    const name = dependency.check.name;
    dependency.answeredSinceTick = true;
    dependency.answeredOnce = true;
    this.armSilenceTimer(dependency);
    const slow = ms > this.slowAnswerMs;
    if (slow !== dependency.slow) {
      dependency.slow = slow;
      if (slow) this.logger.warn({ dependency: name, ms }, "dependency slow, still answering");
      else this.logger.info({ dependency: name, ms }, "dependency answering promptly again");
    }
    if (this.failing.delete(name)) this.logger.info({ dependency: name }, "dependency recovered");
    this.judge();
  }

  private markDown(dependency: DependencyState, reason: string): void {
    const name = dependency.check.name;
    if (!this.failing.has(name)) this.logger.warn({ dependency: name, reason }, "dependency down");
    this.failing.set(name, reason);
    this.judge();
  }

  private armSilenceTimer(dependency: DependencyState): void {
    clearTimeout(dependency.silenceTimer);
    if (!this.running) return;
    dependency.silenceTimer = setTimeout(() => {
      // A failed check already said why; silence after it adds nothing.
      if (this.running && !this.failing.has(dependency.check.name))
        this.markDown(dependency, `${dependency.check.name} gave no answer for ${this.silenceLimitMs} ms`);
    }, this.silenceLimitMs).unref();
  }

  private judge(): void {
    if (this.failing.size > 0) {
      this.passingRounds = 0;
      // Before the first SERVING the clients may still be connecting (the
      // first Redis PING can run before the socket is up): not a flapping
      // dependency, so a (re)started process serves at its first answer.
      if (this.current === "SERVING") this.hasFailed = true;
    }
    const everyAnswered = this.dependencies.every((dependency) => dependency.answeredOnce);
    // At start the first answers are enough; after a failure, a steady run is needed.
    const healthy = this.failing.size === 0 && everyAnswered && (!this.hasFailed || this.passingRounds >= this.recoveryRounds);
    if (!this.draining) this.update(healthy ? "SERVING" : "NOT_SERVING");
  }

  private update(status: ServingStatus): void {
    if (status === this.current) return;
    this.current = status;
    this.logger.info({ status }, "serving status changed");
    this.emit("change", status);
  }
}
