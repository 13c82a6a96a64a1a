import { pino } from "pino";
import { HealthMonitor, type ServingStatus } from "./health";

const silent = pino({ level: "silent" });

describe("HealthMonitor", () => {
  it("is SERVING only while every dependency answers, and recovers after a steady run of passing checks", async () => {
    let databaseUp = true;
    const monitor = new HealthMonitor(
      [
        { name: "db", check: async () => (databaseUp ? "pong" : Promise.reject(new Error("connection refused"))) },
        { name: "cache", check: async () => "PONG" },
      ],
      silent,
      { intervalMs: 20, timeoutMs: 50, recoveryRounds: 3 },
    );
    const changes: ServingStatus[] = [];
    monitor.on("change", (status) => changes.push(status));
    await monitor.start();
    expect(monitor.status).toBe("SERVING");

    databaseUp = false;
    await waitFor(() => monitor.status === "NOT_SERVING");
    expect(monitor.failures.get("db")).toBe("connection refused");

    // A single passing round between failures does not flip it back.
    const flaps = [true, false, true, false];
    for (const up of flaps) {
      databaseUp = up;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(monitor.status).toBe("NOT_SERVING");

    databaseUp = true;
    await waitFor(() => monitor.status === "SERVING");
    monitor.stop();
    expect(changes).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
  });

  it("serves at the first passing round when the checks only failed before it ever served (clients still connecting)", async () => {
    let connected = false;
    let passed = 0;
    const check = async () => {
      if (!connected) throw new Error("Stream isn't writeable");
      passed += 1;
      return "PONG";
    };
    const monitor = new HealthMonitor([{ name: "cache", check }], silent, { intervalMs: 10, timeoutMs: 50, recoveryRounds: 3 });
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

  it("counts a check that hangs past its timeout as failed", async () => {
    const monitor = new HealthMonitor([{ name: "slow", check: () => new Promise(() => undefined) }], silent, { intervalMs: 10, timeoutMs: 30 });
    await monitor.start();
    monitor.stop();
    expect(monitor.status).toBe("NOT_SERVING");
    expect(monitor.failures.get("slow")).toMatch(/did not answer within 30 ms/);
  });

  it("stays NOT_SERVING once draining, whatever the checks say", async () => {
    const monitor = new HealthMonitor([{ name: "ok", check: async () => "ok" }], silent, { intervalMs: 10, timeoutMs: 30 });
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
      { intervalMs: 20, timeoutMs: 50, recoveryRounds: 5 },
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
