/**
 * The platform kernel as startService runs it, on a bare server of the
 * test's own: the peer-identity interceptor, the one kernel middleware
 * (kernel-middleware.ts) and leniently decoding service definitions, with no
 * datastore, probe port or metrics server. For unit tests of the per-call
 * path (error statuses, request decoding, fail-fast) that need no mesh.
 *
 * Sidecar mode: the server trusts loopback as its sidecar, so a test client
 * names its mesh identity in x-forwarded-client-cert (callerHeaders), as
 * Istio's sidecar would. The caller is a mesh service on the allow-list of
 * every RPC of the service; by default every RPC's access rule admits
 * service callers, which authenticate by identity and a tenant. No
 * revocation list is reachable: a call with a user's token fails as with
 * Redis down (UNAVAILABLE).
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { Redis } from "ioredis";
import { type CompatServiceDefinition, createServer } from "nice-grpc";
import { pino } from "pino";
import { type AuthSettings, JwksCache, type Logger, peerIdentityInterceptor, Revocations, spiffeId } from "../../services/platform/src";
import { type DependencyNeeds, type DependencyState, dependencyNeedsOf } from "../../services/platform/src/fail-fast";
import { kernelMiddleware } from "../../services/platform/src/kernel-middleware";
import { peerAllowList } from "../../services/platform/src/mtls/peer-access";
import { withLenientRequestDecoding } from "../../services/platform/src/request-decoding";
import { initTelemetry } from "../../services/platform/src/telemetry";
import { TEST_AUDIENCE, TEST_ISSUER, testJwks } from "./tokens";

/** The mesh service the test client calls as, allowed on every RPC of the service under test. */
export const KERNEL_TEST_CALLER = "kernel-test-caller";
/** A mesh identity on no allow-list. */
export const KERNEL_TEST_STRANGER = "kernel-test-stranger";
export const KERNEL_TEST_TENANT = "acme";

const scope = { trustDomain: "cluster.local", namespace: "leadmesh" };
const SERVER_IDENTITY = "kernel-under-test";

export interface KernelServerOptions {
  definition: CompatServiceDefinition;
  implementation: object;
  logger?: Logger;
  /** Access rules by gRPC path; default: every RPC admits mesh services calling as themselves. */
  accessRules?: ReadonlyMap<string, AccessRule>;
  /** Default: no dependency, nothing ever down. */
  health?: DependencyState & { dependencyNames: readonly string[] };
  dependencyNeeds?: DependencyNeeds;
}

export interface KernelServer {
  address: string;
  shutdown(): Promise<void>;
}

/** Metadata of a call from `peer` through the (trusted) loopback sidecar, acting in the test tenant. */
export function callerHeaders(peer = KERNEL_TEST_CALLER): Record<string, string> {
  return {
    "x-forwarded-client-cert": `By=${spiffeId(scope, SERVER_IDENTITY)};Hash=0a1b;Subject="";URI=${spiffeId(scope, peer)}`,
    "leadmesh-tenant": KERNEL_TEST_TENANT,
  };
}

export async function startKernelServer(options: KernelServerOptions): Promise<KernelServer> {
  // As startService does: spans with real trace ids in the log and the error messages.
  initTelemetry(SERVER_IDENTITY);
  const { fullName, methods } = options.definition as unknown as { fullName: string; methods: Record<string, { name: string }> };
  const paths = Object.values(methods).map((method) => `/${fullName}/${method.name}`);
  const accessRules = options.accessRules ?? new Map(paths.map((path) => [path, AccessRule.fromPartial({ services: true })]));
  const health = options.health ?? { isDown: () => false, checkIntervalMs: 500, dependencyNames: [] };
  // A socket that does not exist: a revocation check fails at once, as with Redis unreachable, and never reaches a real Redis.
  const unreachableRedis = new Redis({
    path: join(tmpdir(), "leadmesh-kernel-test-no-redis.sock"),
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  const auth: AuthSettings = { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks: new JwksCache(testJwks), revocations: new Revocations(unreachableRedis) };
  const server = createServer({
    interceptors: [peerIdentityInterceptor({ mode: "sidecar", sidecarPeers: ["127.0.0.1", "::1"] })],
  }).use(
    kernelMiddleware({
      logger: options.logger ?? pino({ level: "silent" }),
      peerAccess: {
        allowList: peerAllowList({ [KERNEL_TEST_CALLER]: paths }, scope),
        scope,
        services: new Set([KERNEL_TEST_CALLER, KERNEL_TEST_STRANGER]),
        edge: "ingress",
      },
      accessRules,
      auth,
      health,
      dependencyNeeds: dependencyNeedsOf(accessRules.keys(), health.dependencyNames, options.dependencyNeeds),
    }),
  );
  server.add(withLenientRequestDecoding(options.definition), options.implementation as never);
  const port = await server.listen("127.0.0.1:0");
  return {
    address: `127.0.0.1:${port}`,
    async shutdown() {
      await server.shutdown();
      unreachableRedis.disconnect();
    },
  };
}
