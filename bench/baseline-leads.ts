/**
 * Bench only, never deployed: the leads service wired exactly as
 * services/leads/src/main.ts wires it (the same compiled handlers, store,
 * platform bootstrap and auth middleware), except that the definition it
 * serves declares GetLead public. That is the unauthenticated baseline the
 * benchmark measures the cost of authentication against:
 *
 *   node --import tsx bench/baseline-leads.ts     (environment as for leads)
 *
 * Production has no switch for this: the access rule comes from the
 * generated contracts, and only this file serves a rewritten copy of them.
 * An anonymous caller has tenant "", so the bench inserts its baseline lead
 * under tenant "" in this process's own database (MONGO_DATABASE).
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { leadHandlers } from "@leadmesh/leads/dist/handlers";
import { ensureLeadIndexes, LeadStore } from "@leadmesh/leads/dist/store";
import {
  accessRuleOf,
  apiService,
  connectMongo,
  connectRedis,
  createLogger,
  IdempotencyKeys,
  loadServiceConfig,
  meshAuth,
  runMain,
  startService,
} from "@leadmesh/platform";

/** `(common.v1.access)` is field 50100 of MethodOptions, length-delimited: (50100 << 3) | 2. */
const ACCESS_OPTION_TAG = (50100 << 3) | 2;

type MethodName = keyof typeof LeadServiceDefinition.methods;

/**
 * A copy of the definition whose `method` carries the rule `{public: true}`
 * in place of its declared one. ts-proto keeps each occurrence of a custom
 * option as its length-prefixed payload (see platform auth/access-rules.ts).
 */
export function withPublicMethod(method: MethodName): typeof LeadServiceDefinition {
  const original = LeadServiceDefinition.methods[method];
  const payload = AccessRule.encode(AccessRule.fromPartial({ public: true })).finish();
  const options = {
    ...original.options,
    _unknownFields: { ...original.options._unknownFields, [ACCESS_OPTION_TAG]: [new BinaryWriter().bytes(payload).finish()] },
  };
  const rewritten = { ...original, options };
  // Decoded by the kernel's own reader, as startService will.
  if (!accessRuleOf(rewritten as unknown as Parameters<typeof accessRuleOf>[0])?.public) throw new Error(`rewriting the access rule of ${method} failed`);
  return { ...LeadServiceDefinition, methods: { ...LeadServiceDefinition.methods, [method]: rewritten } } as typeof LeadServiceDefinition;
}

/** services/leads/src/main.ts startLeads, with GetLead public. */
async function startBaselineLeads(env: NodeJS.ProcessEnv = process.env) {
  const config = loadServiceConfig("leads", env);
  const logger = createLogger("leads");
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "leads", ensureLeadIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  const handlers = leadHandlers(new LeadStore(mongo.db), new IdempotencyKeys(redis.redis, "leads"));
  const auth = meshAuth(config, redis.redis);
  logger.warn("BENCHMARK BASELINE: GetLead is served without authentication (bench/baseline-leads.ts)");
  return startService({
    name: "leads",
    config,
    logger,
    services: [apiService(withPublicMethod("getLead"), handlers)],
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    closeDependencies: async () => {
      auth.close();
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
}

if (require.main === module) runMain("leads-baseline", () => startBaselineLeads());
