/** Sign-in throttling against the real Redis. */
import { Redis } from "ioredis";
import { ResourceExhaustedError } from "@leadmesh/platform";
import { meshInfo } from "../../../test/harness/mesh-info";
import { LoginThrottle } from "../src/throttle";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(meshInfo().redisUrl);
});
afterAll(() => redis.quit());

const unique = () => Math.random().toString(36).slice(2);

describe("LoginThrottle", () => {
  it("limits attempts per client address within the window, then releases", async () => {
    const throttle = new LoginThrottle(redis, { maxFailures: 100, failureWindowSeconds: 60, maxAttemptsPerAddress: 3, addressWindowSeconds: 1 });
    const address = `10.0.0.${unique()}`;
    for (let i = 0; i < 3; i++) await throttle.admit("t", `user${i}@x.example`, address);
    const refused = await throttle.admit("t", "other@x.example", address).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ResourceExhaustedError);
    expect((refused as ResourceExhaustedError).retryAfterMs).toBeGreaterThan(0);
    expect((refused as ResourceExhaustedError).retryAfterMs).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await expect(throttle.admit("t", "other@x.example", address)).resolves.toBeUndefined();
  });

  it("counts failures per account, and a success resets them", async () => {
    const throttle = new LoginThrottle(redis, { maxFailures: 2, failureWindowSeconds: 60, maxAttemptsPerAddress: 1000, addressWindowSeconds: 60 });
    const account = `${unique()}@x.example`;
    await throttle.recordFailure("t", account);
    await throttle.recordSuccess("t", account);
    await throttle.recordFailure("t", account);
    await expect(throttle.admit("t", account, "a")).resolves.toBeUndefined();
    await throttle.recordFailure("t", account);
    await expect(throttle.admit("t", account, "a")).rejects.toBeInstanceOf(ResourceExhaustedError);
    // Another account at the same address is unaffected.
    await expect(throttle.admit("t", `${unique()}@x.example`, "a")).resolves.toBeUndefined();
  });
});
