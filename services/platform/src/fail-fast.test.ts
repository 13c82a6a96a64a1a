import { type CallContext, type ServerMiddleware, Status } from "nice-grpc-common";
import { pino } from "pino";
import { DependencyUnavailableError } from "./errors";
import { dependencyNeedsOf, failFastMiddleware } from "./fail-fast";
import { HealthMonitor } from "./health";

const silent = pino({ level: "silent" });
const GET = "/test.v1.Things/GetThing";
const KEYS = "/test.v1.Things/GetKeys";

/** Runs one unary call through the middleware; `handled` counts calls that reached the handler. */
async function unaryCall(middleware: ServerMiddleware, path: string, counter: { handled: number }): Promise<unknown> {
  const call = {
    method: { path, requestStream: false, responseStream: false, options: {} },
    requestStream: false,
    responseStream: false,
    request: {},
    // biome-ignore lint/correctness/useYield: a unary handler yields nothing, it returns its response
    next: async function* handler() {
      counter.handled++;
      return "handled";
    },
  };
  const generator = middleware(call as never, { signal: new AbortController().signal } as CallContext);
  let step = await generator.next();
  while (!step.done) step = await generator.next();
  return step.value;
}

function monitorWith(up: Record<string, boolean>) {
  return new HealthMonitor(
    Object.keys(up).map((name) => ({ name, check: async () => (up[name] ? "ok" : Promise.reject(new Error(`${name} refused`))) })),
    silent,
    { intervalMs: 10, timeoutMs: 50, recoveryRounds: 3 },
  );
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
}

describe("dependencyNeedsOf", () => {
  it("gives every RPC all dependencies unless it declares fewer", () => {
    const needs = dependencyNeedsOf([GET, KEYS], ["mongodb", "redis"], { [KEYS]: [] });
    expect(needs.get(GET)).toEqual(["mongodb", "redis"]);
    expect(needs.get(KEYS)).toEqual([]);
  });

  it("refuses declarations for RPCs the service does not serve or dependencies it does not check", () => {
    expect(() => dependencyNeedsOf([GET], ["mongodb"], { "/test.v1.Things/GetKeyz": [], [GET]: ["postgres"] })).toThrow(
      /\/test\.v1\.Things\/GetKeyz is not an RPC of this service.*GetThing needs "postgres", which is not a checked dependency \(mongodb\)/,
    );
  });
});

describe("failFastMiddleware", () => {
  it("refuses calls that need a known-down dependency without running them, and lets them through once it is back", async () => {
    const up = { mongodb: true, redis: true };
    const health = monitorWith(up);
    await health.start();
    const middleware = failFastMiddleware(health, dependencyNeedsOf([GET, KEYS], health.dependencyNames, { [KEYS]: ["mongodb"] }));
    const counter = { handled: 0 };
    try {
      expect(await unaryCall(middleware, GET, counter)).toBe("handled");

      up.redis = false;
      await waitFor(() => health.isDown("redis"));
      const refused = await unaryCall(middleware, GET, counter).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(DependencyUnavailableError);
      expect(refused).toMatchObject({
        code: Status.UNAVAILABLE,
        reason: "DEPENDENCY_UNAVAILABLE",
        message: "redis is unavailable; retry later",
        metadata: { dependency: "redis" },
        retryAfterMs: 2 * health.checkIntervalMs,
      });
      expect(counter.handled).toBe(1);
      // An RPC that does not need Redis still runs.
      expect(await unaryCall(middleware, KEYS, counter)).toBe("handled");
      expect(counter.handled).toBe(2);

      up.mongodb = false;
      await waitFor(() => health.isDown("mongodb"));
      await expect(unaryCall(middleware, KEYS, counter)).rejects.toMatchObject({ metadata: { dependency: "mongodb" } });
      expect(counter.handled).toBe(2);

      // Back at the first passing check, before the serving status has had its steady run.
      up.mongodb = true;
      up.redis = true;
      await waitFor(() => !health.isDown("mongodb") && !health.isDown("redis"));
      expect(await unaryCall(middleware, GET, counter)).toBe("handled");
      expect(counter.handled).toBe(3);
    } finally {
      health.stop();
    }
  });

  it("lets calls through while the service drains with healthy dependencies", async () => {
    const health = monitorWith({ mongodb: true });
    await health.start();
    health.drain();
    const counter = { handled: 0 };
    const middleware = failFastMiddleware(health, dependencyNeedsOf([GET], health.dependencyNames));
    expect(await unaryCall(middleware, GET, counter)).toBe("handled");
  });
});
