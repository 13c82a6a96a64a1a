/**
 * leadmesh against the NestJS monolith it replaces (bench/monolith.ts), one
 * REST endpoint at a time: GetLead, ListLeads (a page of 20, newest first),
 * UpdateLead, CreateLead. Both get the same load tool with the same settings
 * and the same request bodies. Per endpoint, each side first runs an
 * unmeasured warm-up, then the measured rounds alternate in ABBA order
 * (monolith, leadmesh, leadmesh, monolith, …) so that a drift of the host
 * (page cache, another process, FerretDB's growing files) hits both alike,
 * a steady drift exactly so over each pair of rounds. A
 * side's figures are the means over its rounds; CPU is per process of its
 * request path, watched during each round.
 *
 * Creates run last: they grow the collections the reads and the list run
 * against. Both sides start from the same number of leads in their tenant.
 *
 * Failed requests do not stop the comparison (a side that sheds load under
 * it is a result): they are counted, and req/s counts successful responses
 * only, so fast errors cannot pass for throughput.
 */
import { type HeyRequest, hey, type LoadResult, vegetaClosedLoop } from "./load-tools";
import { type UsageByProcess, watchProcesses } from "./proc-stats";
import type { ScenarioResult } from "./report";

export const ENDPOINTS = ["GetLead", "ListLeads", "UpdateLead", "CreateLead"] as const;
export type Endpoint = (typeof ENDPOINTS)[number];
export const LIST_PAGE_SIZE = 20;
/** Leads each side holds in its tenant before the comparison (ListLeads reads 20 of them, UpdateLead cycles over them). */
export const SEEDED_LEADS = 100;
/**
 * Update bodies generated per second of a run: more than either side can
 * serve, so none repeats (vegetaClosedLoop fails the run if one would).
 */
const UPDATES_PER_SECOND_CEILING = 3000;

export interface Contender {
  name: "monolith" | "leadmesh";
  /** Root of the REST API, e.g. http://127.0.0.1:8080 (Envoy for leadmesh). */
  baseUrl: string;
  authorization: string;
  /** The lead GetLead reads. */
  leadId: string;
  /** Processes on the side's request path, by name: whose CPU is watched. */
  pids: Record<string, number>;
}

export interface SideBySideShape {
  warmupS: number;
  roundS: number;
  rounds: number;
  concurrency: number;
  /** Request body of CreateLead (and of the seeded leads). */
  leadBody: string;
}

export interface EndpointComparison {
  endpoint: Endpoint;
  monolith: ScenarioResult;
  leadmesh: ScenarioResult;
  /** Every measured round, in the order they ran. */
  rounds: { contender: Contender["name"]; result: LoadResult }[];
}

type Log = (line: string) => void;

async function createLead(contender: Contender, body: string): Promise<string> {
  const response = await fetch(`${contender.baseUrl}/api/v1/leads`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: contender.authorization },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const id = response.ok ? (JSON.parse(text) as { lead?: { id?: string } }).lead?.id : undefined;
  if (!id) throw new Error(`seeding ${contender.name}: POST /api/v1/leads answered HTTP ${response.status} ${text.slice(0, 300)}`);
  return id;
}

/** Creates leads through the API until the side holds `count` more, a few at a time; returns their ids. */
async function seedLeads(contender: Contender, count: number, body: string): Promise<string[]> {
  const ids: string[] = [];
  const PARALLEL = 8;
  for (let start = 0; start < count; start += PARALLEL) {
    const batch = Array.from({ length: Math.min(PARALLEL, count - start) }, () => createLead(contender, body));
    ids.push(...(await Promise.all(batch)));
  }
  return ids;
}

let updateRun = 0;
/** Updates cycling over `leadIds`, each body a first name no earlier request set: every one is a real write. */
function updateRequests(contender: Contender, leadIds: string[], durationS: number): HeyRequest[] {
  const run = ++updateRun;
  const count = UPDATES_PER_SECOND_CEILING * durationS;
  return Array.from({ length: count }, (_, index) => ({
    url: `${contender.baseUrl}/api/v1/leads/${leadIds[index % leadIds.length]}`,
    method: "PATCH" as const,
    body: JSON.stringify({ firstName: `Bench r${run} u${index}` }),
    headers: { authorization: contender.authorization },
  }));
}

