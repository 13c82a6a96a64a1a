import { type Channel, createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { CLIENT_TLS_CHANNEL_OPTIONS, type ClientTls, clientCredentials } from "./client-tls";

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
  const address = `${options.host ?? "127.0.0.1"}:${port}`;
  const channel: Channel = options.tls ? createChannel(address, clientCredentials(options.tls), CLIENT_TLS_CHANNEL_OPTIONS) : createChannel(address);
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
