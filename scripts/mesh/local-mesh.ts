/**
 * Starts the whole local mesh on loopback: FerretDB (SQLite), Redis, every
 * implemented service from mesh/topology.yaml and the Envoy ingress. Used by
 * `npm start`, the integration tests' global setup and the benchmark; the
 * only difference between them is fixed (topology) versus random ports.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exposedServices, renderEnvoyConfig } from "./envoy-config";
import { healthStatus } from "./health-client";
import { freePort, ManagedProcess, tcpReachable, waitUntil } from "./processes";
import { DESCRIPTOR_PATH } from "./descriptor";
import { loadTopology, REPO_ROOT, type ServicePorts, type Topology } from "./topology";

export const TOOLS_BIN = join(REPO_ROOT, ".tools", "bin");

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
  log?: (line: string) => void;
}

export interface RunningMesh {
  topology: Topology;
  mongoUrl: string;
  redisUrl: string;
  mongoPort: number;
  redisPort: number;
  ingressUrl?: string;
  ingressPort?: number;
  adminUrl?: string;
  envoyConfigPath?: string;
  services: Record<string, ServicePorts>;
  processes: Record<string, ManagedProcess>;
  runDir: string;
  stop(): Promise<void>;
}

export interface IngressOptions {
  topology: Topology;
  runDir: string;
  listenPort: number;
  adminPort: number;
  /** gRPC port of each exposed service. */
  upstreamPorts: Record<string, number>;
  /** Process and file name (default "envoy"): a second ingress needs its own. */
  name?: string;
  /** See EnvoyRenderOptions.extraPublicPaths. */
  extraPublicPaths?: string[];
}

export interface RunningIngress {
  process: ManagedProcess;
  listenPort: number;
  url: string;
  adminUrl: string;
  configPath: string;
}

/**
 * Renders the Envoy config into the run directory, starts Envoy and waits
 * until it sees every upstream healthy and serves the JWKS on its listener.
 * The caller stops the returned process (it is killed on our exit anyway).
 */
