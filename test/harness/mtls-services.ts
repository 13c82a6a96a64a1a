/**
 * In-process services of a test's own small mesh, for tests whose subject is
 * the transport (mTLS, the sidecar path, deadlines): the real kernel
 * (startService with its mesh transport, allow-lists, auth middleware) on the
 * test mesh's Redis, with handlers the test writes, its own certificates
 * (mtls-certificates.ts), and a logger whose lines the test can read.
 */
import {
  credentials,
  type ChannelCredentials as GrpcChannelCredentials,
  type Client as GrpcClient,
  Metadata as GrpcMetadata,
  type ServiceError,
} from "@grpc/grpc-js";
import { CreateTenantResponse, GetTenantResponse, TenantServiceDefinition, UpdateTenantResponse } from "@leadmesh/contracts/users/v1/tenants";
import {
  type ApiService,
  apiService,
  type Caller,
  type CallerContext,
  connectRedis,
  createMeshTransport,
  type Logger,
  loadConfig,
  loadServiceConfig,
  type MeshTransport,
  meshAuth,
  meshSpec,
  type RunningService,
  startService,
} from "@leadmesh/platform";
import { ClientError, type CompatServiceDefinition, createChannel, createClientFactory, Metadata, type Status } from "nice-grpc";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { pino } from "pino";
import { loadMeshModel, peerAllowList, serviceOf } from "../../scripts/mesh/model";
import { meshInfo } from "./mesh-info";
import { type KeyPair, TEST_NAMESPACE, TEST_TRUST_DOMAIN, type TestCertificates } from "./mtls-certificates";
import { TEST_AUDIENCE, TEST_ISSUER, testJwks } from "./tokens";

export type LogLine = Record<string, unknown> & { level: string; msg: string };

export interface CapturedLog {
  logger: Logger;
  lines(): LogLine[];
  /** Lines at `level` whose JSON contains every one of `texts`. */
  find(level: string, ...texts: string[]): LogLine[];
}

/** A pino logger shaped like the platform's (createLogger) that keeps its lines in memory. */
export function capturedLogger(service: string): CapturedLog {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug", base: { service }, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return {
    logger,
    lines: () => [...lines],
    find: (level, ...texts) =>
      lines.filter((line) => {
        const text = JSON.stringify(line);
        return line.level === level && texts.every((wanted) => text.includes(wanted));
      }),
  };
}

export interface MeshTestServiceOptions {
  /** Service name, which is also its identity (its certificate's SPIFFE id). */
  name: string;
  services: ApiService[];
  /** Identity name → gRPC paths it may call (MESH_PEERS). */
  meshPeers: Record<string, readonly string[]>;
  /** mtls mode (the default): the service's certificate directory. */
  certificates?: TestCertificates;
  security?: "mtls" | "sidecar";
  /** More environment (TLS_RELOAD_MS, MESH_SIDECAR_PEERS, …). */
  env?: Record<string, string>;
}

export interface MeshTestService {
  address: string;
  grpcPort: number;
  metricsPort: number;
  log: CapturedLog;
  transport: MeshTransport;
  running: RunningService;
  stop(): Promise<void>;
}

/** The environment a service of the test's mesh reads (what the launcher would render for it). */
export function meshTestEnvironment(options: Pick<MeshTestServiceOptions, "name" | "meshPeers" | "certificates" | "security" | "env">): Record<string, string> {
  const security = options.security ?? "mtls";
  const environment: Record<string, string> = {
    BIND_HOST: "127.0.0.1",
    GRPC_PORT: "0",
    HEALTH_PORT: "0",
    METRICS_PORT: "0",
    REDIS_URL: meshInfo().redisUrl,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    // JWKS come from testJwks; nothing listens here.
    AUTH_ADDRESS: "127.0.0.1:1",
    SHUTDOWN_GRACE_MS: "1000",
    MESH_SECURITY: security,
    MESH_TRUST_DOMAIN: TEST_TRUST_DOMAIN,
    MESH_NAMESPACE: TEST_NAMESPACE,
    MESH_PEERS: JSON.stringify(options.meshPeers),
  };
  if (options.certificates) {
    const { paths } = options.certificates;
    Object.assign(environment, { TLS_CERT_FILE: paths.certFile(options.name), TLS_KEY_FILE: paths.keyFile(options.name), TLS_CA_FILE: paths.caFile });
  } else if (security === "mtls") {
    throw new Error(`mesh test service ${options.name}: mtls mode needs certificates`);
  }
  return { ...environment, ...options.env };
}

