/** Rate limits against the real Redis. */

import { ResourceExhaustedError } from "@leadmesh/platform";
import { Redis } from "ioredis";
import { meshInfo } from "../../../test/harness/mesh-info";
import { RateLimiter } from "../src/throttle";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(meshInfo().redisUrl);
});
afterAll(() => redis.quit());

const unique = () => Math.random().toString(36).slice(2);

describe("RateLimiter", () => {
  it("admits exactly the limit even when attempts arrive at once, then releases after the window", async () => {
    const prefix = `test-${unique()}`;
    const limiter = new RateLimiter(redis, "attempts", prefix, 3, 1);
    const windowOpenedAfter = Date.now();
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => limiter.take("subject")));
    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(3);
    const refused = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected")!.reason;
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).retryAfterMs).toBeGreaterThan(0);
    expect((refused as ResourceExhaustedError).retryAfterMs).toBeLessThanOrEqual(1000);

    // Redis's clock ends the window (PEXPIRE), so the test polls instead of
    // sleeping a guessed time past it. It polls through a limiter of the same
    // key with a one-minute window: a refused attempt does not move the
    // window, and the first admitted one opens a new window that cannot
    // expire while it is inspected.
    const poller = new RateLimiter(redis, "attempts", prefix, 3, 60);
    const started = Date.now();
    let refusedPolls = 0;
    for (;;) {
      const outcome = await poller.take("subject").then(
        () => "admitted",
        (error: unknown) => error,
      );
      if (outcome === "admitted") break;
      expect(outcome).toBeInstanceOf(ResourceExhaustedError);
      refusedPolls++;
      if (Date.now() - started > 5_000) throw new Error(`still refused ${Date.now() - started} ms after a 1 s window began`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Admitted because the old window ended: this attempt is the first of a fresh window.
    expect(await redis.get(`auth:throttle:${prefix}:subject`)).toBe("1");
    expect(await redis.pttl(`auth:throttle:${prefix}:subject`)).toBeGreaterThan(50_000);
    expect(refusedPolls).toBeGreaterThan(0);
    // Not before the window was over (its length is bounded by the retry hint above).
    expect(Date.now() - windowOpenedAfter).toBeGreaterThanOrEqual(1_000);
  });

  it("gives the budget back on reset, and keeps subjects apart", async () => {
    const limiter = new RateLimiter(redis, "attempts", `test-${unique()}`, 1, 60);
    await limiter.take("a");
    await expect(limiter.take("a")).rejects.toBeInstanceOf(ResourceExhaustedError);
    await expect(limiter.take("b")).resolves.toBeUndefined();
    await limiter.reset("a");
    await expect(limiter.take("a")).resolves.toBeUndefined();
  });
});
