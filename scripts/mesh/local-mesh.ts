/**
 * Starts the whole local mesh on loopback: FerretDB (SQLite), Redis, every
 * implemented service from mesh/topology.yaml (one or more replicas each)
 * and the Envoy ingress, every process supervised (restarted when it
 * crashes, see processes.ts). Used by `npm start`, the integration tests'
 * global setup and the benchmark; the differences between them are fixed
 * (topology) versus random ports and the number of replicas.
 *
 * Every hop inside the mesh is mTLS: before anything starts, the mesh's
 * certificate directory (`<runDir>/tls` unless given) gets a development CA
 * and a certificate per identity (each service, the edge, operators' tools;
 * certificates.ts); each service and Envoy read theirs from there and pick
 * up renewed files without a restart.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ensureMeshCertificates, type MeshCertificatePaths, meshCertificatePaths } from "./certificates";
import { healthStatus } from "./health-client";
import { startIngress, TOOLS_BIN } from "./ingress";
import { loadMeshModel, type MeshModel, meshIdentities, spiffeIdOf } from "./model";
import { serviceEnvironment } from "./model-environment";
import { claimPortBlock } from "./port-blocks";
import { planPorts, portUses, type ReplicaOption, type ReplicaPlan } from "./port-plan";
import { assertPortsFree, ephemeralRangeWarning } from "./ports";
import { ManagedProcess, type SupervisorEvent, tcpReachable, waitUntil } from "./processes";
import { DEFAULT_RESTART_POLICY } from "./restart-policy";
import { REPO_ROOT, type ServicePorts } from "./topology";

export { type IngressOptions, type RunningIngress, startIngress, TOOLS_BIN } from "./ingress";

export interface MeshOptions {
  /** "topology" uses the ports of mesh/topology.yaml; "random" picks free ones. */
  ports: "topology" | "random";
  /** Logs and database files go here. */
  runDir: string;
  /** Start Envoy too (default true). */
  envoy?: boolean;
  /** Extra environment for every service. */
  serviceEnv?: NodeJS.ProcessEnv;
  /** Topology file (default mesh/topology.yaml); tests pass a copy that adds a fixture service. */
  topologyPath?: string;
  /**
   * Main file per service name, instead of services/<name>/dist/main.js
   * (a fixture service in tests); a .ts file runs through tsx.
   */
  entryPoints?: Record<string, string>;
  /**
   * Processes per implemented service (default 1): "topology" runs each
   * service's `replicas`, a record names some services (the others run one).
   */
  replicas?: ReplicaOption;
  /** Certificate directory (default `<runDir>/tls`); created or renewed before services start. */
  certDir?: string;
  /** Lifetime of the identities' certificates (default 24 h). */
  certificateLifetimeMs?: number;
  /**
   * Re-run the certificate check this often while the mesh runs (it renews
   * certificates past half their life): `npm start` runs for days, tests do not.
   * Default: never.
   */
  renewCertificatesEveryMs?: number;
  log?: (line: string) => void;
  /** Every restart and give-up of a supervised process (also written to its log). */
  onSupervisorEvent?: (event: SupervisorEvent) => void;
}

/** One process of a service. */
export interface RunningReplica extends ReplicaPlan {
  process: ManagedProcess;
}

export interface RunningMesh {
  /** The mesh model it was started from. */
  topology: MeshModel;
  mongoUrl: string;
  redisUrl: string;
  mongoPort: number;
  redisPort: number;
  ingressUrl?: string;
  ingressPort?: number;
  adminUrl?: string;
  envoyConfigPath?: string;
  /** Ports of each service's first replica. */
  services: Record<string, ServicePorts>;
  /** Every replica of each service, in order. */
  replicas: Record<string, RunningReplica[]>;
  /** "redis", "ferretdb", "envoy" and each service's first replica, by service name. */
  processes: Record<string, ManagedProcess>;
  runDir: string;
  /** The mesh's certificates: CA, and certificate and key of each identity (service names, the edge, "operator"). */
  tls: MeshCertificatePaths;
  /** Stops everything gracefully (no restarts): ingress first, then services, datastores last. */
  stop(): Promise<void>;
}

export { callersOf } from "./model";

