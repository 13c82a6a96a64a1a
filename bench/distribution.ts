/**
 * Lead distribution in `npm run bench`: distributions per second through
 * Envoy (POST /api/v1/leads/{id}:distribute, a different QUALIFIED lead per
 * call, closed loop) and their p99, then GetBuyer next to GetLead over REST
 * with the same hey settings, back to back.
 *
 * A distribution is the mesh's first cross-service write: leads claims the
 * lead, buyers picks and charges a buyer (a revisioned write on the buyer,
 * the ledger entry on its claim) and records the sale, leads records it on
 * the lead. Every distribution competes for the same few buyer documents,
 * so the figure includes that contention; 409/503 answers (a distribution
 * already in progress, one pending after a slow charge) are counted and shown,
 * not hidden.
 *
 * It runs in a tenant of its own, so the leads it adds do not change the
 * other scenarios' data (the side-by-side ListLeads compares equal tenants).
 */
import type { BenchTenant } from "./identity";
import { hey, type LoadResult, vegetaClosedLoop } from "./load-tools";
import { type ScenarioResult, type TargetCheck, target } from "./report";

/** Concurrent distributions: enough to contend for the buyers, not a queue. */
export const DISTRIBUTE_CONCURRENCY = 8;
/** Leads prepared per measured second: above any rate two cores reach, or vegetaClosedLoop refuses to repeat leads. */
const LEADS_PER_SECOND = 120;
/** Buyers at the same price: the ranking spreads sales over them (fewest sales today first). */
const BUYERS = 4;
/** Distributions answered otherwise than 200 tolerated before the run counts as failed (they are reported either way). */
const MAX_DISTRIBUTE_ERROR_RATIO = 0.25;

export interface DistributionBench {
  ingressUrl: string;
  tenant: BenchTenant;
  durationS: number;
  warmupS: number;
  /** GET concurrency of the other REST scenarios, for GetBuyer and GetLead. */
  concurrency: number;
  /** run.ts's measure(): warm-up, measured run, process usage. */
  measure: (
    name: string,
    tool: ScenarioResult["tool"],
    pids: Record<string, number>,
    load: (durationS: number) => Promise<LoadResult>,
  ) => Promise<ScenarioResult>;
  /** Pids of the processes a call goes through (buyers, leads, users, envoy, datastores). */
  pids: Record<string, number>;
  log: (line: string) => void;
}

export interface DistributionResults {
  distribute: ScenarioResult;
  getBuyer: ScenarioResult;
  getLead: ScenarioResult;
}

async function call(bench: DistributionBench, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${bench.ingressUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${bench.tenant.accessToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`bench distribution setup: ${method} ${path} answered HTTP ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** `count` calls of `work`, `limit` at a time. */
async function bounded<T>(count: number, limit: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await work(index);
      }
    }),
  );
  return results;
}

async function prepare(bench: DistributionBench, leadCount: number): Promise<{ buyerId: string; leadIds: string[] }> {
  const buyerIds = await bounded(BUYERS, BUYERS, async (index) => {
    const { buyer } = (await call(bench, "POST", "/api/v1/buyers", {
      displayName: `Bench buyer ${index + 1}`,
      pricePerLead: { currencyCode: "USD", amountMinor: "250" },
    })) as { buyer: { id: string } };
    await call(bench, "POST", `/api/v1/buyers/${buyer.id}:topUp`, {
      amount: { currencyCode: "USD", amountMinor: "1000000000" },
      requestId: `bench-${buyer.id}`,
    });
    return buyer.id;
  });
  const started = Date.now();
  const leadIds = await bounded(leadCount, 16, async (index) => {
    const { lead } = (await call(bench, "POST", "/api/v1/leads", {
      firstName: `Bench ${index}`,
      email: "bench@example.com",
      source: "LEAD_SOURCE_WEB_FORM",
      status: "LEAD_STATUS_QUALIFIED",
      score: 60,
    })) as { lead: { id: string } };
    return lead.id;
  });
  bench.log(`created ${BUYERS} buyers and ${leadCount} QUALIFIED leads in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { buyerId: buyerIds[0], leadIds };
}

export async function distributionScenarios(bench: DistributionBench): Promise<DistributionResults> {
  const { buyerId, leadIds } = await prepare(bench, (bench.durationS + bench.warmupS) * LEADS_PER_SECOND);
  const auth = { authorization: `Bearer ${bench.tenant.accessToken}` };
  // Each run (warm-up, then measured) distributes leads no earlier run touched.
  let next = 0;
  const distribute = await bench.measure("DistributeLead REST via Envoy", "vegeta", bench.pids, async (durationS) => {
    const requests = leadIds
      .slice(next)
      .map((id) => ({ url: `${bench.ingressUrl}/api/v1/leads/${id}:distribute`, method: "POST" as const, body: "{}", headers: auth }));
    const result = await vegetaClosedLoop(requests, { durationS, concurrency: DISTRIBUTE_CONCURRENCY, maxErrorRatio: MAX_DISTRIBUTE_ERROR_RATIO });
    next += result.requests;
    return result;
  });
  bench.log(`  distribute status codes: ${JSON.stringify(distribute.statusCodes ?? {})}`);
  const getBuyer = await bench.measure("GetBuyer REST via Envoy", "hey", bench.pids, (durationS) =>
    hey({ url: `${bench.ingressUrl}/api/v1/buyers/${buyerId}`, headers: auth }, { durationS, concurrency: bench.concurrency }),
  );
  const getLead = await bench.measure("GetLead REST via Envoy (next to GetBuyer)", "hey", bench.pids, (durationS) =>
    hey({ url: `${bench.ingressUrl}/api/v1/leads/${leadIds[0]}`, headers: auth }, { durationS, concurrency: bench.concurrency }),
  );
  return { distribute, getBuyer, getLead };
}

export function distributionTargets({ getBuyer, getLead }: DistributionResults): TargetCheck[] {
  // Both are a cached read of one document by id behind the same kernel and edge.
  return [target("GetBuyer REST / GetLead REST", getBuyer.rps / getLead.rps, ">=", 0.9, "x")];
}

export function formatDistribution({ distribute }: DistributionResults): string {
  const failed = Object.entries(distribute.statusCodes ?? {}).filter(([code]) => !code.startsWith("2"));
  return (
    `distributions: ${distribute.rps.toFixed(1)}/s at concurrency ${DISTRIBUTE_CONCURRENCY}, p50 ${distribute.p50Ms.toFixed(1)} ms, p99 ${distribute.p99Ms.toFixed(1)} ms, ` +
    `${distribute.errors} of ${distribute.requests} not 200${failed.length > 0 ? ` (${failed.map(([code, count]) => `${count}× ${code}`).join(", ")})` : ""}`
  );
}
