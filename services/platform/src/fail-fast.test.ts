/**
 * Fail-fast through the kernel middleware as startService runs it
 * (test/harness/kernel-server.ts), over a real channel: a call that needs a
 * known-down dependency is refused at once, without reaching the handler.
 */
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { type Channel, createChannel, createClientFactory, Metadata, Status } from "nice-grpc";
import { ErrorInfo, errorDetailsClientMiddleware, RetryInfo, RichClientError } from "nice-grpc-error-details";
import { pino } from "pino";
import { callerHeaders, type KernelServer, startKernelServer } from "../../../test/harness/kernel-server";
import { dependencyNeedsOf } from "./fail-fast";
import { HealthMonitor } from "./health";

const silent = pino({ level: "silent" });
const GET = "/leads.v1.LeadService/GetLead";
/** Declared to need only mongodb. */
const KEYS = "/leads.v1.LeadService/BatchGetLeads";

/** A kernel serving LeadService with `health`; `handled` counts calls that reached a handler. */
async function kernelWith(health: HealthMonitor, declared: Record<string, readonly string[]>) {
  const counter = { handled: 0 };
  const handle = async () => {
    counter.handled++;
    return {};
  };
  const server: KernelServer = await startKernelServer({
    definition: LeadServiceDefinition,
    implementation: Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, handle])),
    health,
    dependencyNeeds: declared,
  });
  const channel: Channel = createChannel(server.address);
  const client = createClientFactory().use(errorDetailsClientMiddleware).create(LeadServiceDefinition, channel);
  const options = { metadata: Metadata(callerHeaders()) };
  const call = (path: string) => (path === GET ? client.getLead({ id: "x" }, options) : client.batchGetLeads({ ids: ["x"] }, options)).then(() => "handled");
  const close = async () => {
    channel.close();
    await server.shutdown();
  };
  return { counter, call, close };
}

function monitorWith(up: Record<string, boolean>) {
  return new HealthMonitor(
    Object.keys(up).map((name) => ({ name, check: async () => (up[name] ? "ok" : Promise.reject(new Error(`${name} refused`))) })),
    silent,
    { intervalMs: 10, silenceLimitMs: 50, recoveryRounds: 3 },
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
    expect(() => dependencyNeedsOf([GET], ["mongodb"], { "/leads.v1.LeadService/GetLeadz": [], [GET]: ["postgres"] })).toThrow(
      /\/leads\.v1\.LeadService\/GetLeadz is not an RPC of this service.*\/leads\.v1\.LeadService\/GetLead needs "postgres", which is not a checked dependency \(mongodb\)/,
    );
  });
});

describe("fail-fast in the kernel", () => {
  it("refuses calls that need a known-down dependency without running them, and lets them through once it is back", async () => {
    const up = { mongodb: true, redis: true };
    const health = monitorWith(up);
    await health.start();
    const { counter, call, close } = await kernelWith(health, { [KEYS]: ["mongodb"] });
    try {
      expect(await call(GET)).toBe("handled");

      up.redis = false;
      await waitFor(() => health.isDown("redis"));
      const startedAt = performance.now();
      const refused = await call(GET).catch((error: unknown) => error);
      // At once: no driver timeout, no check round waited for.
      expect(performance.now() - startedAt).toBeLessThan(health.checkIntervalMs * 50);
      expect(refused).toBeInstanceOf(RichClientError);
      const retryAfterMs = 2 * health.checkIntervalMs;
      expect(refused).toMatchObject({ code: Status.UNAVAILABLE, details: "redis is unavailable; retry later" });
      expect((refused as RichClientError).extra).toEqual([
        ErrorInfo.fromPartial({ reason: "DEPENDENCY_UNAVAILABLE", domain: "leadmesh.io", metadata: { dependency: "redis" } }),
        RetryInfo.fromPartial({ retryDelay: { seconds: Math.floor(retryAfterMs / 1000), nanos: (retryAfterMs % 1000) * 1_000_000 } }),
      ]);
      expect(counter.handled).toBe(1);
      // An RPC that does not need Redis still runs.
      expect(await call(KEYS)).toBe("handled");
      expect(counter.handled).toBe(2);

      up.mongodb = false;
      await waitFor(() => health.isDown("mongodb"));
      const refusedKeys = await call(KEYS).catch((error: unknown) => error);
      expect(refusedKeys).toMatchObject({
        code: Status.UNAVAILABLE,
        extra: expect.arrayContaining([expect.objectContaining({ metadata: { dependency: "mongodb" } })]),
      });
      expect(counter.handled).toBe(2);

      // Back at the first passing check, before the serving status has had its steady run.
      up.mongodb = true;
      up.redis = true;
      await waitFor(() => !health.isDown("mongodb") && !health.isDown("redis"));
      expect(await call(GET)).toBe("handled");
      expect(counter.handled).toBe(3);
    } finally {
      health.stop();
      await close();
    }
  });

  it("lets calls through while the service drains with healthy dependencies", async () => {
    const health = monitorWith({ mongodb: true });
    await health.start();
    health.drain();
    const { counter, call, close } = await kernelWith(health, {});
    try {
      expect(await call(GET)).toBe("handled");
      expect(counter.handled).toBe(1);
    } finally {
      health.stop();
      await close();
    }
  });
});