function load(endpoint: Endpoint, contender: Contender, updateLeadIds: string[], shape: SideBySideShape, durationS: number): Promise<LoadResult> {
  const headers = { authorization: contender.authorization };
  const closedLoop = { durationS, concurrency: shape.concurrency, maxErrorRatio: 1 };
  switch (endpoint) {
    case "GetLead":
      return hey({ url: `${contender.baseUrl}/api/v1/leads/${contender.leadId}`, headers }, closedLoop);
    case "ListLeads":
      return hey({ url: `${contender.baseUrl}/api/v1/leads?pageSize=${LIST_PAGE_SIZE}`, headers }, closedLoop);
    case "CreateLead":
      return hey({ url: `${contender.baseUrl}/api/v1/leads`, method: "POST", body: shape.leadBody, headers }, closedLoop);
    case "UpdateLead":
      // hey repeats one body, and an update to the value a lead already has writes nothing (leadmesh answers it as a read).
      return vegetaClosedLoop(updateRequests(contender, updateLeadIds, durationS), closedLoop);
  }
}

const toolOf = (endpoint: Endpoint): ScenarioResult["tool"] => (endpoint === "UpdateLead" ? "vegeta" : "hey");

/** Successful responses per second: hey's rate counts every response, vegeta's throughput only successes. */
function successfulRps(result: LoadResult, tool: ScenarioResult["tool"]): number {
  if (tool !== "hey" || result.requests === 0) return result.rps;
  return (result.rps * (result.requests - result.errors)) / result.requests;
}
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

interface Round {
  result: LoadResult;
  usage: ScenarioResult["usage"];
}

/** One side's rounds as one scenario: means of rates, percentiles and CPU; peak RSS; summed counts. */
function combine(name: string, tool: ScenarioResult["tool"], rounds: Round[]): ScenarioResult {
  const processes: UsageByProcess = {};
  for (const process of Object.keys(rounds[0].usage.processes)) {
    processes[process] = {
      cpuPercent: mean(rounds.map((round) => round.usage.processes[process].cpuPercent)),
      maxRssMb: Math.max(...rounds.map((round) => round.usage.processes[process].maxRssMb)),
    };
  }
  return {
    name,
    tool,
    rps: mean(rounds.map((round) => successfulRps(round.result, tool))),
    p50Ms: mean(rounds.map((round) => round.result.p50Ms)),
    p99Ms: mean(rounds.map((round) => round.result.p99Ms)),
    requests: rounds.reduce((sum, round) => sum + round.result.requests, 0),
    errors: rounds.reduce((sum, round) => sum + round.result.errors, 0),
    usage: {
      hostCpuPercent: mean(rounds.map((round) => round.usage.hostCpuPercent)),
      loadGeneratorCpuPercent: mean(rounds.map((round) => round.usage.loadGeneratorCpuPercent)),
      otherCpuPercent: mean(rounds.map((round) => round.usage.otherCpuPercent)),
      processes,
    },
  };
}

export async function compareSideBySide(monolith: Contender, leadmesh: Contender, shape: SideBySideShape, log: Log): Promise<EndpointComparison[]> {
  const contenders = [monolith, leadmesh];
  log(`seeding ${SEEDED_LEADS} leads on each side`);
  const seeded = new Map<Contender["name"], string[]>();
  for (const contender of contenders) seeded.set(contender.name, await seedLeads(contender, SEEDED_LEADS, shape.leadBody));
  const comparisons: EndpointComparison[] = [];
  for (const endpoint of ENDPOINTS) {
    log(`comparing ${endpoint}: ${shape.warmupS}s warm-up per side, then ${shape.rounds} rounds of ${shape.roundS}s per side, alternating (ABBA)`);
    const run = (contender: Contender, durationS: number) => load(endpoint, contender, seeded.get(contender.name) ?? [], shape, durationS);
    for (const contender of contenders) await run(contender, shape.warmupS);
    const rounds: { contender: Contender["name"]; result: LoadResult; usage: ScenarioResult["usage"] }[] = [];
    for (let round = 1; round <= shape.rounds; round++) {
      // ABBA: every second round starts with the side that ended the previous one.
      for (const contender of round % 2 === 1 ? contenders : [...contenders].reverse()) {
        const watch = watchProcesses(contender.pids);
        const result = await run(contender, shape.roundS).catch((error: unknown) => {
          watch.cancel();
          throw error;
        });
        const usage = watch.stop();
        rounds.push({ contender: contender.name, result, usage });
        log(
          `  ${endpoint} ${contender.name} round ${round}: ${Math.round(successfulRps(result, toolOf(endpoint)))} successful req/s, ` +
            `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.errors} of ${result.requests} failed` +
            (result.errors > 0 ? ` (HTTP status: count ${JSON.stringify(result.statusCodes ?? {})})` : ""),
        );
      }
    }
    const sideOf = (contender: Contender) =>
      combine(
        `${endpoint} REST ${contender.name}`,
        toolOf(endpoint),
        rounds.filter((round) => round.contender === contender.name),
      );
    comparisons.push({
      endpoint,
      monolith: sideOf(monolith),
      leadmesh: sideOf(leadmesh),
      rounds: rounds.map(({ contender, result }) => ({ contender, result })),
    });
  }
  return comparisons;
}
