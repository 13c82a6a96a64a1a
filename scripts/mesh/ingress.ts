/**
 * The Envoy ingress of a local mesh: its config rendered into the run
 * directory, the process supervised like every other component, and started
 * only once Envoy sees every replica healthy and serves through its listener.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DESCRIPTOR_PATH } from "./descriptor";
import { edgeIdentity, exposedServices, renderEnvoyConfig } from "./envoy-config";
import { writeEnvoySdsFiles } from "./envoy-sds";
import type { MeshModel } from "./model";
import { ManagedProcess, waitUntil } from "./processes";
import { DEFAULT_RESTART_POLICY } from "./restart-policy";
import { REPO_ROOT } from "./topology";

export const TOOLS_BIN = join(REPO_ROOT, ".tools", "bin");

export interface IngressOptions {
  topology: MeshModel;
  runDir: string;
  listenPort: number;
  adminPort: number;
  /** gRPC port(s) of each exposed service, one per replica. */
  upstreamPorts: Record<string, number | number[]>;
  /** Process and file name (default "envoy"): a second ingress needs its own. */
  name?: string;
  /** See EnvoyRenderOptions.extraPublicPaths. */
  extraPublicPaths?: string[];
  /**
   * The mesh certificate directory (ensureMeshCertificates): Envoy presents
   * <edge>.crt/.key to every upstream and trusts ca.crt, re-read on renewal.
   * Envoy's SDS files are written into it.
   */
  tlsDir: string;
  /** Envoy worker threads (--concurrency); default ENVOY_CONCURRENCY. */
  concurrency?: number;
  /** For bench/tuning-ab.ts experiments only: rewrites the rendered YAML before Envoy reads it (e.g. without the access log). */
  adjustConfig?: (yaml: string) => string;
}

/**
 * Envoy worker threads: one. The local mesh puts Envoy, every service, the
 * datastores and the client on the same 2-core host, and a second worker
 * only competes with the services for those cores. Measured with
 * `npx tsx bench/tuning-ab.ts envoy-concurrency` (REST GetLead, interleaved
 * rounds, host busy with other test runs; median [min–max]), 1 worker
 * against 2 (Envoy's default here: one per core):
 *   run 1, 4 rounds: p99 at a fixed half rate 66.5 [34–91] ms vs 196 [63–652];
 *     4 workers were worse still (200 [128–515] ms, 430 vs 675 req/s at max);
 *   run 2, 6 rounds: p99 at half rate 55 [30–742] vs 244 [29–809] ms; max
 *     866 [566–930] vs 579 [389–1329] req/s; Envoy CPU 234 vs 256 µs/request,
 *     leads 327 vs 388 µs/request.
 * Together with the services' SERVICE_NODE_FLAGS (`tuning-ab.ts adopted`,
 * two runs) Envoy CPU fell 231 -> 208 and 248 -> 216 µs/request; p99 at half
 * rate was lost in the host's noise there (63 -> 186, 65 -> 56 ms).
 * Measure again before raising it on a host with cores to spare.
 */
export const ENVOY_CONCURRENCY = 1;

export interface RunningIngress {
  process: ManagedProcess;
  listenPort: number;
  url: string;
  adminUrl: string;
  configPath: string;
}

/** Endpoints Envoy's admin /clusters lists as healthy, per cluster name. */
export async function healthyEndpoints(adminUrl: string): Promise<Record<string, string[]>> {
  const clusters = await (await fetch(`${adminUrl}/clusters`, { signal: AbortSignal.timeout(2_000) })).text();
  const healthy: Record<string, string[]> = {};
  for (const [, cluster, endpoint] of clusters.matchAll(/^([^:\n]+)::([^:\n]+:\d+)::health_flags::healthy$/gm)) {
    healthy[cluster] = [...(healthy[cluster] ?? []), endpoint];
  }
  return healthy;
}

/**
 * Renders the Envoy config into the run directory, starts Envoy and waits
 * until it sees every upstream endpoint healthy and serves the JWKS on its
 * listener. The caller stops the returned process (it is killed on our exit anyway).
 */
export async function startIngress(options: IngressOptions): Promise<RunningIngress> {
  const name = options.name ?? "envoy";
  const configPath = join(options.runDir, `${name}.yaml`);
  const tlsDir = resolve(options.tlsDir);
  const edge = edgeIdentity(options.topology);
  for (const file of [join(tlsDir, "ca.crt"), join(tlsDir, `${edge}.crt`), join(tlsDir, `${edge}.key`)]) {
    if (!existsSync(file)) throw new Error(`${name}: no ${file}: create the mesh certificates (ensureMeshCertificates) before starting the ingress`);
  }
  writeEnvoySdsFiles({ tlsDir, sdsDir: tlsDir, edge });
  const rendered = renderEnvoyConfig(options.topology, {
    listenPort: options.listenPort,
    adminPort: options.adminPort,
    upstreamPorts: options.upstreamPorts,
    descriptorPath: DESCRIPTOR_PATH,
    extraPublicPaths: options.extraPublicPaths,
    tlsDir,
  });
  writeFileSync(configPath, options.adjustConfig ? options.adjustConfig(rendered) : rendered);
  const envoy = new ManagedProcess({
    name,
    command: join(TOOLS_BIN, "envoy"),
    // --use-dynamic-base-id: a restarted Envoy (or a second mesh) must not collide with a leftover shared-memory base id.
    args: ["-c", configPath, "--use-dynamic-base-id", "--log-level", "warn", "--concurrency", String(options.concurrency ?? ENVOY_CONCURRENCY)],
    cwd: REPO_ROOT,
    logFile: join(options.runDir, `${name}.log`),
    restart: DEFAULT_RESTART_POLICY,
  }).start();
  try {
    const adminUrl = `http://127.0.0.1:${options.adminPort}`;
    const expected = exposedServices(options.topology).map((service) => ({
      cluster: service.name,
      endpoints: [options.upstreamPorts[service.name] ?? []].flat().length,
    }));
    await waitUntil(
      `${name} to see every upstream replica healthy`,
      async () => {
        const healthy = await healthyEndpoints(adminUrl);
        return expected.every(({ cluster, endpoints }) => (healthy[cluster]?.length ?? 0) === endpoints);
      },
      30_000,
      envoy,
    );
    const url = `http://127.0.0.1:${options.listenPort}`;
    // The public JWKS answering through the listener proves routing, transcoding and jwt_authn are in place.
    await waitUntil(`${name} to serve the JWKS on its listener`, async () => (await fetch(`${url}/.well-known/jwks.json`)).ok, 30_000, envoy);
    return { process: envoy, listenPort: options.listenPort, url, adminUrl, configPath };
  } catch (error) {
    await envoy.stop();
    throw error;
  }
}
