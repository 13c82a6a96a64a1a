/**
 * `npm run bench`: throughput and latency of the gRPC stack and the mesh, in
 * one bounded run on loopback, compared with the performance targets.
 *
 *   1. bare @grpc/grpc-js echo and nice-grpc echo (ghz): the ceiling of the RPC stack;
 *   2. leads GetLead over gRPC, directly on the service port (ghz): over mTLS
 *      as the operator, then back to back in plaintext against a second
 *      leads in sidecar mode (bench/sidecar-leads.ts), which is what mTLS
 *      costs the service;
 *   3. GetLead over REST through Envoy without authentication (the baseline,
 *      see bench/baseline.ts), then the same with a token, back to back;
 *   4. GetLead and CreateLead over REST through Envoy's transcoder (hey),
 *      Envoy talking mTLS to the services as every mesh hop does;
 *   5. GetLead over REST at half its maximum rate: latency below saturation;
 *   6. side by side with the NestJS + Mongoose monolith leadmesh replaces
 *      (bench/monolith/, bench/side-by-side.ts): GetLead, ListLeads,
 *      UpdateLead and CreateLead over REST, interleaved rounds, same tool
 *      and settings, on the same FerretDB, with the ratios and their targets;
 *   7. sign-ins (POST /api/v1/auth:login): logins per second at the
 *      configured password hash cost;
 *   8. lead distribution (bench/distribution.ts): distributions per second
 *      through Envoy and their p99, then GetBuyer next to GetLead over REST.
 *
 * Every leads call carries the access token of a tenant admin registered at
 * the start (tokens live 15 minutes, far longer than the run), so Envoy's
 * jwt_authn and the service's auth middleware do their real work.
 *
 * Servers run one at a time, each in its own process, so a scenario never
 * shares the two cores with an idle-but-present server of another one.
 * BENCH_DURATION sets the seconds per scenario (default 10; 2-3 for a smoke run).
 * BENCH_ONLY=distribution runs only the mesh and scenario 8 (a quick look at distribution).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DESCRIPTOR_PATH } from "../scripts/mesh/descriptor";
import { type RunningMesh, startMesh } from "../scripts/mesh/local-mesh";
import { loadMeshModel, serviceOf } from "../scripts/mesh/model";
import { REPO_ROOT } from "../scripts/mesh/topology";
import { startBaseline } from "./baseline";
import { type DistributionResults, distributionScenarios, distributionTargets, formatDistribution } from "./distribution";
import { ECHO_CALL, ECHO_PROTO, type EchoKind, startEchoServer } from "./echo-servers";
import { type BenchTenant, loginBody, passwordHashOf, registerTenant } from "./identity";
import { type GhzShape, ghz, hey, type LoadResult, vegeta } from "./load-tools";
import { startMonolith } from "./monolith";
import { watchProcesses } from "./proc-stats";
import {
  backgroundLoadWarning,
  cpuPerRequestUs,
  formatAuthCost,
  formatSideBySide,
  formatTable,
  formatTargets,
  formatTransportCost,
  type ScenarioResult,
  sideBySideTargets,
  type TargetCheck,
  target,
  writeResults,
} from "./report";
import { compareSideBySide, type EndpointComparison, type SideBySideShape } from "./side-by-side";
import { startSidecarLeads } from "./sidecar-leads";

const DURATION_S = durationFromEnv(process.env.BENCH_DURATION, 10);
const ONLY_DISTRIBUTION = onlyFromEnv(process.env.BENCH_ONLY);
/** Short unmeasured run first, so JIT compilation and connection set-up stay out of the numbers. */
const WARMUP_S = Math.min(3, Math.max(1, Math.round(DURATION_S / 5)));
const CONCURRENCY = 50;
/** Several HTTP/2 connections, as a real client pool (or Envoy) would use. */
const GHZ_CONNECTIONS = 4;
/** Sign-ins are CPU-bound (the password hash): a few concurrent clients saturate them. */
const LOGIN_CONCURRENCY = 8;
// The login scenario signs one account in from one address, LOGIN_CONCURRENCY
// at a time, hundreds of times: lift both sign-in limits (each attempt counts
// against the account while it is being checked).
const SERVICE_ENV = { LOGIN_MAX_ATTEMPTS_PER_ADDRESS: "100000", LOGIN_MAX_FAILURES: "1000" };
const RESULTS_FILE = join(REPO_ROOT, ".run", "bench", "results.json");
const LEAD_BODY = JSON.stringify({ firstName: "Bench", email: "bench@example.com", source: "LEAD_SOURCE_WEB_FORM" });
/** Each side of the comparison gets DURATION_S of measured load per endpoint, in two rounds that alternate with the other side's. */
const SIDE_BY_SIDE: SideBySideShape = {
  // Longer than the other scenarios' warm-up: the monolith's Mongo pool (driver default maxConnecting 2) grows
  // for several seconds under load, and a long-running monolith has a full one.
  warmupS: Math.min(5, DURATION_S),
  rounds: 2,
  roundS: Math.max(1, Math.round(DURATION_S / 2)),
  concurrency: CONCURRENCY,
  leadBody: LEAD_BODY,
};

