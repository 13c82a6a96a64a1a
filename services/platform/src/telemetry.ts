/**
 * OpenTelemetry wiring. Services only use `@opentelemetry/api`; this module
 * registers the SDK pieces behind it once per process: an AsyncLocalStorage
 * context manager (so the active span follows async handlers), the W3C
 * trace-context propagator (traceparent arrives from Envoy and from other
 * services and is forwarded on outgoing calls) and a tracer provider.
 *
 * Spans are recorded and exported only when OTEL_EXPORTER is set ("console"
 * for now). Without an exporter nothing is sampled: spans are the SDK's
 * non-recording kind, which still carry trace ids (logs, x-trace-id,
 * propagation) but skip attribute and event bookkeeping on every call, the
 * largest telemetry cost seen when profiling GetLead under load.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  ConsoleSpanExporter,
  ParentBasedSampler,
  RandomIdGenerator,
  SimpleSpanProcessor,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { type Metadata, Status } from "nice-grpc-common";

let provider: BasicTracerProvider | undefined;
/** Whether server spans are recorded (an exporter is configured); otherwise only their ids are made. */
let recording = false;

export function initTelemetry(serviceName: string, env = process.env): void {
  if (provider) return;
  const spanProcessors: SpanProcessor[] = [];
  if (env.OTEL_EXPORTER === "console") spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
  recording = spanProcessors.length > 0;
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": serviceName }),
    spanProcessors,
    sampler: spanProcessors.length === 0 ? new AlwaysOffSampler() : new ParentBasedSampler({ root: new AlwaysOnSampler() }),
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
}

export async function shutdownTelemetry(): Promise<void> {
  await provider?.shutdown();
}

/** The server span of one call: the context its work runs in, and its trace id. */
export interface ServerSpan {
  readonly context: Context;
  /** Returned to every caller as x-trace-id, so a frontend developer or SRE can quote it and find the request's logs and spans. */
  readonly traceId: string;
  end(code: Status, message?: string): void;
}

const metadataGetter: TextMapGetter<Metadata> = {
  get: (carrier, key) => {
    const value = carrier.get(key);
    return typeof value === "string" ? value : undefined;
  },
  keys: (carrier) => Array.from(carrier, ([key]) => key),
};

const ids = new RandomIdGenerator();
const ignoreEnd = () => undefined;

/**
 * The span of a server call, child of the caller's W3C traceparent (or the
 * root of a new trace). Without an exporter no span is recorded, so none is
 * built either: the call gets a non-recording span with fresh ids, which is
 * all that logs, x-trace-id and the traceparent of downstream calls read;
 * the SDK's sampler, attribute and bookkeeping work per call was a few
 * percent of an echo's CPU.
 */
export function startServerSpan(path: string, metadata: Metadata, peer: string): ServerSpan {
  const parentContext = propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
  if (recording) return recordedServerSpan(path, parentContext, peer);
  const parent = trace.getSpanContext(parentContext);
  const traceId = parent && trace.isSpanContextValid(parent) ? parent.traceId : ids.generateTraceId();
  const spanContext = { traceId, spanId: ids.generateSpanId(), traceFlags: TraceFlags.NONE, isRemote: false };
  return { context: trace.setSpanContext(parentContext, spanContext), traceId, end: ignoreEnd };
}

/** Attributes and status as nice-grpc-opentelemetry records them (OpenTelemetry RPC semantic conventions). */
function recordedServerSpan(path: string, parentContext: Context, peer: string): ServerSpan {
  const [, service, method] = path.split("/");
  const span: Span = trace
    .getTracer("leadmesh")
    .startSpan(
      path.slice(1),
      { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, "net.peer.name": peer } },
      parentContext,
    );
  return {
    context: trace.setSpan(parentContext, span),
    traceId: span.spanContext().traceId,
    end(code, message) {
      span.setAttributes({ "rpc.grpc.status_code": code, "rpc.grpc.status_text": Status[code] });
      if (code !== Status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: `${Status[code]}: ${message ?? ""}` });
      span.end();
    },
  };
}

/**
 * Runs every step of `generator` (the rest of the call: inner middleware and
 * handler) inside `callContext`, so that the active span follows the call
 * through its awaits. With(fn, thisArg, arg) allocates no closure per step.
 */
export function inContext<T, R>(callContext: Context, generator: AsyncGenerator<T, R, undefined>): AsyncGenerator<T, R, undefined> {
  const bound = {
    next: (value?: undefined) => context.with(callContext, generator.next, generator, value),
    return: (value: R) => context.with(callContext, generator.return, generator, value),
    throw: (error: unknown) => context.with(callContext, generator.throw, generator, error),
    [Symbol.asyncIterator]: () => bound,
  };
  return bound as unknown as AsyncGenerator<T, R, undefined>;
}

/** Trace and span id of the active span, for log lines and error messages. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}
