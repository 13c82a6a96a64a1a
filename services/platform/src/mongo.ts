/**
 * MongoDB access. One database per service. The same code runs on MongoDB /
 * Atlas in production and on FerretDB (SQLite backend) locally, so stores
 * must stay within what both support: single-document atomic writes
 * (findOneAndUpdate), no multi-document transactions, no change streams.
 */
import { type Collection, type Db, type Document, type IndexDescription, MongoClient } from "mongodb";
import type { DependencyCheck } from "./health";

export interface MongoHandle {
  client: MongoClient;
  db: Db;
  /** Ping plus one-time index creation; the service is not ready before both succeed. */
  healthCheck: DependencyCheck;
  close(): Promise<void>;
}

export function connectMongo(url: string, database: string, appName: string, ensureIndexes: (db: Db) => Promise<void>): MongoHandle {
  // No explicit connect(): the driver connects lazily and reconnects by
  // itself, so a service can start while the database is still down and just
  // report NOT_SERVING until it appears. Once the health check has seen the
  // database down, fail-fast.ts refuses calls before they reach the driver;
  // the timeouts here bound only the calls already under way when it went
  // (and a first call before the next check). Server selection is capped at
  // 1 s: waiting longer for a server than the service takes to declare the
  // database down serves no caller, and on a healthy topology selection is
  // immediate. A database that hangs instead of refusing is noticed by the
  // driver's monitor (heartbeat every 1 s), which fails the calls waiting on
  // it. The connect budget is also the heartbeat's reply budget: 2 s, so a
  // saturated database that answers in 1.5 s stays usable (health.ts: slow
  // is not down) instead of the driver dropping it and every call on it;
  // measured on a frozen FerretDB, calls already under way ended after
  // 2-3.5 s with a 1 s budget and 3.6-7 s with 2 s heartbeats.
  const client = new MongoClient(url, {
    appName,
    serverSelectionTimeoutMS: 1000,
    connectTimeoutMS: 2000,
    socketTimeoutMS: 15000,
    heartbeatFrequencyMS: 1000,
    maxPoolSize: 50,
    // A call that cannot get a connection within 5 s fails instead of queueing without bound (revisions.ts relies on the bound).
    waitQueueTimeoutMS: 5000,
  });
  const db = client.db(database);
  let indexesReady = false;
  return {
    client,
    db,
    healthCheck: {
      name: "mongodb",
      async check() {
        await db.command({ ping: 1 });
        if (!indexesReady) {
          await ensureIndexes(db);
          indexesReady = true;
        }
      },
    },
    close: () => client.close(),
  };
}

const NAMESPACE_NOT_FOUND = 26;

/**
 * Creates the named indexes that do not exist yet. Only missing ones are
 * sent because FerretDB v1.24 crashes the connection on a createIndexes that
 * repeats an existing index (MongoDB would accept it as a no-op).
 */
export async function ensureIndexes<T extends Document>(collection: Collection<T>, indexes: (IndexDescription & { name: string })[]): Promise<void> {
  let existing: string[] = [];
  try {
    existing = (await collection.listIndexes().toArray()).map((index) => String(index.name));
  } catch (error) {
    if ((error as { code?: number }).code !== NAMESPACE_NOT_FOUND) throw error;
  }
  const missing = indexes.filter((index) => !existing.includes(index.name));
  if (missing.length > 0) await collection.createIndexes(missing);
}

/**
 * A unique-index violation. MongoDB reports code 11000 everywhere; FerretDB
 * v1 does on inserts, but on updates answers InternalError (code 1) naming
 * the SQLite constraint.
 */
export function isDuplicateKey(error: unknown): boolean {
  const failure = error as { code?: number; message?: string } | undefined;
  return failure?.code === 11000 || (failure?.code === 1 && /UNIQUE constraint failed/.test(failure.message ?? ""));
}
