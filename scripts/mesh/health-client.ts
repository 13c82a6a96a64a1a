import { type Channel, createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";

// grpc.health.v1.HealthCheckResponse.ServingStatus (the package does not export the enum).
const STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/** Asks grpc.health.v1 on host:port; resolves to the serving status name or "UNREACHABLE". */
export async function healthStatus(port: number, service = "", host = "127.0.0.1"): Promise<string> {
  const channel: Channel = createChannel(`${host}:${port}`);
  try {
    const client = createClient(HealthDefinition, channel);
    const response = await client.check({ service }, { signal: AbortSignal.timeout(1000) });
    return STATUS_NAMES[response.status] ?? String(response.status);
  } catch {
    return "UNREACHABLE";
  } finally {
    channel.close();
  }
}
