import { pino } from "pino";
import { HealthMonitor, type ServingStatus } from "./health";

const silent = pino({ level: "silent" });

describe("HealthMonitor", () => {
  it("is SERVING only while every dependency answers, and recovers after a steady run of passing checks", async () => {
    // Rounds are driven by fake timers, one interval at a time, so each round
    // sees exactly the dependency state set for it: a flap cannot slip
    // between two ticks of a loaded machine, nor be skipped.
    jest.useFakeTimers({ doNotFake: ["nextTick", "queueMicrotask"] });
    try {
      const intervalMs = 20;
      let databaseUp = true;
      const monitor = new HealthMonitor(
        [
          { name: "db", check: async () => (databaseUp ? "pong" : Promise.reject(new Error("connection refused"))) },
          { name: "cache", check: async () => "PONG" },
        ],
        silent,
        { intervalMs, silenceLimitMs: 50, recoveryRounds: 3 },
      );
      const changes: ServingStatus[] = [];
      monitor.on("change", (status) => changes.push(status));
      const starting = monitor.start();
      await jest.advanceTimersByTimeAsync(5);
      await starting;
      expect(monitor.status).toBe("SERVING");
      /** One round: the tick judges the round that ends and starts checks that see `up`. */
      const round = async (up: boolean) => {
        databaseUp = up;
        await jest.advanceTimersByTimeAsync(intervalMs);
      };

      await round(false);
      expect(monitor.status).toBe("NOT_SERVING");
      expect(monitor.failures.get("db")).toBe("connection refused");

      // Passing rounds between failures, up to one short of the steady run, do not flip it back.
      for (const up of [true, false, true, true, false, true, false]) {
        await round(up);
        expect(monitor.status).toBe("NOT_SERVING");
      }
      // Up for good: the round that saw the first passing check still had the failure
      // standing at its tick, then three passing rounds in a row serve again.
      for (let rounds = 1; rounds <= 3; rounds++) {
        await round(true);
        expect(monitor.status).toBe("NOT_SERVING");
      }
      await round(true);
      expect(monitor.status).toBe("SERVING");
      monitor.stop();
      expect(changes).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
    } finally {
      jest.useRealTimers();
    }
  });

  it("serves at the first passing round when the checks only failed before it ever served (clients still connecting)", async () => {
    let connected = false;
    let passed = 0;
    const check = async () => {
      if (!connected) throw new Error("Stream isn't writeable");
      passed += 1;
      return "PONG";
    };
    const monitor = new HealthMonitor([{ name: "cache", check }], silent, { intervalMs: 10, silenceLimitMs: 50, recoveryRounds: 3 });
    let passedWhenServing: number | undefined;
    monitor.on("change", (status) => {
      if (status === "SERVING") passedWhenServing = passed;
    });
    await monitor.start();
    expect(monitor.status).toBe("NOT_SERVING");
    connected = true;
    await waitFor(() => monitor.status === "SERVING");
    monitor.stop();
    expect(passedWhenServing).toBe(1);
  });

  it("counts a dependency that gives no answer for the silence limit as down", async () => {
    const monitor = new HealthMonitor([{ name: "hung", check: () => new Promise(() => undefined) }], silent, { intervalMs: 10, silenceLimitMs: 30 });
    const started = Date.now();
    await monitor.start();
    monitor.stop();
    expect(Date.now() - started).toBeGreaterThanOrEqual(30);
    expect(monitor.status).toBe("NOT_SERVING");
    expect(monitor.failures.get("hung")).toMatch(/gave no answer for 30 ms/);
  });

  it("keeps a dependency that answers slower than the check interval SERVING (slow is not down)", async () => {
    // Every answer takes four intervals, most of the silence limit: checks
    // overlap, so answers still come every interval.
    const slowCheck = () => new Promise((resolve) => setTimeout(() => resolve("pong"), 80));
    const monitor = new HealthMonitor([{ name: "db", check: slowCheck }], silent, { intervalMs: 20, silenceLimitMs: 100, recoveryRounds: 3 });
    const changes: ServingStatus[] = [];
    monitor.on("change", (status) => changes.push(status));
    // Fake timers: the answers' latency and the intervals keep their ratio whatever the machine's load.
    jest.useFakeTimers({ doNotFake: ["nextTick", "queueMicrotask"] });
    let sawDown = false;
    try {
      const starting = monitor.start();
      await jest.advanceTimersByTimeAsync(80);
      await starting;
      for (let i = 0; i < 40; i++) {
        sawDown ||= monitor.isDown("db");
        await jest.advanceTimersByTimeAsync(10);
      }
      monitor.stop();
    } finally {
      jest.useRealTimers();
    }
    expect(sawDown).toBe(false);
    expect(changes).toEqual(["SERVING"]);
  });

  it("goes down at once on a failed check, without waiting for the silence limit", async () => {
    let refusing = false;
    const monitor = new HealthMonitor([{ name: "db", check: async () => (refusing ? Promise.reject(new Error("connect ECONNREFUSED")) : "pong") }], silent, {
      intervalMs: 20,
      silenceLimitMs: 5_000,
    });
    await monitor.start();
    refusing = true;
    const refusedAt = Date.now();
    await waitFor(() => monitor.isDown("db"));
    monitor.stop();
    expect(Date.now() - refusedAt).toBeLessThan(1_000);
    expect(monitor.failures.get("db")).toBe("connect ECONNREFUSED");
  });

  it("lets only the latest finished check decide: an older check that fails late does not mark an answering dependency down", async () => {
    let calls = 0;
    const check = () => {
      calls += 1;
      // The second check fails, but only after later checks have answered.
      return calls === 2 ? new Promise((_, reject) => setTimeout(() => reject(new Error("late failure")), 60)) : Promise.resolve("pong");
    };
    const monitor = new HealthMonitor([{ name: "db", check }], silent, { intervalMs: 10, silenceLimitMs: 200 });
    // Every change is recorded: a moment down between two samples cannot go unseen.
    const changes: ServingStatus[] = [];
    monitor.on("change", (status) => changes.push(status));
    // Fake timers: the late failure lands after exactly five later checks have answered, whatever the load.
    jest.useFakeTimers({ doNotFake: ["nextTick", "queueMicrotask"] });
    let sawDown = false;
    try {
      const starting = monitor.start();
      await jest.advanceTimersByTimeAsync(5);
      await starting;
      for (let i = 0; i < 15; i++) {
        sawDown ||= monitor.isDown("db");
        await jest.advanceTimersByTimeAsync(10);
      }
      monitor.stop();
    } finally {
      jest.useRealTimers();
    }
    expect(calls).toBe(16);
    expect(changes).toEqual(["SERVING"]);
    expect(sawDown).toBe(false);
  });

  it("starts no more than maxInFlight checks of a dependency that hangs", async () => {
    let started = 0;
    const monitor = new HealthMonitor(
      [
        {
          name: "hung",
          check: () => {
            started += 1;
            return new Promise(() => undefined);
          },
        },
      ],
      silent,
      { intervalMs: 5, silenceLimitMs: 20, maxInFlight: 3 },
    );
    // Fake timers: twenty intervals pass whatever the machine's load, so the cap is what stops new checks.
    jest.useFakeTimers({ doNotFake: ["nextTick", "queueMicrotask"] });
    try {
      const starting = monitor.start();
      await jest.advanceTimersByTimeAsync(100);
      await starting;
      monitor.stop();
    } finally {
      jest.useRealTimers();
    }
    expect(started).toBe(3);
  });

  it("stays NOT_SERVING once draining, whatever the checks say", async () => {
    const monitor = new HealthMonitor([{ name: "ok", check: async () => "ok" }], silent, { intervalMs: 10, silenceLimitMs: 30 });
    await monitor.start();
    expect(monitor.status).toBe("SERVING");
    monitor.drain();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(monitor.status).toBe("NOT_SERVING");
  });
});

