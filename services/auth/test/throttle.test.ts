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
    const limiter = new RateLimiter(redis, "attempts", `test-${unique()}`, 3, 1);
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => limiter.take("subject")));
    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(3);
    const refused = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected")!.reason;
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).retryAfterMs).toBeGreaterThan(0);
    expect((refused as ResourceExhaustedError).retryAfterMs).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await expect(limiter.take("subject")).resolves.toBeUndefined();
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
