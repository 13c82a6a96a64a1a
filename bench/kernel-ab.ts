/**
 * Quick A/B of the kernel's per-call cost: echo servers (bare grpc-js and
 * nice-grpc with the platform middleware stack, optionally plain nice-grpc)
 * measured by ghz in alternating rounds, so that load from other work on the
 * host spreads over all of them instead of favouring one:
 *
 *   npx tsx bench/kernel-ab.ts [rounds=3] [seconds=3] [kinds=bare,platform] [rate]
 *
 * Prints req/s, p99 and the server's CPU per request (µs) per round and the
 * median of each, and platform/bare. CPU per request is the steadier figure
 * on a shared 2-core host: it does not depend on how much CPU ghz got. With
 * `rate` (req/s), every server gets the same fixed load instead of as much
 * as it takes, so CPU per request is compared at equal batching too (a
 * server that gets fewer calls per event-loop turn spends more per call).
 */

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../scripts/mesh/topology";
import { ECHO_CALL, ECHO_PROTO, type EchoKind, type EchoServer, echoMetadata, startEchoServer } from "./echo-servers";
import { ghz } from "./load-tools";
import { watchProcesses } from "./proc-stats";

const CONCURRENCY = 50;
const CONNECTIONS = 4;

interface Round {
  rps: number;
  p99Ms: number;
  cpuUsPerRequest: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function round(server: EchoServer, durationS: number, runDir: string, rate?: number): Promise<Round> {
  const pid = server.process.pid;
  if (pid === undefined) throw new Error(`echo-${server.kind} has no pid`);
  const watch = watchProcesses({ server: pid });
  const target = { address: `127.0.0.1:${server.port}`, call: ECHO_CALL, proto: ECHO_PROTO, data: { message: "bench" }, metadata: echoMetadata(server.kind) };
  const result = await ghz(target, { durationS, concurrency: CONCURRENCY, connections: CONNECTIONS, rps: rate }, join(runDir, `ghz-${server.kind}.json`));
  const usage = watch.stop();
  const cpuSeconds = (usage.processes.server.cpuPercent / 100) * durationS;
  return { rps: result.rps, p99Ms: result.p99Ms, cpuUsPerRequest: (cpuSeconds / result.requests) * 1e6 };
}

async function main(): Promise<void> {
  const [roundsText = "3", secondsText = "3", kindsText = "bare,platform", rateText] = process.argv.slice(2);
  const rate = rateText ? Number(rateText) : undefined;
  const rounds = Number(roundsText);
  const seconds = Number(secondsText);
  const kinds = kindsText.split(",") as EchoKind[];
  const runDir = join(REPO_ROOT, ".run", "bench", "kernel-ab");
  mkdirSync(runDir, { recursive: true });
  const servers: EchoServer[] = [];
  try {
    for (const kind of kinds) servers.push(await startEchoServer(kind, runDir));
    for (const server of servers) await round(server, 2, runDir); // warm-up, discarded
    const results = new Map<EchoKind, Round[]>(kinds.map((kind) => [kind, []]));
    for (let index = 0; index < rounds; index++) {
      for (const server of index % 2 === 0 ? servers : [...servers].reverse()) {
        const result = await round(server, seconds, runDir, rate);
        results.get(server.kind)?.push(result);
        console.log(
          `round ${index + 1} ${server.kind.padEnd(8)} ${Math.round(result.rps)} req/s  p99 ${result.p99Ms.toFixed(2)} ms  ${result.cpuUsPerRequest.toFixed(1)} µs CPU/request`,
        );
      }
    }
    const summary = Object.fromEntries(
      kinds.map((kind) => {
        const rows = results.get(kind) ?? [];
        return [kind, { rps: median(rows.map((row) => row.rps)), cpuUs: median(rows.map((row) => row.cpuUsPerRequest)) }];
      }),
    );
    for (const [kind, { rps, cpuUs }] of Object.entries(summary))
      console.log(`median ${kind.padEnd(8)} ${Math.round(rps)} req/s  ${cpuUs.toFixed(1)} µs CPU/request`);
    if (summary.bare && summary.platform) {
      console.log(
        `platform/bare: ${(summary.platform.rps / summary.bare.rps).toFixed(3)}x req/s, ${(summary.platform.cpuUs / summary.bare.cpuUs).toFixed(2)}x CPU/request`,
      );
    }
  } finally {
    for (const server of servers) await server.process.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