function durationFromEnv(text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const seconds = Number(text);
  if (Number.isInteger(seconds) && seconds >= 1 && seconds <= 60) return seconds;
  console.error(`bench: BENCH_DURATION must be whole seconds between 1 and 60, got "${text}"`);
  process.exit(2);
}

function onlyFromEnv(text: string | undefined): boolean {
  if (text === undefined || text === "") return false;
  if (text === "distribution") return true;
  console.error(`bench: BENCH_ONLY may only be "distribution", got "${text}"`);
  process.exit(2);
}

const log = (line: string) => console.log(`bench: ${line}`);

type Load = (durationS: number) => Promise<LoadResult>;

/** Warms up, then measures `load` while watching the server processes. */
async function measure(name: string, tool: ScenarioResult["tool"], pids: Record<string, number>, load: Load, warmup = true): Promise<ScenarioResult> {
  if (warmup) await load(WARMUP_S);
  log(`measuring ${name} for ${DURATION_S}s`);
  const watch = watchProcesses(pids);
  const result = await load(DURATION_S).catch((error: unknown) => {
    watch.cancel();
    throw error;
  });
  const usage = watch.stop();
  log(`  ${Math.round(result.rps)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ${result.errors} errors`);
  return { name, tool, ...result, usage };
}

function pidOf(managed: { pid: number | undefined }, name: string): number {
  if (managed.pid === undefined) throw new Error(`${name} has no pid; did it start?`);
  return managed.pid;
}

const ghzShape = (durationS: number): GhzShape => ({ durationS, concurrency: CONCURRENCY, connections: GHZ_CONNECTIONS });

async function echoScenario(kind: EchoKind, name: string, runDir: string): Promise<ScenarioResult> {
  const server = await startEchoServer(kind, runDir);
  try {
    const echo = { address: `127.0.0.1:${server.port}`, call: ECHO_CALL, proto: ECHO_PROTO, data: { message: "bench" } };
    return await measure(name, "ghz", { [`echo-${kind}`]: pidOf(server.process, name) }, (durationS) =>
      ghz(echo, ghzShape(durationS), join(runDir, `ghz-echo-${kind}.json`)),
    );
  } finally {
    await server.process.stop();
  }
}

const bearer = (tenant: BenchTenant) => `Bearer ${tenant.accessToken}`;

async function createLead(ingressUrl: string, tenant: BenchTenant): Promise<string> {
  const response = await fetch(`${ingressUrl}/api/v1/leads`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: bearer(tenant) },
    body: LEAD_BODY,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`creating the bench lead failed: HTTP ${response.status} ${text}`);
  const id = (JSON.parse(text) as { lead?: { id?: string } }).lead?.id;
  if (!id) throw new Error(`creating the bench lead returned no lead id: ${text}`);
  return id;
}

interface MeshResults {
  /** GetLead over gRPC with mTLS (the operator's certificate), on the mesh's leads. */
  direct: ScenarioResult;
  /** The same in plaintext, on a leads in sidecar mode. */
  plaintext: ScenarioResult;
  baseline: ScenarioResult;
  rest: ScenarioResult;
  paced: ScenarioResult;
  create: ScenarioResult;
  login: ScenarioResult;
  passwordHash: string;
  /** leadmesh against the NestJS monolith, per endpoint. */
  sideBySide: EndpointComparison[];
  distribution: DistributionResults;
}

/**
 * Processes a REST call to `service` goes through, from the mesh model: the
 * ingress, the service, the services it calls and its datastores (FerretDB
 * serves mongodb; Redis holds the revocation list every call checks).
 */
