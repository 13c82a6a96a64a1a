import { type Channel, createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { type ClientTls, clientCredentials } from "./client-tls";

// grpc.health.v1.HealthCheckResponse.ServingStatus (the package does not export the enum).
const STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

export interface HealthCheckOptions {
  /** grpc.health.v1 service name; "" (default) is the whole server. */
  service?: string;
  host?: string;
  /** mTLS as this identity: a service's main port requires it; the probe port is plaintext (leave it out). */
  tls?: ClientTls;
}

/** Asks grpc.health.v1 on host:port; resolves to the serving status name or "UNREACHABLE". */
export async function healthStatus(port: number, options: HealthCheckOptions = {}): Promise<string> {
  const channel: Channel = createChannel(`${options.host ?? "127.0.0.1"}:${port}`, options.tls ? clientCredentials(options.tls) : undefined);
  try {
    const client = createClient(HealthDefinition, channel);
    const response = await client.check({ service: options.service ?? "" }, { signal: AbortSignal.timeout(1000) });
    return STATUS_NAMES[response.status] ?? String(response.status);
  } catch {
    return "UNREACHABLE";
  } finally {
    channel.close();
  }
}
