import { RestartPolicy } from "./restart-policy";

const options = { initialDelayMs: 100, maxDelayMs: 1_000, stableAfterMs: 10_000, maxCrashes: 5, crashWindowMs: 30_000 };

describe("RestartPolicy", () => {
  it("doubles the delay from crash to crash up to the cap", () => {
    const policy = new RestartPolicy({ ...options, maxCrashes: 100 });
    const delays = Array.from({ length: 6 }, (_, index) => policy.onCrash(index * 40_000, 1_000));
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000].map((delayMs, index) => ({ action: "restart", delayMs, attempt: index + 1 })));
  });

  it("starts over after a run that stayed up long enough", () => {
    const policy = new RestartPolicy(options);
    policy.onCrash(0, 500);
    policy.onCrash(1_000, 500);
    expect(policy.onCrash(20_000, 10_000)).toEqual({ action: "restart", delayMs: 100, attempt: 1 });
  });

  it("gives up on the fifth crash within 30 s, not on crashes spread wider", () => {
    const spread = new RestartPolicy(options);
    for (let crash = 0; crash < 10; crash += 1) expect(spread.onCrash(crash * 8_000, 100).action).toBe("restart");

    const loop = new RestartPolicy(options);
    const decisions = [0, 500, 1_000, 2_000, 3_000].map((time) => loop.onCrash(time, 100));
    expect(decisions.slice(0, 4).every((decision) => decision.action === "restart")).toBe(true);
    expect(decisions[4]).toEqual({ action: "give-up", crashes: 5, windowMs: 30_000 });
  });
});
