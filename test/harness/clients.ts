import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { type Channel, type CompatServiceDefinition, createChannel, createClientFactory, Metadata } from "nice-grpc";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { REPO_ROOT } from "../../scripts/mesh/topology";

export const TOOLS_BIN = join(REPO_ROOT, ".tools", "bin");

/** A client of any service whose calls carry `Authorization: Bearer <token>` (when a token is given). */
export function grpcClient<S extends CompatServiceDefinition>(definition: S, address: string, token?: string) {
  const channel: Channel = createChannel(address);
  const client = createClientFactory()
    .use(errorDetailsClientMiddleware)
    .use((call, options) => call.next(call.request, { ...options, metadata: withToken(options.metadata, token) }))
    .create(definition, channel);
  return { client, close: () => channel.close() };
}

export function leadClient(address: string, token?: string) {
  return grpcClient(LeadServiceDefinition, address, token);
}

function withToken(metadata: Metadata | undefined, token: string | undefined): Metadata {
  const result = Metadata(metadata);
  if (token) result.set("authorization", `Bearer ${token}`);
  return result;
}

/** Runs a pinned CLI tool from .tools/bin; resolves with stdout/stderr and exit code (never throws on non-zero). */
export async function runTool(tool: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(TOOLS_BIN, tool), args, { timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === "number" ? failure.code : 1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? String(error) };
  }
}

/** A unique tenant id per test, so tests never see each other's data. */
export function uniqueTenant(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase().slice(0, 63);
}
