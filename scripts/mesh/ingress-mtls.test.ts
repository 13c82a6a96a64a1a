/**
 * The rendered ingress config against real processes: a real Envoy (from
 * .tools) in front of real grpc-js TLS servers that require client
 * certificates from the mesh CA. Proves that Envoy presents the `ingress`
 * identity, health-checks and routes over mTLS, refuses an upstream whose
 * certificate carries another SPIFFE id, keeps internal headers from
 * clients away from services, and presents a renewed certificate on new
 * connections without a restart. Self-contained (no mesh): certificates in
 * a temporary directory, upstreams in this process.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { ensureMeshCertificates, type MeshIdentity, meshCertificatePaths } from "./certificates";
import { DESCRIPTOR_PATH } from "./descriptor";
import { edgeIdentity, exposedServices, renderEnvoyConfig, spiffeIdOf } from "./envoy-config";
import { writeEnvoySdsFiles } from "./envoy-sds";
import { healthyEndpoints, TOOLS_BIN } from "./ingress";
import { loadMeshModel } from "./model";
import { freePort, ManagedProcess, waitUntil } from "./processes";
import { REPO_ROOT } from "./topology";

const model = loadMeshModel();
const identity = (name: string): MeshIdentity => ({ name, spiffeId: spiffeIdOf(model, name) });
const EDGE = edgeIdentity(model);
const GET_LEAD = "/leads.v1.LeadService/GetLead";
const LIST_LEADS = "/leads.v1.LeadService/ListLeads";
const GET_USER = "/users.v1.UserService/GetUser";
const LIST_USERS = "/users.v1.UserService/ListUsers";

interface ObservedCall {
  path: string;
  peerUri: string | undefined;
  peerSerial: string | undefined;
  metadata: Record<string, unknown>;
}

/**
 * A gRPC server like a service's main port: TLS that requires a client
 * certificate from the mesh CA, grpc.health.v1 SERVING, and the given
 * unary paths answered with an empty message (every field at its default).
 * Records who called what.
 */
class TlsUpstream {
  readonly calls: ObservedCall[] = [];
  private server: grpc.Server | undefined;

  constructor(
    private readonly tlsDir: string,
    private readonly presents: string,
    private readonly paths: string[],
  ) {}

  async listen(port: number): Promise<void> {
    const files = meshCertificatePaths(this.tlsDir);
    const server = new grpc.Server();
    new HealthImplementation({ "": "SERVING" }).addToServer(server);
    const raw = { serialize: (value: Buffer) => value, deserialize: (value: Buffer) => value };
    const definition: grpc.ServiceDefinition = Object.fromEntries(
      this.paths.map((path) => [
        path,
        {
          path,
          requestStream: false,
          responseStream: false,
          requestSerialize: raw.serialize,
          requestDeserialize: raw.deserialize,
          responseSerialize: raw.serialize,
          responseDeserialize: raw.deserialize,
        },
      ]),
    );
    const handlers: grpc.UntypedServiceImplementation = Object.fromEntries(
      this.paths.map((path) => [
        path,
        (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const peer = call.getAuthContext().sslPeerCertificate;
          const peerUri = peer?.subjectaltname
            ?.split(", ")
            .find((name) => name.startsWith("URI:"))
            ?.slice("URI:".length);
          this.calls.push({ path, peerUri, peerSerial: peer?.serialNumber, metadata: call.metadata.getMap() });
          callback(null, Buffer.alloc(0));
        },
      ]),
    );
    server.addService(definition, handlers);
    const credentials = grpc.ServerCredentials.createSsl(
      readFileSync(files.caFile),
      [{ cert_chain: readFileSync(files.certFile(this.presents)), private_key: readFileSync(files.keyFile(this.presents)) }],
      true,
    );
    await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, credentials, (error) => (error ? reject(error) : resolve())));
    this.server = server;
  }

  /** Closes every connection at once: the next call needs a new TLS handshake. */
  close(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

/** A unary gRPC call through Envoy's plain listener; resolves to the status code. */
function callThroughEdge(port: number, path: string, metadata: Record<string, string> = {}): Promise<grpc.status> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const headers = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata)) headers.set(key, value);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (value: Buffer) => value,
      (value: Buffer) => value,
      Buffer.alloc(0),
      headers,
      { deadline: Date.now() + 5_000 },
      (error) => {
        client.close();
        resolve(error ? error.code : grpc.status.OK);
      },
    );
  });
}

