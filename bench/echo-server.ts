/**
 * A unary echo server for the benchmark baseline, one per process so that
 * it never shares a JS thread with another server or the load generator:
 *
 *   node --import tsx bench/echo-server.ts bare|nice|platform <port>
 *
 * `bare` registers a plain @grpc/grpc-js handler, `nice` the same handler
 * through nice-grpc (no middleware), `platform` the same handler through the
 * platform's startService: the full middleware stack every service runs
 * (error guard, peer identity and allow-list, telemetry, metrics, request
 * decoding, fail-fast, authentication with a public access rule: no token
 * to verify). All take their (de)serialisers from bench/echo.proto via
 * @grpc/proto-loader, so the bytes work is identical and the differences
 * measured are nice-grpc's and the platform kernel's per-call overhead.
 *
 * `platform` runs in sidecar mode (plaintext, as under Istio), so that it is
 * compared with the plaintext bare server on transport-equal terms: the
 * caller's identity comes in `x-forwarded-client-cert`, believed from a
 * loopback peer, and the load tool sends PLATFORM_ECHO_METADATA (the header
 * a sidecar would set for the operator's certificate). A call without it is
 * refused UNAUTHENTICATED by the allow-list, as on every service.
 */
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { type ApiService, createLogger, createMeshTransport, JwksCache, loadServiceConfig, Revocations, startService } from "@leadmesh/platform";
import Redis from "ioredis";
import { type CompatServiceDefinition, createServer } from "nice-grpc";

interface EchoMessage {
  message: string;
}

const ADDRESS_HOST = "127.0.0.1";
const ECHO_PROTO = join(__dirname, "echo.proto");

function echoDefinition(): grpc.ServiceDefinition {
  return loadSync(ECHO_PROTO)["bench.echo.v1.EchoService"] as grpc.ServiceDefinition;
}

async function startBare(port: number): Promise<void> {
  const server = new grpc.Server();
  server.addService(echoDefinition(), {
    Echo: (call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>, callback: grpc.sendUnaryData<EchoMessage>) =>
      callback(null, { message: call.request.message }),
  });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${ADDRESS_HOST}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
}

async function startNice(port: number): Promise<void> {
  const server = createServer();
  server.add(echoDefinition(), {
    Echo: async (request: EchoMessage): Promise<EchoMessage> => ({ message: request.message }),
  });
  await server.listen(`${ADDRESS_HOST}:${port}`);
}

export const ECHO_PATH = "/bench.echo.v1.EchoService/Echo";
/** The mesh identity the load tool calls the platform echo as (its forwarded client certificate). */
const ECHO_CALLER = "operator";
const TRUST_DOMAIN = "cluster.local";
const NAMESPACE = "leadmesh";

/** What the inbound sidecar sets for a caller with the operator's certificate (see bench/sidecar-leads.ts). */
export const PLATFORM_ECHO_METADATA = {
  "x-forwarded-client-cert": `By=spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/echo;URI=spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/${ECHO_CALLER}`,
};

/**
 * The echo method as a ts-proto style generic definition (what startService
 * takes: a fullName, and request types with decode for lenient decoding),
 * built on proto-loader's own (de)serialisers so the bytes work equals bare's.
 */
function platformEchoDefinition(): CompatServiceDefinition {
  const method = echoDefinition().Echo;
  const messageType = (deserialize: (bytes: Buffer) => unknown, serialize: (value: never) => Buffer) => ({
    decode: (bytes: Uint8Array) => deserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    encode: (value: never) => ({ finish: () => serialize(value) }),
  });
  return {
    name: "EchoService",
    fullName: "bench.echo.v1.EchoService",
    methods: {
      echo: {
        name: "Echo",
        requestType: messageType(method.requestDeserialize, method.requestSerialize as (value: never) => Buffer),
        requestStream: false,
        responseType: messageType(method.responseDeserialize, method.responseSerialize as (value: never) => Buffer),
        responseStream: false,
        options: {},
      },
    },
  } as unknown as CompatServiceDefinition;
}

async function startPlatform(port: number): Promise<void> {
  const config = loadServiceConfig(
    "echo",
    {
      BIND_HOST: ADDRESS_HOST,
      GRPC_PORT: String(port),
      HEALTH_PORT: "0",
      METRICS_PORT: "0",
      AUTH_ISSUER: "bench",
      AUTH_AUDIENCE: "bench",
      MESH_SECURITY: "sidecar",
      MESH_TRUST_DOMAIN: TRUST_DOMAIN,
      MESH_NAMESPACE: NAMESPACE,
      // The load tool on loopback plays the inbound sidecar.
      MESH_SIDECAR_PEERS: ADDRESS_HOST,
      MESH_PEERS: JSON.stringify({ [ECHO_CALLER]: [ECHO_PATH] }),
      LOG_LEVEL: process.env.LOG_LEVEL,
    },
    [],
  );
  const logger = createLogger("echo");
  const transport = createMeshTransport(config, "echo", logger);
  // A public rule verifies no token: neither keys nor the revocation list are ever asked (lazyConnect: no Redis needed).
  const revocationStore = new Redis({ lazyConnect: true });
  const service = {
    definition: platformEchoDefinition(),
    implementation: { echo: async (request: EchoMessage): Promise<EchoMessage> => ({ message: request.message }) },
  } as unknown as ApiService;
  await startService({
    name: "echo",
    config,
    logger,
    services: [service],
    dependencies: [],
    auth: {
      issuer: config.authIssuer,
      audience: config.authAudience,
      jwks: new JwksCache(async () => {
        throw new Error("the echo bench serves a public RPC and verifies no tokens");
      }),
      revocations: new Revocations(revocationStore),
    },
    transport,
    closeDependencies: async () => revocationStore.disconnect(),
    accessRuleOverrides: { [ECHO_PATH]: AccessRule.fromPartial({ public: true }) },
  });
}

function main(): void {
  const [kind, portText] = process.argv.slice(2);
  const port = Number(portText);
  const start = kind === "bare" ? startBare : kind === "nice" ? startNice : kind === "platform" ? startPlatform : undefined;
  if (!start || !Number.isInteger(port) || port <= 0) {
    process.stderr.write("usage: echo-server.ts bare|nice|platform <port>\n");
    process.exit(2);
  }
  // A clean exit on a signal, so that `node --cpu-prof` writes its profile.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(0));
  start(port).then(
    () => process.stdout.write(`${kind} echo server listening on ${ADDRESS_HOST}:${port}\n`),
    (error: unknown) => {
      process.stderr.write(`${kind} echo server failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) main();
