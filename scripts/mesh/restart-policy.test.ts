import { RestartPolicy } from "./restart-policy";

const options = { initialDelayMs: 100, maxDelayMs: 1_000, stableAfterMs: 10_000, maxCrashes: 5 };

describe("RestartPolicy", () => {
  it("doubles the delay from crash to crash up to the cap", () => {
    const policy = new RestartPolicy({ ...options, maxCrashes: 100 });
    const delays = Array.from({ length: 6 }, () => policy.onCrash(1_000));
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000].map((delayMs, index) => ({ action: "restart", delayMs, attempt: index + 1 })));
  });

  it("starts over after a run that stayed up long enough", () => {
    const policy = new RestartPolicy(options);
    policy.onCrash(500);
    policy.onCrash(500);
    expect(policy.onCrash(10_000)).toEqual({ action: "restart", delayMs: 100, attempt: 1 });
  });

  it("gives up at the fifth crash in a row without a stable run, however slow each run was", () => {
    const loop = new RestartPolicy(options);
    const decisions = [100, 9_000, 100, 9_999, 100].map((uptimeMs) => loop.onCrash(uptimeMs));
    expect(decisions.slice(0, 4).every((decision) => decision.action === "restart")).toBe(true);
    expect(decisions[4]).toEqual({ action: "give-up", crashes: 5, stableAfterMs: 10_000 });
  });

  it("never gives up on a process that crashes only after stable runs (e.g. kill -9 now and then)", () => {
    const policy = new RestartPolicy(options);
    for (let crash = 0; crash < 20; crash += 1) expect(policy.onCrash(10_000)).toEqual({ action: "restart", delayMs: 100, attempt: 1 });
  });
});
