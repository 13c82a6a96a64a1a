import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { apiService, connectMongo, connectRedis, createLogger, IdempotencyKeys, loadServiceConfig, runMain, startService } from "@leadmesh/platform";
import { leadHandlers } from "./handlers";
import { ensureLeadIndexes, LeadStore } from "./store";

export async function startLeads(env: NodeJS.ProcessEnv = process.env) {
  const config = loadServiceConfig("leads", env);
  const logger = createLogger("leads");
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "leads", ensureLeadIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  const handlers = leadHandlers(new LeadStore(mongo.db), new IdempotencyKeys(redis.redis, "leads"));
  return startService({
    name: "leads",
    config,
    logger,
    services: [apiService(LeadServiceDefinition, handlers)],
    dependencies: [mongo.healthCheck, redis.healthCheck],
    closeDependencies: async () => {
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
}

if (require.main === module) runMain("leads", () => startLeads());
