import { isIP, isIPv4, isIPv6 } from "node:net";
import { type ConfigSpec, config, type EnvSource, loadConfig } from "./config";

/** Datastores a service may declare (mesh/topology.yaml `datastores`). */
export type Datastore = "mongodb" | "redis";
export const ALL_DATASTORES: readonly Datastore[] = ["mongodb", "redis"];

/** Settings every service has, whatever its datastores; a service extends this with its own. */
export interface ServiceConfig extends MeshConfig {
  bindHost: string;
  grpcPort: number;
  healthPort: number;
  metricsPort: number;
  shutdownGraceMs: number;
  authIssuer: string;
  authAudience: string;
  /** gRPC target of the auth service's replicas, where the JWKS comes from (see peerAddress). */
  authAddress: string;
}

export type MeshSecurity = "mtls" | "sidecar";

/**
 * How a service proves who it is and learns who calls it (see mtls/): its own
 * identity is `spiffe://<meshTrustDomain>/ns/<meshNamespace>/sa/<service name>`.
 */
export interface MeshConfig {
  /** mtls: the service terminates TLS itself; sidecar: a local proxy (Istio) does, and forwards the caller in x-forwarded-client-cert. */
  meshSecurity: MeshSecurity;
  meshTrustDomain: string;
  meshNamespace: string;
  /** Identity name → the exact gRPC paths it may call on this service (generated from mesh/topology.yaml). */
  meshPeers: MeshPeers;
  /** Identity of the edge proxy (Envoy): calls for users, never a service caller itself. */
  meshEdgeIdentity: string;
  /** Identity of operators' tools (grpcurl): never a service caller either. */
  meshOperatorIdentity: string;
  /** The service that publishes the JWKS (mesh/topology.yaml identity.service). */
  meshIdentityService: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsCaFile: string;
  /** How often the certificate files are checked for a renewal. */
  tlsReloadMs: number;
  /** TCP peer addresses (the local sidecar) whose x-forwarded-client-cert is believed. */
  meshSidecarPeers: string[];
}

export type MeshPeers = Readonly<Record<string, readonly string[]>>;

/** Identity names as in mesh/topology.yaml (service names, the edge, the operator). */
export const IDENTITY_NAME = /^[a-z][a-z0-9-]*$/;
/** An exact gRPC path, "/package.Service/Method". */
export const GRPC_PATH = /^\/[\w.]+\/\w+$/;

export interface MongoConfig {
  mongoUrl: string;
  mongoDatabase: string;
}

export interface RedisConfig {
  redisUrl: string;
}

/** The config of a service that uses datastores D: MONGO_URL and REDIS_URL exist only where declared. */
export type ServiceConfigWith<D extends Datastore> = ServiceConfig &
  ("mongodb" extends D ? MongoConfig : unknown) &
  ("redis" extends D ? RedisConfig : unknown);

/**
 * Defaults are the in-container ports (every pod has its own network); the
 * local mesh launcher overrides them from mesh/topology.yaml.
 */
export function serviceConfigSpec<D extends Datastore>(serviceName: string, datastores: readonly D[]): ConfigSpec<ServiceConfigWith<D>> {
  const spec = {
    ...sharedSpec(),
    ...(datastores.includes("mongodb" as D) ? mongoSpec(serviceName) : {}),
    ...(datastores.includes("redis" as D) ? redisSpec() : {}),
  };
  return spec as ConfigSpec<ServiceConfigWith<D>>;
}

function mongoSpec(serviceName: string): ConfigSpec<MongoConfig> {
  return {
    mongoUrl: config.url({ env: "MONGO_URL", description: "MongoDB connection string", protocols: ["mongodb", "mongodb+srv"] }),
    mongoDatabase: config.string({
      env: "MONGO_DATABASE",
      description: "database owned by this service",
      default: serviceName,
      pattern: /^[A-Za-z0-9_-]{1,63}$/,
    }),
  };
}

function redisSpec(): ConfigSpec<RedisConfig> {
  return { redisUrl: config.url({ env: "REDIS_URL", description: "Redis connection URL", protocols: ["redis", "rediss"] }) };
}

