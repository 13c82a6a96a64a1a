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
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { ServerMiddleware } from "nice-grpc-common";

let provider: BasicTracerProvider | undefined;

export function initTelemetry(serviceName: string, env = process.env): void {
  if (provider) return;
  const spanProcessors: SpanProcessor[] = [];
  if (env.OTEL_EXPORTER === "console") spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
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

/** Trace and span id of the active span, for log lines and error messages. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * Returns the trace id to every caller as `x-trace-id`, so a frontend
 * developer or SRE can quote it and find the request's logs and spans.
 */
export const traceIdHeaderMiddleware: ServerMiddleware = async function* traceIdHeader(call, context) {
  const ids = activeTraceIds();
  if (ids) context.header.set("x-trace-id", ids.trace_id);
  return yield* call.next(call.request, context);
};