export async function startMeshTestService(options: MeshTestServiceOptions): Promise<MeshTestService> {
  const config = loadServiceConfig(options.name, meshTestEnvironment(options), ["redis"]);
  const log = capturedLogger(options.name);
  const transport = createMeshTransport(config, options.name, log.logger);
  const redis = connectRedis(config.redisUrl, log.logger);
  const auth = meshAuth(config, redis.redis, transport, testJwks);
  const running = await startService({
    name: options.name,
    config,
    logger: log.logger,
    transport,
    services: options.services,
    dependencies: [redis.healthCheck],
    auth,
    closeDependencies: async () => {
      auth.close();
      await redis.close();
    },
  });
  for (let i = 0; i < 100 && running.health.status !== "SERVING"; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (running.health.status !== "SERVING") {
    await running.shutdown();
    throw new Error(`${options.name} did not become SERVING: ${[...running.health.failures].join("; ")}`);
  }
  return {
    address: `127.0.0.1:${running.grpcPort}`,
    grpcPort: running.grpcPort,
    metricsPort: running.metricsPort,
    log,
    transport,
    running,
    stop: async () => {
      await running.shutdown();
      transport.close();
    },
  };
}

/**
 * The mesh transport of a client that is not a service of the test (the
 * operator's tools, or a service identity the test plays): its
 * channelCredentials(peer) present `name`'s certificate and require the
 * server to prove `peer`'s SPIFFE id. Close it when done (it watches files).
 * Pass `log` to read what it logs (certificate renewals).
 */
export function clientTransport(name: string, certificates: TestCertificates, env: Record<string, string> = {}, log = capturedLogger(name)): MeshTransport {
  const config = loadConfig(meshSpec(), {
    MESH_TRUST_DOMAIN: TEST_TRUST_DOMAIN,
    MESH_NAMESPACE: TEST_NAMESPACE,
    TLS_CERT_FILE: certificates.paths.certFile(name),
    TLS_KEY_FILE: certificates.paths.keyFile(name),
    TLS_CA_FILE: certificates.paths.caFile,
    ...env,
  });
  return createMeshTransport(config, name, log.logger);
}

/** What a handler of a recording service saw. */
export interface RecordedCall {
  method: string;
  caller: Caller;
}

/**
 * users.v1.TenantService with handlers that only record who called (the
 * verified caller the kernel handed them) and answer with the tenant id they
 * were given: tests of who may call what need no store behind them.
 */
export function recordingTenantService(): { service: ApiService; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const record = (method: string, context: CallerContext) => calls.push({ method, caller: context.caller });
  const service = apiService(TenantServiceDefinition, {
    getTenant: async (request, context) => {
      record("GetTenant", context);
      return GetTenantResponse.fromPartial({ tenant: { id: request.id === "me" ? context.caller.tenantId : request.id, displayName: "Recorded" } });
    },
    createTenant: async (request, context) => {
      record("CreateTenant", context);
      return CreateTenantResponse.fromPartial({ tenant: { id: request.tenant?.id ?? "", displayName: request.tenant?.displayName ?? "" } });
    },
    updateTenant: async (request, context) => {
      record("UpdateTenant", context);
      return UpdateTenantResponse.fromPartial({ tenant: request.tenant });
    },
  });
  return { service, calls };
}

/** The gRPC paths of users.v1.TenantService. */
export const TENANT_PATHS = {
  get: "/users.v1.TenantService/GetTenant",
  create: "/users.v1.TenantService/CreateTenant",
  update: "/users.v1.TenantService/UpdateTenant",
} as const;

/**
 * grpc-js TLS credentials built by hand, outside the kernel: a client that
 * trusts `ca` (or the system roots) and presents `keyPair` (or nothing).
 * The server's host name is checked as any TLS client would (test
 * certificates name 127.0.0.1); the tests of SPIFFE checking use the kernel's.
 */
export function handmadeTlsCredentials(ca: Buffer | null, keyPair?: KeyPair): GrpcChannelCredentials {
  return credentials.createSsl(ca, keyPair?.privateKey ?? null, keyPair?.certificate ?? null);
}

/** A nice-grpc client on its own channel with the given credentials; every call carries `metadata`. */
export function clientWith<S extends CompatServiceDefinition>(
  definition: S,
  address: string,
  channelCredentials: GrpcChannelCredentials | undefined,
  metadata: Record<string, string> = {},
) {
  const channel = createChannel(address, channelCredentials);
  const client = createClientFactory()
    .use(errorDetailsClientMiddleware)
    .use((call, options) => {
      const merged = Metadata(options.metadata);
      for (const [key, value] of Object.entries(metadata)) merged.set(key, value);
      return call.next(call.request, { ...options, metadata: merged });
    })
    .create(definition, channel);
  return { client, channel, close: () => channel.close() };
}

/** Value of leadmesh_peer_rejections_total for `rpc`, summed over reasons (or for one reason), from a /metrics port. */
export async function peerRejections(metricsPort: number, rpc: string, reason?: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics on ${metricsPort}: HTTP ${response.status}`);
  let total = 0;
  for (const line of (await response.text()).split("\n")) {
    const match = /^leadmesh_peer_rejections_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, key, value]) => [key, value]));
    if (labels.rpc === rpc && (reason === undefined || labels.reason === reason)) total += Number(match[2]);
  }
  return total;
}

/** The status of a call that must fail (a ClientError's code and details). */
export async function failureOf(call: Promise<unknown>): Promise<{ code: Status; details: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ClientError) return { code: error.code, details: error.details };
    throw error;
  }
  throw new Error("the call succeeded, but it had to fail");
}

/** The allow-lists the mesh model gives `service` (mesh/topology.yaml), which its MESH_PEERS carries. */
export function modelMeshPeers(service: string): Record<string, string[]> {
  const model = loadMeshModel();
  return peerAllowList(model, serviceOf(model, service));
}

export interface UnaryOutcome {
  code: Status;
  details: string;
  response?: Buffer;
}

/**
 * One unary call through grpc-js itself, which (unlike nice-grpc's deadline
 * middleware, a client-side timer) sends the deadline to the server as
 * grpc-timeout: what a server needs to bound the calls it makes in turn.
 * Resolves with the status, never rejects.
 */
export function rawUnary(
  client: GrpcClient,
  path: string,
  request: Uint8Array,
  options: { metadata?: Record<string, string>; deadlineMs?: number } = {},
): Promise<UnaryOutcome> {
  const metadata = new GrpcMetadata();
  for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
  const callOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  return new Promise<UnaryOutcome>((resolve) => {
    client.makeUnaryRequest(
      path,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      Buffer.from(request),
      metadata,
      callOptions,
      (error: ServiceError | null, response?: Buffer) =>
        resolve(error ? { code: error.code as number as Status, details: error.details } : { code: 0 as Status, details: "", response }),
    );
  });
}
