/**
 * Runs the pinned load generators and turns their reports into one shape:
 * ghz (gRPC, JSON report), hey (HTTP/1.1, closed loop, text report) and
 * vegeta (HTTP/1.1, open loop at a constant rate, JSON report).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { TOOLS_BIN } from "../scripts/mesh/local-mesh";

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Completed requests, failed ones included. */
  requests: number;
  /** Non-OK gRPC statuses, non-2xx HTTP responses and transport errors. */
  errors: number;
  /** Responses by HTTP status (hey and vegeta; "0" is vegeta's transport error). */
  statusCodes?: Record<string, number>;
}

export interface LoadShape {
  durationS: number;
  concurrency: number;
}

/** A run with more failures than this measured an error path, not the scenario. */
const MAX_ERROR_RATIO = 0.01;

// Load generators are plain children, not ManagedProcesses: their report is
// their stdout, which must be read in full ('close', not 'exit'). They are
// still killed if the bench itself exits early.
const runningTools = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of runningTools) child.kill("SIGKILL");
});

/** Runs a tool to completion and resolves with its stdout; `input`, when given, is its stdin. */
function runTool(name: string, args: string[], timeoutMs: number, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(TOOLS_BIN, name), args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    runningTools.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      runningTools.delete(child);
      if (code === 0) return resolve(Buffer.concat(stdout).toString("utf8"));
      const output = Buffer.concat([...stderr, ...stdout])
        .toString("utf8")
        .trim()
        .slice(-2000);
      reject(new Error(`${name} ${args.join(" ")} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Generous: the run itself plus connection set-up and report writing. */
const toolTimeoutMs = (shape: LoadShape) => (shape.durationS + 60) * 1000;

function checkErrors(what: string, result: LoadResult, maxErrorRatio = MAX_ERROR_RATIO, detail = ""): LoadResult {
  if (result.requests === 0 || result.errors > result.requests * maxErrorRatio) {
    throw new Error(`${what}: ${result.errors} of ${result.requests} requests failed${detail}`);
  }
  return result;
}

export interface GhzTarget {
  address: string;
  /** package.Service.Method */
  call: string;
  data: unknown;
  /** Exactly one of proto (a .proto file) or protoset (a descriptor set). */
  proto?: string;
  protoset?: string;
  /** gRPC metadata sent with every call, e.g. { authorization: "Bearer …" }. */
  metadata?: Record<string, string>;
  /** mTLS: trust `caFile` and present this client certificate; plaintext (h2c) when absent. */
  tls?: GhzClientTls;
}

export interface GhzClientTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Host name the server certificate must carry, when the address's host is not one of its names. */
  serverName?: string;
}

/** ghz's transport flags: it checks the server's chain and host name (not its SPIFFE id; the server checks ours). */
function ghzTransportArgs(tls: GhzClientTls | undefined): string[] {
  if (!tls) return ["--insecure"];
  return ["--cacert", tls.caFile, "--cert", tls.certFile, "--key", tls.keyFile, ...(tls.serverName ? ["--cname", tls.serverName] : [])];
}

export interface GhzShape extends LoadShape {
  connections: number;
  /** Open loop at this many calls per second in all; closed loop (as fast as answered) when absent. */
  rps?: number;
}

interface GhzReport {
  count: number;
  rps: number;
  statusCodeDistribution?: Record<string, number>;
  latencyDistribution: { percentage: number; latency: number }[] | null;
}

export async function ghz(target: GhzTarget, shape: GhzShape, reportFile: string): Promise<LoadResult> {
  const schema = target.proto ? ["--proto", target.proto] : ["--protoset", target.protoset ?? ""];
  await runTool(
    "ghz",
    [
      ...ghzTransportArgs(target.tls),
      ...schema,
      "--call",
      target.call,
      "--data",
      JSON.stringify(target.data),
      ...(target.metadata ? ["--metadata", JSON.stringify(target.metadata)] : []),
      ...(shape.rps ? ["--rps", String(shape.rps)] : []),
      "--concurrency",
      String(shape.concurrency),
      "--connections",
      String(shape.connections),
      "--duration",
      `${shape.durationS}s`,
      // Let in-flight calls finish instead of counting them as cancelled errors.
      "--duration-stop",
      "wait",
      // The JSON report lists every request; a file keeps it out of our pipe.
      "--format",
      "json",
      "--output",
      reportFile,
      target.address,
    ],
    toolTimeoutMs(shape),
  );
  return checkErrors(`ghz ${target.call}`, parseGhzReport(JSON.parse(readFileSync(reportFile, "utf8")) as GhzReport));
}

export function parseGhzReport(report: GhzReport): LoadResult {
  // Latencies are Go durations, i.e. nanoseconds.
  const percentile = (percentage: number) => {
    const entry = report.latencyDistribution?.find((candidate) => candidate.percentage === percentage);
    return entry ? entry.latency / 1e6 : Number.NaN;
  };
  const ok = report.statusCodeDistribution?.OK ?? 0;
  return { rps: report.rps, p50Ms: percentile(50), p99Ms: percentile(99), requests: report.count, errors: report.count - ok };
}

export interface HeyRequest {
  url: string;
  method?: "GET" | "POST" | "PATCH";
  /** JSON body, sent with Content-Type application/json. */
  body?: string;
  /** Extra request headers, e.g. { Authorization: "Bearer …" }. */
  headers?: Record<string, string>;
}

export interface HeyShape extends LoadShape {
  /** Per-worker rate limit (hey -q); total rate is qpsPerWorker × concurrency. */
  qpsPerWorker?: number;
  /** Share of failed requests tolerated (default 1%); 0 when every response must be a 2xx. */
  maxErrorRatio?: number;
}

export async function hey(request: HeyRequest, shape: HeyShape): Promise<LoadResult> {
  const args = ["-z", `${shape.durationS}s`, "-c", String(shape.concurrency)];
  if (shape.qpsPerWorker !== undefined) args.push("-q", shape.qpsPerWorker.toFixed(2));
  if (request.method) args.push("-m", request.method);
  if (request.body !== undefined) args.push("-T", "application/json", "-d", request.body);
  for (const [name, value] of Object.entries(request.headers ?? {})) args.push("-H", `${name}: ${value}`);
  args.push(request.url);
  const output = await runTool("hey", args, toolTimeoutMs(shape));
  // On failure, hey's status and error distribution say what went wrong (401? 429?).
  const distributionAt = output.indexOf("Status code distribution:");
  const detail = distributionAt < 0 ? "" : `\n${output.slice(distributionAt).trim()}`;
  return checkErrors(`hey ${request.method ?? "GET"} ${request.url}`, parseHeyReport(output), shape.maxErrorRatio, detail);
}

export function parseHeyReport(text: string): LoadResult {
  const number = (pattern: RegExp) => {
    const match = text.match(pattern);
    return match ? Number(match[1]) : Number.NaN;
  };
  const section = (title: string) => text.split(`${title}:`)[1]?.split(/\n\s*\n/)[0] ?? "";
  let requests = 0;
  let errors = 0;
  const statusCodes: Record<string, number> = {};
  for (const [, code, count] of section("Status code distribution").matchAll(/\[(\d+)\]\s+(\d+) responses/g)) {
    requests += Number(count);
    statusCodes[code] = Number(count);
    if (!code.startsWith("2")) errors += Number(count);
  }
  // Transport errors (refused, reset, timeout) have no status code.
  for (const [, count] of section("Error distribution").matchAll(/\[(\d+)\]\s+\S/g)) {
    requests += Number(count);
    errors += Number(count);
  }
  return {
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    // hey prints seconds with four decimals: 0.1 ms resolution.
    p50Ms: number(/^\s*50%+ in ([\d.]+) secs/m) * 1000,
    p99Ms: number(/^\s*99%+ in ([\d.]+) secs/m) * 1000,
    requests,
    errors,
    statusCodes,
  };
}

export interface VegetaShape {
  durationS: number;
  /** Requests per second, sent at evenly spaced instants whatever the latency (open loop). */
  rate: number;
}

/**
 * Latency at a fixed arrival rate. Unlike a closed-loop tool, vegeta keeps
 * sending on schedule while responses are slow, so queueing shows up in the
 * percentiles instead of silently lowering the rate (no coordinated omission).
 */
export async function vegeta(request: HeyRequest, shape: VegetaShape): Promise<LoadResult> {
  return runVegeta([request], shape.durationS, [`-rate=${Math.max(1, Math.round(shape.rate))}/s`, "-max-workers=64"]);
}

/**
 * Closed loop like hey (`concurrency` workers, each sending its next request
 * when the previous one answered), but cycling through many different
 * requests: for writes that must differ from call to call (an update that
 * repeats the previous body changes nothing and is answered as a read).
 * Supply more requests than the run can send, or they repeat from the first.
 */
export async function vegetaClosedLoop(requests: HeyRequest[], shape: LoadShape & { maxErrorRatio?: number }): Promise<LoadResult> {
  const pacing = ["-rate=0", `-workers=${shape.concurrency}`, `-max-workers=${shape.concurrency}`];
  const result = await runVegeta(requests, shape.durationS, pacing, shape.maxErrorRatio);
  if (result.requests > requests.length) {
    throw new Error(`vegeta sent ${result.requests} requests but had only ${requests.length} different ones: raise the number of requests generated`);
  }
  return result;
}

async function runVegeta(requests: HeyRequest[], durationS: number, pacing: string[], maxErrorRatio?: number): Promise<LoadResult> {
  const targets = requests.map((request) => ({
    method: request.method ?? "GET",
    url: request.url,
    header: Object.fromEntries(Object.entries(request.headers ?? {}).map(([name, value]) => [name, [value]])),
    ...(request.body === undefined ? {} : { body: Buffer.from(request.body).toString("base64") }),
  }));
  const what = `vegeta ${targets[0]?.method} ${requests.length === 1 ? requests[0].url : `${requests.length} targets like ${requests[0]?.url}`}`;
  // Results are binary (gob): written to a file, then summarised by `vegeta report`.
  const resultsFile = join(mkdtempSync(join(tmpdir(), "vegeta-")), "results.bin");
  await runTool(
    "vegeta",
    ["attack", "-format=json", ...pacing, `-duration=${durationS}s`, `-output=${resultsFile}`],
    (durationS + 60) * 1000,
    `${targets.map((target) => JSON.stringify(target)).join("\n")}\n`,
  );
  const report = JSON.parse(await runTool("vegeta", ["report", "-type=json", resultsFile], 60_000)) as {
    requests: number;
    throughput: number;
    latencies: { "50th": number; "99th": number };
    status_codes: Record<string, number>;
  };
  rmSync(dirname(resultsFile), { recursive: true, force: true });
  const ok = Object.entries(report.status_codes ?? {}).reduce((sum, [code, count]) => (code.startsWith("2") ? sum + count : sum), 0);
  const result = {
    rps: report.throughput,
    p50Ms: report.latencies["50th"] / 1e6,
    p99Ms: report.latencies["99th"] / 1e6,
    requests: report.requests,
    errors: report.requests - ok,
    statusCodes: report.status_codes ?? {},
  };
  return checkErrors(what, result, maxErrorRatio, ` (status codes ${JSON.stringify(report.status_codes ?? {})})`);
}
