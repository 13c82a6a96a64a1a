/**
 * Clients for calling other services in the mesh, composed like the server:
 * tracing first (injects W3C traceparent from the active span, so the callee
 * continues the caller's trace), then rich error details, then a default
 * deadline so a slow dependency cannot hold a caller forever.
 */
import { createChannel, createClientFactory, type ChannelCredentials, type CompatServiceDefinition, type Client } from "nice-grpc";
import { deadlineMiddleware, type DeadlineOptions } from "nice-grpc-client-middleware-deadline";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { openTelemetryClientMiddleware } from "nice-grpc-opentelemetry";

export interface ServiceClientOptions {
  /** Deadline of every call unless the call sets its own; default 5 s. */
  defaultDeadlineMs?: number;
  credentials?: ChannelCredentials;
}

export function createServiceClient<S extends CompatServiceDefinition>(
  definition: S,
  address: string,
  options: ServiceClientOptions = {},
): { client: Client<S, DeadlineOptions>; close(): void } {
  const channel = createChannel(address, options.credentials, {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
  });
  const client = createClientFactory()
    .use(openTelemetryClientMiddleware())
    .use(errorDetailsClientMiddleware)
    .use(deadlineMiddleware)
    .create(definition, channel, { "*": { deadline: options.defaultDeadlineMs ?? 5_000 } });
  return { client, close: () => channel.close() };
}
