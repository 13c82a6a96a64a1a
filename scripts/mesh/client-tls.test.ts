/**
 * The launcher's and tests' mTLS client credentials against a real grpc-js
 * server that requires a client certificate: the server's SPIFFE id is
 * checked (not just the CA), and the identity presented is the one asked for.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials, ServerInterceptingCall, type ServerInterceptor } from "@grpc/grpc-js";
import { createServer } from "nice-grpc";
import { HealthDefinition, HealthServiceImpl } from "nice-grpc-server-health";
import { ensureMeshCertificates, meshCertificatePaths } from "./certificates";
import { clientCredentials, serverIdentityProblem, uriSans } from "./client-tls";
import { healthStatus } from "./health-client";

const SPIFFE = (name: string) => `spiffe://cluster.local/ns/leadmesh/sa/${name}`;
const directory = mkdtempSync(join(tmpdir(), "leadmesh-client-tls-"));
const certificates = meshCertificatePaths(join(directory, "tls"));
const foreign = meshCertificatePaths(join(directory, "foreign"));
let server: ReturnType<typeof createServer>;
let port: number;
/** SPIFFE ids of the client certificates the server saw, in order. */
const clients: string[] = [];

beforeAll(async () => {
  const identities = ["users", "operator"].map((name) => ({ name, spiffeId: SPIFFE(name) }));
  await ensureMeshCertificates(certificates.dir, identities);
  await ensureMeshCertificates(foreign.dir, identities);
  const recordClient: ServerInterceptor = (_method, call) => {
    clients.push(uriSans(call.getAuthContext().sslPeerCertificate?.subjectaltname).join(","));
    return new ServerInterceptingCall(call);
  };
  server = createServer({ interceptors: [recordClient] });
  server.add(HealthDefinition, HealthServiceImpl());
  const credentials = ServerCredentials.createSsl(
    readFileSync(certificates.caFile),
    [{ private_key: readFileSync(certificates.keyFile("users")), cert_chain: readFileSync(certificates.certFile("users")) }],
    true,
  );
  port = await server.listen("127.0.0.1:0", credentials);
});

afterAll(async () => {
  await server?.shutdown();
  rmSync(directory, { recursive: true, force: true });
});

describe("clientCredentials", () => {
  it("connects when the server presents the expected SPIFFE id, presenting the operator's certificate by default", async () => {
    expect(await healthStatus(port, { tls: { certificates, server: SPIFFE("users") } })).toBe("SERVING");
    expect(clients.at(-1)).toBe(SPIFFE("operator"));
  });

  it("presents the identity it is given", async () => {
    expect(await healthStatus(port, { tls: { certificates, identity: "users", server: SPIFFE("users") } })).toBe("SERVING");
    expect(clients.at(-1)).toBe(SPIFFE("users"));
  });

  it("refuses a server of the right CA that presents another SPIFFE id", async () => {
    expect(await healthStatus(port, { tls: { certificates, server: SPIFFE("leads") } })).toBe("UNREACHABLE");
  });

  it("refuses a server whose certificate another CA signed", async () => {
    expect(await healthStatus(port, { tls: { certificates: foreign, server: SPIFFE("users") } })).toBe("UNREACHABLE");
  });

  it("accepts any SPIFFE id of the mesh CA when no server is named", async () => {
    expect(await healthStatus(port, { tls: { certificates } })).toBe("SERVING");
  });

  it("names the identity and file when a certificate is missing", () => {
    expect(() => clientCredentials({ certificates, identity: "nobody" })).toThrow(/mTLS client as nobody: cannot read the private key .*nobody\.key/);
  });

  it("gets no answer from a plaintext server (no downgrade)", async () => {
    const plain = new Server();
    const plainPort = await new Promise<number>((resolve, reject) =>
      plain.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    try {
      expect(await healthStatus(plainPort, { tls: { certificates, server: SPIFFE("users") } })).toBe("UNREACHABLE");
    } finally {
      plain.forceShutdown();
    }
  });
});

describe("serverIdentityProblem", () => {
  it.each([
    [`URI:${SPIFFE("users")}, DNS:localhost, IP Address:127.0.0.1`, SPIFFE("users"), undefined],
    [`URI:${SPIFFE("users")}`, SPIFFE("leads"), /presented spiffe:\/\/.*\/sa\/users, expected .*\/sa\/leads/],
    ["DNS:localhost", SPIFFE("users"), /no SPIFFE id/],
    [undefined, undefined, /no SPIFFE id/],
    [`URI:${SPIFFE("users")}`, undefined, undefined],
  ])("%s expecting %s", (sans, expected, problem) => {
    const found = serverIdentityProblem(sans, expected);
    if (problem) expect(found).toMatch(problem);
    else expect(found).toBeUndefined();
  });
});
