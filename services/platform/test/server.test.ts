/**
 * The bootstrap in-process with a slow fake service, over real mTLS (the
 * client is the operator identity): graceful shutdown must let accepted calls
 * finish, refuse new ones, and report NOT_SERVING first; errors must map to
 * statuses without leaking internals.
 */

import { generateKeyPairSync } from "node:crypto";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { trace } from "@opentelemetry/api";
import { Redis } from "ioredis";
import { type Channel, createChannel, createClient, createClientFactory, Metadata, Status } from "nice-grpc";
import { type ErrorInfo, errorDetailsClientMiddleware, RichClientError } from "nice-grpc-error-details";
import { HealthDefinition } from "nice-grpc-server-health";
import { pino } from "pino";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken, TEST_AUDIENCE, TEST_ISSUER, testJwks } from "../../../test/harness/tokens";
import {
  type AccessTokenClaims,
  apiService,
  createMeshTransport,
  createServiceClient,
  JwksCache,
  NotFoundError,
  Revocations,
  type RunningService,
  signJwt,
  startService,
} from "../src";
import { loadServiceConfig } from "../src/service-config";
import { fakeLeads } from "./fake-leads";
import { type MeshCertificates, meshCertificates } from "./mesh-setup";

const silent = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls for lead "held" wait inside the handler until the test lets them go, so a test knows they are in flight. */
const held: { entered: number; release: () => void; gate: Promise<void> } = { entered: 0, release: () => undefined, gate: Promise.resolve() };
function holdCalls(): void {
  held.entered = 0;
  held.gate = new Promise<void>((resolve) => {
    held.release = resolve;
  });
}

async function waitUntil(condition: () => boolean, limitMs = 5_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > limitMs) throw new Error(`condition not reached within ${limitMs} ms`);
    await sleep(5);
  }
}

function leadsUnderTest() {
  return fakeLeads({
    async getLead(request, context) {
      if (request.id === "slow") await sleep(400);
      if (request.id === "held") {
        held.entered++;
        await held.gate;
      }
      if (request.id === "missing") throw new NotFoundError("lead", "missing");
      if (request.id === "boom") throw new Error("secret connection string mongodb://user:pw@db");
      return { lead: { id: request.id, tenantId: context.caller.tenantId } };
    },
  });
}

const redis = new Redis(meshInfo().redisUrl);
let certificates: MeshCertificates;
beforeAll(async () => {
  certificates = await meshCertificates(["fake", "operator"]);
});
afterAll(async () => {
  certificates.close();
  await redis.quit();
});

const GET_LEAD = "/leads.v1.LeadService/GetLead";
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const managerToken = () => mintToken({ tenant: "acme", sub: "u1", roles: ["manager"] });
const authorized = () => ({ metadata: Metadata({ authorization: `Bearer ${managerToken()}` }) });

async function start(jwks = new JwksCache(testJwks)): Promise<{ service: RunningService; channel: Channel }> {
  const config = loadServiceConfig("fake", {
    ...certificates.tlsEnv("fake"),
    MESH_PEERS: JSON.stringify({ operator: [GET_LEAD, HEALTH_CHECK] }),
    BIND_HOST: "127.0.0.1",
    GRPC_PORT: "0",
    HEALTH_PORT: "0",
    METRICS_PORT: "0",
    MONGO_URL: "mongodb://unused",
    REDIS_URL: "redis://unused",
    SHUTDOWN_GRACE_MS: "5000",
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
  });
  const service = await startService({
    name: "fake",
    config,
    logger: silent,
    transport: createMeshTransport(config, "fake", silent),
    services: [apiService(LeadServiceDefinition, leadsUnderTest())],
    dependencies: [{ name: "always", check: async () => "ok" }],
    closeDependencies: async () => undefined,
    auth: { issuer: TEST_ISSUER, audience: TEST_AUDIENCE, jwks, revocations: new Revocations(redis) },
  });
  return { service, channel: operatorChannel(service.grpcPort) };
}

function operatorChannel(port: number): Channel {
  return createChannel(`127.0.0.1:${port}`, certificates.clientAs("operator").channelCredentials("fake"));
}

