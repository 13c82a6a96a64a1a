/**
 * The mesh allow-list over real mTLS, in-process: an allowed peer gets
 * through (a user's call via the operator, a service calling as itself), a
 * peer not listed for the RPC gets PERMISSION_DENIED, a client without a
 * certificate (or with one from another CA) UNAUTHENTICATED; every refusal is
 * logged with the caller and the RPC and counted. The probe port stays
 * plaintext and open. (test/e2e covers the full mesh.)
 */
import { Writable } from "node:stream";
import { credentials } from "@grpc/grpc-js";
import { AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { Redis } from "ioredis";
import { type Channel, createChannel, createClient, Metadata, Status } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { pino } from "pino";
import { createCertificateAuthority, issueCertificate } from "../../../scripts/mesh/certificates";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, testJwks } from "../../../test/harness/tokens";
import { apiService, createMeshTransport, JwksCache, Revocations, type RunningService, spiffeId, startService, TENANT_HEADER } from "../src";
import { loadServiceConfig } from "../src/service-config";
import { fakeLeads } from "./fake-leads";
import { type MeshCertificates, meshCertificates } from "./mesh-setup";

const GET_LEAD = "/leads.v1.LeadService/GetLead";
const LIST_LEADS = "/leads.v1.LeadService/ListLeads";
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const scope = { trustDomain: "cluster.local", namespace: "leadmesh" };

function leadsUnderTest() {
  return fakeLeads({
    getLead: async (_request, context) => ({
      lead: { id: `${context.caller.kind}:${context.caller.actorId}:${context.caller.peer}`, tenantId: context.caller.tenantId },
    }),
    listLeads: async () => ({ leads: [], nextPageToken: "", totalSize: 0 }),
  });
}

const redis = new Redis(meshInfo().redisUrl);
const logLines: Record<string, unknown>[] = [];
const logger = pino(
  { level: "warn" },
  new Writable({
    write(chunk, _encoding, done) {
      logLines.push(JSON.parse(String(chunk)));
      done();
    },
  }),
);
let certificates: MeshCertificates;
let service: RunningService;

beforeAll(async () => {
  certificates = await meshCertificates(["leads", "operator", "auth", "users"]);
  const config = loadServiceConfig(
    "leads",
    {
      ...certificates.tlsEnv("leads"),
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      HEALTH_PORT: "0",
      METRICS_PORT: "0",
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
      REDIS_URL: meshInfo().redisUrl,
      // users may only check health; auth may call GetLead as a service.
      MESH_PEERS: JSON.stringify({ operator: [GET_LEAD, LIST_LEADS, HEALTH_CHECK], auth: [GET_LEAD], users: [HEALTH_CHECK] }),
    },
    ["redis"],
  );
  service = await startService({
    name: "leads",
    config,
    logger,
    transport: createMeshTransport(config, "leads", logger),
    services: [apiService(LeadServiceDefinition, leadsUnderTest())],
    dependencies: [{ name: "always", check: async () => "ok" }],
    closeDependencies: async () => undefined,
    auth: { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks: new JwksCache(testJwks), revocations: new Revocations(redis) },
    // GetLead admits service callers here, so that one peer can call it as itself.
    accessRuleOverrides: { [GET_LEAD]: AccessRule.fromPartial({ roles: [Role.ROLE_MANAGER], services: true }) },
  });
});

afterAll(async () => {
  for (const channel of channels) channel.close();
  await service.shutdown();
  certificates.close();
  await redis.quit();
});

const address = () => `127.0.0.1:${service.grpcPort}`;
const channels: Channel[] = [];
function opened(channel: Channel): Channel {
  channels.push(channel);
  return channel;
}
const channelAs = (name: string): Channel => opened(createChannel(address(), certificates.clientAs(name).channelCredentials("leads")));
const leadsAs = (name: string) => createClient(LeadServiceDefinition, channelAs(name));
const bearer = (roles: string[]) => ({ metadata: Metadata({ authorization: `Bearer ${mintToken({ tenant: "acme", sub: "u1", roles })}` }) });
const failureOf = (call: Promise<unknown>) =>
  call.then(
    () => ({ code: Status.OK, details: "" }),
    (error: { code: Status; details: string }) => ({ code: error.code, details: error.details }),
  );

