/**
 * Prometheus RED metrics: nice-grpc-prometheus records
 * grpc_server_started/handled_total and grpc_server_handling_seconds per RPC
 * (labels grpc_service, grpc_method, grpc_code); process metrics come from
 * prom-client. Served as text on http://host:METRICS_PORT/metrics.
 */
import { createServer, type Server } from "node:http";
import { registry as grpcRegistry } from "nice-grpc-prometheus";
import { collectDefaultMetrics, Registry } from "prom-client";

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
