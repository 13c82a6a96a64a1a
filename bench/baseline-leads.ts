/**
 * Bench only, never deployed: the leads service wired exactly as
 * services/leads/src/main.ts wires it (the same compiled handlers, store,
 * platform bootstrap and auth middleware), except that the definition it
 * serves declares GetLead public. That is the unauthenticated baseline the
 * benchmark measures the cost of authentication against:
 *
 *   node --import tsx bench/baseline-leads.ts     (environment as for leads)
 *
 * Production has no switch for this: services' main files never pass
 * accessRuleOverrides; only this file does.
 * An anonymous caller has tenant "", so the bench inserts its baseline lead
 * under tenant "" in this process's own database (MONGO_DATABASE).
 */
import { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { leadHandlers } from "@leadmesh/leads/dist/handlers";
import { ensureLeadIndexes, LeadStore } from "@leadmesh/leads/dist/store";
import {
  apiService,
  connectMongo,
  connectRedis,
  createLogger,
  createMeshTransport,
  IdempotencyKeys,
  loadServiceConfig,
  meshAuth,
  runMain,
  startService,
} from "@leadmesh/platform";

/** services/leads/src/main.ts startLeads, with GetLead public. */
async function startBaselineLeads(env: NodeJS.ProcessEnv = process.env) {
  const config = loadServiceConfig("leads", env, ["mongodb", "redis"]);
  const logger = createLogger("leads");
  const transport = createMeshTransport(config, "leads", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "leads", ensureLeadIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  const handlers = leadHandlers(new LeadStore(mongo.db), new IdempotencyKeys(redis.redis, "leads"));
  const auth = meshAuth(config, redis.redis, transport);
  logger.warn("BENCHMARK BASELINE: GetLead is served without authentication (bench/baseline-leads.ts)");
  return startService({
    name: "leads",
    config,
    logger,
    services: [apiService(LeadServiceDefinition, handlers)],
    accessRuleOverrides: { "/leads.v1.LeadService/GetLead": AccessRule.fromPartial({ public: true }) },
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    transport,
    closeDependencies: async () => {
      auth.close();
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
}

if (require.main === module) runMain("leads-baseline", () => startBaselineLeads());
