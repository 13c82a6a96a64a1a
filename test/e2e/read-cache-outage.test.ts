/**
 * GetLead's read cache losing its Redis under load: reads keep succeeding
 * from the database, never an error, and the cache comes back by itself.
 *
 * Which Redis goes away, honestly: leads needs Redis for token revocations
 * too, and while THAT Redis is down fail-fast (services/platform/src/
 * fail-fast.ts) refuses leads' calls with UNAVAILABLE, as it always has
 * (test/e2e/resilience.test.ts). So the outage here is of a Redis the cache
 * has to itself (READ_CACHE_REDIS_URL: a real redis-server this test starts
 * on a free port), while revocations keep using the test mesh's Redis. What
 * it shows: the cache adds no failure of its own, down (killed) or slow
 * (frozen with SIGSTOP: it accepts but never answers), and an acknowledged
 * write whose cache update failed reaches the cache once Redis is back.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import type { RunningService } from "@leadmesh/platform";
import { Redis } from "ioredis";
import { redisProcess } from "../../scripts/mesh/local-mesh";
import { freePort, ManagedProcess, tcpReachable, waitUntil } from "../../scripts/mesh/processes";
import { startLeads } from "../../services/leads/src/main";
import { metricValue } from "../../services/leads/test/read-cache-harness";
import { leadClient, uniqueTenant } from "../harness/clients";
import { startInProcess } from "../harness/in-process";
import { mintToken } from "../harness/tokens";

const runDir = mkdtempSync(join(tmpdir(), "leadmesh-read-cache-outage-"));
let cacheRedis: ManagedProcess;
let cachePort: number;
let service: RunningService;
let address: string;
let frozen = false;
const tenant = uniqueTenant("cache-outage");

beforeAll(async () => {
  cachePort = await freePort();
  cacheRedis = redisProcess(runDir, cachePort).start();
  await waitUntil("the cache's redis-server", () => tcpReachable(cachePort), 10_000, cacheRedis);
  ({ service, address } = await startInProcess("leads", (env, fetchKeys) =>
    startLeads({ ...env, READ_CACHE_REDIS_URL: `redis://127.0.0.1:${cachePort}` }, fetchKeys),
  ));
}, 60_000);

afterAll(async () => {
  if (frozen) process.kill(cacheRedis.pid as number, "SIGCONT");
  await service?.shutdown();
  await cacheRedis?.stop();
  rmSync(runDir, { recursive: true, force: true });
});

const hits = () => metricValue(service, "leadmesh_read_cache_lookups_total", { result: "hit" });
const failures = () => metricValue(service, "leadmesh_read_cache_failures_total");

/** GetLead in `workers` loops over `ids` until stop() resolves; every outcome is kept. */
function readLoad(client: ReturnType<typeof leadClient>["client"], ids: string[], workers = 4) {
  const errors: string[] = [];
  const latenciesMs: number[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async (_, worker) => {
    for (let index = worker; running; index++) {
      const startedAt = performance.now();
      try {
        const { lead } = await client.getLead({ id: ids[index % ids.length] });
        if (lead?.id !== ids[index % ids.length]) errors.push(`wrong lead ${lead?.id}`);
        latenciesMs.push(performance.now() - startedAt);
      } catch (error) {
        errors.push(String(error));
      }
    }
  });
  return {
    errors,
    latenciesMs,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

it("keeps answering GetLead from the database while the cache's Redis is killed, frozen and restarted", async () => {
  const connection = leadClient(address, mintToken({ tenant, sub: "manager-1", roles: ["manager"] }));
  const { client } = connection;
  const ids: string[] = [];
  for (let index = 0; index < 4; index++) {
    ids.push((await client.createLead({ lead: { firstName: "Outage", email: "outage@example.com", source: LeadSource.LEAD_SOURCE_WEB_FORM } })).lead!.id);
  }
  // The load leaves ids[0] alone: once Redis is back, only the repair (no reader's fill) can put its entry there.
  const load = readLoad(client, ids.slice(1));
  try {
    // Counts, not time windows: the suite shares two cores, so how many reads fit in a second varies.
    await waitUntil("50 reads served from the cache", async () => (await hits()) > 50, 10_000);

    // Killed mid-load: every read goes to the database.
    await cacheRedis.kill();
    const servedBefore = load.latenciesMs.length;
    await waitUntil("50 reads served with the cache's Redis killed", async () => load.latenciesMs.length - servedBefore > 50, 10_000);
    expect(load.errors).toEqual([]);
    expect(await failures()).toBeGreaterThan(0);
    expect(service.health.status).toBe("SERVING");

    // An acknowledged write while the cache is down: the database has it; the cache gets it once Redis is back.
    const updated = (await client.updateLead({ lead: { id: ids[0], score: 77 }, updateMask: ["score"] })).lead!;
    expect(updated.etag).toBe("2");
    expect((await client.getLead({ id: ids[0] })).lead).toEqual(updated);
    expect(await metricValue(service, "leadmesh_read_cache_pending_repairs")).toBe(1);

    // Back (empty: no persistence), on the same port: the repair lands and reads hit again.
    cacheRedis = new ManagedProcess(cacheRedis.spec).start();
    await waitUntil("the cache's redis-server back", () => tcpReachable(cachePort), 10_000, cacheRedis);
    const inspector = new Redis(cachePort, "127.0.0.1");
    try {
      await waitUntil(
        "the failed write's entry repaired into the cache",
        async () => (await inspector.getBuffer(`cache:leads:lead:${tenant}:${ids[0]}`))?.toString("latin1").startsWith("2:L") === true,
        5_000,
      );
    } finally {
      inspector.disconnect();
    }
    await waitUntil("no repair pending", async () => (await metricValue(service, "leadmesh_read_cache_pending_repairs")) === 0, 2_000);
    const hitsAfterRestart = await hits();
    await waitUntil("50 more reads served from the restarted cache", async () => (await hits()) > hitsAfterRestart + 50, 10_000);

    // Frozen (accepts, never answers): each cache operation gives up after its timeout; reads stay correct and bounded.
    process.kill(cacheRedis.pid as number, "SIGSTOP");
    frozen = true;
    const servedBeforeFreeze = load.latenciesMs.length;
    await waitUntil("20 reads served with the cache's Redis frozen", async () => load.latenciesMs.length - servedBeforeFreeze > 20, 10_000);
    const whileFrozen = load.latenciesMs.slice(servedBeforeFreeze);
    expect(load.errors).toEqual([]);
    // Each cache operation gives up after 50 ms; a read waiting on the frozen Redis would take seconds.
    expect(Math.max(...whileFrozen)).toBeLessThan(1000);
    expect((await client.getLead({ id: ids[0] })).lead).toEqual(updated);
    process.kill(cacheRedis.pid as number, "SIGCONT");
    frozen = false;
    expect(service.health.status).toBe("SERVING");
  } finally {
    await load.stop();
    connection.close();
  }
  expect(load.errors).toEqual([]);
}, 60_000);
