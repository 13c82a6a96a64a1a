/**
 * Leads replicas for the read cache tests: in-process services on the test
 * mesh's FerretDB and Redis that share ONE database (as replicas of a
 * deployment do) and the cache in Redis, each on its own port with its own
 * connections, so a write on one and a read on the other cross processes'
 * worth of state except the JS heap.
 */
import type { RunningService } from "@leadmesh/platform";
import { startInProcess } from "../../../test/harness/in-process";
import { startLeads } from "../src/main";

export interface Replica {
  service: RunningService;
  address: string;
}

/** `count` leads replicas on one fresh database; `env` is added to each one's environment (e.g. LEADS_READ_CACHE=off for one). */
export async function startLeadsReplicas(count: number, env: NodeJS.ProcessEnv[] = []): Promise<{ replicas: Replica[]; database: string }> {
  let database: string | undefined;
  const replicas: Replica[] = [];
  for (let index = 0; index < count; index++) {
    const started = await startInProcess("leads", (environment, fetchKeys) =>
      startLeads({ ...environment, ...(database ? { MONGO_DATABASE: database } : {}), ...env[index] }, fetchKeys),
    );
    database ??= started.database;
    replicas.push({ service: started.service, address: started.address });
  }
  return { replicas, database: database as string };
}

/** Sum of a metric's samples whose labels include every `labels` pair, from a service's /metrics. */
export async function metricValue(service: RunningService, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => wanted.every((pair) => line.includes(pair)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

/** Deterministic pseudo-random numbers (mulberry32): a failing run replays with the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
