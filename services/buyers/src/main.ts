import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import type { AccessRule } from "@leadmesh/contracts/common/v1/access";
import {
  apiService,
  connectMongo,
  connectRedis,
  createLogger,
  createMeshTransport,
  IdempotencyKeys,
  type JwksFetcher,
  loadConfig,
  loadServiceConfig,
  meshAuth,
  peerAddress,
  runMain,
  config as setting,
  startService,
} from "@leadmesh/platform";
import { buyerReadCache } from "./buyer-cache";
import { buyerServiceHandlers } from "./handlers";
import { BuyerAccess } from "./handlers/buyer-access";
import { saleBackgroundTask, saleHandlers } from "./sales/handlers";
import { ensureSaleIndexes } from "./sales/sales-store";
import type { BackgroundTask, SaleServiceDeps } from "./service-deps";
import { BuyerStore, ensureBuyerIndexes } from "./store";
import { TenantTimeZones, usersTenantZoneLookup } from "./tenant-time-zones";

const buyerSettings = {
  usersAddress: peerAddress({ env: "USERS_ADDRESS", description: "the users service's replicas (tenant time zones)", default: "dns:///users:50051" }),
  leadsAddress: peerAddress({
    env: "LEADS_ADDRESS",
    description: "the leads service's replicas (a returned sale releases its lead)",
    default: "dns:///leads:50051",
  }),
  readCache: setting.oneOf({
    env: "BUYERS_READ_CACHE",
    description: "GetBuyer's Redis read cache (services/platform/src/cache)",
    values: ["on", "off"] as const,
    default: "on",
  }),
};

/**
 * Tasks started beside the server, once it serves, with the sale side's
 * dependencies, and stopped at shutdown: the returns sweeper (src/sales/).
 */
export const backgroundTasks: Array<(deps: SaleServiceDeps) => BackgroundTask> = [saleBackgroundTask];

/**
 * `fetchKeys` replaces the JWKS lookup at the auth service (tests that sign
 * their own tokens); `accessRuleOverrides` is for benchmark baselines only.
 */
export async function startBuyers(env: NodeJS.ProcessEnv = process.env, fetchKeys?: JwksFetcher, accessRuleOverrides?: Record<string, AccessRule>) {
  const config = loadServiceConfig("buyers", env, ["mongodb", "redis"]);
  const settings = loadConfig(buyerSettings, env);
  const logger = createLogger("buyers");
  const transport = createMeshTransport(config, "buyers", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "buyers", async (db) => {
    await ensureBuyerIndexes(db);
    await ensureSaleIndexes(db);
  });
  const redis = connectRedis(config.redisUrl, logger);
  const zones = usersTenantZoneLookup(settings.usersAddress, transport);
  const cache = settings.readCache === "on" ? buyerReadCache(redis.redis, logger) : undefined;
  const buyers = new BuyerAccess({ store: new BuyerStore(mongo.db), timeZones: new TenantTimeZones(zones.lookup, logger), cache, clock: () => new Date() });
  const saleDeps: SaleServiceDeps = { db: mongo.db, buyers, logger, transport, leadsAddress: settings.leadsAddress, env };
  const handlers = buyerServiceHandlers(buyers, new IdempotencyKeys(redis.redis, "buyers"), saleHandlers(saleDeps));
  const auth = meshAuth(config, redis.redis, transport, fetchKeys);
  logger.info({ usersAddress: settings.usersAddress, leadsAddress: settings.leadsAddress, readCache: settings.readCache }, "buyers settings");
  let tasks: BackgroundTask[] = [];
  const running = await startService({
    name: "buyers",
    config,
    logger,
    services: [apiService(BuyerServiceDefinition, handlers)],
    accessRuleOverrides,
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    transport,
    closeDependencies: async () => {
      await Promise.all(tasks.map((task) => task.stop()));
      auth.close();
      cache?.close();
      zones.close();
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
  tasks = backgroundTasks.map((start) => start(saleDeps));
  return running;
}

if (require.main === module) runMain("buyers", () => startBuyers());
