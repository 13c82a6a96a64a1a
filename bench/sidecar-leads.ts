/**
 * The plaintext comparison for GetLead over gRPC: a second leads process in
 * the mesh's sidecar mode (MESH_SECURITY=sidecar), i.e. as it runs under
 * Istio, where the pod's sidecar terminates mTLS. It serves plaintext on its
 * port and takes the caller's identity from `x-forwarded-client-cert`,
 * trusted only from a loopback peer; the bench plays the inbound sidecar and
 * sends the header Envoy would set for the operator's certificate.
 *
 * Same code (services/leads/dist/main.js) and the mesh leads' environment,
 * database and Redis, with only its ports and security mode changed: the two
 * GetLead runs differ in the transport, not in the work behind it (token
 * verification, revocation lookup, peer allow-list, the read).
 *
 * Its one outbound call, the JWKS fetch from auth (once, then cached, so
 * outside the measured path), goes through the mesh's ingress, which plays
 * the outbound sidecar here: plaintext gRPC in, mTLS with the edge identity
 * to auth. A plaintext call straight to auth would be refused.
 */
import { join } from "node:path";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { ClientError, createChannel, createClient, Metadata, Status } from "nice-grpc";
import { healthStatus } from "../scripts/mesh/health-client";
import type { RunningMesh } from "../scripts/mesh/local-mesh";
import { spiffeIdOf } from "../scripts/mesh/model";
import { addressVariable } from "../scripts/mesh/model-environment";
import { freePort, ManagedProcess, waitUntil } from "../scripts/mesh/processes";

/** Variables only mTLS mode reads: left out, so that sidecar mode visibly works without certificates. */
const TLS_VARIABLES = ["TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CA_FILE", "TLS_RELOAD_MS"];

export interface SidecarLeads {
  /** host:port of its plaintext gRPC port. */
  address: string;
  pid: number;
  /** The `x-forwarded-client-cert` value a sidecar sets for a caller with the operator's certificate. */
  forwardedClientCert: string;
  stop(): Promise<void>;
}

/**
 * What Istio's sidecar sets (SANITIZE_SET): By = this workload's id, URI =
 * the verified caller's id. The service reads the last element's URI.
 */
export function forwardedClientCertFor(mesh: RunningMesh, caller: string): string {
  return `By=${spiffeIdOf(mesh.topology, "leads")};URI=${spiffeIdOf(mesh.topology, caller)}`;
}

function sidecarEnvironment(mesh: RunningMesh, ports: { grpc: number; health: number; metrics: number }): NodeJS.ProcessEnv {
  const meshLeads = mesh.processes.leads?.spec.env;
  if (!meshLeads) throw new Error("sidecar leads: the mesh runs no leads process whose environment to start from");
  if (mesh.ingressPort === undefined) throw new Error("sidecar leads: the mesh has no ingress to reach auth's JWKS through");
  const environment: NodeJS.ProcessEnv = {
    ...meshLeads,
    GRPC_PORT: String(ports.grpc),
    HEALTH_PORT: String(ports.health),
    METRICS_PORT: String(ports.metrics),
    MESH_SECURITY: "sidecar",
    // ghz on loopback plays the inbound sidecar (Istio's is 127.0.0.6, the default).
    MESH_SIDECAR_PEERS: "127.0.0.1",
    [addressVariable("auth")]: `127.0.0.1:${mesh.ingressPort}`,
  };
  for (const name of TLS_VARIABLES) delete environment[name];
  return environment;
}

/**
 * Proves the comparison measures sidecar mode, not an open port: GetLead
 * with the forwarded identity and the token answers, the same call without
 * the header is refused UNAUTHENTICATED.
 */
async function checkSidecarMode(address: string, leadId: string, authorization: string, forwardedClientCert: string): Promise<void> {
  const channel = createChannel(address);
  try {
    const client = createClient(LeadServiceDefinition, channel);
    const call = (headers: Record<string, string>) => client.getLead({ id: leadId }, { metadata: Metadata(headers), signal: AbortSignal.timeout(10_000) });
    const lead = await call({ authorization, "x-forwarded-client-cert": forwardedClientCert });
    if (lead.lead?.id !== leadId) throw new Error(`sidecar leads: GetLead ${leadId} returned ${JSON.stringify(lead).slice(0, 200)}`);
    const refusal = await call({ authorization }).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!(refusal instanceof ClientError) || refusal.code !== Status.UNAUTHENTICATED) {
      throw new Error(
        `sidecar leads: GetLead without x-forwarded-client-cert must be UNAUTHENTICATED, got ${refusal === undefined ? "an answer" : String(refusal)}`,
      );
    }
  } finally {
    channel.close();
  }
}

/** Starts the sidecar-mode leads next to `mesh` and checks that it serves `leadId` only with a forwarded identity. */
export async function startSidecarLeads(mesh: RunningMesh, leadId: string, authorization: string): Promise<SidecarLeads> {
  const ports = { grpc: await freePort(), health: await freePort(), metrics: await freePort() };
  const leadsSpec = mesh.processes.leads.spec;
  const leads = new ManagedProcess({
    name: "leads-sidecar",
    command: leadsSpec.command,
    args: leadsSpec.args,
    cwd: leadsSpec.cwd,
    env: sidecarEnvironment(mesh, ports),
    logFile: join(mesh.runDir, "leads-sidecar.log"),
  }).start();
  try {
    // The probe port: plaintext health without a caller identity, as Kubernetes probes it.
    await waitUntil("sidecar leads to report SERVING", async () => (await healthStatus(ports.health)) === "SERVING", 60_000, leads);
    const address = `127.0.0.1:${ports.grpc}`;
    const forwardedClientCert = forwardedClientCertFor(mesh, mesh.topology.mesh.operator);
    await checkSidecarMode(address, leadId, authorization, forwardedClientCert);
    if (leads.pid === undefined) throw new Error("sidecar leads has no pid");
    return {
      address,
      pid: leads.pid,
      forwardedClientCert,
      stop: async () => {
        await leads.stop();
      },
    };
  } catch (error) {
    await leads.stop();
    throw error;
  }
}
