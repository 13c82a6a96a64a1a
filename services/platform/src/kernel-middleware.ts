/**
 * The platform's whole per-call path as one nice-grpc middleware. Each
 * concern keeps its own module and is called here as a plain function, in
 * the order the separate middlewares had (outermost first):
 *
 *   mesh peer allow-list (mtls/peer-access.ts; every RPC of the main port)
 *   → tracing span (telemetry.ts) and x-trace-id → RED metrics (metrics.ts)
 *   → API RPCs only (not health/reflection, which probes and grpcurl reach
 *     without a token): refuse undecodable requests (request-decoding.ts)
 *     → fail fast on a known-down dependency (fail-fast.ts)
 *     → authentication and the access rule (caller.ts)
 *     → a transcoded call's REST path against its request (path-identity.ts)
 *   → handler.
 *
 * Every error, of any step or the handler, leaves mapped to its gRPC status
 * (error-middleware.ts) before metrics and the span record its code. A peer
 * refusal is mapped but not counted in grpc_server_* (it never reached the
 * RPC), as before.
 *
 * Why one layer: each nice-grpc middleware wraps the call in another async
 * generator, and a generator layer costs a handful of promises per call,
 * each also paying the AsyncLocalStorage hook that carries the trace
 * context. Eleven layers were most of the kernel's cost over a bare echo.
 */
import type { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { type CallContext, ServerError, type ServerMiddleware, type ServerMiddlewareCall, Status } from "nice-grpc-common";
import { type AuthSettings, type CallerContext, callAuthenticator } from "./caller";
import { callStatusError, statusCodeOf } from "./error-middleware";
import { type DependencyState, dependencyGate } from "./fail-fast";
import type { Logger } from "./logger";
import { type MethodMetrics, serverCallMetrics } from "./metrics";
import { admittedPeer, type PeerAccessSettings, type PeerContext, rejectionCounter } from "./mtls/peer-access";
import { pathIdentityCheck } from "./path-identity";
import { refuseUndecodable } from "./request-decoding";
import { inContext, type ServerSpan, startServerSpan } from "./telemetry";

export interface KernelSettings {
  logger: Logger;
  peerAccess: PeerAccessSettings;
  /** Access rules of the API's RPCs, by gRPC path: these RPCs also pass decoding, fail-fast and authentication. */
  accessRules: ReadonlyMap<string, AccessRule>;
  auth: AuthSettings;
  health: DependencyState;
  /** Dependency checks each API RPC needs (fail-fast.ts dependencyNeedsOf). */
  dependencyNeeds: ReadonlyMap<string, readonly string[]>;
}

type KernelCall = ServerMiddlewareCall<unknown, unknown, CallerContext & PeerContext>;

export function kernelMiddleware(settings: KernelSettings): ServerMiddleware<CallerContext & PeerContext> {
  const { logger, accessRules } = settings;
  const authenticate = callAuthenticator(accessRules, settings.auth, logger);
  const refuseIfDependencyDown = dependencyGate(settings.health, settings.dependencyNeeds);
  const checkPathIdentity = pathIdentityCheck(accessRules.keys());
  rejectionCounter();

  async function* kernelCall(call: KernelCall, context: CallContext, span: ServerSpan): AsyncGenerator<unknown, unknown, undefined> {
    const path = call.method.path;
    let meshPeer: PeerContext["meshPeer"];
    try {
      meshPeer = admittedPeer(settings.peerAccess, logger, path, context);
    } catch (error) {
      throw await callStatusError(error, call, context, logger);
    }
    context.header.set("x-trace-id", span.traceId);
    const metrics = serverCallMetrics(call.method);
    metrics.started();
    const startedAt = performance.now();
    let code: Status | undefined;
    let message: string | undefined;
    try {
      const callerContext: CallContext & PeerContext & Partial<CallerContext> = { ...context, meshPeer };
      if (accessRules.has(path)) {
        refuseUndecodable(call.request, path);
        refuseIfDependencyDown(path);
        const caller = authenticate(path, call.request, context, meshPeer);
        callerContext.caller = caller instanceof Promise ? await caller : caller;
        if (!call.requestStream) checkPathIdentity(path, call.request, context.metadata, meshPeer);
      }
      const request = call.requestStream ? counted(call.request as AsyncIterable<unknown>, metrics, "received") : call.request;
      const result = call.responseStream
        ? yield* counted(call.next(request, callerContext as CallContext & CallerContext & PeerContext), metrics, "sent")
        : yield* call.next(request, callerContext as CallContext & CallerContext & PeerContext);
      code = Status.OK;
      return result;
    } catch (error) {
      const mapped = await callStatusError(error, call, context, logger);
      code = statusCodeOf(mapped);
      message = mapped instanceof ServerError ? mapped.details : undefined;
      throw mapped;
    } finally {
      // No code: the generator was closed early, i.e. the client went away.
      code ??= Status.CANCELLED;
      metrics.handled(code, (performance.now() - startedAt) / 1000);
      span.end(code, message);
    }
  }

  return (call, context) => {
    const span = startServerSpan(call.method.path, context.metadata, context.peer);
    return inContext(span.context, kernelCall(call as KernelCall, context, span)) as never;
  };
}

/** Stream messages through, counting each in grpc_server_msg_received/sent_total (for-await: closing early closes the source). */
async function* counted<T>(messages: AsyncIterable<T>, metrics: MethodMetrics, direction: "received" | "sent"): AsyncGenerator<T, undefined, undefined> {
  for await (const message of messages) {
    metrics[direction]();
    yield message;
  }
  return undefined;
}
