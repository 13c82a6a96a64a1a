/**
 * Child processes of the local mesh: started with their output in a log file,
 * waited for, stopped with SIGTERM then SIGKILL, and killed on our own exit
 * so that neither Ctrl-C nor a crashed test run leaves orphans behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, readFileSync } from "node:fs";
import { createServer, connect } from "node:net";

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
}

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(readonly spec: ProcessSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): this {
    if (!existsSync(this.spec.command) && !this.spec.command.match(/^[a-z]+$/)) {
      throw new Error(`${this.spec.name}: ${this.spec.command} not found; run 'npm run setup' first`);
    }
    const log = createWriteStream(this.spec.logFile, { flags: "a" });
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
    // "close" (not "exit"): output is fully read, and the log file flushed,
    // by the time a stop resolves, so callers can inspect the last lines.
    this.exited = new Promise((resolve) =>
      child.once("close", (code) => {
        running.delete(child);
        log.end(() => resolve(code));
      }),
    );
    child.once("error", (error) => log.write(`spawn failed: ${error.message}\n`));
    this.child = child;
    return this;
  }

  /** Exit code after a graceful stop (SIGTERM), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<number | null> {
    const child = this.child;
    if (!child || !this.isRunning) return child?.exitCode ?? null;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Simulates a crash or a lost dependency. */
  async kill(): Promise<void> {
    if (!this.child || !this.isRunning) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  waitForExit(): Promise<number | null> {
    return this.exited;
  }

  logTail(lines = 20): string {
    if (!existsSync(this.spec.logFile)) return "";
    return readFileSync(this.spec.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  }
}

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

export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, process?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    if (process && !process.isRunning) {
      throw new Error(`${process.spec.name} exited while waiting for ${what}; last log lines:\n${process.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const tail = process ? `\nlast log lines of ${process.spec.name}:\n${process.logTail()}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${tail}`);
}
