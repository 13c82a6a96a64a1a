/**
 * Starts the whole local mesh on loopback: FerretDB (SQLite), Redis, every
 * implemented service from mesh/topology.yaml and the Envoy ingress. Used by
 * `npm start`, the integration tests' global setup and the benchmark; the
 * only difference between them is fixed (topology) versus random ports.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderEnvoyConfig } from "./envoy-config";
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

/** Services that declare `calls: [name]` in the topology. */
export function callersOf(topology: Topology, name: string): string[] {
  return topology.services.filter((service) => service.calls.includes(name)).map((service) => service.name);
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
  const topology = loadTopology();
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
        args: [join(REPO_ROOT, "services", service.name, "dist", "main.js")],
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
      const ingressPort = await pick(options.ports, topology.ingress.local.listen);
      const adminPort = await pick(options.ports, topology.ingress.local.admin);
      const envoyConfigPath = join(runDir, "envoy.yaml");
      writeFileSync(
        envoyConfigPath,
        renderEnvoyConfig(topology, {
          listenPort: ingressPort,
          adminPort,
          upstreamPorts: Object.fromEntries(Object.entries(services).map(([name, ports]) => [name, ports.grpc])),
          descriptorPath: DESCRIPTOR_PATH,
        }),
      );
      processes.envoy = new ManagedProcess({
        name: "envoy",
        command: join(TOOLS_BIN, "envoy"),
        args: ["-c", envoyConfigPath, "--use-dynamic-base-id", "--log-level", "warn", "--concurrency", "2"],
        cwd: REPO_ROOT,
        logFile: join(runDir, "envoy.log"),
      }).start();
      const adminUrl = `http://127.0.0.1:${adminPort}`;
      await waitUntil(
        "envoy to see every upstream healthy",
        async () => {
          const clusters = await (await fetch(`${adminUrl}/clusters`)).text();
          return Object.keys(services).every((name) => new RegExp(`^${name}::.*::health_flags::healthy$`, "m").test(clusters));
        },
        30_000,
        processes.envoy,
      );
      const ingressUrl = `http://127.0.0.1:${ingressPort}`;
      // The public JWKS answering through the listener proves routing, transcoding and jwt_authn are in place.
      await waitUntil("envoy to serve the JWKS on its listener", async () => (await fetch(`${ingressUrl}/.well-known/jwks.json`)).ok, 30_000, processes.envoy);
      Object.assign(mesh, { ingressPort, ingressUrl, adminUrl, envoyConfigPath });
    }
    return mesh;
  } catch (error) {
    await stopAll();
    throw error;
  }
}
