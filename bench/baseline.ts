/**
 * The unauthenticated baseline next to a running mesh: a second leads
 * process (bench/baseline-leads.ts: the same service with GetLead public,
 * its own database on the mesh's FerretDB) behind a second Envoy rendered
 * from the same generator, whose jwt_authn lets GetLead through without a
 * token. REST GetLead through it costs Envoy transcoding and routing plus
 * the leads handler, without token verification in Envoy or in leads and
 * without the revocation lookup in Redis: what authentication adds is the
 * difference to the same request through the mesh's own ingress.
 *
 * Transport is the mesh's: the baseline leads serves mTLS with the leads
 * certificate from the mesh's certificate directory, and its Envoy talks
 * mTLS to it (and to the mesh's other services) as the edge identity, so
 * both REST runs pay the same upstream TLS.
 */
import { join } from "node:path";
import { Lead } from "@leadmesh/contracts/leads/v1/lead";
import { newLead } from "@leadmesh/leads/dist/domain/lead-rules";
import { LeadStore } from "@leadmesh/leads/dist/store";
import { MongoClient } from "mongodb";
import { healthStatus } from "../scripts/mesh/health-client";
import { type RunningMesh, SERVICE_NODE_FLAGS, startIngress } from "../scripts/mesh/local-mesh";
import { spiffeIdOf } from "../scripts/mesh/model";
import { serviceEnvironment } from "../scripts/mesh/model-environment";
import { freePort, ManagedProcess, waitUntil } from "../scripts/mesh/processes";
import { REPO_ROOT } from "../scripts/mesh/topology";

export const BASELINE_PUBLIC_PATH = "/leads.v1.LeadService/GetLead";
/** The baseline's own database, so its tenant-"" lead never mixes with the mesh's data. */
const BASELINE_DATABASE = "leads_bench_baseline";
/** Anonymous callers of public RPCs have tenant "" (platform caller.ts ANONYMOUS). */
const ANONYMOUS_TENANT = "";

export interface Baseline {
  ingressUrl: string;
  leadId: string;
  /** "leads" and "envoy" of the baseline, named as in the mesh's scenarios. */
  pids: { leads: number; envoy: number };
  stop(): Promise<void>;
}

function startBaselineLeads(mesh: RunningMesh, ports: { grpc: number; health: number; metrics: number }): ManagedProcess {
  return new ManagedProcess({
    name: "leads-baseline",
    // `--import tsx` (not the tsx CLI) keeps the service in one process, whose pid we sample.
    command: process.execPath,
    args: [...SERVICE_NODE_FLAGS, "--import", "tsx", join(__dirname, "baseline-leads.ts")],
    cwd: REPO_ROOT,
    // What the mesh model gives leads, with a database of its own.
    env: {
      ...serviceEnvironment(mesh.topology, "leads", {
        bindHost: "127.0.0.1",
        ports,
        mongoUrl: mesh.mongoUrl,
        redisUrl: mesh.redisUrl,
        peers: Object.fromEntries(Object.entries(mesh.replicas).map(([name, running]) => [name, running.map((replica) => `127.0.0.1:${replica.ports.grpc}`)])),
        // It is a leads replica as far as its peers can tell: the leads identity.
        tls: { certFile: mesh.tls.certFile("leads"), keyFile: mesh.tls.keyFile("leads"), caFile: mesh.tls.caFile },
      }),
      MONGO_DATABASE: BASELINE_DATABASE,
    },
    logFile: join(mesh.runDir, "leads-baseline.log"),
  }).start();
}

/** Inserts the lead of `leadJson` (a CreateLead REST body) as CreateLead would, under the anonymous tenant. */
async function insertAnonymousLead(mongoUrl: string, leadJson: string): Promise<string> {
  const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5000 });
  try {
    const input = newLead(Lead.fromJSON(JSON.parse(leadJson)));
    const document = await new LeadStore(client.db(BASELINE_DATABASE)).insert(ANONYMOUS_TENANT, input, new Date());
    return document._id;
  } finally {
    await client.close();
  }
}

async function expectStatus(url: string, expected: number, why: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = await response.text();
  if (response.status !== expected) throw new Error(`${why}: expected HTTP ${expected} from GET ${url}, got ${response.status} ${body.slice(0, 300)}`);
}

/** Starts the baseline leads and Envoy and inserts `leadJson` (the lead the mesh scenarios read) for it. */
export async function startBaseline(mesh: RunningMesh, leadJson: string): Promise<Baseline> {
  const ports = { grpc: await freePort(), health: await freePort(), metrics: await freePort() };
  const leads = startBaselineLeads(mesh, ports);
  let envoy: ManagedProcess | undefined;
  const stop = async () => {
    await envoy?.stop();
    await leads.stop();
  };
  try {
    // Over mTLS on its main port, as the launcher checks the mesh's replicas.
    const tls = { certificates: mesh.tls, server: spiffeIdOf(mesh.topology, "leads") };
    await waitUntil("baseline leads to report SERVING", async () => (await healthStatus(ports.grpc, { tls })) === "SERVING", 60_000, leads);
    const leadId = await insertAnonymousLead(mesh.mongoUrl, leadJson);
    const ingress = await startIngress({
      topology: mesh.topology,
      runDir: mesh.runDir,
      name: "envoy-baseline",
      listenPort: await freePort(),
      adminPort: await freePort(),
      tlsDir: mesh.tls.dir,
      // auth stays the mesh's: this Envoy fetches its JWKS like the real one.
      upstreamPorts: { ...Object.fromEntries(Object.entries(mesh.services).map(([name, servicePorts]) => [name, servicePorts.grpc])), leads: ports.grpc },
      extraPublicPaths: [BASELINE_PUBLIC_PATH],
    });
    envoy = ingress.process;
    // The baseline serves its lead without a token; the mesh still refuses a tokenless GetLead.
    await expectStatus(`${ingress.url}/api/v1/leads/${leadId}`, 200, "the baseline must serve GetLead without a token");
    await expectStatus(`${mesh.ingressUrl}/api/v1/leads/${leadId}`, 401, "the mesh must keep requiring a token");
    const pid = (managed: ManagedProcess) => {
      if (managed.pid === undefined) throw new Error(`${managed.spec.name} has no pid`);
      return managed.pid;
    };
    return { ingressUrl: ingress.url, leadId, pids: { leads: pid(leads), envoy: pid(envoy) }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
