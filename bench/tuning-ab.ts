/**
 * A/B of Envoy and Node tuning for REST GetLead through Envoy (issue 8):
 *
 *   npx tsx bench/tuning-ab.ts <experiment> [rounds=3] [seconds=5]
 *
 * One mesh (FerretDB, Redis, every service, its Envoy: for the tenant and the
 * lead), then per arm of the experiment a leads process with the arm's Node
 * flags (same code, environment, database and Redis as the mesh's leads, own
 * ports) behind an Envoy of its own with the arm's config and worker count,
 * both started once. Rounds alternate the order of the arms (ABC, CBA, ...),
 * so a steady drift of the shared host hits every arm alike. In each arm's
 * turn:
 *
 *   - max:  hey -c 50 closed loop: req/s, p50/p99;
 *   - half: vegeta open loop at one fixed rate for every arm (half the median
 *           of the arms' warm-up maxima, or TUNING_RATE): p50/p99 below
 *           saturation, as the p99 target is stated;
 *
 * and for both the CPU per request of leads and Envoy, their peak RSS, and
 * leads' GC count and pause time (every arm runs with --trace-gc, so its
 * cost is the same in all). Prints each round, then the median and the
 * spread [min–max] over rounds per arm, and writes them to
 * .run/bench/tuning-<experiment>.json.
 */
import { closeSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { healthStatus } from "../scripts/mesh/health-client";
import { type RunningMesh, SERVICE_NODE_FLAGS, startIngress, startMesh } from "../scripts/mesh/local-mesh";
import { spiffeIdOf } from "../scripts/mesh/model";
import { freePort, ManagedProcess, waitUntil } from "../scripts/mesh/processes";
import { REPO_ROOT } from "../scripts/mesh/topology";
import { registerTenant } from "./identity";
import { hey, type LoadResult, vegeta } from "./load-tools";
import { watchProcesses } from "./proc-stats";

const CONCURRENCY = 50;
const WARMUP_S = 4;
const LEAD_BODY = JSON.stringify({ firstName: "Tuning", email: "tuning@example.com", source: "LEAD_SOURCE_WEB_FORM" });

interface Arm {
  name: string;
  /** Envoy --concurrency (default: the ingress's ENVOY_CONCURRENCY). */
  envoyConcurrency?: number;
  /** Changes to the rendered Envoy config (parsed YAML). */
  envoyConfig?: (config: EnvoyConfig) => void;
  /** Node flags of the arm's leads, before its main file. */
  nodeFlags?: string[];
}

// The parts of the rendered config the arms touch.
type EnvoyConfig = {
  static_resources: { listeners: { filter_chains: { filters: { typed_config: { access_log?: unknown } }[] }[] }[] };
  stats_config?: unknown;
};

const connectionManager = (config: EnvoyConfig) => config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

const EXPERIMENTS: Record<string, Arm[]> = {
  // Envoy's default is one worker per hardware thread: 2 here, i.e. the c2 arm.
  "envoy-concurrency": [
    { name: "c2", envoyConcurrency: 2 },
    { name: "c1", envoyConcurrency: 1 },
    { name: "c4", envoyConcurrency: 4 },
  ],
  "envoy-access-log": [
    { name: "log-on" },
    {
      name: "log-off",
      envoyConfig: (config) => {
        delete connectionManager(config).access_log;
      },
    },
  ],
  // The upper bound of what stats cost: none at all (not adoptable, tests read /stats).
  "envoy-stats": [
    { name: "stats-on" },
    { name: "stats-off", envoyConfig: (config) => Object.assign(config, { stats_config: { stats_matcher: { reject_all: true } } }) },
  ],
  "semi-space": [
    { name: "default" },
    { name: "semi-8", nodeFlags: ["--max-semi-space-size=8"] },
    { name: "semi-32", nodeFlags: ["--max-semi-space-size=32"] },
    { name: "semi-64", nodeFlags: ["--max-semi-space-size=64"] },
  ],
  memory: [
    { name: "default" },
    { name: "semi-4", nodeFlags: ["--max-semi-space-size=4"] },
    { name: "old-96", nodeFlags: ["--max-old-space-size=96"] },
    { name: "1-gc-thread", nodeFlags: ["--single-threaded-gc"] },
  ],
  // The live heap after a full GC is ~35 MB; by default V8 lets it grow to ~105 MB before compacting it.
  heap: [{ name: "default" }, { name: "old-96", nodeFlags: ["--max-old-space-size=96"] }, { name: "old-128", nodeFlags: ["--max-old-space-size=128"] }],
  // GC pauses on a host whose cores are taken: parallel GC helpers wait for a core.
  gc: [{ name: "default" }, { name: "1-gc-thread", nodeFlags: ["--single-threaded-gc"] }, { name: "semi-32", nodeFlags: ["--max-semi-space-size=32"] }],
  // What was adopted (Envoy's worker count, the services' SERVICE_NODE_FLAGS) against what ran before.
  adopted: [
    { name: "before", envoyConcurrency: 2 },
    { name: "after", envoyConcurrency: 1, nodeFlags: ["--max-old-space-size=128"] },
  ],
  // A larger young generation halves the scavenges (p99, CPU) but costs RSS; a capped old generation gives it back.
  "heap-and-gc": [
    { name: "default" },
    { name: "old-128", nodeFlags: ["--max-old-space-size=128"] },
    { name: "semi-32+old-128", nodeFlags: ["--max-semi-space-size=32", "--max-old-space-size=128"] },
    { name: "semi-32", nodeFlags: ["--max-semi-space-size=32"] },
  ],
};

/** Extra arms from the command line: `flags:<name>=<flag>,<flag>` (e.g. flags:semi-2=--max-semi-space-size=2). */
function armsOf(experiment: string): Arm[] {
  // TUNING_ARMS=c2,c1 runs only those arms of the experiment.
  const only = process.env.TUNING_ARMS ? process.env.TUNING_ARMS.split(",") : undefined;
  if (EXPERIMENTS[experiment]) return EXPERIMENTS[experiment].filter((arm) => !only || only.includes(arm.name));
  if (experiment.startsWith("flags:")) {
    return [
      { name: "default" },
      ...experiment
        .slice("flags:".length)
        .split(";")
        .map((arm) => {
          const [name, flags] = arm.split("=", 2).length === 2 ? [arm.slice(0, arm.indexOf("=")), arm.slice(arm.indexOf("=") + 1)] : [arm, arm];
          return { name, nodeFlags: flags.split(",") };
        }),
    ];
  }
  throw new Error(`unknown experiment "${experiment}"; one of ${Object.keys(EXPERIMENTS).join(", ")} or flags:<name>=<flag>,...;<name>=...`);
}

interface RunningArm {
  arm: Arm;
  url: string;
  leads: ManagedProcess;
  envoy: ManagedProcess;
  pids: { leads: number; envoy: number };
  leadsLog: string;
}

const pidOf = (managed: ManagedProcess) => {
  if (managed.pid === undefined) throw new Error(`${managed.spec.name} has no pid`);
  return managed.pid;
};

async function startArm(mesh: RunningMesh, arm: Arm): Promise<RunningArm> {
  const spec = mesh.processes.leads.spec;
  const ports = { grpc: await freePort(), health: await freePort(), metrics: await freePort() };
  const leadsLog = join(mesh.runDir, `leads-${arm.name}.log`);
  const leads = new ManagedProcess({
    name: `leads-${arm.name}`,
    command: spec.command,
    // Without the mesh's own service flags: "default" is V8's defaults, each arm states all of its flags.
    args: [...(arm.nodeFlags ?? []), "--trace-gc", ...spec.args.filter((arg) => !SERVICE_NODE_FLAGS.includes(arg))],
    cwd: spec.cwd,
    env: { ...spec.env, GRPC_PORT: String(ports.grpc), HEALTH_PORT: String(ports.health), METRICS_PORT: String(ports.metrics) },
    logFile: leadsLog,
  }).start();
  const tls = { certificates: mesh.tls, server: spiffeIdOf(mesh.topology, "leads") };
  await waitUntil(`leads-${arm.name} to report SERVING`, async () => (await healthStatus(ports.grpc, { tls })) === "SERVING", 60_000, leads);
  const ingress = await startIngress({
    topology: mesh.topology,
    runDir: mesh.runDir,
    name: `envoy-${arm.name}`,
    listenPort: await freePort(),
    adminPort: await freePort(),
    tlsDir: mesh.tls.dir,
    upstreamPorts: { ...Object.fromEntries(Object.entries(mesh.services).map(([name, servicePorts]) => [name, servicePorts.grpc])), leads: ports.grpc },
    concurrency: arm.envoyConcurrency,
    adjustConfig: (yaml) => {
      if (!arm.envoyConfig) return yaml;
      const config = parse(yaml) as EnvoyConfig;
      arm.envoyConfig(config);
      return stringify(config, { lineWidth: 0 });
    },
  });
  return { arm, url: ingress.url, leads, envoy: ingress.process, pids: { leads: pidOf(leads), envoy: pidOf(ingress.process) }, leadsLog };
}

interface GcStats {
  count: number;
  scavenges: number;
  markCompacts: number;
  pauseMs: number;
  maxPauseMs: number;
}

/** What --trace-gc wrote since `fromByte`: "... ms: Scavenge 45.1 (62.3) -> 30.2 (62.3) MB, 1.23 / 0.00 ms ...". */
function gcSince(logFile: string, fromByte: number): GcStats {
  const size = statSync(logFile).size;
  const buffer = Buffer.alloc(Math.max(0, size - fromByte));
  const fd = openSync(logFile, "r");
  try {
    readSync(fd, buffer, 0, buffer.length, fromByte);
  } finally {
    closeSync(fd);
  }
  const stats: GcStats = { count: 0, scavenges: 0, markCompacts: 0, pauseMs: 0, maxPauseMs: 0 };
  for (const [, kind, pause] of buffer.toString("utf8").matchAll(/ms: (Scavenge|Mark-Compact|Minor Mark-Compact|Mark-Sweep)[^,\n]*, ([\d.]+) \/ [\d.]+ ms/g)) {
    stats.count++;
    if (kind === "Scavenge") stats.scavenges++;
    else stats.markCompacts++;
    stats.pauseMs += Number(pause);
    stats.maxPauseMs = Math.max(stats.maxPauseMs, Number(pause));
  }
  return stats;
}

interface PhaseResult extends LoadResult {
  leadsCpuUs: number;
  envoyCpuUs: number;
  leadsRssMb: number;
  envoyRssMb: number;
  otherCpuPercent: number;
  gc: GcStats;
}

async function phase(running: RunningArm, load: () => Promise<LoadResult>): Promise<PhaseResult> {
  const logFrom = statSync(running.leadsLog).size;
  const started = Date.now();
  const watch = watchProcesses(running.pids);
  const result = await load().catch((error: unknown) => {
    watch.cancel();
    throw error;
  });
  const usage = watch.stop();
  const elapsedS = (Date.now() - started) / 1000;
  const cpuUs = (name: "leads" | "envoy") => ((usage.processes[name].cpuPercent / 100) * elapsedS * 1e6) / Math.max(1, result.requests);
  return {
    ...result,
    leadsCpuUs: cpuUs("leads"),
    envoyCpuUs: cpuUs("envoy"),
    leadsRssMb: usage.processes.leads.maxRssMb,
    envoyRssMb: usage.processes.envoy.maxRssMb,
    otherCpuPercent: usage.otherCpuPercent,
    gc: gcSince(running.leadsLog, logFrom),
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** "median [min–max]" */
function spread(values: number[], digits: number): string {
  return `${median(values).toFixed(digits)} [${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}]`;
}

const formatPhase = (result: PhaseResult) =>
  `${Math.round(result.rps)} req/s p50 ${result.p50Ms.toFixed(2)} p99 ${result.p99Ms.toFixed(2)} ms, CPU/req leads ${result.leadsCpuUs.toFixed(0)} envoy ${result.envoyCpuUs.toFixed(0)} µs, ` +
  `RSS leads ${result.leadsRssMb.toFixed(0)} envoy ${result.envoyRssMb.toFixed(0)} MB, GC ${result.gc.scavenges}s/${result.gc.markCompacts}mc ${result.gc.pauseMs.toFixed(0)} ms (max ${result.gc.maxPauseMs.toFixed(1)}), other CPU ${result.otherCpuPercent.toFixed(0)}%`;

function summarize(phases: PhaseResult[]) {
  return {
    rps: spread(
      phases.map((p) => p.rps),
      0,
    ),
    p50Ms: spread(
      phases.map((p) => p.p50Ms),
      2,
    ),
    p99Ms: spread(
      phases.map((p) => p.p99Ms),
      2,
    ),
    leadsCpuUs: spread(
      phases.map((p) => p.leadsCpuUs),
      0,
    ),
    envoyCpuUs: spread(
      phases.map((p) => p.envoyCpuUs),
      0,
    ),
    leadsRssMb: spread(
      phases.map((p) => p.leadsRssMb),
      0,
    ),
    envoyRssMb: spread(
      phases.map((p) => p.envoyRssMb),
      0,
    ),
    gcCount: spread(
      phases.map((p) => p.gc.count),
      0,
    ),
    // Per 1000 requests: arms that served more requests in the same seconds also allocated more.
    gcPer1k: spread(
      phases.map((p) => (p.gc.count * 1000) / Math.max(1, p.requests)),
      1,
    ),
    gcPauseMsPer1k: spread(
      phases.map((p) => (p.gc.pauseMs * 1000) / Math.max(1, p.requests)),
      1,
    ),
    gcPauseMs: spread(
      phases.map((p) => p.gc.pauseMs),
      0,
    ),
    gcMaxPauseMs: spread(
      phases.map((p) => p.gc.maxPauseMs),
      1,
    ),
    otherCpuPercent: spread(
      phases.map((p) => p.otherCpuPercent),
      0,
    ),
  };
}

async function createLead(ingressUrl: string, authorization: string): Promise<string> {
  const response = await fetch(`${ingressUrl}/api/v1/leads`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: LEAD_BODY,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  const id = response.ok ? (JSON.parse(text) as { lead?: { id?: string } }).lead?.id : undefined;
  if (!id) throw new Error(`creating the tuning lead failed: HTTP ${response.status} ${text}`);
  return id;
}

const log = (line: string) => console.log(`tuning: ${line}`);

async function main(): Promise<void> {
  const [experiment, roundsText = "3", secondsText = "5"] = process.argv.slice(2);
  if (!experiment) throw new Error(`usage: npx tsx bench/tuning-ab.ts <${Object.keys(EXPERIMENTS).join("|")}|flags:...> [rounds] [seconds]`);
  const arms = armsOf(experiment);
  const rounds = Number(roundsText);
  const seconds = Number(secondsText);
  const runDir = join(REPO_ROOT, ".run", "bench", `tuning-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  log(`${experiment}: arms ${arms.map((arm) => arm.name).join(", ")}; ${rounds} rounds of ${seconds}s max + ${seconds}s half rate per arm; logs in ${runDir}`);
  const mesh = await startMesh({ ports: "random", runDir, log: (line) => log(`  ${line}`) });
  const running: RunningArm[] = [];
  try {
    const tenant = await registerTenant(mesh.ingressUrl ?? "");
    const authorization = `Bearer ${tenant.accessToken}`;
    const leadId = await createLead(mesh.ingressUrl ?? "", authorization);
    for (const arm of arms) running.push(await startArm(mesh, arm));
    const request = (arm: RunningArm) => ({ url: `${arm.url}/api/v1/leads/${leadId}`, headers: { authorization } });
    const maxLoad = (arm: RunningArm, durationS: number) => hey(request(arm), { durationS, concurrency: CONCURRENCY });
    const warmups: number[] = [];
    for (const arm of running) {
      const warm = await maxLoad(arm, WARMUP_S);
      log(`warm-up ${arm.arm.name}: ${Math.round(warm.rps)} req/s`);
      warmups.push(warm.rps);
    }
    const rate = process.env.TUNING_RATE ? Number(process.env.TUNING_RATE) : Math.round(median(warmups) / 2);
    log(`half rate for every arm: ${rate} req/s`);
    const results = new Map<string, { max: PhaseResult[]; half: PhaseResult[] }>(arms.map((arm) => [arm.name, { max: [], half: [] }]));
    for (let index = 0; index < rounds; index++) {
      for (const arm of index % 2 === 0 ? running : [...running].reverse()) {
        const max = await phase(arm, () => maxLoad(arm, seconds));
        const half = await phase(arm, () => vegeta(request(arm), { durationS: seconds, rate }));
        results.get(arm.arm.name)?.max.push(max);
        results.get(arm.arm.name)?.half.push(half);
        log(`round ${index + 1} ${arm.arm.name.padEnd(12)} max:  ${formatPhase(max)}`);
        log(`round ${index + 1} ${arm.arm.name.padEnd(12)} half: ${formatPhase(half)}`);
      }
    }
    const summary = Object.fromEntries(
      [...results].map(([name, { max, half }]) => [name, { max: summarize(max), half: summarize(half), flags: arms.find((arm) => arm.name === name) }]),
    );
    console.log(`\n${experiment}: median [min–max] over ${rounds} rounds; half rate ${rate} req/s; GC figures are counts and pause ms per ${seconds}s phase`);
    for (const [name, { max, half }] of Object.entries(summary)) {
      console.log(
        `${name.padEnd(12)} max: ${max.rps} req/s, p99 ${max.p99Ms} ms, leads ${max.leadsCpuUs} µs/req, envoy ${max.envoyCpuUs} µs/req, RSS leads ${max.leadsRssMb} envoy ${max.envoyRssMb} MB, GC ${max.gcCount} (${max.gcPauseMs} ms; per 1k req ${max.gcPer1k}, ${max.gcPauseMsPer1k} ms), other CPU ${max.otherCpuPercent}%`,
      );
      console.log(
        `${"".padEnd(12)} half: p50 ${half.p50Ms} p99 ${half.p99Ms} ms, leads ${half.leadsCpuUs} µs/req, envoy ${half.envoyCpuUs} µs/req, RSS leads ${half.leadsRssMb} envoy ${half.envoyRssMb} MB, GC ${half.gcCount} (${half.gcPauseMs} ms, max ${half.gcMaxPauseMs}; per 1k req ${half.gcPer1k}, ${half.gcPauseMsPer1k} ms), other CPU ${half.otherCpuPercent}%`,
      );
    }
    const resultsFile = join(REPO_ROOT, ".run", "bench", `tuning-${experiment.replace(/[^\w-]+/g, "_").slice(0, 60)}.json`);
    writeFileSync(
      resultsFile,
      `${JSON.stringify({ experiment, rounds, seconds, rate, at: new Date().toISOString(), summary, rounds_raw: Object.fromEntries(results) }, null, 2)}\n`,
    );
    log(`results: ${resultsFile}`);
  } finally {
    for (const arm of running) {
      await arm.envoy.stop();
      await arm.leads.stop();
    }
    await mesh.stop();
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`tuning-ab failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