/**
 * Node flags of every service process. --max-old-space-size=128: under load
 * V8 let leads' old generation grow to ~105 MB before compacting it back to
 * its ~35 MB of live data, so leads peaked at ~190–210 MB RSS (issue 8's
 * target: <= 150 MB); capped, it compacts sooner. Measured with
 * `npx tsx bench/tuning-ab.ts heap` / `heap-and-gc` (REST GetLead through
 * Envoy, interleaved rounds, host busy with other test runs; median
 * [min–max] of leads' peak RSS at max load, leads CPU per request):
 *   6 rounds: 211 [195–254] -> 139 [139–140] MB, 253 -> 304 µs;
 *   6 rounds: 186 [132–255] -> 140 [128–144] MB, 531 -> 528 µs;
 *   8 rounds: 194 [146–240] -> 141 [140–144] MB, 407 -> 421 µs.
 * The live heap leaves it 3.5x headroom. Not adopted: --max-semi-space-size=32
 * (half the scavenges and a lower p99, but +35–40 MB RSS),
 * --max-semi-space-size=4 (116 MB, but half the throughput),
 * --single-threaded-gc (no clear change); all in bench/README.md, "Tuning (issue 8)".
 */
export const SERVICE_NODE_FLAGS = ["--max-old-space-size=128"];

/** Node arguments that run a service's main file; TypeScript through tsx's loader, in the same process. */
function entryArgs(mainFile: string): string[] {
  return mainFile.endsWith(".ts") ? ["--import", "tsx", mainFile] : [mainFile];
}

export function ferretProcess(runDir: string, port: number): ManagedProcess {
  const dataDir = join(runDir, "ferretdb");
  mkdirSync(dataDir, { recursive: true });
  return new ManagedProcess({
    name: "ferretdb",
    command: join(TOOLS_BIN, "ferretdb"),
    args: [
      "--handler=sqlite",
      `--sqlite-url=file:${dataDir}/`,
      `--listen-addr=127.0.0.1:${port}`,
      `--state-dir=${dataDir}`,
      // Its debug HTTP server defaults to a fixed port; pick a free one so two meshes can coexist.
      "--debug-addr=127.0.0.1:0",
      "--telemetry=disable",
      "--log-level=WARN",
    ],
    cwd: runDir,
    logFile: join(runDir, "ferretdb.log"),
    restart: DEFAULT_RESTART_POLICY,
  });
}

/**
 * Redis holds authoritative state (revocations, sessions, throttling windows,
 * password-reset and idempotency keys), so it persists it: an append-only file
 * in `<runDir>/redis`, fsynced every second (a crash loses at most the last
 * second; a graceful stop loses nothing), replayed by the next start on the
 * same run directory (`npm start` always uses `.run/local`). No RDB snapshots
 * on top: the AOF alone is the durable copy. Never evicts (the default,
 * spelled out): a full Redis refuses writes rather than drop a revocation.
 * Production needs the same or stronger, see the README's "Redis in production".
 */
export function redisProcess(runDir: string, port: number): ManagedProcess {
  const dataDir = join(runDir, "redis");
  mkdirSync(dataDir, { recursive: true });
  return new ManagedProcess({
    name: "redis",
    command: join(TOOLS_BIN, "redis-server"),
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
      "--maxmemory-policy",
      "noeviction",
      "--dir",
      dataDir,
    ],
    cwd: runDir,
    logFile: join(runDir, "redis.log"),
    restart: DEFAULT_RESTART_POLICY,
  });
}

