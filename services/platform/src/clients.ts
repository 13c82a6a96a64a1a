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
 * and it gets calls again once it accepts a connection.
 *
 * Retries: a unary call whose RPC the contract declares safe to repeat
 * (idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT) is tried up to 3 times on
 * UNAVAILABLE, each retry picked round-robin (so on another replica), within
 * the call's one deadline. That covers a call cut off by a replica that died
 * and a replica that refuses calls while NOT_SERVING. grpc-js's own
 * retryPolicy cannot do the second: it commits a call once the server's
 * headers arrive, and nice-grpc sends them before an error status. Other RPCs
 * are never retried here (grpc-js still retries transparently a call that
 * never reached a server).
 *
 * Security: the channel speaks mTLS with this process's identity and accepts
 * only a server that proves the peer's SPIFFE id (mtls/transport.ts), or
 * plaintext to the local sidecar in sidecar mode.
 *
 * Deadlines: a handler calling on passes callOptionsFrom(context, …): the
 * downstream call ends no later than the upstream call's deadline, and is
 * cancelled with it (its AbortSignal). The deadline also goes on the wire as
 * grpc-timeout (nice-grpc's deadline middleware is only a client-side timer),
 * so the callee knows it (leadmesh-deadline) and bounds its own calls by it.
 *
 * A call that forwarded the user's token and was refused for that user
 * (failedForForwardedUser) is relayed to the user as it came, by the error
 * middleware: the user is refused, not the service.
 */
import { type Client, type CompatServiceDefinition, createChannel, createClientFactory, Metadata } from "nice-grpc";
import { type DeadlineOptions, deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { type CallContext, type CallOptions, ClientError, type ClientMiddleware, type ClientMiddlewareCall, Status } from "nice-grpc-common";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { openTelemetryClientMiddleware } from "nice-grpc-opentelemetry";
import { TENANT_HEADER } from "./caller";
import { contracts } from "./contract/contracts";
import { DEADLINE_HEADER } from "./mtls/peer-identity";
import type { MeshTransport } from "./mtls/transport";

export interface ServiceClientOptions {
  transport: MeshTransport;
  /** Identity name of the service behind `address`: its servers must present that SPIFFE id. */
  peer: string;
  /** Deadline of every call unless the call sets its own; default 5 s. */
  defaultDeadlineMs?: number;
}

export const DEFAULT_DEADLINE_MS = 5_000;

export interface ForwardOptions {
  /** Forward the upstream caller's Authorization header: the callee applies the user's access rule too. */
  forwardUser?: boolean;
  /** Act as this service within a tenant (sent as leadmesh-tenant; the callee checks its access rule admits services). */
  tenant?: string;
  /** At most this long from now; default DEFAULT_DEADLINE_MS. The upstream deadline still wins when earlier. */
  deadlineMs?: number;
}

/**
 * Options for a call made while handling `context`: the earlier of the
 * upstream call's deadline and now + deadlineMs, the upstream's AbortSignal
 * (the downstream call is cancelled with it), and metadata carrying only what
 * the callee needs (the user's token, or the tenant a service acts in).
 */
export function callOptionsFrom(context: CallContext, options: ForwardOptions = {}): CallOptions & DeadlineOptions {
  const metadata = Metadata();
  if (options.forwardUser) {
    const authorization = context.metadata.get("authorization");
    if (authorization) metadata.set("authorization", authorization);
  }
  if (options.tenant !== undefined && options.tenant !== "") metadata.set(TENANT_HEADER, options.tenant);
  const own = Date.now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const upstream = Number(context.metadata.get(DEADLINE_HEADER));
  const deadline = Number.isFinite(upstream) && upstream > 0 ? Math.min(upstream, own) : own;
  return { deadline: new Date(deadline), signal: context.signal, metadata };
}

/** Client errors of calls that carried a user's token (callOptionsFrom forwardUser). */
const forwardedUserFailures = new WeakSet<object>();

/** Whether `error` ended a call that acted for a user (forwarded the user's token): the callee's refusal may be the user's. */
export function failedForForwardedUser(error: unknown): boolean {
  return typeof error === "object" && error !== null && forwardedUserFailures.has(error);
}

async function* markForwardedUserFailures<Request, Response>(call: ClientMiddlewareCall<Request, Response>, options: CallOptions) {
  try {
    return yield* call.next(call.request, options);
  } catch (error) {
    if (error instanceof ClientError && options.metadata?.has("authorization")) forwardedUserFailures.add(error);
    throw error;
  }
}

/**
 * Just outside the deadline middleware, once per attempt: sends what is left
 * of the call's deadline as grpc-timeout (grpc-js writes that header itself
 * only for its own deadline option, which nice-grpc does not set). The
 * server reads it as the call's deadline (peer-identity.ts, leadmesh-deadline).
 */
const sendDeadline: ClientMiddleware<DeadlineOptions> = async function* sendDeadline(call, options) {
  const { deadline } = options;
  if (deadline === undefined) return yield* call.next(call.request, options);
  const remainingMs = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline;
  const metadata = Metadata(options.metadata);
  metadata.set("grpc-timeout", grpcTimeout(remainingMs));
  return yield* call.next(call.request, { ...options, metadata });
};

/** A grpc-timeout value: at most 8 digits, in milliseconds while they fit, else in seconds. */
export function grpcTimeout(remainingMs: number): string {
  const ms = Math.max(1, Math.ceil(remainingMs));
  return ms <= 99_999_999 ? `${ms}m` : `${Math.min(99_999_999, Math.ceil(ms / 1000))}S`;
}

/** A retried call gets at most this many attempts in all (the first one included). */
const MAX_ATTEMPTS = 3;
const FIRST_BACKOFF_MS = 25;

/** gRPC paths ("/pkg.Service/Method") of a nice-grpc, ts-proto or grpc-js service definition. */
export function methodPaths(definition: CompatServiceDefinition): string[] {
  const tsProto = definition as { fullName?: unknown; methods?: Record<string, { name: string }> };
  if (typeof tsProto.fullName === "string" && tsProto.methods) {
    return Object.values(tsProto.methods).map((method) => `/${tsProto.fullName}/${method.name}`);
  }
  return Object.values(definition as Record<string, { path: string }>).map((method) => method.path);
}

/** Paths of the definition's RPCs that the contract declares safe to repeat. */
export function retryablePaths(definition: CompatServiceDefinition): Set<string> {
  return new Set(methodPaths(definition).filter((path) => contracts().method(path)?.retryable === true));
}

/** The grpc-js service config of a mesh client: round-robin over every address the target resolves to. */
export function serviceConfigFor(): object {
  return { loadBalancingConfig: [{ round_robin: {} }] };
}

/**
 * Retries may add at most one call per two successful ones, plus a burst of
 * 10: a replica down among several costs little, while a whole peer down
 * (every retry failing too) soon stops being retried, so retries cannot
 * multiply the load of an outage.
 */
export class RetryBudget {
  private tokens = 10;
  succeeded(): void {
    this.tokens = Math.min(10, this.tokens + 0.5);
  }
  take(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Retries UNAVAILABLE for the unary RPCs in `retryable`, within the call's deadline and the budget. */
export function retryMiddleware(retryable: ReadonlySet<string>, budget = new RetryBudget()) {
  return async function* retry<Request, Response>(call: ClientMiddlewareCall<Request, Response>, callOptions: CallOptions) {
    if (call.requestStream || call.responseStream || !retryable.has(call.method.path)) return yield* call.next(call.request, callOptions);
    // A relative deadline (the client's default, in ms) is fixed once here, so
    // that every attempt shares it instead of each starting a fresh one.
    const { deadline } = callOptions as DeadlineOptions;
    const options = typeof deadline === "number" ? { ...callOptions, deadline: new Date(Date.now() + deadline) } : callOptions;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const response = yield* call.next(call.request, options);
        budget.succeeded();
        return response;
      } catch (error) {
        const again = error instanceof ClientError && error.code === Status.UNAVAILABLE && attempt < MAX_ATTEMPTS && !options.signal?.aborted;
        if (!again || !budget.take()) throw error;
        await new Promise((resolve) => setTimeout(resolve, FIRST_BACKOFF_MS * 2 ** (attempt - 1)));
      }
    }
  };
}

export function createServiceClient<S extends CompatServiceDefinition>(
  definition: S,
  address: string,
  options: ServiceClientOptions,
): { client: Client<S, DeadlineOptions>; close(): void } {
  const channel = createChannel(address, options.transport.channelCredentials(options.peer), {
    "grpc.service_config": JSON.stringify(serviceConfigFor()),
    // The balancing above is ours: a DNS TXT record must not replace it.
    "grpc.service_config_disable_resolution": 1,
    // TLS server name: the peer's name, not the IP of a local address list
    // (Node deprecates IP server names). Identity is checked by SPIFFE id.
    "grpc.ssl_target_name_override": options.peer,
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
  // Each use() wraps the ones before it: the last is the outermost.
  const client = createClientFactory()
    .use(openTelemetryClientMiddleware())
    .use(errorDetailsClientMiddleware)
    .use(deadlineMiddleware)
    .use(sendDeadline)
    // Outside the deadline: every attempt shares the call's one deadline.
    .use(retryMiddleware(retryablePaths(definition)))
    // Outermost: marks the very error the handler gets.
    .use(markForwardedUserFailures)
    .create(definition, channel, { "*": { deadline: options.defaultDeadlineMs ?? DEFAULT_DEADLINE_MS } });
  return { client, close: () => channel.close() };
}