const normalSerial = (serial: string) => serial.toUpperCase().replace(/^0+/, "");
const serialOf = (file: string) => normalSerial(new X509Certificate(readFileSync(file)).serialNumber);

/** Serial numbers of the certificates Envoy has loaded, from admin /certs. */
async function envoyCertificateSerials(adminUrl: string): Promise<string[]> {
  const body = (await (await fetch(`${adminUrl}/certs`)).json()) as { certificates: { cert_chain?: { serial_number: string }[] }[] };
  return body.certificates.flatMap((entry) => (entry.cert_chain ?? []).map((certificate) => normalSerial(certificate.serial_number)));
}

async function envoyStat(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/stats?filter=${encodeURIComponent(`^${name}$`)}`)).text();
  return Number(text.match(/: (\d+)/)?.[1] ?? 0);
}

describe("ingress with mTLS upstreams (real Envoy, real TLS)", () => {
  let workDir: string;
  let tlsDir: string;
  let envoy: ManagedProcess;
  let listenPort: number;
  let adminUrl: string;
  let leadsPort: number;
  let leads: TlsUpstream;
  let impostor: TlsUpstream;
  const identities = ["auth", "users", "leads", EDGE].map(identity);

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), "leadmesh-ingress-mtls-"));
    tlsDir = join(workDir, "tls");
    await ensureMeshCertificates(tlsDir, identities);
    leadsPort = await freePort();
    const usersPort = await freePort();
    leads = new TlsUpstream(tlsDir, "leads", [GET_LEAD, LIST_LEADS]);
    // Signed by the same CA, so only the SPIFFE id check can refuse it.
    impostor = new TlsUpstream(tlsDir, "auth", [GET_USER, LIST_USERS]);
    await leads.listen(leadsPort);
    await impostor.listen(usersPort);

    // Services not under test point at a port nobody listens on.
    const closedPort = await freePort();
    const upstreamPorts: Record<string, number> = Object.fromEntries(exposedServices(model).map((service) => [service.name, closedPort]));
    upstreamPorts.leads = leadsPort;
    upstreamPorts.users = usersPort;
    listenPort = await freePort();
    const adminPort = await freePort();
    adminUrl = `http://127.0.0.1:${adminPort}`;
    writeEnvoySdsFiles({ tlsDir, sdsDir: tlsDir, edge: EDGE });
    const configPath = join(workDir, "envoy.yaml");
    writeFileSync(
      configPath,
      renderEnvoyConfig(model, {
        listenPort,
        adminPort,
        upstreamPorts,
        descriptorPath: DESCRIPTOR_PATH,
        // No auth service here: these calls need no token.
        extraPublicPaths: [GET_LEAD, LIST_LEADS, GET_USER, LIST_USERS],
        tlsDir,
      }),
    );
    envoy = new ManagedProcess({
      name: "envoy-mtls-test",
      command: join(TOOLS_BIN, "envoy"),
      args: ["-c", configPath, "--use-dynamic-base-id", "--log-level", "warn", "--concurrency", "1"],
      cwd: REPO_ROOT,
      logFile: join(workDir, "envoy.log"),
    }).start();
    await waitUntil(
      "Envoy to see the leads upstream healthy over mTLS",
      async () => (await healthyEndpoints(adminUrl).catch((): Record<string, string[]> => ({}))).leads?.length === 1,
      20_000,
      envoy,
    );
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    leads?.close();
    impostor?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("health-checks each upstream over mTLS: the right SPIFFE id is healthy, another one is not", async () => {
    const healthy = await healthyEndpoints(adminUrl);
    expect(healthy.leads).toEqual([`127.0.0.1:${leadsPort}`]);
    expect(healthy.users).toBeUndefined();
    // The impostor's certificate fails the SAN check at every health check.
    await waitUntil("a SAN verification failure on the users cluster", async () => (await envoyStat(adminUrl, "cluster.users.ssl.fail_verify_san")) > 0, 5_000);
  });

  it("routes gRPC and REST to the upstream presenting its SPIFFE id, as the ingress identity", async () => {
    expect(await callThroughEdge(listenPort, GET_LEAD)).toBe(grpc.status.OK);
    const rest = await fetch(`http://127.0.0.1:${listenPort}/api/v1/leads`);
    expect(rest.status).toBe(200);
    const seen = leads.calls.filter((call) => call.path === GET_LEAD || call.path === LIST_LEADS);
    expect(seen.map((call) => call.path)).toEqual(expect.arrayContaining([GET_LEAD, LIST_LEADS]));
    for (const call of seen) expect(call.peerUri).toBe(spiffeIdOf(model, EDGE));
  });

  it("refuses an upstream whose certificate carries another SPIFFE id: UNAVAILABLE / 503, nothing reaches it", async () => {
    expect(await callThroughEdge(listenPort, GET_USER)).toBe(grpc.status.UNAVAILABLE);
    const rest = await fetch(`http://127.0.0.1:${listenPort}/api/v1/users`);
    expect(rest.status).toBe(503);
    expect(impostor.calls).toEqual([]);
  });

  it("removes leadmesh-* headers and a client's x-forwarded-client-cert before the upstream", async () => {
    const forged = {
      "leadmesh-peer": "auth",
      "leadmesh-tenant": "t-forged",
      "Leadmesh-Deadline": "1",
      "x-forwarded-client-cert": `By=${spiffeIdOf(model, "leads")};URI=${spiffeIdOf(model, "auth")}`,
      "x-request-marker": "grpc",
    };
    expect(await callThroughEdge(listenPort, GET_LEAD, forged)).toBe(grpc.status.OK);
    expect((await fetch(`http://127.0.0.1:${listenPort}/api/v1/leads`, { headers: { ...forged, "x-request-marker": "rest" } })).status).toBe(200);
    for (const marker of ["grpc", "rest"]) {
      const call = leads.calls.find((candidate) => candidate.metadata["x-request-marker"] === marker);
      expect(call).toBeDefined();
      const names = Object.keys(call?.metadata ?? {});
      expect(names.filter((name) => name.startsWith("leadmesh-") || name === "x-forwarded-client-cert")).toEqual([]);
    }
  });

  it("presents a renewed certificate on new connections without a restart, failing no call", async () => {
    const files = meshCertificatePaths(tlsDir);
    const before = serialOf(files.certFile(EDGE));
    expect(await envoyCertificateSerials(adminUrl)).toContain(before);
    const pid = envoy.pid;

    // Calls keep going while the certificates are renewed.
    const failures: grpc.status[] = [];
    let calls = 0;
    let calling = true;
    const traffic = (async () => {
      while (calling) {
        const status = await callThroughEdge(listenPort, GET_LEAD);
        calls += 1;
        if (status !== grpc.status.OK) failures.push(status);
      }
    })();
    expect(await ensureMeshCertificates(tlsDir, identities, { force: true })).toContain(EDGE);
    const after = serialOf(files.certFile(EDGE));
    expect(after).not.toBe(before);
    await waitUntil("Envoy to load the renewed edge certificate", async () => (await envoyCertificateSerials(adminUrl)).includes(after), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    calling = false;
    await traffic;
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(5);

    // Existing connections keep the certificate they were opened with; drop
    // them so the next call opens a new one.
    leads.close();
    await leads.listen(leadsPort);
    await waitUntil("the leads upstream healthy again", async () => (await healthyEndpoints(adminUrl)).leads?.length === 1, 10_000);
    leads.calls.length = 0;
    expect(await callThroughEdge(listenPort, GET_LEAD)).toBe(grpc.status.OK);
    expect(leads.calls.map((call) => call.peerSerial && normalSerial(call.peerSerial))).toEqual([after]);
    expect(envoy.pid).toBe(pid);
  }, 40_000);
});