function sharedSpec(): ConfigSpec<ServiceConfig> {
  return {
    bindHost: config.string({ env: "BIND_HOST", description: "address the servers listen on", default: "0.0.0.0" }),
    grpcPort: config.port({ env: "GRPC_PORT", description: "main gRPC port (API, health, reflection)", default: 50051 }),
    healthPort: config.port({ env: "HEALTH_PORT", description: "plaintext grpc.health.v1 probe port", default: 8081 }),
    metricsPort: config.port({ env: "METRICS_PORT", description: "Prometheus /metrics HTTP port", default: 9464 }),
    shutdownGraceMs: config.integer({
      env: "SHUTDOWN_GRACE_MS",
      description: "how long in-flight calls may take to finish on SIGTERM",
      default: 10000,
      min: 0,
      max: 600000,
    }),
    authIssuer: config.string({ env: "AUTH_ISSUER", description: "iss claim of valid access tokens (mesh/topology.yaml identity.issuer)" }),
    authAudience: config.string({ env: "AUTH_AUDIENCE", description: "aud claim of valid access tokens (mesh/topology.yaml identity.audience)" }),
    authAddress: peerAddress({ env: "AUTH_ADDRESS", description: "the auth service's replicas (JWKS)", default: "dns:///auth:50051" }),
    ...meshSpec(),
  };
}

/** The mesh part of a service's environment; also what a mesh client outside a service (tests, tools) loads. */
export function meshSpec(): ConfigSpec<MeshConfig> {
  const identity = (env: string, description: string, fallback: string) => config.string({ env, description, default: fallback, pattern: IDENTITY_NAME });
  return {
    meshSecurity: config.oneOf({
      env: "MESH_SECURITY",
      description: "who terminates mTLS: the service (mtls) or a local sidecar proxy (sidecar)",
      default: "mtls",
      values: ["mtls", "sidecar"] as const,
    }),
    meshTrustDomain: config.string({
      env: "MESH_TRUST_DOMAIN",
      description: "SPIFFE trust domain",
      default: "cluster.local",
      pattern: /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/,
    }),
    meshNamespace: config.string({
      env: "MESH_NAMESPACE",
      description: "namespace part of SPIFFE ids",
      default: "leadmesh",
      pattern: /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    }),
    meshPeers: meshPeersField(),
    meshEdgeIdentity: identity("MESH_EDGE_IDENTITY", "identity name of the edge proxy", "ingress"),
    meshOperatorIdentity: identity("MESH_OPERATOR_IDENTITY", "identity name of operators' tools", "operator"),
    meshIdentityService: identity("MESH_IDENTITY_SERVICE", "service that publishes the JWKS", "auth"),
    tlsCertFile: config.string({ env: "TLS_CERT_FILE", description: "this service's certificate (PEM)", default: "/etc/leadmesh/tls/tls.crt" }),
    tlsKeyFile: config.string({ env: "TLS_KEY_FILE", description: "this service's private key (PEM)", default: "/etc/leadmesh/tls/tls.key" }),
    tlsCaFile: config.string({ env: "TLS_CA_FILE", description: "the mesh CA certificate(s) (PEM)", default: "/etc/leadmesh/tls/ca.crt" }),
    tlsReloadMs: config.integer({
      env: "TLS_RELOAD_MS",
      description: "how often certificate files are checked for renewal",
      default: 1000,
      min: 50,
      max: 3_600_000,
    }),
    meshSidecarPeers: {
      env: "MESH_SIDECAR_PEERS",
      // Istio's inbound sidecar connects from 127.0.0.6; any other local
      // address could be another container of the pod forging the header.
      // (Istio's TPROXY interception keeps the caller's address: list it here then.)
      description: "TCP peer addresses trusted to set x-forwarded-client-cert (sidecar mode)",
      default: ["127.0.0.6"],
      expected: "a comma-separated list of IP addresses",
      parse(raw) {
        const addresses = raw
          .split(",")
          .map((item) => item.trim())
          .filter((item) => item !== "");
        const bad = addresses.find((address) => !isIP(address));
        if (bad !== undefined) throw new Error(`"${bad}" is not an IP address`);
        return addresses;
      },
    },
  };
}

function meshPeersField() {
  return {
    env: "MESH_PEERS",
    description: "identities allowed to call this service and the exact RPCs each may call (generated from mesh/topology.yaml)",
    default: {} as MeshPeers,
    expected: 'a JSON object {"<identity>": ["/pkg.Service/Method", …]}',
    parse: parseMeshPeers,
  };
}

