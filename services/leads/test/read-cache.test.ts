/**
 * GetLead's read cache (services/platform/src/cache/read-cache.ts) against
 * the test mesh's real Redis and FerretDB: the revision compare-and-set, and
 * each clause of the consistency promise across two leads replicas sharing
 * one database and the cache. A third replica with the cache off is the
 * database path that the cached answers must match.
 */
import { Lead, LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import { MAX_FILL_AGE_MS, ReadCache } from "@leadmesh/platform";
import { Redis } from "ioredis";
import { MongoClient } from "mongodb";
import { ClientError, Status } from "nice-grpc";
import pino from "pino";
import { leadClient, uniqueTenant } from "../../../test/harness/clients";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken } from "../../../test/harness/tokens";
import { leadCodec, leadReadCache } from "../src/lead-cache";
import { metricValue, type Replica, seededRandom, startLeadsReplicas } from "./read-cache-harness";

let replicas: Replica[];
/** The same database without the cache: what a database read answers. */
let uncached: Replica;
let database: string;
let redis: Redis;
const clients: { close(): void }[] = [];

beforeAll(async () => {
  let all: Replica[];
  ({ replicas: all, database } = await startLeadsReplicas(3, [{}, {}, { LEADS_READ_CACHE: "off" }]));
  replicas = all.slice(0, 2);
  uncached = all[2];
  redis = new Redis(meshInfo().redisUrl);
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all([...replicas, uncached].map((replica) => replica?.service.shutdown()));
  redis?.disconnect();
});

function clientOf(replica: Replica, tenant: string, roles: string[] = ["manager"], sub = "manager-1") {
  const connection = leadClient(replica.address, mintToken({ tenant, sub, roles }));
  clients.push(connection);
  return connection.client;
}

type LeadClient = ReturnType<typeof clientOf>;

const sample = (overrides: Partial<Lead> = {}): Partial<Lead> => ({
  firstName: "Grace",
  email: "grace@example.com",
  source: LeadSource.LEAD_SOURCE_REFERRAL,
  ...overrides,
});

async function statusOf(call: Promise<unknown>): Promise<Status> {
  try {
    await call;
    return Status.OK;
  } catch (error) {
    if (error instanceof ClientError) return error.code;
    throw error;
  }
}

const revision = (lead: Lead | undefined) => Number(lead?.etag);

