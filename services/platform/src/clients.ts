/**
 * Clients for calling other services in the mesh, composed like the server:
 * tracing first (injects W3C traceparent from the active span, so the callee
 * continues the caller's trace), then rich error details, then a default
 * deadline so a slow dependency cannot hold a caller forever.
 *
 * A peer address resolves to every replica of the peer (service-config.ts,
 * `peerAddress`): `ipv4:127.0.0.1:20200,127.0.0.1:20201` locally,
 * `dns:///users.<ns>.svc.cluster.local:50051` (a headless Service) in
 * Kubernetes. The channel keeps a connection to each resolved address and
 * balances calls round-robin over those that are READY: a replica whose port
 * is closed is in TRANSIENT_FAILURE and gets no calls while another is up,
 * and it gets calls again once it accepts a connection. Calls already sent
 * to a replica that dies are retried on another only where the contract
 * says that is safe (idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT).
 */
import { type ChannelCredentials, type Client, type CompatServiceDefinition, createChannel, createClientFactory } from "nice-grpc";
import { type DeadlineOptions, deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { openTelemetryClientMiddleware } from "nice-grpc-opentelemetry";
import { contracts } from "./contract/contracts";

export interface ServiceClientOptions {
  /** Deadline of every call unless the call sets its own; default 5 s. */
  defaultDeadlineMs?: number;
  credentials?: ChannelCredentials;
}

/** A retried call gets at most this many attempts in all (the first one included). */
const MAX_ATTEMPTS = 3;

/** gRPC paths ("/pkg.Service/Method") of a nice-grpc, ts-proto or grpc-js service definition. */
export function methodPaths(definition: CompatServiceDefinition): string[] {
  const tsProto = definition as { fullName?: unknown; methods?: Record<string, { name: string }> };
  if (typeof tsProto.fullName === "string" && tsProto.methods) {
    return Object.values(tsProto.methods).map((method) => `/${tsProto.fullName}/${method.name}`);
  }
  return Object.values(definition as Record<string, { path: string }>).map((method) => method.path);
}

/**
 * The grpc-js service config of a client of `definition`: round-robin over
 * every address the target resolves to, and retries on UNAVAILABLE for the
 * methods whose contract declares them safe to repeat. grpc-js's retry
 * throttling stops retrying while most calls fail (a whole peer down), so
 * retries cannot multiply the load of an outage.
 */
export function serviceConfigFor(definition: CompatServiceDefinition): object {
  const retryable = methodPaths(definition)
    .filter((path) => contracts().method(path)?.retryable === true)
    .map((path) => {
      const [, service, method] = path.split("/");
      return { service, method };
    });
  return {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig:
      retryable.length === 0
        ? []
        : [
            {
              name: retryable,
              retryPolicy: {
                maxAttempts: MAX_ATTEMPTS,
                initialBackoff: "0.05s",
                maxBackoff: "0.5s",
                backoffMultiplier: 2,
                retryableStatusCodes: ["UNAVAILABLE"],
              },
            },
          ],
    retryThrottling: { maxTokens: 10, tokenRatio: 0.1 },
  };
}

export function createServiceClient<S extends CompatServiceDefinition>(
  definition: S,
  address: string,
  options: ServiceClientOptions = {},
): { client: Client<S, DeadlineOptions>; close(): void } {
  const channel = createChannel(address, options.credentials, {
    "grpc.service_config": JSON.stringify(serviceConfigFor(definition)),
    // The balancing above is ours: a DNS TXT record must not replace it.
    "grpc.service_config_disable_resolution": 1,
    // An HTTP/2 ping every 30 s, idle connections included, and a connection
    // whose ping is unanswered for 10 s is dropped: a replica that vanishes
    // without closing its connections (a deleted pod, a partition) leaves the
    // rotation within 40 s instead of taking calls until their deadlines. The
    // platform's servers are grpc-js, which enforces no minimum ping interval
    // (it has no ping-strike policy), so they accept this; a server that does
    // enforce one answers GOAWAY too_many_pings and grpc-js doubles the interval.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const client = createClientFactory()
    .use(openTelemetryClientMiddleware())
    .use(errorDetailsClientMiddleware)
    .use(deadlineMiddleware)
    .create(definition, channel, { "*": { deadline: options.defaultDeadlineMs ?? 5_000 } });
  return { client, close: () => channel.close() };
}