/** MESH_PEERS: a JSON object of identity name → gRPC paths; throws naming the first bad entry. */
export function parseMeshPeers(raw: string): MeshPeers {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not a JSON object");
  const peers: Record<string, readonly string[]> = {};
  for (const [name, paths] of Object.entries(parsed)) {
    if (!IDENTITY_NAME.test(name)) throw new Error(`identity "${name}" does not match ${IDENTITY_NAME}`);
    if (!Array.isArray(paths)) throw new Error(`the RPCs of "${name}" are not an array`);
    const bad = paths.find((path) => typeof path !== "string" || !GRPC_PATH.test(path));
    if (bad !== undefined) throw new Error(`"${name}" lists ${JSON.stringify(bad)}, not a gRPC path /pkg.Service/Method`);
    peers[name] = Object.freeze([...paths] as string[]);
  }
  return Object.freeze(peers);
}

const PEER_FORMS = "host:port, dns:///host:port (every address the name resolves to) or ipv4:a.b.c.d:port,a.b.c.d:port,… (one per replica)";

/**
 * The gRPC target of a peer service, resolving to every replica:
 * `ipv4:127.0.0.1:20200,127.0.0.1:20201` (the local mesh: one address per
 * replica; `ipv6:[::1]:20200,…` likewise), `dns:///users.ns.svc.cluster.local:50051`
 * (Kubernetes: a headless Service's name resolves to every ready pod), or a
 * plain `host:port` (grpc-js resolves it by DNS as well). The platform's
 * client (clients.ts) balances round-robin over whatever it resolves to.
 */
export function peerAddress(options: { env: string; description: string; default?: string }) {
  return {
    ...options,
    expected: PEER_FORMS,
    parse(raw: string): string {
      const problem = peerAddressProblem(raw);
      if (problem) throw new Error(problem);
      return raw;
    },
  };
}

/** Why `target` is not a peer address of one of the accepted forms, or undefined if it is. */
export function peerAddressProblem(target: string): string | undefined {
  if (target.startsWith("dns:")) {
    const match = /^dns:\/\/\/(.*)$/.exec(target);
    if (!match) return "a dns target is dns:///host:port (no authority between the slashes)";
    return hostPortProblem(match[1], "dns");
  }
  for (const family of ["ipv4", "ipv6"] as const) {
    if (!target.startsWith(`${family}:`)) continue;
    const addresses = target.slice(family.length + 1).split(",");
    for (const address of addresses) {
      const problem = hostPortProblem(address, family);
      if (problem) return `${family} target: ${problem}`;
    }
    if (new Set(addresses).size !== addresses.length) return `${family} target lists an address twice`;
    return undefined;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target) || /^(unix|unix-abstract|vsock|xds|passthrough):/i.test(target)) {
    return `unsupported scheme "${target.slice(0, target.indexOf(":"))}"`;
  }
  return hostPortProblem(target, "host");
}

function hostPortProblem(address: string, kind: "dns" | "host" | "ipv4" | "ipv6"): string | undefined {
  const match = /^(\[[^\]]*\]|[^:[\]]*):(\d{1,5})$/.exec(address);
  if (!match) return `"${address}" is not host:port`;
  const [, host, portText] = match;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${portText} of "${address}" is not 1-65535`;
  const bracketed = host.startsWith("[");
  const bare = bracketed ? host.slice(1, -1) : host;
  if (kind === "ipv4") return isIPv4(host) ? undefined : `"${host}" is not an IPv4 address`;
  if (kind === "ipv6") return bracketed && isIPv6(bare) ? undefined : `"${host}" is not a bracketed IPv6 address ([::1])`;
  if (bracketed) return isIPv6(bare) ? undefined : `"${host}" is not an IPv6 address`;
  if (isIPv4(host)) return undefined;
  const labels = host.split(".");
  const validName = host.length <= 253 && labels.every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
  return validName ? undefined : `"${host}" is not a host name or IP address`;
}

/**
 * The service's config from its environment. `datastores` is what its main
 * connects to, the same list as its `datastores` in mesh/topology.yaml (from
 * which the launcher renders its environment): a service without Redis
 * neither needs nor reads REDIS_URL.
 */
export function loadServiceConfig<D extends Datastore = Datastore>(
  serviceName: string,
  env: EnvSource = process.env,
  datastores: readonly D[] = ALL_DATASTORES as readonly D[],
): ServiceConfigWith<D> {
  return loadConfig(serviceConfigSpec(serviceName, datastores), env);
}