async function rejections(rpc: string, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
  const line = text.split("\n").find((entry) => entry.startsWith(`leadmesh_peer_rejections_total{rpc="${rpc}",reason="${reason}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("the mesh peer allow-list", () => {
  it("lets an allowed peer through: a user's call via the operator, and a service calling as itself within a tenant", async () => {
    const user = await leadsAs("operator").getLead({ id: "x" }, bearer(["manager"]));
    expect(user.lead).toEqual(expect.objectContaining({ id: "user:u1:operator", tenantId: "acme" }));
    const asService = await leadsAs("auth").getLead({ id: "x" }, { metadata: Metadata({ [TENANT_HEADER]: "acme" }) });
    expect(asService.lead).toEqual(expect.objectContaining({ id: "service:auth:auth", tenantId: "acme" }));
  });

  it("refuses a peer not listed for the RPC with PERMISSION_DENIED, logged and counted", async () => {
    const before = await rejections(GET_LEAD, "not_allowed");
    const failure = await failureOf(leadsAs("users").getLead({ id: "x" }, bearer(["manager"])));
    expect(failure).toEqual({ code: Status.PERMISSION_DENIED, details: `users may not call ${GET_LEAD} (see mesh/topology.yaml)` });
    expect(await rejections(GET_LEAD, "not_allowed")).toBe(before + 1);
    expect(logLines).toContainEqual(
      expect.objectContaining({ msg: "mesh peer refused", peer: spiffeId(scope, "users"), rpc: GET_LEAD, reason: "not_allowed" }),
    );
    // The same peer may still do what it is listed for.
    expect((await createClient(HealthDefinition, channelAs("users")).check({ service: "" })).status).toBe(1);
    // auth may call GetLead but not ListLeads.
    expect((await failureOf(leadsAs("auth").listLeads({}, bearer(["manager"])))).code).toBe(Status.PERMISSION_DENIED);
  });

  it("refuses a client without a certificate with UNAUTHENTICATED, health on the main port included", async () => {
    const before = await rejections(HEALTH_CHECK, "no_identity");
    const anonymous = createChannel(address(), credentials.createSsl(certificates.caPem()));
    const failure = await failureOf(createClient(HealthDefinition, anonymous).check({ service: "" }));
    expect(failure.code).toBe(Status.UNAUTHENTICATED);
    expect(failure.details).toBe(`${HEALTH_CHECK} requires a verified mesh identity: no client certificate`);
    expect(await rejections(HEALTH_CHECK, "no_identity")).toBe(before + 1);
    expect(logLines).toContainEqual(expect.objectContaining({ peer: "unknown", rpc: HEALTH_CHECK, reason: "no_identity" }));
    anonymous.close();
  });

  it("refuses a certificate from another CA with UNAUTHENTICATED, naming the identity it claims", async () => {
    const stranger = await createCertificateAuthority({ name: "some other CA" });
    const forged = await issueCertificate(stranger, { spiffeId: spiffeId(scope, "operator"), ipAddresses: ["127.0.0.1"] });
    const channel = createChannel(
      address(),
      credentials.createSsl(certificates.caPem(), Buffer.from(forged.privateKeyPem), Buffer.from(forged.certificatePem)),
    );
    const failure = await failureOf(createClient(LeadServiceDefinition, channel).getLead({ id: "x" }, bearer(["manager"])));
    expect(failure.code).toBe(Status.UNAUTHENTICATED);
    expect(failure.details).toMatch(/client certificate not trusted \(.+\); it claims spiffe:\/\/cluster.local\/ns\/leadmesh\/sa\/operator$/);
    channel.close();
  });

  it("takes the caller's identity from its certificate only: a forged leadmesh-peer header changes nothing", async () => {
    const forged = { metadata: Metadata({ "leadmesh-peer": spiffeId(scope, "operator"), [TENANT_HEADER]: "acme" }) };
    expect((await failureOf(leadsAs("users").getLead({ id: "x" }, forged))).code).toBe(Status.PERMISSION_DENIED);
  });

  it("refuses service tokens, and a call without a user token from the edge or operator", async () => {
    const serviceToken = await failureOf(leadsAs("operator").getLead({ id: "x" }, bearer(["service"])));
    expect(serviceToken).toEqual({ code: Status.UNAUTHENTICATED, details: "service tokens are no longer accepted; services call with their mesh identity" });
    expect((await failureOf(leadsAs("operator").getLead({ id: "x" }))).code).toBe(Status.UNAUTHENTICATED);
  });

  it("keeps the probe port plaintext and open", async () => {
    const probe = createClient(HealthDefinition, opened(createChannel(`127.0.0.1:${service.healthPort}`)));
    expect((await probe.check({ service: "" })).status).toBe(1);
  });
});