function requestPath(service: string): string[] {
  const declared = serviceOf(loadMeshModel(), service);
  return [service, ...Object.keys(declared.calls), "envoy", ...declared.datastores.map((store) => (store === "mongodb" ? "ferretdb" : store))];
}
/** An authenticated leads call. */
const LEADS_PATH = requestPath("leads");
/** A direct gRPC leads call: no Envoy on its way (the sidecar leads' JWKS fetch through it happens before). */
const DIRECT_LEADS_PATH = LEADS_PATH.filter((name) => name !== "envoy");
/** A sign-in: auth hashes, users (which auth calls) holds the accounts. */
const LOGIN_PATH = requestPath("auth");
/** A distribution: leads and buyers (which calls users for the tenant's time zone) and their datastores. */
const DISTRIBUTION_PATH = [...new Set([...requestPath("leads"), ...requestPath("buyers")])];

/** Scenario 8, in a tenant of its own (bench/distribution.ts). */
async function distributionOf(mesh: RunningMesh): Promise<DistributionResults> {
  const ingressUrl = mesh.ingressUrl ?? "";
  const tenant = await registerTenant(ingressUrl);
  log(`registered tenant ${tenant.tenantId} for distribution`);
  const pids = Object.fromEntries(DISTRIBUTION_PATH.map((name) => [name, pidOf(mesh.processes[name], name)]));
  return distributionScenarios({ ingressUrl, tenant, durationS: DURATION_S, warmupS: WARMUP_S, concurrency: CONCURRENCY, measure, pids, log });
}

async function meshScenarios(mesh: RunningMesh, runDir: string): Promise<MeshResults> {
  const ingressUrl = mesh.ingressUrl ?? "";
  const tenant = await registerTenant(ingressUrl);
  log(`registered tenant ${tenant.tenantId}`);
  const leadId = await createLead(ingressUrl, tenant);
  log(`created lead ${leadId}`);
  const pidsOf = (names: string[]) => Object.fromEntries(names.map((name) => [name, pidOf(mesh.processes[name], name)]));
  const pids = pidsOf(LEADS_PATH);
  const auth = { authorization: bearer(tenant) };
  const operator = mesh.topology.mesh.operator;
  const getLead = {
    address: `127.0.0.1:${mesh.services.leads.grpc}`,
    call: "leads.v1.LeadService.GetLead",
    protoset: DESCRIPTOR_PATH,
    data: { id: leadId },
    metadata: auth,
    // As an operator's tool connects: the mesh CA, the operator's certificate.
    tls: { caFile: mesh.tls.caFile, certFile: mesh.tls.certFile(operator), keyFile: mesh.tls.keyFile(operator) },
  };
  const getLeadUrl = `${ingressUrl}/api/v1/leads/${leadId}`;

  // mTLS and plaintext back to back, same ghz settings; the sidecar leads
  // runs only for its own scenario.
  const directPids = pidsOf(DIRECT_LEADS_PATH);
  const direct = await measure("GetLead gRPC direct (mTLS)", "ghz", directPids, (durationS) =>
    ghz(getLead, ghzShape(durationS), join(runDir, "ghz-getlead-mtls.json")),
  );
  log("starting leads in sidecar mode (plaintext) for the comparison");
  const sidecar = await startSidecarLeads(mesh, leadId, auth.authorization);
  let plaintext: ScenarioResult;
  try {
    const plaintextGetLead = {
      ...getLead,
      address: sidecar.address,
      metadata: { ...auth, "x-forwarded-client-cert": sidecar.forwardedClientCert },
      tls: undefined,
    };
    plaintext = await measure("GetLead gRPC direct (plaintext, sidecar mode)", "ghz", { ...directPids, leads: sidecar.pid }, (durationS) =>
      ghz(plaintextGetLead, ghzShape(durationS), join(runDir, "ghz-getlead-plaintext.json")),
    );
  } finally {
    await sidecar.stop();
  }

  // Baseline and authenticated REST GetLead back to back, same hey settings;
  // the baseline's leads and Envoy run only for their own scenario.
  log("starting the unauthenticated baseline (second leads and Envoy)");
  const stack = await startBaseline(mesh, LEAD_BODY);
  let baseline: ScenarioResult;
  try {
    const baselineUrl = `${stack.ingressUrl}/api/v1/leads/${stack.leadId}`;
    baseline = await measure("GetLead REST via Envoy, no auth (baseline)", "hey", { ...pids, ...stack.pids }, (durationS) =>
      hey({ url: baselineUrl }, { durationS, concurrency: CONCURRENCY }),
    );
  } finally {
    await stack.stop();
  }
  const rest = await measure("GetLead REST via Envoy (mTLS upstream)", "hey", pids, (durationS) =>
    hey({ url: getLeadUrl, headers: auth }, { durationS, concurrency: CONCURRENCY }),
  );
  // Half of the measured maximum: latency of a loaded but not saturated service.
  const halfRate = rest.rps / 2;
  log(`half of the REST GetLead maximum: ${Math.round(halfRate)} req/s`);
  // Open loop at a constant rate (vegeta): hey's per-worker rate limit sends
  // bursts of one request per worker, which measures its own queueing.
  const paced = await measure("GetLead REST @ half max rate", "vegeta", pids, (durationS) =>
    vegeta({ url: getLeadUrl, headers: auth }, { durationS, rate: halfRate }),
  );
  // Before the CreateLead scenario: ListLeads of both sides must run against tenants of the same size.
  const sideBySide = await compareWithMonolith(mesh, tenant, leadId, pids);
  // After the reads, because it grows the collection they run against.
  const create = await measure("CreateLead REST via Envoy", "hey", pids, (durationS) =>
    hey({ url: `${ingressUrl}/api/v1/leads`, method: "POST", body: LEAD_BODY, headers: auth }, { durationS, concurrency: CONCURRENCY }),
  );
  // Every sign-in must succeed: a throttled (429) or refused one would be a
  // cheap error response, not a login.
  const login = await measure("Login REST via Envoy", "hey", pidsOf(LOGIN_PATH), (durationS) =>
    hey({ url: `${ingressUrl}/api/v1/auth:login`, method: "POST", body: loginBody(tenant) }, { durationS, concurrency: LOGIN_CONCURRENCY, maxErrorRatio: 0 }),
  );
  const passwordHash = passwordHashOf(mesh.processes.auth.spec.logFile);
  const distribution = await distributionOf(mesh);
  return { direct, plaintext, baseline, rest, paced, create, login, passwordHash, sideBySide, distribution };
}

