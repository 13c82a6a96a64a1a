/**
 * RevisionedWrites.write against the real FerretDB of the test mesh: etag
 * checks, no-op changes, refusals, re-applying a change after a concurrent
 * write, and no lost update among parallel writers.
 */
import { randomUUID } from "node:crypto";
import { type Collection, type Db, MongoClient } from "mongodb";
import { meshInfo } from "../../../test/harness/mesh-info";
import {
  DomainError,
  EtagMismatchError,
  ensureRevisionClaimIndexes,
  FailedPreconditionError,
  NotFoundError,
  type RevisionClaim,
  type RevisionedDocument,
  RevisionedWrites,
} from "../src";

interface Counter extends RevisionedDocument {
  count: number;
  note: string;
  updateTime: Date;
}

const TENANT = "acme";
let client: MongoClient;
let db: Db;
let counters: Collection<Counter>;
let claims: Collection<RevisionClaim>;
let writes: RevisionedWrites<Counter>;

beforeAll(async () => {
  client = new MongoClient(meshInfo().mongoUrl);
  db = client.db(`revisions_${randomUUID().slice(0, 8)}`);
  counters = db.collection<Counter>("counters");
  claims = db.collection<RevisionClaim>("counter_revisions");
  await ensureRevisionClaimIndexes(db, "counter_revisions");
  writes = new RevisionedWrites("counter", counters, claims);
});

afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

async function newCounter(): Promise<string> {
  const id = randomUUID();
  await counters.insertOne({ _id: id, tenantId: TENANT, revision: 1, count: 0, note: "", updateTime: new Date(0) });
  return id;
}

async function read(id: string): Promise<Counter> {
  const document = await counters.findOne({ _id: id, tenantId: TENANT });
  if (!document) throw new NotFoundError("counter", id);
  return document;
}

const increment = (id: string, clientEtag = "") =>
  writes.write({ id, actorId: "u1", clientEtag, read: () => read(id), change: (current) => ({ count: current.count + 1 }) });

async function rejection(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    return error as DomainError;
  }
  throw new Error("expected the write to fail");
}

