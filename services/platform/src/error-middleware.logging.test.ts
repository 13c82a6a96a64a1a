/**
 * What the kernel middleware logs for UNAVAILABLE (error-middleware.ts): a
 * driver failure at warn with its error, a fail-fast refusal (already
 * reported once by the health monitor) only at debug, so an outage does not
 * write a stack trace per call.
 */
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { createChannel, createClient, Metadata, Status } from "nice-grpc";
import { pino } from "pino";
import { callerHeaders, startKernelServer } from "../../../test/harness/kernel-server";
import type { DependencyState } from "./fail-fast";

/** The log lines of one GetLead whose handler throws `thrown`, on a kernel with `health`. */
async function logLinesFor(
  thrown: () => Error,
  health?: DependencyState & { dependencyNames: readonly string[] },
): Promise<{ code: number; lines: { level: number; msg: string }[] }> {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const fail = async () => Promise.reject(thrown());
  const server = await startKernelServer({
    definition: LeadServiceDefinition,
    implementation: Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, fail])),
    logger,
    health,
  });
  const channel = createChannel(server.address);
  try {
    await createClient(LeadServiceDefinition, channel).getLead({ id: "x" }, { metadata: Metadata(callerHeaders()) });
    return { code: Status.OK, lines };
  } catch (error) {
    return { code: (error as { code: number }).code, lines };
  } finally {
    channel.close();
    await server.shutdown();
  }
}

describe("logging of unavailable dependencies", () => {
  it("logs a driver failure at warn with the driver's error", async () => {
    const failure = Object.assign(new Error("connect ECONNREFUSED"), { name: "MongoNetworkError" });
    const { code, lines } = await logLinesFor(() => failure);
    expect(code).toBe(Status.UNAVAILABLE);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: "dependency unavailable" })]);
  });

  it("logs a fail-fast refusal at debug only", async () => {
    const mongodbDown = { isDown: (name: string) => name === "mongodb", checkIntervalMs: 500, dependencyNames: ["mongodb"] };
    const { code, lines } = await logLinesFor(() => new Error("the handler must not run while mongodb is down"), mongodbDown);
    expect(code).toBe(Status.UNAVAILABLE);
    expect(lines).toEqual([expect.objectContaining({ level: 20, msg: "call refused: dependency unavailable" })]);
  });
});
