/**
 * What the error middleware logs for UNAVAILABLE: a driver failure at warn
 * with its error, a fail-fast refusal (already reported once by the health
 * monitor) only at debug, so an outage does not write a stack trace per call.
 */
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { createChannel, createClient, createServer, Status } from "nice-grpc";
import { pino } from "pino";
import { errorStatusMiddleware } from "./error-middleware";
import { DependencyUnavailableError } from "./errors";

async function logLinesFor(thrown: () => Error): Promise<{ code: number; lines: { level: number; msg: string }[] }> {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const server = createServer().use(errorStatusMiddleware(logger));
  const fail = async () => Promise.reject(thrown());
  server.add(LeadServiceDefinition, Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, fail])) as never);
  const port = await server.listen("127.0.0.1:0");
  const channel = createChannel(`127.0.0.1:${port}`);
  try {
    await createClient(LeadServiceDefinition, channel).getLead({ id: "x" });
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
    const { code, lines } = await logLinesFor(() => new DependencyUnavailableError("mongodb", 1000));
    expect(code).toBe(Status.UNAVAILABLE);
    expect(lines).toEqual([expect.objectContaining({ level: 20, msg: "call refused: dependency unavailable" })]);
  });
});
