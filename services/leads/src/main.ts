import type { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
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
  runMain,
  config as setting,
  startService,
} from "@leadmesh/platform";
import { leadHandlers } from "./handlers";
import { leadReadCache } from "./lead-cache";
import { ensureLeadIndexes, LeadStore } from "./store";

const readCacheSettings = {
  mode: setting.oneOf({
    env: "LEADS_READ_CACHE",
    description: "GetLead's Redis read cache (services/platform/src/cache)",
    values: ["on", "off"] as const,
    default: "on",
  }),
  redisUrl: setting.url({
    env: "READ_CACHE_REDIS_URL",
    description: "a Redis of the cache's own (e.g. with LRU eviction); its outage is not a health failure. Default: REDIS_URL",
    protocols: ["redis", "rediss"],
    default: "",
  }),
};

/**
 * `fetchKeys` replaces the JWKS lookup at the auth service (tests that sign
 * their own tokens); `accessRuleOverrides` is for the benchmark's
 * unauthenticated baseline only (bench/baseline-leads.ts): this file's own
 * entry point never passes it, and no environment variable reaches it.
 */
export async function startLeads(env: NodeJS.ProcessEnv = process.env, fetchKeys?: JwksFetcher, accessRuleOverrides?: Record<string, AccessRule>) {
  const config = loadServiceConfig("leads", env, ["mongodb", "redis"]);
  const cacheSettings = loadConfig(readCacheSettings, env);
  const logger = createLogger("leads");
  const transport = createMeshTransport(config, "leads", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "leads", ensureLeadIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  // The cache's own Redis is no dependency: fail-fast and health ignore it, its outage only sends reads to the database.
  const cacheRedis = cacheSettings.mode === "on" && cacheSettings.redisUrl !== "" ? connectRedis(cacheSettings.redisUrl, logger) : undefined;
  const cache = cacheSettings.mode === "on" ? leadReadCache(cacheRedis?.redis ?? redis.redis, logger) : undefined;
  const handlers = leadHandlers(new LeadStore(mongo.db), new IdempotencyKeys(redis.redis, "leads"), { cache });
  const auth = meshAuth(config, redis.redis, transport, fetchKeys);
  return startService({
    name: "leads",
    config,
    logger,
    services: [apiService(LeadServiceDefinition, handlers)],
    accessRuleOverrides,
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    transport,
    closeDependencies: async () => {
      auth.close();
      cache?.close();
      await Promise.all([mongo.close(), redis.close(), cacheRedis?.close()]);
    },
  });
}

if (require.main === module) runMain("leads", () => startLeads());
