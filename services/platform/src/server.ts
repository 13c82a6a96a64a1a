/**
 * Service bootstrap: one call wires a service's handlers into a nice-grpc
 * server with the platform middleware, health (main and probe port),
 * reflection and metrics, and returns a handle whose shutdown() drains.
 *
 * Transport: the main port speaks mTLS (or plaintext behind a sidecar) through
 * spec.transport (mtls/transport.ts); its grpc-js interceptor finds the
 * caller's verified identity. The probe port stays plaintext and serves only
 * grpc.health.v1 (Kubernetes probes cannot do mTLS); metrics stay plain HTTP.
 *
 * Every call of the main port passes the one kernel middleware
 * (kernel-middleware.ts): mesh peer allow-list (health and reflection
 * included) → tracing and x-trace-id → RED metrics → for API RPCs, request
 * decoding, fail-fast and authentication with the access rules (not
 * health/reflection, which probes and grpcurl reach without a token), with
 * every error mapped to its status on the way out.
 */
import { readFileSync } from "node:fs";
import type { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { type CompatServiceDefinition, createServer, type ServiceImplementation } from "nice-grpc";
import { ServerReflection, ServerReflectionService } from "nice-grpc-server-reflection";
import { accessRulesOf } from "./auth/access-rules";
import type { AuthSettings, CallerContext } from "./caller";
import { type DependencyNeeds, dependencyNeedsOf } from "./fail-fast";
import { type DependencyCheck, HealthMonitor } from "./health";
import { HealthDefinition, mainPortHealth, startProbeServer } from "./health-services";
import { kernelMiddleware } from "./kernel-middleware";
import type { Logger } from "./logger";
import { startMetricsServer } from "./metrics";
import { peerAccessSettings } from "./mtls/peer-access";
import type { MeshTransport } from "./mtls/transport";
import { withLenientRequestDecoding } from "./request-decoding";
import type { ServiceConfig } from "./service-config";
import { initTelemetry, shutdownTelemetry } from "./telemetry";

export interface ApiService<S extends CompatServiceDefinition = CompatServiceDefinition> {
  definition: S;
  implementation: ServiceImplementation<S, CallerContext>;
}

/** Pairs a generated definition with its handlers, keeping the handler types checked. */
export function apiService<S extends CompatServiceDefinition>(definition: S, implementation: ServiceImplementation<S, CallerContext>): ApiService {
  return { definition, implementation } as unknown as ApiService;
}

export interface ServiceSpec {
  name: string;
  config: ServiceConfig;
  logger: Logger;
  services: ApiService[];
  dependencies: DependencyCheck[];
  /** RPCs that need fewer than all `dependencies`, by gRPC path (see fail-fast.ts). */
  dependencyNeeds?: DependencyNeeds;
  /** Closes clients after the server drained. */
  closeDependencies(): Promise<void>;
  auth: AuthSettings;
  /** The process's mesh transport (createMeshTransport); closed at the end of shutdown. */
  transport: MeshTransport;
  /** Replaces declared access rules by gRPC path; benchmark baselines only (see accessRulesOf). */
  accessRuleOverrides?: Record<string, AccessRule>;
}

export interface RunningService {
  grpcPort: number;
  healthPort: number;
  metricsPort: number;
  health: HealthMonitor;
  shutdown(): Promise<void>;
}

function descriptorSet(): Uint8Array {
  return readFileSync(require.resolve("@leadmesh/contracts/descriptor"));
}

export async function startService(spec: ServiceSpec): Promise<RunningService> {
  const { config, logger } = spec;
  initTelemetry(spec.name);
  const health = new HealthMonitor(spec.dependencies, logger);
  const apiNames = spec.services.map((service) => fullName(service.definition));
  // Throws before anything listens when an RPC has no declared access rule.
  const accessRules = accessRulesOf(
    spec.services.map((service) => service.definition),
    spec.accessRuleOverrides,
  );

  const server = createServer({
    // Bounded connection age makes long-lived HTTP/2 clients reconnect, so
    // new replicas behind a per-connection balancer receive traffic.
    "grpc.max_connection_age_ms": 5 * 60_000,
    "grpc.max_connection_age_grace_ms": 30_000,
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
    interceptors: spec.transport.serverInterceptors,
  }).use(
    kernelMiddleware({
      logger,
      peerAccess: peerAccessSettings(config),
      accessRules,
      auth: spec.auth,
      health,
      dependencyNeeds: dependencyNeedsOf(accessRules.keys(), health.dependencyNames, spec.dependencyNeeds),
    }),
  );

  server.add(HealthDefinition, mainPortHealth(health, apiNames));
  server.add(ServerReflectionService, ServerReflection(descriptorSet(), [...apiNames, "grpc.health.v1.Health"]));
  for (const service of spec.services) server.add(withLenientRequestDecoding(service.definition), service.implementation);

  await health.start();
  const grpcPort = await server.listen(`${config.bindHost}:${config.grpcPort}`, spec.transport.serverCredentials());
  const probe = await startProbeServer(health, apiNames, config.bindHost, config.healthPort);
  const metrics = await startMetricsServer(config.bindHost, config.metricsPort);
  logger.info(
    { grpcPort, healthPort: probe.port, metricsPort: metrics.port, status: health.status, security: spec.transport.mode, spiffeId: spec.transport.selfId },
    `${spec.name} listening`,
  );

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      logger.info("shutting down: NOT_SERVING, draining in-flight calls");
      health.drain();
      const drained = await settleWithin(server.shutdown(), config.shutdownGraceMs);
      if (!drained) {
        logger.warn({ graceMs: config.shutdownGraceMs }, "calls still running after the grace period; cancelling them");
        server.forceShutdown();
      }
      if (!(await settleWithin(probe.close(), 1000))) probe.forceClose();
      await metrics.close();
      await spec.closeDependencies();
      spec.transport.close();
      await shutdownTelemetry();
      logger.info("stopped");
      // The process exits right after: write out what pino still buffers.
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })());

  return { grpcPort, healthPort: probe.port, metricsPort: metrics.port, health, shutdown };
}

function fullName(definition: CompatServiceDefinition): string {
  const name = (definition as { fullName?: string }).fullName;
  if (!name) throw new Error("service definitions must be generated with outputServices=generic-definitions (fullName missing)");
  return name;
}

async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const result = await Promise.race([promise.then(() => true), timedOut]);
  clearTimeout(timer);
  return result;
}
