import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import {
  apiService,
  connectMongo,
  connectRedis,
  createLogger,
  createMeshTransport,
  IdempotencyKeys,
  type JwksFetcher,
  loadServiceConfig,
  meshAuth,
  runMain,
  startService,
} from "@leadmesh/platform";
import { leadHandlers } from "./handlers";
import { ensureLeadIndexes, LeadStore } from "./store";

/** `fetchKeys` replaces the JWKS lookup at the auth service (tests that sign their own tokens). */
export async function startLeads(env: NodeJS.ProcessEnv = process.env, fetchKeys?: JwksFetcher) {
  const config = loadServiceConfig("leads", env, ["mongodb", "redis"]);
  const logger = createLogger("leads");
  const transport = createMeshTransport(config, "leads", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "leads", ensureLeadIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  const handlers = leadHandlers(new LeadStore(mongo.db), new IdempotencyKeys(redis.redis, "leads"));
  const auth = meshAuth(config, redis.redis, transport, fetchKeys);
  return startService({
    name: "leads",
    config,
    logger,
    services: [apiService(LeadServiceDefinition, handlers)],
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    transport,
    closeDependencies: async () => {
      auth.close();
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
}

if (require.main === module) runMain("leads", () => startLeads());
