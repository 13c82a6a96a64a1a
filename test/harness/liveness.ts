/**
 * Is a service of the test mesh still the same live process? Health alone
 * cannot tell: a supervisor may have restarted a crashed process in between.
 * So each check also compares prom-client's process_start_time_seconds (from
 * the service's /metrics) with the value seen before the test.
 */
import { createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { CLIENT_TLS_CHANNEL_OPTIONS, meshCredentials } from "./clients";
import { meshInfo } from "./mesh-info";

/** grpc.health.v1 HealthCheckResponse.ServingStatus names (the package does not export the enum). */
const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

export interface ProcessIdentity {
  service: string;
  startTimeSeconds: number;
}

export async function processIdentity(service: string): Promise<ProcessIdentity> {
  const response = await fetch(`http://127.0.0.1:${meshInfo().services[service].metrics}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const match = /^process_start_time_seconds (\d+(?:\.\d+)?)$/m.exec(await response.text());
  if (!match) throw new Error(`${service} /metrics has no process_start_time_seconds`);
  return { service, startTimeSeconds: Number(match[1]) };
}

/** grpc.health.v1 status of the whole server on the service's main port (mTLS, as the operator), or the error that prevented the check. */
export async function servingStatus(service: string): Promise<string> {
  const address = `127.0.0.1:${meshInfo().services[service].grpc}`;
  const channel = createChannel(address, meshCredentials(address, { server: service }), CLIENT_TLS_CHANNEL_OPTIONS);
  try {
    const health = createClient(HealthDefinition, channel);
    const { status } = await health.check({ service: "" }, { signal: AbortSignal.timeout(3_000) });
    return SERVING_STATUS[status] ?? `status ${status}`;
  } catch (error) {
    return `unreachable: ${(error as Error).message}`;
  } finally {
    channel.close();
  }
}

/** Why the services are not all the same SERVING processes as `before`; undefined when they are. */
export async function livenessProblem(before: readonly ProcessIdentity[]): Promise<string | undefined> {
  const problems: string[] = [];
  for (const { service, startTimeSeconds } of before) {
    const status = await servingStatus(service);
    if (status !== "SERVING") {
      problems.push(`${service} is ${status}`);
      continue;
    }
    const now = await processIdentity(service).catch((error: Error) => ({ startTimeSeconds: Number.NaN, error }));
    if (now.startTimeSeconds !== startTimeSeconds) problems.push(`${service} was restarted (process start time ${startTimeSeconds} → ${now.startTimeSeconds})`);
  }
  return problems.length > 0 ? problems.join("; ") : undefined;
}
