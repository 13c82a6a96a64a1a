/**
 * The datastore health checks against the test mesh's real FerretDB and
 * Redis: a fresh client passes its very first check (a service must not start
 * NOT_SERVING, and then sit out a recovery run, because its sockets were
 * still opening), and a datastore that is not there fails the check at once
 * rather than after the check's timeout.
 */
import { pino } from "pino";
import { freePort } from "../../../scripts/mesh/processes";
import { meshInfo } from "../../../test/harness/mesh-info";
import { connectMongo } from "../src/mongo";
import { connectRedis } from "../src/redis";

const silent = pino({ level: "silent" });

async function timed(check: () => Promise<unknown>) {
  const started = Date.now();
  try {
    await check();
    return { passed: true, ms: Date.now() - started };
  } catch (error) {
    return { passed: false, ms: Date.now() - started, reason: (error as Error).message };
  }
}

describe("redis health check", () => {
  it("passes on a client created this instant", async () => {
    const redis = connectRedis(meshInfo().redisUrl, silent);
    try {
      expect(await timed(() => redis.healthCheck.check())).toMatchObject({ passed: true });
    } finally {
      await redis.close();
    }
  });

  it("fails within moments when nothing listens", async () => {
    const redis = connectRedis(`redis://127.0.0.1:${await freePort()}`, silent);
    try {
      const outcome = await timed(() => redis.healthCheck.check());
      expect(outcome).toMatchObject({ passed: false });
      expect(outcome.ms).toBeLessThan(500);
    } finally {
      await redis.close();
    }
  });
});

describe("mongodb health check", () => {
  it("passes on a client created this instant", async () => {
    const mongo = connectMongo(meshInfo().mongoUrl, `checks_${Date.now().toString(36)}`, "checks", async () => undefined);
    try {
      expect(await timed(() => mongo.healthCheck.check())).toMatchObject({ passed: true });
    } finally {
      await mongo.close();
    }
  });

  it("fails within the server selection budget when nothing listens", async () => {
    const mongo = connectMongo(`mongodb://127.0.0.1:${await freePort()}/`, "checks", "checks", async () => undefined);
    try {
      const outcome = await timed(() => mongo.healthCheck.check());
      expect(outcome).toMatchObject({ passed: false });
      expect(outcome.ms).toBeLessThan(1_500);
    } finally {
      await mongo.close();
    }
  });
});
