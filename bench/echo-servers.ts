/**
 * Starts bench/echo-server.ts as a child process (bare grpc-js, nice-grpc,
 * or nice-grpc with the platform's middleware stack) on a free loopback
 * port, with its output in the run directory.
 */
import { join } from "node:path";
import { freePort, ManagedProcess, tcpReachable, waitUntil } from "../scripts/mesh/processes";
import { REPO_ROOT } from "../scripts/mesh/topology";
import { PLATFORM_ECHO_METADATA } from "./echo-server";

export type EchoKind = "bare" | "nice" | "platform";

export const ECHO_PROTO = join(__dirname, "echo.proto");
export const ECHO_CALL = "bench.echo.v1.EchoService.Echo";
export { PLATFORM_ECHO_METADATA } from "./echo-server";

/** Metadata a call needs on this kind of echo server: the platform one admits only a mesh identity (sidecar mode). */
export function echoMetadata(kind: EchoKind): Record<string, string> | undefined {
  return kind === "platform" ? PLATFORM_ECHO_METADATA : undefined;
}

export interface EchoServer {
  kind: EchoKind;
  port: number;
  process: ManagedProcess;
}

export async function startEchoServer(kind: EchoKind, runDir: string): Promise<EchoServer> {
  const port = await freePort();
  const child = new ManagedProcess({
    name: `echo-${kind}`,
    // `--import tsx` (not the tsx CLI) keeps the server in this one process,
    // so its pid is the one whose CPU we sample.
    command: process.execPath,
    args: ["--import", "tsx", join(__dirname, "echo-server.ts"), kind, String(port)],
    cwd: REPO_ROOT,
    logFile: join(runDir, `echo-${kind}.log`),
  }).start();
  await waitUntil(`${kind} echo server on port ${port}`, () => tcpReachable(port), 30_000, child);
  return { kind, port, process: child };
}
