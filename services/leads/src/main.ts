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
  peerAddress,
  runMain,
  config as setting,
  startService,
} from "@leadmesh/platform";
import { BuyersGateway } from "./distribution/buyers-gateway";
import { Distributor } from "./distribution/distribute";
import { LeadWriter } from "./distribution/lead-writer";
import { DistributionMarkers } from "./distribution/markers";
import { DistributionRecovery, distributionRecoverySettings } from "./distribution/recovery";
import { cachedLeadWrites, leadHandlers } from "./handlers";
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

const peerSettings = {
  buyersAddress: peerAddress({ env: "BUYERS_ADDRESS", description: "the buyers service's replicas (SellLead)", default: "dns:///buyers:50051" }),
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
  const peers = loadConfig(peerSettings, env);
  const recoverySettings = loadConfig(distributionRecoverySettings, env);
  const logger = createLogger("leads");
  const transport = createMeshTransport(config, "leads", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "leads", ensureLeadIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  // The cache's own Redis is no dependency: fail-fast and health ignore it, its outage only sends reads to the database.
  const cacheRedis = cacheSettings.mode === "on" && cacheSettings.redisUrl !== "" ? connectRedis(cacheSettings.redisUrl, logger) : undefined;
  const cache = cacheSettings.mode === "on" ? leadReadCache(cacheRedis?.redis ?? redis.redis, logger) : undefined;
  const store = new LeadStore(mongo.db);
  const writer = new LeadWriter(store, cachedLeadWrites(cache), () => new Date());
  const markers = new DistributionMarkers(mongo.db);
  const buyers = new BuyersGateway(peers.buyersAddress, transport);
  const distributor = new Distributor({ writer, markers, buyers, logger });
  const recovery = new DistributionRecovery(distributor, markers, writer, recoverySettings, logger);
  const handlers = leadHandlers(store, new IdempotencyKeys(redis.redis, "leads"), { distributor, writer }, { cache });
  const auth = meshAuth(config, redis.redis, transport, fetchKeys);
  const running = await startService({
    name: "leads",
    config,
    logger,
    services: [apiService(LeadServiceDefinition, handlers)],
    accessRuleOverrides,
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    transport,
    closeDependencies: async () => {
      // First: a sweep in progress finishes its lead before the stores close under it.
      await recovery.stop();
      buyers.close();
      auth.close();
      cache?.close();
      await Promise.all([mongo.close(), redis.close(), cacheRedis?.close()]);
    },
  });
  recovery.start();
  return running;
}

if (require.main === module) runMain("leads", () => startLeads());
