/**
 * Prometheus RED metrics: grpc_server_started/handled_total and
 * grpc_server_handling_seconds per RPC (labels grpc_type, grpc_service,
 * grpc_method, grpc_path, grpc_code), the metrics nice-grpc-prometheus
 * defines and registers, recorded by the kernel middleware through
 * serverCallMetrics; process metrics come from prom-client. Served as text
 * on http://host:METRICS_PORT/metrics.
 */
import { createServer, type Server } from "node:http";
import { type MethodDescriptor, Status } from "nice-grpc-common";
import { registry as grpcRegistry } from "nice-grpc-prometheus";
import { type Counter, collectDefaultMetrics, type Histogram, Registry } from "prom-client";

let processRegistry: Registry | undefined;

/** The kernel's own metrics (e.g. leadmesh_peer_rejections_total, mtls/peer-access.ts), served with the rest. */
export const kernelRegistry = new Registry();

export function metricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return Registry.merge([processRegistry, grpcRegistry, kernelRegistry]);
}

export async function startMetricsServer(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const registry = metricsRegistry();
  const server: Server = createServer((request, response) => {
    if (request.method !== "GET" || request.url !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
      (error: Error) => response.writeHead(500, { "content-type": "text/plain" }).end(`metrics collection failed: ${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The recorders of one RPC, labelled once: prom-client hashes a label object on every inc/observe given one. */
export interface MethodMetrics {
  started(): void;
  handled(code: Status, seconds: number): void;
  /** Streams only: counts each message received or sent. */
  received(): void;
  sent(): void;
}

interface CodeRecorders {
  handled: Counter.Internal;
  seconds: Histogram.Internal<string>;
}

const methodMetrics = new Map<string, MethodMetrics>();

function grpcMetric<T>(name: string): T {
  const metric = grpcRegistry.getSingleMetric(name);
  if (!metric) throw new Error(`nice-grpc-prometheus registers no metric ${name}`);
  return metric as T;
}

/** The labelled metrics of an RPC, made on its first call and kept (a service has a fixed, small set of RPCs). */
export function serverCallMetrics(method: MethodDescriptor): MethodMetrics {
  let metrics = methodMetrics.get(method.path);
  if (!metrics) {
    metrics = labelledMetrics(method);
    methodMetrics.set(method.path, metrics);
  }
  return metrics;
}

function labelledMetrics(method: MethodDescriptor): MethodMetrics {
  const [service, name] = method.path.split("/").slice(1);
  const type = method.requestStream ? (method.responseStream ? "bidi_stream" : "client_stream") : method.responseStream ? "server_stream" : "unary";
  const labels = { grpc_type: type, grpc_service: service, grpc_method: name, grpc_path: method.path };
  const started = grpcMetric<Counter>("grpc_server_started_total").labels(labels);
  const received = grpcMetric<Counter>("grpc_server_msg_received_total").labels(labels);
  const sent = grpcMetric<Counter>("grpc_server_msg_sent_total").labels(labels);
  const handled = grpcMetric<Counter>("grpc_server_handled_total");
  const seconds = grpcMetric<Histogram>("grpc_server_handling_seconds");
  const byCode: (CodeRecorders | undefined)[] = [];
  return {
    started: () => started.inc(),
    handled(code, elapsed) {
      let recorders = byCode[code];
      if (!recorders) {
        const withCode = { ...labels, grpc_code: Status[code] };
        recorders = { handled: handled.labels(withCode), seconds: seconds.labels(withCode) };
        byCode[code] = recorders;
      }
      recorders.handled.inc();
      recorders.seconds.observe(elapsed);
    },
    received: () => received.inc(),
    sent: () => sent.inc(),
  };
}
