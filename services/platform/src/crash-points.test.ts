import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { armCrashPoints } from "./crash-points";

/** Runs crashPoint in a child process (it kills its process) and reports how the child ended. */
function runChild(env: NodeJS.ProcessEnv, steps: string[]) {
  const script = `const { crashPoint } = require(${JSON.stringify(join(__dirname, "crash-points.ts"))}); for (const step of ${JSON.stringify(steps)}) { crashPoint(step); process.stdout.write(step + "\\n"); }`;
  return spawnSync(process.execPath, ["--import", "tsx", "-e", script], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 30_000 });
}

describe("crash points", () => {
  it("kill the process with SIGKILL at the armed step, on the chosen pass", () => {
    const result = runChild({ LEADMESH_CRASH_POINTS: "b.step@2" }, ["a.step", "b.step", "a.step", "b.step", "c.step"]);
    expect(result.signal).toBe("SIGKILL");
    expect(result.stdout.trim().split("\n")).toEqual(["a.step", "b.step", "a.step"]);
    expect(result.stderr).toContain('crash point "b.step": SIGKILL');
  });

  it("do nothing when unset", () => {
    const result = runChild({ LEADMESH_CRASH_POINTS: "" }, ["a.step", "b.step"]);
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual(["a.step", "b.step"]);
  });

  it("fire once per shared directory: a restarted process with the same environment passes the step", () => {
    const dir = mkdtempSync(join(tmpdir(), "crash-once-"));
    try {
      const env = { LEADMESH_CRASH_POINTS: "a.step", LEADMESH_CRASH_ONCE_DIR: dir };
      expect(runChild(env, ["a.step"]).signal).toBe("SIGKILL");
      expect(existsSync(join(dir, "a.step"))).toBe(true);
      const again = runChild(env, ["a.step"]);
      expect(again.status).toBe(0);
      expect(again.stdout.trim()).toBe("a.step");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("are refused in production and when malformed", () => {
    expect(() => armCrashPoints({ LEADMESH_CRASH_POINTS: "a.step", NODE_ENV: "production" })).toThrow(/refused under NODE_ENV=production/);
    expect(() => armCrashPoints({ LEADMESH_CRASH_POINTS: "A step" })).toThrow(/not a step name/);
    expect(() => armCrashPoints({ LEADMESH_CRASH_POINTS: "a.step@0" })).toThrow(/not a step name/);
    expect([...armCrashPoints({ LEADMESH_CRASH_POINTS: " a.step , b-c@3 " })]).toEqual([
      ["a.step", 1],
      ["b-c", 3],
    ]);
    armCrashPoints({});
  });
});