describe("HealthMonitor.isDown", () => {
  it("tracks each dependency's latest check, apart from the serving status", async () => {
    let databaseUp = true;
    const monitor = new HealthMonitor(
      [
        { name: "db", check: async () => (databaseUp ? "pong" : Promise.reject(new Error("connection refused"))) },
        { name: "cache", check: async () => "PONG" },
      ],
      silent,
      { intervalMs: 20, silenceLimitMs: 50, recoveryRounds: 5 },
    );
    expect(monitor.dependencyNames).toEqual(["db", "cache"]);
    expect(monitor.checkIntervalMs).toBe(20);
    await monitor.start();
    expect([monitor.isDown("db"), monitor.isDown("cache")]).toEqual([false, false]);

    databaseUp = false;
    await waitFor(() => monitor.isDown("db"));
    expect(monitor.isDown("cache")).toBe(false);

    // Up again at the first passing check, while the serving status still waits for a steady run.
    databaseUp = true;
    await waitFor(() => !monitor.isDown("db"));
    expect(monitor.status).toBe("NOT_SERVING");
    await waitFor(() => monitor.status === "SERVING");

    // Draining is not an outage: calls in flight at shutdown must still get through.
    monitor.drain();
    expect(monitor.status).toBe("NOT_SERVING");
    expect(monitor.isDown("db")).toBe(false);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}
