/**
 * grpc.health.v1 served twice from one HealthMonitor:
 *  - on the main port through nice-grpc-server-health (Envoy active health
 *    checks and grpcurl use the same channel and credentials as real calls);
 *  - on a separate plaintext probe port through `grpc-health-check` on a bare
 *    grpc-js Server, because Kubernetes `grpc:` probes cannot speak mTLS and
 *    nice-grpc does not expose its grpc-js Server to attach callback services.
 */
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { HealthDefinition, HealthServiceImpl, HealthState } from "nice-grpc-server-health";
import type { HealthMonitor, ServingStatus } from "./health";

export { HealthDefinition };

export function mainPortHealth(monitor: HealthMonitor, serviceNames: string[]) {
  const state = HealthState();
  const apply = (status: ServingStatus) => {
    const value = status === "SERVING" ? "healthy" : "unhealthy";
    state.setStatus(value);
    for (const name of serviceNames) state.setStatus(value, name);
  };
  apply(monitor.status);
  monitor.on("change", apply);
  return HealthServiceImpl(state);
}

export async function startProbeServer(monitor: HealthMonitor, serviceNames: string[], host: string, port: number) {
  const health = new HealthImplementation();
  const apply = (status: ServingStatus) => {
    health.setStatus("", status);
    for (const name of serviceNames) health.setStatus(name, status);
  };
  apply(monitor.status);
  monitor.on("change", apply);
  const server = new GrpcServer();
  health.addToServer(server);
  const boundPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    port: boundPort,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    forceClose: () => server.forceShutdown(),
  };
}
