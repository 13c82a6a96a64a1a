/**
 * Child processes of the local mesh: started with their output in a log file,
 * waited for, stopped with SIGTERM then SIGKILL, and killed on our own exit
 * so that neither Ctrl-C nor a crashed test run leaves orphans behind.
 *
 * A process whose spec has a `restart` policy is supervised like a process
 * manager would: when it exits on its own (a crash, `kill -9`) it is started
 * again after a backoff, each restart is reported (a "supervisor" event and
 * a JSON line in its log), and a crash loop makes the supervisor give up
 * loudly. Only exits we asked for (stop(), kill()) are not restarted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { appendFileSync, createWriteStream, existsSync, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { RestartPolicy, type RestartPolicyOptions } from "./restart-policy";

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** Restart it when it exits unexpectedly (not supervised without). */
  restart?: RestartPolicyOptions;
}

/** What became of one run of the process. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type SupervisorEvent =
  | { kind: "restarting"; process: string; exit: ExitInfo; attempt: number; delayMs: number; message: string }
  | { kind: "restarted"; process: string; pid: number | undefined; attempt: number; message: string }
  | { kind: "gave-up"; process: string; exit: ExitInfo; crashes: number; message: string };

/** "running": a child is alive; "restarting": waiting out the backoff; "down": stopped, exited unsupervised, or given up. */
export type ProcessState = "idle" | "running" | "restarting" | "down";

export const describeExit = (exit: ExitInfo) => (exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`);

export class ManagedProcess extends EventEmitter<{ supervisor: [SupervisorEvent] }> {
  private child: ChildProcess | undefined;
  private runExited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  private lastExit: ExitInfo = { code: null, signal: null };
  private restartTimer: NodeJS.Timeout | undefined;
  private wanted = false;
  private current: ProcessState = "idle";
  private policy: RestartPolicy | undefined;
  private restarts = 0;
  private readonly finished: Promise<number | null>;
  private finish: (code: number | null) => void = () => undefined;
  /** Set when the supervisor gave up: what it said. */
  failure: string | undefined;

  constructor(readonly spec: ProcessSpec) {
    super();
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get state(): ProcessState {
    return this.current;
  }

  get isRunning(): boolean {
    return this.current === "running";
  }

  /** Restarts since start() (crashes the supervisor recovered from). */
  get restartCount(): number {
    return this.restarts;
  }

  start(): this {
    if (!existsSync(this.spec.command) && !this.spec.command.match(/^[a-z]+$/)) {
      throw new Error(`${this.spec.name}: ${this.spec.command} not found; run 'npm run setup' first`);
    }
    this.wanted = true;
    this.policy = this.spec.restart ? new RestartPolicy(this.spec.restart) : undefined;
    this.spawnRun();
    return this;
  }

  private spawnRun(): void {
    const log = createWriteStream(this.spec.logFile, { flags: "a" });
    // A log that cannot be written (its directory removed under a running test) must not take the launcher down.
    log.on("error", () => undefined);
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group: a terminal's Ctrl-C reaches only the launcher,
      // which then stops components in order (ingress first, databases last).
      detached: true,
    });
    // Two sources into one file: neither may end it; "close" below does.
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    running.add(child);
    const startedAt = Date.now();
    // "close" (not "exit"): output is fully read, and the log file flushed,
    // by the time a stop resolves, so callers can inspect the last lines.
    this.runExited = new Promise((resolve) =>
      child.once("close", (code, signal) => {
        running.delete(child);
        log.end(() => {
          const exit = { code, signal };
          this.lastExit = exit;
          resolve(exit);
          this.onRunExited(exit, Date.now() - startedAt);
        });
      }),
    );
    child.once("error", (error) => log.write(`spawn failed: ${error.message}\n`));
    this.child = child;
    this.current = "running";
  }

  private onRunExited(exit: ExitInfo, uptimeMs: number): void {
    if (!this.wanted || !this.policy) {
      this.current = "down";
      this.finish(exit.code);
      return;
    }
    const decision = this.policy.onCrash(uptimeMs);
    if (decision.action === "give-up") {
      const message =
        `${this.spec.name} keeps crashing (${decision.crashes} crashes in a row, each within ${decision.stableAfterMs / 1000} s of starting; last: ${describeExit(exit)}); ` +
        `supervisor gave up, it stays down. See ${this.spec.logFile}`;
      this.failure = message;
      this.current = "down";
      this.wanted = false;
      this.report({ kind: "gave-up", process: this.spec.name, exit, crashes: decision.crashes, message }, 50);
      this.finish(exit.code);
      return;
    }
    const message = `${this.spec.name} exited unexpectedly (${describeExit(exit)}) after ${formatSeconds(uptimeMs)}; restart ${decision.attempt} in ${decision.delayMs} ms`;
    this.current = "restarting";
    this.report({ kind: "restarting", process: this.spec.name, exit, attempt: decision.attempt, delayMs: decision.delayMs, message }, 40);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.wanted) return;
      this.restarts += 1;
      this.spawnRun();
      this.report(
        {
          kind: "restarted",
          process: this.spec.name,
          pid: this.child?.pid,
          attempt: decision.attempt,
          message: `${this.spec.name} restarted (pid ${this.child?.pid})`,
        },
        30,
      );
    }, decision.delayMs);
  }

  /** Emits the event and appends it to the process's own log as a pino-shaped JSON line. */
  private report(event: SupervisorEvent, level: number): void {
    const { message, ...fields } = event;
    try {
      appendFileSync(this.spec.logFile, `${JSON.stringify({ level, time: Date.now(), component: "supervisor", ...fields, msg: message })}\n`);
    } catch {
      // The log is gone (its directory removed); the event below still reports it.
    }
    this.emit("supervisor", event);
  }

  /** Exit code after a graceful stop (SIGTERM), SIGKILL after `graceMs`. Never restarted. */
  async stop(graceMs = 10_000): Promise<number | null> {
    return this.end("SIGTERM", graceMs);
  }

  /** SIGKILL without a restart: a dependency lost for good (an outside `kill -9` is restarted instead). */
  async kill(): Promise<void> {
    await this.end("SIGKILL", 0);
  }

  private async end(signal: NodeJS.Signals, graceMs: number): Promise<number | null> {
    this.wanted = false;
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      this.current = "down";
      this.finish(this.lastExit.code);
    }
    const child = this.child;
    if (!child || this.current !== "running") return this.lastExit.code;
    child.kill(signal);
    const timer = signal === "SIGKILL" ? undefined : setTimeout(() => child.kill("SIGKILL"), graceMs);
    const exit = await this.runExited;
    clearTimeout(timer);
    return exit.code;
  }

  /** Resolves with the last exit code once the process is down for good: stopped, unsupervised exit, or given up. */
  waitForExit(): Promise<number | null> {
    return this.finished;
  }

  logTail(lines = 20): string {
    if (!existsSync(this.spec.logFile)) return "";
    return readFileSync(this.spec.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  }
}

const formatSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function tcpReachable(port: number, host = "127.0.0.1", timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Polls `probe` until it passes. With a `process`, fails at once when that
 * process is down for good (a supervised one may crash and come back meanwhile).
 */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, process?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    if (process?.state === "down") {
      const reason = process.failure ?? `${process.spec.name} exited`;
      throw new Error(`${reason} while waiting for ${what}; last log lines:\n${process.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const tail = process ? `\nlast log lines of ${process.spec.name}:\n${process.logTail()}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${tail}`);
}