describe("startService", () => {
  it("lets accepted calls finish on shutdown, refuses new ones and reports NOT_SERVING first", async () => {
    const { service, channel } = await start();
    const client = createClient(LeadServiceDefinition, channel);
    const health = createClient(HealthDefinition, channel);
    expect((await health.check({ service: "leads.v1.LeadService" })).status).toBe(1);

    holdCalls();
    const accepted = Array.from({ length: 5 }, () =>
      client.getLead({ id: "held" }, authorized()).then((result) => ({ id: result.lead?.id, answeredAt: Date.now() })),
    );
    // Every call inside the handler (counted there, not guessed from a sleep) when shutdown starts.
    await waitUntil(() => held.entered === 5);
    const shutdownAt = Date.now();
    const stopping = service.shutdown();
    expect(service.health.status).toBe("NOT_SERVING");
    const late = createClient(LeadServiceDefinition, operatorChannel(service.grpcPort));
    await expect(late.getLead({ id: "fast" }, authorized())).rejects.toMatchObject({ code: Status.UNAVAILABLE });

    held.release();
    const results = await Promise.all(accepted);
    expect(results.map((result) => result.id)).toEqual(["held", "held", "held", "held", "held"]);
    expect(results.filter((result) => result.answeredAt < shutdownAt)).toEqual([]);
    await stopping;
    channel.close();
  });

  it("maps domain errors to codes with ErrorInfo, and hides unexpected errors behind INTERNAL with a trace id", async () => {
    const { service, channel } = await start();
    const client = createClientFactory().use(errorDetailsClientMiddleware).create(LeadServiceDefinition, channel);
    const missing = await client.getLead({ id: "missing" }, authorized()).catch((error: RichClientError) => error);
    expect(missing).toBeInstanceOf(RichClientError);
    expect((missing as RichClientError).code).toBe(Status.NOT_FOUND);
    expect(((missing as RichClientError).extra[0] as ErrorInfo).reason).toBe("NOT_FOUND");

    const boom = (await client.getLead({ id: "boom" }, authorized()).catch((error: RichClientError) => error)) as RichClientError;
    expect(boom.code).toBe(Status.INTERNAL);
    expect(boom.details).toMatch(/^internal error \(trace [0-9a-f]{32}\)$/);
    expect(boom.details).not.toMatch(/mongodb|secret/);

    const tenant = await client.getLead({ id: "x" }, authorized());
    expect(tenant.lead?.tenantId).toBe("acme");
    channel.close();
    await service.shutdown();
  });

  it("continues the caller's trace across a service-to-service call and enforces the client deadline", async () => {
    const { service, channel } = await start();
    const { client, close } = createServiceClient(LeadServiceDefinition, `127.0.0.1:${service.grpcPort}`, {
      transport: certificates.clientAs("operator"),
      peer: "fake",
      defaultDeadlineMs: 100,
    });
    const tracer = trace.getTracer("test");
    await tracer.startActiveSpan("caller", async (span) => {
      let calleeTraceId: string | undefined;
      // A deadline of its own: the first call also makes the TLS connection, which may take longer than the 100 ms default under load.
      await client.getLead({ id: "fast" }, { ...authorized(), deadline: 5000, onHeader: (header) => (calleeTraceId = header.get("x-trace-id")) });
      expect(calleeTraceId).toBe(span.spanContext().traceId);
      span.end();
    });
    await expect(client.getLead({ id: "slow" }, authorized())).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    close();
    channel.close();
    await service.shutdown();
  });
});

describe("token verification against the JWKS", () => {
  const richClient = (channel: Channel) => createClientFactory().use(errorDetailsClientMiddleware).create(LeadServiceDefinition, channel);
  const bearer = (token: string) => ({ metadata: Metadata({ authorization: `Bearer ${token}` }) });
  const codeOf = (call: Promise<unknown>) =>
    call.then(
      () => Status.OK,
      (error: RichClientError) => error.code,
    );

  it("keeps verifying with cached keys while the auth service is down, and answers UNAVAILABLE (not INTERNAL) for an unknown kid", async () => {
    let authDown = false;
    // Stale after 1 ms and no refetch interval: every call below tries the auth service.
    let attempts = 0;
    const jwks = new JwksCache(
      async () => {
        attempts++;
        if (authDown) throw new Error("14 UNAVAILABLE: No connection established");
        return testJwks();
      },
      1,
      0,
    );
    const { service, channel } = await start(jwks);
    const client = richClient(channel);
    expect((await client.getLead({ id: "x" }, authorized())).lead?.tenantId).toBe("acme");

    authDown = true;
    await sleep(5); // past the key age and the refetch interval, which count whole milliseconds
    // A new token: the refetch fails and the cached key verifies it.
    expect((await client.getLead({ id: "x" }, authorized())).lead?.tenantId).toBe("acme");

    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const now = Math.floor(Date.now() / 1000);
    const claims: AccessTokenClaims = {
      iss: TEST_ISSUER,
      aud: TEST_AUDIENCE,
      sub: "u1",
      tenant: "acme",
      roles: ["manager"],
      jti: "j1",
      sid: "s1",
      iat: now,
      exp: now + 60,
    };
    await sleep(5);
    const unknownKid = await client
      .getLead({ id: "x" }, bearer(signJwt(claims, "rotated-in-during-the-outage", privateKey)))
      .catch((error: RichClientError) => error);
    expect(unknownKid).toMatchObject({ code: Status.UNAVAILABLE });
    expect(((unknownKid as RichClientError).extra[0] as ErrorInfo).reason).toBe("DEPENDENCY_UNAVAILABLE");
    expect(attempts).toBe(3);
    channel.close();
    await service.shutdown();
  });

  it("re-verifies a cached token once its signing key is withdrawn from the JWKS", async () => {
    let published = true;
    const jwks = new JwksCache(async () => (published ? testJwks() : []), 60_000, 0);
    const { service, channel } = await start(jwks);
    const client = richClient(channel);
    const token = managerToken();
    expect(await codeOf(client.getLead({ id: "x" }, bearer(token)))).toBe(Status.OK);
    expect(await codeOf(client.getLead({ id: "x" }, bearer(token)))).toBe(Status.OK); // from the verified-token cache

    published = false; // e.g. the key leaked and the auth service dropped it
    await jwks.refresh();
    const rejected = (await client.getLead({ id: "x" }, bearer(token)).catch((error: RichClientError) => error)) as RichClientError;
    expect(rejected.code).toBe(Status.UNAUTHENTICATED);
    expect(rejected.details).toMatch(/unknown key id "test-key"/);
    channel.close();
    await service.shutdown();
  });
});
