/**
 * Bench only, never deployed: the leads service started by
 * services/leads/src/main.ts's own startLeads (the same handlers, store,
 * read cache, platform bootstrap and auth middleware), except that GetLead
 * is declared public. That is the unauthenticated baseline the
 * benchmark measures the cost of authentication against:
 *
 *   node --import tsx bench/baseline-leads.ts     (environment as for leads)
 *
 * Production has no switch for this: leads' entry point never passes
 * accessRuleOverrides, and no environment variable reaches them; only this
 * file does.
 * An anonymous caller has tenant "", so the bench inserts its baseline lead
 * under tenant "" in this process's own database (MONGO_DATABASE).
 */
import { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { startLeads } from "@leadmesh/leads/dist/main";
import { createLogger, runMain } from "@leadmesh/platform";

/** services/leads/src/main.ts startLeads, with GetLead public. */
async function startBaselineLeads(env: NodeJS.ProcessEnv = process.env) {
  createLogger("leads").warn("BENCHMARK BASELINE: GetLead is served without authentication (bench/baseline-leads.ts)");
  return startLeads(env, undefined, { "/leads.v1.LeadService/GetLead": AccessRule.fromPartial({ public: true }) });
}

if (require.main === module) runMain("leads-baseline", () => startBaselineLeads());