describe("the revision compare-and-set (Lua, real Redis)", () => {
  let cacheRedis: Redis;
  let cache: ReadCache<Lead>;
  beforeAll(() => {
    cacheRedis = new Redis(meshInfo().redisUrl);
    cache = leadReadCache(cacheRedis, pino({ level: "silent" }));
  });
  afterAll(() => {
    cache.close();
    cacheRedis.disconnect();
  });
  const tenant = uniqueTenant("cas");
  const leadAt = (id: string, rev: number, extra: Partial<Lead> = {}): Lead =>
    Lead.fromPartial({ ...sample(), id, tenantId: tenant, etag: String(rev), ...extra });

  it("never lets an older fill replace a newer revision, in any arrival order", async () => {
    const random = seededRandom(8);
    for (let round = 0; round < 20; round++) {
      const id = `cas-${round}`;
      const revisions = Array.from({ length: 30 }, (_, index) => index + 1).sort(() => random() - 0.5);
      // All at once: the script runs atomically in Redis whatever the interleaving.
      await Promise.all(
        revisions.map((rev) => (rev % 3 === 0 ? cache.put(tenant, id, leadAt(id, rev)) : cache.fill(tenant, id, leadAt(id, rev), performance.now()))),
      );
      const found = await cache.get(tenant, id);
      expect(found).toMatchObject({ kind: "hit", revision: 30 });
    }
  });

  it("keeps a tombstone against older fills and gives way to a newer revision", async () => {
    const id = "tombstoned";
    await cache.put(tenant, id, leadAt(id, 4));
    await cache.tombstone(tenant, id, 5);
    await cache.fill(tenant, id, leadAt(id, 4), performance.now());
    expect(await cache.get(tenant, id)).toEqual({ kind: "tombstone", revision: 5 });
    expect(await cache.read(tenant, id, async () => leadAt(id, 4))).toBeNull();
    await cache.put(tenant, id, leadAt(id, 6, { firstName: "Back" }));
    expect(await cache.get(tenant, id)).toMatchObject({ kind: "hit", revision: 6, value: { firstName: "Back" } });
  });

  it("does not fill a key that a write and an eviction emptied while the reader was reading the database", async () => {
    const id = "evicted-mid-read";
    // The reader misses and reads revision 1; meanwhile a write of 2 is acknowledged and the key is evicted.
    const value = await cache.read(tenant, id, async () => {
      await cache.put(tenant, id, leadAt(id, 2));
      await redis.del(cache.keyOf(tenant, id));
      return leadAt(id, 1);
    });
    expect(value?.etag).toBe("1");
    // Revision 1 must not come back for the next reader: the key stays empty until a fill that read after the write.
    expect(await cache.get(tenant, id)).toEqual({ kind: "miss", unavailable: false });
    expect((await cache.read(tenant, id, async () => leadAt(id, 2)))?.etag).toBe("2");
    expect(await cache.get(tenant, id)).toMatchObject({ kind: "hit", revision: 2 });
  });

  it("drops a fill whose read is older than the fill window, and entries carry the TTL", async () => {
    const id = "old-read";
    await cache.fill(tenant, id, leadAt(id, 1), performance.now() - MAX_FILL_AGE_MS - 1);
    expect(await cache.get(tenant, id)).toEqual({ kind: "miss", unavailable: false });
    await cache.fill(tenant, id, leadAt(id, 1), performance.now());
    const ttl = await redis.pttl(cache.keyOf(tenant, id));
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("never returns an entry of another tenant, even one planted under this tenant's key", async () => {
    const id = "planted";
    const other = new ReadCache({ redis: cacheRedis, service: "leads", resource: "lead", codec: leadCodec, logger: pino({ level: "silent" }) });
    await other.put("someone-else", id, { ...leadAt(id, 3), tenantId: "someone-else" });
    await redis.copy(other.keyOf("someone-else", id), cache.keyOf(tenant, id));
    expect(await cache.get(tenant, id)).toEqual({ kind: "miss", unavailable: false });
    await redis.set(cache.keyOf(tenant, "garbage"), "not an entry");
    expect(await cache.get(tenant, "garbage")).toEqual({ kind: "miss", unavailable: false });
    other.close();
  });

  it("refuses a fill that read the database before a write whose put landed first (the read/write race)", async () => {
    const client = clientOf(replicas[0], tenant);
    const { lead } = await client.createLead({ lead: sample() });
    const id = lead!.id;
    await redis.del(cache.keyOf(tenant, id));
    // A reader misses and reads revision 1 from the database, then stalls; a write lands (revision 2, put before its ack); the reader's fill arrives last.
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowRead = cache.read(tenant, id, async () => {
      const stale = lead as Lead;
      await stalled;
      return stale;
    });
    const updated = await client.updateLead({ lead: { id, score: 42, etag: "1" }, updateMask: ["score"] });
    expect(updated.lead!.etag).toBe("2");
    release();
    expect(revision((await slowRead) ?? undefined)).toBe(1);
    expect(await cache.get(tenant, id)).toMatchObject({ kind: "hit", revision: 2, value: { score: 42 } });
    expect((await clientOf(replicas[1], tenant).getLead({ id })).lead).toEqual(updated.lead);
  });
});

describe("across two replicas", () => {
  it("never shows a reader a revision older than one acknowledged to it, nor older than any write acknowledged before its read began", async () => {
    const tenant = uniqueTenant("cache-race");
    const creator = clientOf(replicas[0], tenant);
    const leadIds: string[] = [];
    for (let index = 0; index < 3; index++) leadIds.push((await creator.createLead({ lead: sample({ score: 0 }) })).lead!.id);
    const perReplica = replicas.map((replica) => clientOf(replica, tenant));
    /** Per lead: the highest revision any writer had acknowledged, and when (performance.now()). */
    const acknowledged = new Map<string, { revision: number; at: number }[]>(leadIds.map((id) => [id, [{ revision: 1, at: 0 }]]));
    const violations: string[] = [];
    let reads = 0;
    let writes = 0;
    let writersLeft = 4;

    const ackedBefore = (id: string, time: number) => Math.max(...(acknowledged.get(id) ?? []).filter((ack) => ack.at < time).map((ack) => ack.revision));

    async function observe(worker: string, seen: Map<string, number>, client: LeadClient, id: string): Promise<Lead> {
      const startedAt = performance.now();
      const { lead } = await client.getLead({ id });
      reads++;
      const got = revision(lead);
      const ownFloor = seen.get(id) ?? 1;
      const globalFloor = ackedBefore(id, startedAt);
      if (got < ownFloor) violations.push(`${worker} read ${id} at revision ${got} after having seen ${ownFloor}`);
      if (got < globalFloor) violations.push(`${worker} read ${id} at revision ${got}, begun after revision ${globalFloor} was acknowledged`);
      seen.set(id, Math.max(ownFloor, got));
      return lead as Lead;
    }

    async function writer(seed: number) {
      const random = seededRandom(seed);
      const seen = new Map<string, number>();
      const pick = () => ({ id: leadIds[Math.floor(random() * leadIds.length)], client: perReplica[Math.floor(random() * 2)] });
      for (let step = 0; step < 25; step++) {
        const { id, client } = pick();
        const current = await observe(`writer-${seed}`, seen, client, id);
        try {
          const { lead } = await pick().client.updateLead({
            lead: { id, score: (revision(current) * 7 + seed) % 100, etag: current.etag },
            updateMask: ["score"],
          });
          writes++;
          acknowledged.get(id)?.push({ revision: revision(lead), at: performance.now() });
          seen.set(id, Math.max(seen.get(id) ?? 1, revision(lead)));
        } catch (error) {
          if (!(error instanceof ClientError && error.code === Status.ABORTED)) throw error;
        }
      }
      writersLeft--;
    }

    /** Expiry and eviction, sped up: emptied keys make reads miss and fill, racing the writers' puts (the compare-and-set's job). */
    let evictions = 0;
    async function evictor(seed: number) {
      const random = seededRandom(seed);
      while (writersLeft > 0) {
        evictions += await redis.del(`cache:leads:lead:${tenant}:${leadIds[Math.floor(random() * leadIds.length)]}`);
        await new Promise((resolve) => setTimeout(resolve, 1 + Math.floor(random() * 5)));
      }
    }

    async function reader(seed: number) {
      const random = seededRandom(seed);
      const seen = new Map<string, number>();
      while (writersLeft > 0) {
        await observe(`reader-${seed}`, seen, perReplica[Math.floor(random() * 2)], leadIds[Math.floor(random() * leadIds.length)]);
      }
    }

    const hitsBefore = await metricValue(replicas[0].service, "leadmesh_read_cache_lookups_total", { result: "hit" });
    await Promise.all([...[1, 2, 3, 4].map(writer), ...[11, 12, 13, 14, 15, 16].map(reader), evictor(21)]);

    expect(violations).toEqual([]);
    expect(writes).toBeGreaterThan(20);
    expect(reads).toBeGreaterThan(200);
    expect(evictions).toBeGreaterThan(20);
    // Served from the cache, not just from the database (the metric is per process: both replicas run in this one).
    expect((await metricValue(replicas[0].service, "leadmesh_read_cache_lookups_total", { result: "hit" })) - hitsBefore).toBeGreaterThan(reads / 4);
    // Settled: both replicas, the cache and the database agree on every lead.
    const mongo = await MongoClient.connect(meshInfo().mongoUrl);
    try {
      for (const id of leadIds) {
        const stored = await mongo
          .db(database)
          .collection("leads")
          .findOne({ _id: id as never, tenantId: tenant });
        for (const client of perReplica) expect(revision((await client.getLead({ id })).lead)).toBe(stored?.revision);
      }
    } finally {
      await mongo.close();
    }
  });

  it("shows a delete and an undelete to the other replica's next read, never the version before", async () => {
    const tenant = uniqueTenant("cache-delete");
    const [a, b] = replicas.map((replica) => clientOf(replica, tenant));
    const { lead } = await a.createLead({ lead: sample() });
    const id = lead!.id;
    expect((await b.getLead({ id })).lead).toEqual(lead);
    expect((await b.getLead({ id })).lead).toEqual(lead);

    const deleted = (await a.deleteLead({ id })).lead;
    // Soft delete (AIP-164): the database answers the deleted lead with its delete_time; so does the cache, never the live one.
    const afterDelete = (await b.getLead({ id })).lead;
    expect(afterDelete).toEqual(deleted);
    expect(afterDelete!.deleteTime).toBeInstanceOf(Date);
    expect((await clientOf(uncached, tenant).getLead({ id })).lead).toEqual(deleted);

    const restored = (await b.undeleteLead({ id })).lead;
    const afterUndelete = (await a.getLead({ id })).lead;
    expect(afterUndelete).toEqual(restored);
    expect(afterUndelete!.deleteTime).toBeUndefined();
    expect(revision(afterUndelete)).toBe(3);
  });

  it("answers every caller exactly what the database path answers: other tenants, agents, roles without access", async () => {
    const tenant = uniqueTenant("cache-access");
    const manager = clientOf(replicas[0], tenant);
    const leads = {
      mine: (await manager.createLead({ lead: sample({ assigneeId: "agent-1" }) })).lead!,
      theirs: (await manager.createLead({ lead: sample({ assigneeId: "agent-2" }) })).lead!,
      unassigned: (await manager.createLead({ lead: sample() })).lead!,
    };
    const callers: Record<string, [string, string[], string]> = {
      manager: [tenant, ["manager"], "manager-1"],
      admin: [tenant, ["admin"], "admin-1"],
      "agent-1": [tenant, ["agent"], "agent-1"],
      "agent-2": [tenant, ["agent"], "agent-2"],
      "no role": [tenant, [], "nobody"],
      "other tenant's admin": [uniqueTenant("cache-intruder"), ["admin"], "admin-1"],
    };
    const answers = async (replica: Replica) => {
      const table: Record<string, Status> = {};
      for (const [caller, [callerTenant, roles, sub]] of Object.entries(callers)) {
        const client = clientOf(replica, callerTenant, roles, sub);
        for (const [name, lead] of Object.entries(leads)) table[`${caller} → ${name}`] = await statusOf(client.getLead({ id: lead.id }));
      }
      return table;
    };
    // Every lead is in the cache (the manager's reads filled it) before anyone else asks.
    for (const lead of Object.values(leads)) await clientOf(replicas[1], tenant).getLead({ id: lead.id });
    for (const lead of Object.values(leads)) expect(await redis.exists(`cache:leads:lead:${tenant}:${lead.id}`)).toBe(1);

    const fromDatabase = await answers(uncached);
    expect(await answers(replicas[0])).toEqual(fromDatabase);
    expect(await answers(replicas[1])).toEqual(fromDatabase);
    // What the database path answers, spelled out: NOT_FOUND hides what the caller may not see, PERMISSION_DENIED is the access rule.
    expect(fromDatabase).toMatchObject({
      "agent-1 → mine": Status.OK,
      "agent-1 → theirs": Status.NOT_FOUND,
      "agent-1 → unassigned": Status.OK,
      "agent-2 → mine": Status.NOT_FOUND,
      "no role → mine": Status.PERMISSION_DENIED,
      "other tenant's admin → mine": Status.NOT_FOUND,
      "other tenant's admin → unassigned": Status.NOT_FOUND,
    });
    // A reassignment reaches the cache before its ack: agent-1 loses the lead at once on both replicas.
    await manager.updateLead({ lead: { id: leads.mine.id, assigneeId: "agent-2" }, updateMask: ["assignee_id"] });
    for (const replica of replicas)
      expect(await statusOf(clientOf(replica, tenant, ["agent"], "agent-1").getLead({ id: leads.mine.id }))).toBe(Status.NOT_FOUND);
  });
});
