/**
 * The supervisor with real child processes (a bare node that waits, or exits
 * at once), in a second or two: the services' own restarts under load are in
 * test/e2e/supervision.test.ts.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManagedProcess, type SupervisorEvent } from "./processes";

const directory = mkdtempSync(join(tmpdir(), "leadmesh-processes-"));
const policy = { initialDelayMs: 300, maxDelayMs: 1_000, stableAfterMs: 10_000, maxCrashes: 5 };

function nodeProcess(name: string, script: string) {
  const managed = new ManagedProcess({
    name,
    command: process.execPath,
    args: ["-e", script],
    cwd: directory,
    logFile: join(directory, `${name}.log`),
    restart: policy,
  });
  const events: SupervisorEvent[] = [];
  managed.on("supervisor", (event) => events.push(event));
  return { managed, events };
}

const ups = (managed: ManagedProcess) => managed.logTail(100).match(/^up$/gm)?.length ?? 0;

async function until(condition: () => boolean, limitMs = 10_000) {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("ManagedProcess supervision", () => {
  it("restarts a process killed from outside, and a graceful stop ends it for good", async () => {
    const { managed, events } = nodeProcess("sleeper", "console.log('up'); setInterval(() => {}, 1000)");
    managed.start();
    try {
      await until(() => ups(managed) === 1);
      const first = managed.pid;
      process.kill(first ?? 0, "SIGKILL");
      await until(() => ups(managed) === 2);
      expect(managed.pid).not.toBe(first);
      expect(events.map((event) => event.kind)).toEqual(["restarting", "restarted"]);
      expect(events[0]).toMatchObject({ exit: { code: null, signal: "SIGKILL" }, attempt: 1, delayMs: 300 });
      expect(await managed.stop()).toBe(null); // node ends on SIGTERM by the signal, without an exit code
      expect(managed.state).toBe("down");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(events).toHaveLength(2);
      expect(ups(managed)).toBe(2);
    } finally {
      await managed.stop();
    }
  });

  it("a stop during the restart delay cancels the restart", async () => {
    const { managed, events } = nodeProcess("crasher", "process.exit(3)");
    managed.start();
    await until(() => managed.state === "restarting");
    const exitCode = await managed.stop();
    expect(exitCode).toBe(3);
    await expect(managed.waitForExit()).resolves.toBe(3);
    await new Promise((resolve) => setTimeout(resolve, policy.initialDelayMs + 200));
    expect(managed.state).toBe("down");
    expect(events.map((event) => event.kind)).toEqual(["restarting"]);
  });
});