/** The monolith runs only for the comparison, on the mesh's FerretDB (a database of its own). */
async function compareWithMonolith(
  mesh: RunningMesh,
  tenant: BenchTenant,
  leadId: string,
  leadmeshPids: Record<string, number>,
): Promise<EndpointComparison[]> {
  log("starting the NestJS monolith (bench/monolith) for the side-by-side comparison");
  const monolith = await startMonolith(mesh, tenant.tenantId, LEAD_BODY);
  log(`monolith at ${monolith.url} answers 200/401/403/404/400 as it should; its lead ${monolith.leadId}`);
  try {
    return await compareSideBySide(
      {
        name: "monolith",
        baseUrl: monolith.url,
        authorization: monolith.authorization,
        leadId: monolith.leadId,
        pids: { monolith: monolith.pid, ferretdb: pidOf(mesh.processes.ferretdb, "ferretdb") },
      },
      { name: "leadmesh", baseUrl: mesh.ingressUrl ?? "", authorization: bearer(tenant), leadId, pids: leadmeshPids },
      SIDE_BY_SIDE,
      log,
    );
  } finally {
    await monolith.stop();
  }
}

const sideBySideSettings = () =>
  `leadmesh (REST via Envoy) against the NestJS + Mongoose monolith, same FerretDB; hey -c ${CONCURRENCY} (UpdateLead: vegeta, ${CONCURRENCY} workers, closed loop); ` +
  `per endpoint ${SIDE_BY_SIDE.warmupS}s warm-up per side discarded, then ${SIDE_BY_SIDE.rounds} rounds of ${SIDE_BY_SIDE.roundS}s per side, alternating (ABBA); means over rounds`;

function checkTargets(bare: ScenarioResult, nice: ScenarioResult, { direct, plaintext, baseline, rest, paced }: MeshResults): TargetCheck[] {
  const leadsRssMb = Math.max(direct.usage.processes.leads.maxRssMb, rest.usage.processes.leads.maxRssMb);
  return [
    target("nice-grpc echo / bare grpc-js echo", nice.rps / bare.rps, ">=", 0.95, "x"),
    // Both plaintext: what the service stack costs over a bare echo.
    target("GetLead gRPC plaintext (sidecar mode) / bare echo", plaintext.rps / bare.rps, ">=", 0.6, "x"),
    target("GetLead gRPC mTLS / plaintext (sidecar mode)", direct.rps / plaintext.rps, ">=", 0.9, "x"),
    // Both reach leads over mTLS.
    target("GetLead REST via Envoy / gRPC direct (mTLS)", rest.rps / direct.rps, ">=", 0.7, "x"),
    target("GetLead REST authenticated / no-auth baseline", rest.rps / baseline.rps, ">=", 0.85, "x"),
    // Issue 8's targets: p99 at half the maximum rate, and leads' CPU per GetLead served from the read cache.
    target("p99 of REST GetLead at half max rate", paced.p99Ms, "<=", 10, "ms"),
    target("leads CPU per cached GetLead (gRPC direct, mTLS)", cpuPerRequestUs(direct, "leads"), "<=", 200, "µs"),
    target("leads RSS under load (max)", leadsRssMb, "<=", 150, "MB"),
  ];
}