describe("RevisionedWrites.write", () => {
  it("writes the change and the stamp, moves the revision and records who wrote what", async () => {
    const id = await newCounter();
    const stampedAt = new Date("2026-01-01T00:00:00Z");
    const { before, after } = await writes.write({
      id,
      actorId: "u1",
      clientEtag: "1",
      read: () => read(id),
      change: () => ({ note: "hello" }),
      stamp: () => ({ updateTime: stampedAt }),
    });
    expect(before.revision).toBe(1);
    expect(after).toMatchObject({ revision: 2, note: "hello", updateTime: stampedAt });
    expect(await claims.findOne({ _id: `${id}:2` })).toMatchObject({ tenantId: TENANT, subjectId: id, actorId: "u1", fields: ["note", "updateTime"] });
  });

  it("refuses a stale client etag with the current one, writing nothing", async () => {
    const id = await newCounter();
    await increment(id);
    const error = await rejection(increment(id, "1"));
    expect(error).toBeInstanceOf(EtagMismatchError);
    expect(error.metadata).toEqual({ resource_type: "counter", resource_id: id, current_etag: "2" });
    expect((await read(id)).count).toBe(1);
  });

  it("writes nothing when the change is empty, and nothing when it is refused", async () => {
    const id = await newCounter();
    const unchanged = await writes.write({ id, actorId: "u1", clientEtag: "", read: () => read(id), change: () => undefined });
    expect(unchanged.after).toBe(unchanged.before);
    const refusal = new FailedPreconditionError("the counter is frozen");
    await expect(writes.write({ id, actorId: "u1", clientEtag: "", read: () => read(id), change: () => Promise.reject(refusal) })).rejects.toBe(refusal);
    expect(await read(id)).toMatchObject({ revision: 1, count: 0 });
    expect(await claims.countDocuments({ subjectId: id })).toBe(0);
  });

  it("propagates the reader's NOT_FOUND", async () => {
    const error = await rejection(increment("missing"));
    expect(error).toBeInstanceOf(NotFoundError);
  });

  /**
   * A change that lets a competing writer land first on its first
   * `interference` calls. The rival writes through its own RevisionedWrites,
   * as another replica would: writes of one document within one instance
   * queue behind each other (a change() writing its own document would wait
   * for itself).
   */
  function interfered(id: string, interference: number) {
    const rival = new RevisionedWrites("counter", counters, claims);
    let calls = 0;
    return async (current: Counter) => {
      calls++;
      if (calls <= interference) {
        const note = `rival ${calls}`;
        await rival.write({ id, actorId: "rival", clientEtag: "", read: () => read(id), change: () => ({ note }) });
      }
      return { count: current.count + 1 };
    };
  }

  it("re-applies a change without etag to the newer version after a concurrent write", async () => {
    const id = await newCounter();
    const { after } = await writes.write({ id, actorId: "u1", clientEtag: "", read: () => read(id), change: interfered(id, 1) });
    expect(after).toMatchObject({ revision: 3, count: 1, note: "rival 1" });
  });

  it("reports the concurrent write as the client's conflict when it sent an etag", async () => {
    const id = await newCounter();
    const error = await rejection(writes.write({ id, actorId: "u1", clientEtag: "1", read: () => read(id), change: interfered(id, 1) }));
    expect(error).toBeInstanceOf(EtagMismatchError);
    expect(error.metadata.current_etag).toBe("2");
    expect((await read(id)).count).toBe(0);
  });

  it("keeps re-applying a change without etag past many lost races", async () => {
    const id = await newCounter();
    const { after } = await writes.write({ id, actorId: "u1", clientEtag: "", read: () => read(id), change: interfered(id, 10) });
    expect(after).toMatchObject({ revision: 12, count: 1, note: "rival 10" });
    expect(await read(id)).toEqual(after);
  });

  it("gives up with ABORTED once its conflict budget is spent, or its call is cancelled", async () => {
    const impatient = new RevisionedWrites("counter", counters, claims, { conflictBudgetMs: 30 });
    const id = await newCounter();
    const error = await rejection(
      impatient.write({ id, actorId: "u1", clientEtag: "", read: () => read(id), change: interfered(id, Number.POSITIVE_INFINITY) }),
    );
    expect(error).toBeInstanceOf(EtagMismatchError);
    const rivals = (await read(id)).revision - 1;
    expect(rivals).toBeGreaterThan(0);
    expect(await read(id)).toMatchObject({ count: 0, note: `rival ${rivals}` });

    const cancelled = new AbortController();
    cancelled.abort();
    const other = await newCounter();
    const cancelledError = await rejection(
      writes.write({ id: other, actorId: "u1", clientEtag: "", read: () => read(other), change: interfered(other, 1), signal: cancelled.signal }),
    );
    expect(cancelledError).toBeInstanceOf(EtagMismatchError);
    expect(await read(other)).toMatchObject({ revision: 2, count: 0 });
  });

  it("lands every one of many parallel writes without etag: none lost, none refused", async () => {
    const id = await newCounter();
    const writers = 12;
    await Promise.all(Array.from({ length: writers }, () => increment(id)));
    expect(await read(id)).toMatchObject({ count: writers, revision: 1 + writers });
    expect(await claims.countDocuments({ subjectId: id })).toBe(writers);
  });

  it("lands every parallel write of two processes racing for one document (each queues its own, the two race)", async () => {
    const id = await newCounter();
    const replicas = [writes, new RevisionedWrites("counter", counters, claims)];
    const writers = 16;
    const bump = (replica: RevisionedWrites<Counter>) =>
      replica.write({ id, actorId: "u1", clientEtag: "", read: () => read(id), change: (current) => ({ count: current.count + 1 }) });
    await Promise.all(Array.from({ length: writers }, (_, index) => bump(replicas[index % 2] as RevisionedWrites<Counter>)));
    expect(await read(id)).toMatchObject({ count: writers, revision: 1 + writers });
  });
});
