import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { type Channel, type CompatServiceDefinition, createChannel, createClientFactory, Metadata } from "nice-grpc";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import type { MeshCertificatePaths } from "../../scripts/mesh/certificates";
import { CLIENT_TLS_CHANNEL_OPTIONS, clientCredentials, OPERATOR_IDENTITY } from "../../scripts/mesh/client-tls";
import { loadMeshModel, spiffeIdOf } from "../../scripts/mesh/model";
import { REPO_ROOT } from "../../scripts/mesh/topology";
import { hasMeshInfo, meshCertificates, meshInfo } from "./mesh-info";

export const TOOLS_BIN = join(REPO_ROOT, ".tools", "bin");

/** Metadata naming the tenant a service acts for when it calls without a user's token (the kernel's Caller reads it). */
export const TENANT_METADATA = "leadmesh-tenant";

export interface ConnectOptions {
  /** Identity whose certificate the client presents; default "operator" (operators' tools, allowed on every RPC). */
  identity?: string;
  /** Sent as `leadmesh-tenant`: the tenant a service identity acts for. */
  tenant?: string;
  /** Plain HTTP/2 without TLS: the Envoy ingress listener (browsers' side, not mTLS). */
  plaintext?: boolean;
  /**
   * Name of the service expected at the address; its SPIFFE id must be in
   * the server's certificate. Default: the test mesh's service whose gRPC
   * port the address names; any SPIFFE id of the mesh CA for other ports
   * (in-process services on random ports).
   */
  server?: string;
  /** The SPIFFE id the server must present (instead of `server`, for a service the default topology does not declare). */
  serverId?: string;
  /** Certificates of another mesh (a private mesh's RunningMesh.tls); default the test mesh's. */
  certificates?: MeshCertificatePaths;
}

/** The service of the test mesh listening on `address`'s port, if any. */
function serviceAt(address: string): string | undefined {
  if (!hasMeshInfo()) return undefined;
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  return Object.entries(meshInfo().services).find(([, ports]) => ports.grpc === port)?.[0];
}

export { CLIENT_TLS_CHANNEL_OPTIONS };

/** Channel credentials for `address`: mTLS as `options.identity` (default operator) checking the server's SPIFFE id, or plaintext. */
export function meshCredentials(address: string, options: ConnectOptions = {}): ChannelCredentials | undefined {
  if (options.plaintext) return undefined;
  const server = options.server ?? (options.certificates ? undefined : serviceAt(address));
  return clientCredentials({
    certificates: options.certificates ?? meshCertificates(),
    identity: options.identity ?? OPERATOR_IDENTITY,
    server: options.serverId ?? (server ? spiffeIdOf(loadMeshModel(), server) : undefined),
  });
}

/**
 * A client of any service, over mTLS as the operator unless `options` say
 * otherwise, whose calls carry `Authorization: Bearer <token>` (when a token
 * is given) and `leadmesh-tenant` (when `options.tenant` is).
 */
export function grpcClient<S extends CompatServiceDefinition>(definition: S, address: string, token?: string, options: ConnectOptions = {}) {
  const credentials = meshCredentials(address, options);
  const channel: Channel = credentials ? createChannel(address, credentials, CLIENT_TLS_CHANNEL_OPTIONS) : createChannel(address);
  const client = createClientFactory()
    .use(errorDetailsClientMiddleware)
    .use((call, callOptions) => call.next(call.request, { ...callOptions, metadata: withIdentity(callOptions.metadata, token, options.tenant) }))
    .create(definition, channel);
  return { client, close: () => channel.close() };
}

/**
 * A client as the mesh service `serviceName` acting for `tenant`: its own
 * certificate and `leadmesh-tenant`, no token (what replaced service tokens).
 */
export function serviceClient<S extends CompatServiceDefinition>(
  definition: S,
  address: string,
  serviceName: string,
  tenant: string,
  options: Omit<ConnectOptions, "identity" | "tenant" | "plaintext"> = {},
) {
  return grpcClient(definition, address, undefined, { ...options, identity: serviceName, tenant });
}

export function leadClient(address: string, token?: string, options: ConnectOptions = {}) {
  return grpcClient(LeadServiceDefinition, address, token, options);
}

function withIdentity(metadata: Metadata | undefined, token: string | undefined, tenant: string | undefined): Metadata {
  const result = Metadata(metadata);
  if (token) result.set("authorization", `Bearer ${token}`);
  if (tenant !== undefined) result.set(TENANT_METADATA, tenant);
  return result;
}

/** grpcurl's flags for mTLS as `identity` (default operator) with the test mesh's certificates. */
export function grpcurlTlsArgs(identity = OPERATOR_IDENTITY, certificates = meshCertificates()): string[] {
  return ["-cacert", certificates.caFile, "-cert", certificates.certFile(identity), "-key", certificates.keyFile(identity)];
}

/** grpc-health-probe's flags for mTLS as `identity` (default operator) with the test mesh's certificates. */
export function healthProbeTlsArgs(identity = OPERATOR_IDENTITY, certificates = meshCertificates()): string[] {
  return [
    "-tls",
    `-tls-ca-cert=${certificates.caFile}`,
    `-tls-client-cert=${certificates.certFile(identity)}`,
    `-tls-client-key=${certificates.keyFile(identity)}`,
  ];
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