export async function startMesh(options: MeshOptions): Promise<RunningMesh> {
  const log = options.log ?? (() => undefined);
  const topology = loadMeshModel(options.topologyPath);
  const runDir = options.runDir;
  // Random ports come from a block this mesh claims (port-blocks.ts), so meshes started together never collide.
  const block = options.ports === "random" ? claimPortBlock() : undefined;
  const plan = await planPorts(topology, options.ports, options.replicas ?? 1, block ? () => block.next() : undefined);
  if (options.ports === "topology") {
    // Before anything starts: a taken port fails here with its holder, not as one component's EADDRINUSE later.
    const uses = portUses(plan, options.envoy !== false);
    const warning = ephemeralRangeWarning(uses);
    if (warning) log(warning);
    await assertPortsFree(uses);
  }
  mkdirSync(runDir, { recursive: true });
  const certificates = meshCertificatePaths(options.certDir ?? join(runDir, "tls"));
  const identities = meshIdentities(topology);
  const certificateOptions = { lifetimeMs: options.certificateLifetimeMs };
  const issued = await ensureMeshCertificates(certificates.dir, identities, certificateOptions);
  log(`certificates ${certificates.dir} (${issued.length > 0 ? `issued ${issued.join(", ")}` : "all current"})`);
  const renewal = options.renewCertificatesEveryMs
    ? setInterval(() => {
        ensureMeshCertificates(certificates.dir, identities, certificateOptions).then(
          (renewed) => {
            if (renewed.length > 0) log(`certificates renewed: ${renewed.join(", ")}`);
          },
          (error: Error) => log(`certificate renewal failed (the current ones stay in use): ${error.message}`),
        );
      }, options.renewCertificatesEveryMs)
    : undefined;
  renewal?.unref();
  const processes: Record<string, ManagedProcess> = {};
  const replicas: Record<string, RunningReplica[]> = {};
  const supervise = (managed: ManagedProcess) => {
    if (options.onSupervisorEvent) managed.on("supervisor", options.onSupervisorEvent);
    return managed;
  };
  const stopAll = async () => {
    clearInterval(renewal);
    // Ingress first, databases last, so services drain against live dependencies.
    // Read at stop time: a test may have replaced a process in `processes`.
    const datastores = [processes.ferretdb, processes.redis];
    const services = new Set([
      ...Object.values(replicas)
        .flat()
        .map((replica) => replica.process),
      ...Object.values(processes),
    ]);
    for (const managed of [processes.envoy, ...datastores]) services.delete(managed);
    await processes.envoy?.stop();
    await Promise.all([...services].map((managed) => managed.stop()));
    await Promise.all(datastores.filter(Boolean).map((managed) => managed.stop()));
    block?.release();
  };

  try {
    const mongoPort = plan.mongodb;
    const redisPort = plan.redis;
    processes.redis = supervise(redisProcess(runDir, redisPort)).start();
    processes.ferretdb = supervise(ferretProcess(runDir, mongoPort)).start();
    await Promise.all([
      waitUntil(`redis on port ${redisPort}`, () => tcpReachable(redisPort), 15_000, processes.redis),
      waitUntil(`ferretdb on port ${mongoPort}`, () => tcpReachable(mongoPort), 30_000, processes.ferretdb),
    ]);
    const mongoUrl = `mongodb://127.0.0.1:${mongoPort}/`;
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    log(`ferretdb  ${mongoUrl}`);
    log(`redis     ${redisUrl}`);

    const services: Record<string, ServicePorts> = Object.fromEntries(
      plan.replicas.filter((replica) => replica.index === 1).map((replica) => [replica.service, replica.ports]),
    );
    // A peer's address lists every replica it runs (one grpc-js target): callers balance over all of them.
    const peers: Record<string, string[]> = {};
    for (const replica of plan.replicas) peers[replica.service] = [...(peers[replica.service] ?? []), `127.0.0.1:${replica.ports.grpc}`];
    for (const replica of plan.replicas) {
      const managed = supervise(
        new ManagedProcess({
          name: replica.name,
          command: process.execPath,
          args: [
            ...SERVICE_NODE_FLAGS,
            ...entryArgs(options.entryPoints?.[replica.service] ?? join(REPO_ROOT, "services", replica.service, "dist", "main.js")),
          ],
          cwd: REPO_ROOT,
          env: {
            // What the service gets is the model's environment contract (scripts/mesh/model-environment.ts).
            ...serviceEnvironment(topology, replica.service, {
              bindHost: "127.0.0.1",
              ports: replica.ports,
              mongoUrl,
              redisUrl,
              peers,
              tls: { certFile: certificates.certFile(replica.service), keyFile: certificates.keyFile(replica.service), caFile: certificates.caFile },
            }),
            AUTH_DEV_MODE: "true",
            ...options.serviceEnv,
          },
          logFile: join(runDir, `${replica.name}.log`),
          restart: DEFAULT_RESTART_POLICY,
        }),
      ).start();
      replicas[replica.service] = [...(replicas[replica.service] ?? []), { ...replica, process: managed }];
      if (replica.index === 1) processes[replica.service] = managed;
    }
    await Promise.all(
      Object.values(replicas)
        .flat()
        .map(({ name, service, ports, process: managed }) => {
          // Over mTLS on the main port, as an operator: proves the service serves with its certificate, not only that it runs.
          const tls = { certificates, server: spiffeIdOf(topology, service) };
          return waitUntil(`${name} to report SERVING`, async () => (await healthStatus(ports.grpc, { tls })) === "SERVING", 60_000, managed);
        }),
    );

    const mesh: RunningMesh = { topology, mongoUrl, redisUrl, mongoPort, redisPort, services, replicas, processes, runDir, tls: certificates, stop: stopAll };
    if (options.envoy !== false) {
      const ingress = await startIngress({
        topology,
        runDir,
        listenPort: plan.ingress,
        adminPort: plan.admin,
        tlsDir: certificates.dir,
        upstreamPorts: Object.fromEntries(Object.entries(replicas).map(([name, running]) => [name, running.map((replica) => replica.ports.grpc)])),
      });
      processes.envoy = supervise(ingress.process);
      Object.assign(mesh, { ingressPort: ingress.listenPort, ingressUrl: ingress.url, adminUrl: ingress.adminUrl, envoyConfigPath: ingress.configPath });
    }
    return mesh;
  } catch (error) {
    await stopAll();
    throw error;
  }
}
