/**
 * The bench's output: a table of scenarios, the targets with met/MISSED, and
 * the same data as JSON for tracking over time. Targets are reported, never
 * enforced: a missed target does not change the exit code.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname } from "node:path";
import type { LoadResult } from "./load-tools";
import type { Usage } from "./proc-stats";
import type { Endpoint, EndpointComparison } from "./side-by-side";

export interface ScenarioResult extends LoadResult {
  name: string;
  tool: "ghz" | "hey" | "vegeta";
  /** Host and server-side processes during the measured run. */
  usage: Usage;
}

export interface TargetCheck {
  name: string;
  value: number;
  comparator: ">=" | "<=";
  target: number;
  unit: "x" | "ms" | "MB" | "µs";
  met: boolean;
}

export function target(name: string, value: number, comparator: TargetCheck["comparator"], goal: number, unit: TargetCheck["unit"]): TargetCheck {
  const met = comparator === ">=" ? value >= goal : value <= goal;
  return { name, value, comparator, target: goal, unit, met };
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

/**
 * CPU share and CPU time per request of each server process: the per-request
 * cost is what to compare when the box, not the server, limits throughput.
 */
function usageSummary({ loadGeneratorCpuPercent, otherCpuPercent, processes }: Usage, rps: number): string {
  const perProcess = Object.entries(processes).map(
    ([name, { cpuPercent }]) => `${name} ${Math.round(cpuPercent)}%/${Math.round((cpuPercent / 100 / rps) * 1e6)}µs`,
  );
  return [...perProcess, `loadgen ${Math.round(loadGeneratorCpuPercent)}%`, `other ${Math.round(otherCpuPercent)}%`].join("  ");
}

/** Above this, something besides the bench used a noticeable part of the 2 cores. */
const OTHER_CPU_WARNING_PERCENT = 20;

export function backgroundLoadWarning(scenarios: ScenarioResult[]): string | undefined {
  const busiest = Math.max(...scenarios.map((scenario) => scenario.usage.otherCpuPercent));
  if (busiest <= OTHER_CPU_WARNING_PERCENT) return undefined;
  return `warning: other work on the host used up to ${Math.round(busiest)}% CPU during a scenario (column "other"); rerun on a quiet host to compare numbers`;
}

export function formatTable(scenarios: ScenarioResult[]): string {
  const width = Math.max(...scenarios.map((scenario) => scenario.name.length), "scenario".length);
  const row = (cells: string[]) => `${cells[0].padEnd(width)}  ${cells[1].padStart(9)}  ${cells[2].padStart(7)}  ${cells[3].padStart(7)}  ${cells[4]}`;
  return [
    row(["scenario", "req/s", "p50 ms", "p99 ms", "CPU: server %/CPU time per request, load generator, other (100% = 1 core)"]),
    ...scenarios.map((scenario) =>
      row([scenario.name, fixed(scenario.rps, 0), fixed(scenario.p50Ms, 2), fixed(scenario.p99Ms, 2), usageSummary(scenario.usage, scenario.rps)]),
    ),
  ].join("\n");
}

/** CPU time of one server process per request, in µs (NaN if it was not watched). */
export function cpuPerRequestUs(scenario: ScenarioResult, process: string): number {
  const usage = scenario.usage.processes[process];
  return usage ? (usage.cpuPercent / 100 / scenario.rps) * 1e6 : Number.NaN;
}

/**
 * What one variant adds to a request over another: CPU per request of each
 * process in both runs and the difference, plus the latency difference at p50.
 */
function formatCostDelta(title: string, before: ScenarioResult, after: ScenarioResult, processes: string[]): string {
  const perProcess = processes.map((name) => {
    const [was, is] = [cpuPerRequestUs(before, name), cpuPerRequestUs(after, name)];
    const delta = is - was;
    return `${name} ${fixed(was, 0)}→${fixed(is, 0)}µs (${delta >= 0 ? "+" : ""}${fixed(delta, 0)})`;
  });
  const p50Delta = after.p50Ms - before.p50Ms;
  return `${title}: ${perProcess.join(", ")}; p50 ${p50Delta >= 0 ? "+" : ""}${fixed(p50Delta, 2)} ms`;
}

/** What authentication adds to a REST GetLead (the no-auth baseline against the real one). */
export function formatAuthCost(baseline: ScenarioResult, authenticated: ScenarioResult, processes: string[]): string {
  return formatCostDelta("auth cost per REST GetLead, CPU per request baseline→authenticated", baseline, authenticated, processes);
}

/** What mTLS adds to a gRPC GetLead (sidecar-mode plaintext against mTLS, same request). */
export function formatTransportCost(plaintext: ScenarioResult, mtls: ScenarioResult, processes: string[]): string {
  return formatCostDelta("mTLS cost per gRPC GetLead, CPU per request plaintext (sidecar mode)→mTLS", plaintext, mtls, processes);
}

export function formatTargets(checks: TargetCheck[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  const show = (value: number, unit: TargetCheck["unit"]) => (unit === "x" ? `${fixed(value, 2)}x` : `${fixed(value, unit === "ms" ? 2 : 0)} ${unit}`);
  return checks
    .map((check) => {
      const goal = `${check.comparator === ">=" ? "≥" : "≤"} ${show(check.target, check.unit)}`;
      return `${check.name.padEnd(width)}  ${show(check.value, check.unit).padStart(8)}  (target ${goal})  ${check.met ? "met" : "MISSED"}`;
    })
    .join("\n");
}

export function writeResults(path: string, settings: Record<string, unknown>, scenarios: ScenarioResult[], checks: TargetCheck[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version };
  const document = { generatedAt: new Date().toISOString(), machine, settings, scenarios, targets: checks };
  writeFileSync(path, `${JSON.stringify(document, null, 2)}\n`);
}

/**
 * The side-by-side table: per endpoint the monolith's row, leadmesh's row and
 * their ratios. req/s counts successful responses; latencies are of all.
 */
export function formatSideBySide(comparisons: EndpointComparison[], settings: string): string {
  const row = (cells: string[]) =>
    `${cells[0].padEnd(11)} ${cells[1].padEnd(18)} ${cells[2].padStart(7)} ${cells[3].padStart(8)} ${cells[4].padStart(8)} ${cells[5].padStart(7)}  ${cells[6]}`;
  const failed = (scenario: ScenarioResult) => (scenario.requests === 0 ? "n/a" : `${fixed((scenario.errors / scenario.requests) * 100, 1)}%`);
  const cpu = (scenario: ScenarioResult) => {
    const perProcess = Object.keys(scenario.usage.processes).map((name) => `${name} ${fixed(cpuPerRequestUs(scenario, name), 0)}`);
    const total = Object.keys(scenario.usage.processes).reduce((sum, name) => sum + cpuPerRequestUs(scenario, name), 0);
    return `${perProcess.join("  ")}  = ${fixed(total, 0)}  (loadgen ${Math.round(scenario.usage.loadGeneratorCpuPercent)}%, other ${Math.round(scenario.usage.otherCpuPercent)}%)`;
  };
  const side = (endpoint: string, label: string, scenario: ScenarioResult) =>
    row([endpoint, label, fixed(scenario.rps, 0), fixed(scenario.p50Ms, 2), fixed(scenario.p99Ms, 2), failed(scenario), cpu(scenario)]);
  const lines = [
    `side by side: ${settings}`,
    row(["endpoint", "server", "req/s", "p50 ms", "p99 ms", "failed", "CPU µs per request of each process on the path, and their sum"]),
  ];
  for (const { endpoint, monolith, leadmesh } of comparisons) {
    const ratio = (of: (scenario: ScenarioResult) => number) => `${fixed(of(leadmesh) / of(monolith), 2)}x`;
    const cpuRatio = ratio((scenario) => Object.keys(scenario.usage.processes).reduce((sum, name) => sum + cpuPerRequestUs(scenario, name), 0));
    lines.push(
      side(endpoint, "monolith", monolith),
      side("", "leadmesh", leadmesh),
      row(["", "leadmesh/monolith", ratio((s) => s.rps), ratio((s) => s.p50Ms), ratio((s) => s.p99Ms), "", `${cpuRatio} CPU per request`]),
    );
  }
  return lines.join("\n");
}

/** The targets for leadmesh against the monolith it replaces (one run, this machine). */
export function sideBySideTargets(comparisons: EndpointComparison[]): TargetCheck[] {
  const of = (endpoint: Endpoint) => {
    const comparison = comparisons.find((candidate) => candidate.endpoint === endpoint);
    if (!comparison) throw new Error(`no side-by-side result for ${endpoint}`);
    return comparison;
  };
  const rpsRatio = (endpoint: Endpoint) => of(endpoint).leadmesh.rps / of(endpoint).monolith.rps;
  return [
    target("GetLead REST req/s leadmesh / monolith", rpsRatio("GetLead"), ">=", 1.5, "x"),
    target("GetLead REST p99 leadmesh (target: the monolith's)", of("GetLead").leadmesh.p99Ms, "<=", of("GetLead").monolith.p99Ms, "ms"),
    target("ListLeads REST req/s leadmesh / monolith", rpsRatio("ListLeads"), ">=", 1.0, "x"),
    target("CreateLead REST req/s leadmesh / monolith", rpsRatio("CreateLead"), ">=", 0.8, "x"),
    target("UpdateLead REST req/s leadmesh / monolith", rpsRatio("UpdateLead"), ">=", 0.8, "x"),
  ];
}
