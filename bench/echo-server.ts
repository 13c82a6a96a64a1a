/**
 * A unary echo server for the benchmark baseline, one per process so that
 * it never shares a JS thread with another server or the load generator:
 *
 *   node --import tsx bench/echo-server.ts bare|nice <port>
 *
 * `bare` registers a plain @grpc/grpc-js handler, `nice` the same handler
 * through nice-grpc (no middleware). Both take their method definition from
 * bench/echo.proto via @grpc/proto-loader, so (de)serialisation is identical
 * and the difference measured is nice-grpc's per-call overhead alone.
 */
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { createServer } from "nice-grpc";

interface EchoMessage {
  message: string;
}

const ADDRESS_HOST = "127.0.0.1";
const ECHO_PROTO = join(__dirname, "echo.proto");

function echoDefinition(): grpc.ServiceDefinition {
  return loadSync(ECHO_PROTO)["bench.echo.v1.EchoService"] as grpc.ServiceDefinition;
}

async function startBare(port: number): Promise<void> {
  const server = new grpc.Server();
  server.addService(echoDefinition(), {
    Echo: (call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>, callback: grpc.sendUnaryData<EchoMessage>) =>
      callback(null, { message: call.request.message }),
  });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${ADDRESS_HOST}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
}

async function startNice(port: number): Promise<void> {
  const server = createServer();
  server.add(echoDefinition(), {
    Echo: async (request: EchoMessage): Promise<EchoMessage> => ({ message: request.message }),
  });
  await server.listen(`${ADDRESS_HOST}:${port}`);
}

function main(): void {
  const [kind, portText] = process.argv.slice(2);
  const port = Number(portText);
  const start = kind === "bare" ? startBare : kind === "nice" ? startNice : undefined;
  if (!start || !Number.isInteger(port) || port <= 0) {
    process.stderr.write("usage: echo-server.ts bare|nice <port>\n");
    process.exit(2);
  }
  start(port).then(
    () => process.stdout.write(`${kind} echo server listening on ${ADDRESS_HOST}:${port}\n`),
    (error: unknown) => {
      process.stderr.write(`${kind} echo server failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) main();