export async function startIngress(options: IngressOptions): Promise<RunningIngress> {
  const name = options.name ?? "envoy";
  const configPath = join(options.runDir, `${name}.yaml`);
  writeFileSync(
    configPath,
    renderEnvoyConfig(options.topology, {
      listenPort: options.listenPort,
      adminPort: options.adminPort,
      upstreamPorts: options.upstreamPorts,
      descriptorPath: DESCRIPTOR_PATH,
      extraPublicPaths: options.extraPublicPaths,
    }),
  );
  const envoy = new ManagedProcess({
    name,
    command: join(TOOLS_BIN, "envoy"),
    args: ["-c", configPath, "--use-dynamic-base-id", "--log-level", "warn", "--concurrency", "2"],
    cwd: REPO_ROOT,
    logFile: join(options.runDir, `${name}.log`),
  }).start();
  try {
    const adminUrl = `http://127.0.0.1:${options.adminPort}`;
    const upstreams = exposedServices(options.topology).map((service) => service.name);
    await waitUntil(
      `${name} to see every upstream healthy`,
      async () => {
        const clusters = await (await fetch(`${adminUrl}/clusters`)).text();
        return upstreams.every((upstream) => new RegExp(`^${upstream}::.*::health_flags::healthy$`, "m").test(clusters));
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

/** Services that declare `calls: [name]` in the topology. */
export function callersOf(topology: Topology, name: string): string[] {
  return topology.services.filter((service) => service.calls.includes(name)).map((service) => service.name);
}

/** Node arguments that run a service's main file; TypeScript through tsx's loader, in the same process. */
function entryArgs(mainFile: string): string[] {
  return mainFile.endsWith(".ts") ? ["--import", "tsx", mainFile] : [mainFile];
}

const pick = async (mode: MeshOptions["ports"], fixed: number) => (mode === "topology" ? fixed : freePort());

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
  });
}

export async function startMesh(options: MeshOptions): Promise<RunningMesh> {
  const log = options.log ?? (() => undefined);
  const topology = loadTopology(options.topologyPath);
  const runDir = options.runDir;
  mkdirSync(runDir, { recursive: true });
  const processes: Record<string, ManagedProcess> = {};
  const stopAll = async () => {
    // Reverse start order: ingress first, databases last, so services drain against live dependencies.
    for (const process of Object.values(processes).reverse()) await process.stop();
  };

  try {
    const mongoPort = await pick(options.ports, topology.datastores.mongodb.local);
    const redisPort = await pick(options.ports, topology.datastores.redis.local);
    for (const [name, port] of [["mongodb", mongoPort], ["redis", redisPort]] as const) {
      if (await tcpReachable(port)) throw new Error(`port ${port} for ${name} is already in use; is another mesh running?`);
    }
    mkdirSync(join(runDir, "redis"), { recursive: true });
    processes.redis = new ManagedProcess({
      name: "redis",
      command: join(TOOLS_BIN, "redis-server"),
      args: ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", join(runDir, "redis")],
      cwd: runDir,
      logFile: join(runDir, "redis.log"),
    }).start();
    processes.ferretdb = ferretProcess(runDir, mongoPort).start();
    await Promise.all([
      waitUntil(`redis on port ${redisPort}`, () => tcpReachable(redisPort), 15_000, processes.redis),
      waitUntil(`ferretdb on port ${mongoPort}`, () => tcpReachable(mongoPort), 30_000, processes.ferretdb),
    ]);
    const mongoUrl = `mongodb://127.0.0.1:${mongoPort}/`;
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    log(`ferretdb  ${mongoUrl}`);
    log(`redis     ${redisUrl}`);

    const services: Record<string, ServicePorts> = {};
    const implemented = topology.services.filter((candidate) => candidate.implemented);
    for (const service of implemented) {
      services[service.name] = {
        grpc: await pick(options.ports, service.local.grpc),
        health: await pick(options.ports, service.local.health),
        metrics: await pick(options.ports, service.local.metrics),
      };
    }
    // Every service learns where its peers are and who may call it, from the topology.
    const peerAddresses = Object.fromEntries(
      Object.entries(services).map(([name, ports]) => [`${name.toUpperCase()}_ADDRESS`, `127.0.0.1:${ports.grpc}`]),
    );
    for (const service of implemented) {
      const ports = services[service.name];
      processes[service.name] = new ManagedProcess({
        name: service.name,
        command: process.execPath,
        args: entryArgs(options.entryPoints?.[service.name] ?? join(REPO_ROOT, "services", service.name, "dist", "main.js")),
        cwd: REPO_ROOT,
        env: {
          BIND_HOST: "127.0.0.1",
          GRPC_PORT: String(ports.grpc),
          HEALTH_PORT: String(ports.health),
          METRICS_PORT: String(ports.metrics),
          MONGO_URL: mongoUrl,
          REDIS_URL: redisUrl,
          MESH_CALLERS: callersOf(topology, service.name).join(","),
          AUTH_ISSUER: topology.identity.issuer,
          AUTH_AUDIENCE: topology.identity.audience,
          AUTH_DEV_MODE: "true",
          ...peerAddresses,
          ...options.serviceEnv,
        },
        logFile: join(runDir, `${service.name}.log`),
      }).start();
    }
    await Promise.all(
      Object.entries(services).map(([name, ports]) =>
        waitUntil(`${name} to report SERVING`, async () => (await healthStatus(ports.grpc)) === "SERVING", 60_000, processes[name]),
      ),
    );

    const mesh: RunningMesh = { topology, mongoUrl, redisUrl, mongoPort, redisPort, services, processes, runDir, stop: stopAll };
    if (options.envoy !== false) {
      const ingress = await startIngress({
        topology,
        runDir,
        listenPort: await pick(options.ports, topology.ingress.local.listen),
        adminPort: await pick(options.ports, topology.ingress.local.admin),
        upstreamPorts: Object.fromEntries(Object.entries(services).map(([name, ports]) => [name, ports.grpc])),
      });
      processes.envoy = ingress.process;
      Object.assign(mesh, { ingressPort: ingress.listenPort, ingressUrl: ingress.url, adminUrl: ingress.adminUrl, envoyConfigPath: ingress.configPath });
    }
    return mesh;
  } catch (error) {
    await stopAll();
    throw error;
  }
}