function formatLogins({ login, passwordHash }: MeshResults): string {
  const authCpuMs = cpuPerRequestUs(login, "auth") / 1000;
  return (
    `logins: ${login.rps.toFixed(1)}/s at concurrency ${LOGIN_CONCURRENCY}, p50 ${login.p50Ms.toFixed(1)} ms, p99 ${login.p99Ms.toFixed(1)} ms, ` +
    `${login.errors} non-200 of ${login.requests}; password hash ${passwordHash}; auth CPU ${authCpuMs.toFixed(1)} ms per login`
  );
}

async function main(): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), "leadmesh-bench-"));
  log(`${DURATION_S}s per scenario (+${WARMUP_S}s warm-up), concurrency ${CONCURRENCY}; logs in ${runDir}`);
  try {
    if (ONLY_DISTRIBUTION) return await distributionOnly(runDir);
    const bare = await echoScenario("bare", "echo bare grpc-js", runDir);
    const nice = await echoScenario("nice", "echo nice-grpc", runDir);
    log("starting the mesh");
    const mesh = await startMesh({ ports: "random", runDir, serviceEnv: SERVICE_ENV, log: (line) => log(`  ${line}`) });
    let meshResults: MeshResults;
    try {
      meshResults = await meshScenarios(mesh, runDir);
    } finally {
      await mesh.stop();
    }
    const { direct, plaintext, baseline, rest, paced, create, login, passwordHash, sideBySide, distribution } = meshResults;
    const scenarios = [
      bare,
      nice,
      direct,
      plaintext,
      baseline,
      rest,
      paced,
      create,
      login,
      distribution.distribute,
      distribution.getBuyer,
      distribution.getLead,
    ];
    const sideBySideScenarios = sideBySide.flatMap(({ monolith, leadmesh }) => [monolith, leadmesh]);
    const checks = [...checkTargets(bare, nice, meshResults), ...sideBySideTargets(sideBySide), ...distributionTargets(distribution)];
    console.log(`\n${formatTable(scenarios)}\n\n${formatSideBySide(sideBySide, sideBySideSettings())}\n\n${formatTargets(checks)}`);
    console.log(`\n${formatTransportCost(plaintext, direct, DIRECT_LEADS_PATH)}`);
    console.log(`${formatAuthCost(baseline, rest, LEADS_PATH)}\n${formatLogins(meshResults)}\n${formatDistribution(distribution)}`);
    const warning = backgroundLoadWarning([...scenarios, ...sideBySideScenarios]);
    if (warning) console.log(`\n${warning}`);
    const settings = {
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      concurrency: CONCURRENCY,
      ghzConnections: GHZ_CONNECTIONS,
      loginConcurrency: LOGIN_CONCURRENCY,
      passwordHash,
      sideBySide: SIDE_BY_SIDE,
    };
    writeResults(RESULTS_FILE, settings, [...scenarios, ...sideBySideScenarios], checks);
    console.log(`\nresults: ${RESULTS_FILE}`);
  } catch (error) {
    console.error(`bench: logs kept in ${runDir}`);
    throw error;
  }
  rmSync(runDir, { recursive: true, force: true });
}

/** BENCH_ONLY=distribution: the mesh and scenario 8, printed but not written to the results file (not a full run). */
async function distributionOnly(runDir: string): Promise<void> {
  log("starting the mesh (distribution only)");
  const mesh = await startMesh({ ports: "random", runDir, serviceEnv: SERVICE_ENV, log: (line) => log(`  ${line}`) });
  try {
    const distribution = await distributionOf(mesh);
    const scenarios = [distribution.distribute, distribution.getBuyer, distribution.getLead];
    console.log(`\n${formatTable(scenarios)}\n\n${formatTargets(distributionTargets(distribution))}\n\n${formatDistribution(distribution)}`);
  } finally {
    await mesh.stop();
  }
  rmSync(runDir, { recursive: true, force: true });
}

// Exiting runs the 'exit' hooks that kill every child we started.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
