/**
 * Sidecar mode, simulated: the service listens in plaintext and believes the
 * caller named in x-forwarded-client-cert only from a sidecar address. The
 * test client connects from 127.0.0.1, which is a sidecar for one service
 * and not for the other.
 */
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { Redis } from "ioredis";
import { type Channel, createChannel, createClient, Metadata, Status } from "nice-grpc";
import { pino } from "pino";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, testJwks } from "../../../test/harness/tokens";
import { apiService, createMeshTransport, JwksCache, Revocations, type RunningService, spiffeId, startService } from "../src";
import { loadServiceConfig } from "../src/service-config";
import { fakeLeads } from "./fake-leads";

const GET_LEAD = "/leads.v1.LeadService/GetLead";
const scope = { trustDomain: "cluster.local", namespace: "leadmesh" };
const silent = pino({ level: "silent" });
const redis = new Redis(meshInfo().redisUrl);
const running: RunningService[] = [];
const channels: Channel[] = [];

function leadsUnderTest() {
  return fakeLeads({
    getLead: async (_request, context) => ({ lead: { id: context.caller.peer, tenantId: context.caller.tenantId } }),
  });
}

async function startSidecarService(sidecarPeers: string) {
  const config = loadServiceConfig(
    "leads",
    {
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      HEALTH_PORT: "0",
      METRICS_PORT: "0",
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
      REDIS_URL: meshInfo().redisUrl,
      MESH_SECURITY: "sidecar",
      MESH_SIDECAR_PEERS: sidecarPeers,
      MESH_PEERS: JSON.stringify({ ingress: [GET_LEAD] }),
    },
    ["redis"],
  );
  const service = await startService({
    name: "leads",
    config,
    logger: silent,
    transport: createMeshTransport(config, "leads", silent),
    services: [apiService(LeadServiceDefinition, leadsUnderTest())],
    dependencies: [{ name: "always", check: async () => "ok" }],
    closeDependencies: async () => undefined,
    auth: { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks: new JwksCache(testJwks), revocations: new Revocations(redis) },
  });
  running.push(service);
  const channel = createChannel(`127.0.0.1:${service.grpcPort}`);
  channels.push(channel);
  return createClient(LeadServiceDefinition, channel);
}

afterAll(async () => {
  for (const channel of channels) channel.close();
  await Promise.all(running.map((service) => service.shutdown()));
  await redis.quit();
});

const user = `Bearer ${mintToken({ tenant: "acme", sub: "u1", roles: ["manager"] })}`;
const xfcc = (name: string) => `By=${spiffeId(scope, "leads")};Hash=0a1b;Subject="";URI=${spiffeId(scope, name)}`;
const codeOf = (call: Promise<unknown>) =>
  call.then(
    () => ({ code: Status.OK, details: "" }),
    (error: { code: Status; details: string }) => ({ code: error.code, details: error.details }),
  );

describe("sidecar mode", () => {
  it("takes the caller from x-forwarded-client-cert sent by the local sidecar, and applies the same allow-list", async () => {
    const client = await startSidecarService("127.0.0.1,::1");
    const allowed = await client.getLead({ id: "x" }, { metadata: Metadata({ authorization: user, "x-forwarded-client-cert": xfcc("ingress") }) });
    expect(allowed.lead).toEqual(expect.objectContaining({ id: "ingress", tenantId: "acme" }));
    const notListed = await codeOf(client.getLead({ id: "x" }, { metadata: Metadata({ authorization: user, "x-forwarded-client-cert": xfcc("auth") }) }));
    expect(notListed).toEqual({ code: Status.PERMISSION_DENIED, details: `auth may not call ${GET_LEAD} (see mesh/topology.yaml)` });
  });

  it("refuses a call without the header", async () => {
    const client = await startSidecarService("127.0.0.1");
    const absent = await codeOf(client.getLead({ id: "x" }, { metadata: Metadata({ authorization: user }) }));
    expect(absent.code).toBe(Status.UNAUTHENTICATED);
    expect(absent.details).toMatch(/x-forwarded-client-cert absent/);
  });

  it("refuses the header from a peer that is not a sidecar", async () => {
    const client = await startSidecarService("127.0.0.6");
    const forged = await codeOf(client.getLead({ id: "x" }, { metadata: Metadata({ authorization: user, "x-forwarded-client-cert": xfcc("ingress") }) }));
    expect(forged.code).toBe(Status.UNAUTHENTICATED);
    expect(forged.details).toMatch(/x-forwarded-client-cert from 127\.0\.0\.1, which is not a sidecar/);
  });
});
