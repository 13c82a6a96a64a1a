/**
 * Losing and regaining dependencies, on a private mesh (so stopping its
 * database does not disturb the other tests). While a service knows a
 * dependency is down (its health is NOT_SERVING within 2 s), calls that need
 * it fail at once: 503 with a JSON google.rpc.Status over REST, UNAVAILABLE
 * naming the dependency over gRPC, each well under a second, whether Envoy
 * has taken the service out yet or not; the same when a datastore hangs
 * (SIGSTOP: it accepts connections but never answers), where calls caught in
 * the hang end by the drivers' own limits. Everything comes back by itself.
 * Then a graceful SIGTERM that lets a call in flight finish.
 *
 * Datastores are killed with ManagedProcess.kill(), which the launcher's
 * supervisor does not restart; afterEach restores whatever a test took away,
 * so one failure does not cascade into the next test.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import { UserServiceDefinition } from "@leadmesh/contracts/users/v1/users";
import { Status } from "nice-grpc";
import { ErrorInfo, RetryInfo, RichClientError } from "nice-grpc-error-details";
import { healthStatus } from "../../scripts/mesh/health-client";
import { ferretProcess, type RunningMesh, startMesh } from "../../scripts/mesh/local-mesh";
import { ManagedProcess } from "../../scripts/mesh/processes";
import { grpcClient, leadClient } from "../harness/clients";
import { PASSWORD, type RegisteredTenant, registerTenant, rest } from "../harness/identity";

const SERVICES = ["auth", "users", "leads"] as const;
type Datastore = "ferretdb" | "redis";
/** Health check names (services/platform/src/mongo.ts, redis.ts), as errors name them. */
const DEPENDENCY: Record<Datastore, string> = { ferretdb: "mongodb", redis: "redis" };
/** "At once": each refusal measured 0-21 ms on the 2-core test host; half a second leaves room for a busy suite and is still no timeout. */
const FAST_MS = 500;

let mesh: RunningMesh;
let tenant: RegisteredTenant;
let leadId: string;
/** Datastores frozen with SIGSTOP by a test, to be resumed whatever happens. */
const frozen = new Set<Datastore>();

beforeAll(async () => {
  mesh = await startMesh({ ports: "random", runDir: mkdtempSync(join(tmpdir(), "leadmesh-resilience-")) });
  tenant = await registerTenant("resilience", mesh.ingressUrl);
  const created = await rest("POST", "/api/v1/leads", {
    baseUrl: mesh.ingressUrl,
    token: tenant.accessToken,
    body: { firstName: "Kept", email: "kept@example.com", source: "LEAD_SOURCE_REFERRAL" },
  });
  leadId = created.json.lead.id;
}, 120_000);

afterEach(async () => {
  for (const name of frozen) thaw(name);
  let restored = false;
  for (const name of ["ferretdb", "redis"] as const) {
    if (mesh.processes[name].isRunning) continue;
    mesh.processes[name] = (name === "ferretdb" ? ferretProcess(mesh.runDir, mesh.mongoPort) : new ManagedProcess(mesh.processes.redis.spec)).start();
    restored = true;
  }
  if (restored || !(await everyServiceIs("SERVING"))) await timeUntil(() => everyServiceIs("SERVING"), 30_000);
}, 40_000);

afterAll(async () => {
  await mesh?.stop();
  if (mesh) rmSync(mesh.runDir, { recursive: true, force: true });
});

async function timeUntil(condition: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (await condition()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`condition not reached within ${limitMs} ms`);
}

const probeIs = (service: string, status: string) => async () => (await healthStatus(mesh.services[service].health)) === status;
/** Every service still running (the SIGTERM test stops leads for good). */
const everyServiceIs = async (status: string) =>
  (await Promise.all(SERVICES.filter((service) => mesh.processes[service].isRunning).map((service) => probeIs(service, status)()))).every(Boolean);

function signal(datastore: Datastore, name: "SIGSTOP" | "SIGCONT") {
  const pid = mesh.processes[datastore].pid;
  if (pid === undefined) throw new Error(`${datastore} has no process to send ${name} to`);
  process.kill(pid, name);
}

function freeze(datastore: Datastore) {
  signal(datastore, "SIGSTOP");
  frozen.add(datastore);
}

function thaw(datastore: Datastore) {
  signal(datastore, "SIGCONT");
  frozen.delete(datastore);
}

const envoySees = (service: string, flag: "healthy" | "failed_active_hc") => async () =>
  new RegExp(`^${service}::.*::health_flags::.*${flag}`, "m").test(await (await fetch(`${mesh.adminUrl}/clusters`)).text());

/** Takes a datastore away (killed, or frozen: it accepts connections but never answers) and returns how long each service took to report NOT_SERVING on its probe port. */
async function lose(datastore: Datastore, how: "kill" | "freeze" = "kill"): Promise<Record<string, number>> {
  if (how === "kill") await mesh.processes[datastore].kill();
  else freeze(datastore);
  const flips = await Promise.all(SERVICES.map((service) => timeUntil(probeIs(service, "NOT_SERVING"), 5_000)));
  return Object.fromEntries(SERVICES.map((service, index) => [service, flips[index]]));
}

async function timedRest(method: string, path: string, body?: unknown) {
  const started = Date.now();
  const response = await rest(method, path, { baseUrl: mesh.ingressUrl, token: tenant.accessToken, body });
  return {
    path: `${method} ${path}`,
    status: response.status,
    contentType: response.headers.get("content-type"),
    json: response.json,
    ms: Date.now() - started,
  };
}

/** REST calls of each kind to the three services (reads, a write, a public sign-in). */
const restCalls = () => [
  () => timedRest("GET", `/api/v1/leads/${leadId}`),
  () => timedRest("GET", "/api/v1/leads"),
  () => timedRest("POST", "/api/v1/leads", { firstName: "Lost", email: "lost@example.com", source: "LEAD_SOURCE_REFERRAL" }),
  () => timedRest("GET", "/api/v1/users/me"),
  () => timedRest("POST", "/api/v1/auth:login", { tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD }),
];

async function expectFast503s() {
  const results = [];
  // Sequential: each request is timed on its own, not queued behind the others.
  for (let round = 0; round < 3; round++) for (const call of restCalls()) results.push(await call());
  expect(results.map(({ path, status, contentType, json }) => ({ path, status, contentType, code: json?.code, message: typeof json?.message }))).toEqual(
    results.map(({ path }) => ({ path, status: 503, contentType: expect.stringContaining("application/json"), code: Status.UNAVAILABLE, message: "string" })),
  );
  expect(results.filter((result) => result.ms >= FAST_MS).map(({ path, ms }) => `${path}: ${ms} ms`)).toEqual([]);
}

interface GrpcOutcome {
  rpc: string;
  ms: number;
  code?: Status;
  reason?: string;
  dependency?: string;
  retryDelayMs?: number;
}

async function timedGrpc(rpc: string, call: () => Promise<unknown>): Promise<GrpcOutcome> {
  const started = Date.now();
  try {
    await call();
    return { rpc, ms: Date.now() - started, code: Status.OK };
  } catch (error) {
    const ms = Date.now() - started;
    if (!(error instanceof RichClientError)) return { rpc, ms, code: (error as { code?: Status }).code };
    const info = error.extra.find((detail) => detail.$type === ErrorInfo.$type) as ErrorInfo | undefined;
    const retry = error.extra.find((detail) => detail.$type === RetryInfo.$type) as RetryInfo | undefined;
    const delay = retry?.retryDelay;
    return {
      rpc,
      ms,
      code: error.code,
      reason: info?.reason,
      dependency: info?.metadata.dependency,
      retryDelayMs: delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : undefined,
    };
  }
}

/** Direct gRPC to each service, past Envoy: the service itself must refuse at once. */
async function expectFastUnavailable(dependency: string) {
  const token = tenant.accessToken;
  const leads = leadClient(`127.0.0.1:${mesh.services.leads.grpc}`, token, { certificates: mesh.tls });
  const users = grpcClient(UserServiceDefinition, `127.0.0.1:${mesh.services.users.grpc}`, token, { certificates: mesh.tls });
  const auth = grpcClient(AuthServiceDefinition, `127.0.0.1:${mesh.services.auth.grpc}`, undefined, { certificates: mesh.tls });
  try {
    const outcomes: GrpcOutcome[] = [];
    for (let round = 0; round < 3; round++) {
      outcomes.push(
        await timedGrpc("leads GetLead", () => leads.client.getLead({ id: leadId })),
        await timedGrpc("leads ListLeads", () => leads.client.listLeads({ pageSize: 10 })),
        await timedGrpc("leads CreateLead", () =>
          leads.client.createLead({ lead: { firstName: "Lost", email: "lost@example.com", source: LeadSource.LEAD_SOURCE_REFERRAL } }),
        ),
        await timedGrpc("users GetUser", () => users.client.getUser({ id: "me" })),
        await timedGrpc("auth Login", () => auth.client.login({ tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD })),
      );
    }
    // The fail-fast refusal (fail-fast.ts), not a driver error after a timeout: it carries a retry hint.
    expect(outcomes.map(({ ms, ...outcome }) => outcome)).toEqual(
      outcomes.map(({ rpc }) => ({ rpc, code: Status.UNAVAILABLE, reason: "DEPENDENCY_UNAVAILABLE", dependency, retryDelayMs: expect.any(Number) })),
    );
    expect(outcomes.filter((outcome) => outcome.ms >= FAST_MS).map(({ rpc, ms }) => `${rpc}: ${ms} ms`)).toEqual([]);
    // Served from memory and public: other services' key caches may still refetch it.
    expect((await timedGrpc("auth GetJwks", () => auth.client.getJwks({}))).code).toBe(Status.OK);
  } finally {
    leads.close();
    users.close();
    auth.close();
  }
}

async function expectRecovered() {
  await timeUntil(() => everyServiceIs("SERVING"), 30_000);
  for (const service of SERVICES) await timeUntil(envoySees(service, "healthy"), 10_000);
  const lead = await timedRest("GET", `/api/v1/leads/${leadId}`);
  expect(lead.status).toBe(200);
  expect(lead.json.lead.email).toBe("kept@example.com");
  expect((await timedRest("GET", "/api/v1/users/me")).status).toBe(200);
  const login = await timedRest("POST", "/api/v1/auth:login", { tenantId: tenant.tenantId, email: tenant.email, password: PASSWORD });
  expect(login.status).toBe(200);
}

describe.each([
  ["the database", "ferretdb"],
  ["redis", "redis"],
] as const)("losing %s", (_, datastore) => {
  it("every service goes NOT_SERVING within 2 s, calls fail in under 0.5 s over REST and gRPC, and all recovers", async () => {
    const flips = await lose(datastore);
    expect(Object.entries(flips).filter(([, ms]) => ms > 2_000)).toEqual([]);
    // At once, not after Envoy's own health check has caught up: requests in that window reach the services.
    await expectFast503s();
    await expectFastUnavailable(DEPENDENCY[datastore]);
    for (const service of SERVICES) await timeUntil(envoySees(service, "failed_active_hc"), 5_000);
    await expectFast503s();

    const restart = datastore === "ferretdb" ? ferretProcess(mesh.runDir, mesh.mongoPort) : new ManagedProcess(mesh.processes.redis.spec);
    mesh.processes[datastore] = restart.start();
    await expectRecovered();
  });
});

describe.each([
  ["a database", "ferretdb"],
  ["a redis", "redis"],
] as const)("%s that hangs instead of refusing", (_, datastore) => {
  it("is known down within 2 s, after which calls fail in under 0.5 s; calls caught in the hang end by themselves", async () => {
    const leads = leadClient(`127.0.0.1:${mesh.services.leads.grpc}`, tenant.accessToken, { certificates: mesh.tls });
    try {
      await leads.client.getLead({ id: leadId });
      const flipping = lose(datastore, "freeze");
      // Caught by the hang: ended by the driver's own limits (mongo.ts: monitor and
      // server selection; redis.ts: commandTimeout), not by a socket timeout.
      // ListLeads, because GetLead may be answered from the read cache without the database.
      const caught = await timedGrpc("leads ListLeads", () => leads.client.listLeads({ pageSize: 1 }));
      expect(caught).toMatchObject({ code: Status.UNAVAILABLE, reason: "DEPENDENCY_UNAVAILABLE", dependency: DEPENDENCY[datastore] });
      expect(caught.ms).toBeLessThan(5_000);
      expect(Object.entries(await flipping).filter(([, ms]) => ms > 2_000)).toEqual([]);
      await expectFastUnavailable(DEPENDENCY[datastore]);
      await expectFast503s();
    } finally {
      leads.close();
    }
    thaw(datastore);
    await expectRecovered();
  });
});

describe("calls under way when the database goes", () => {
  it("end with OK or UNAVAILABLE, never INTERNAL or a hang", async () => {
    const { client, close } = leadClient(`127.0.0.1:${mesh.services.leads.grpc}`, tenant.accessToken, { certificates: mesh.tls });
    try {
      const underWay = Array.from({ length: 10 }, (_, index) => timedGrpc(`ListLeads #${index}`, () => client.listLeads({ pageSize: 100 })));
      await mesh.processes.ferretdb.kill();
      for (const outcome of await Promise.all(underWay)) {
        expect([Status.OK, Status.UNAVAILABLE]).toContain(outcome.code);
        expect(outcome.ms).toBeLessThan(2_000);
      }
    } finally {
      close();
    }
  });
});

describe("SIGTERM", () => {
  // Runs last: leads stays down afterwards (a stop on purpose is not restarted).
  it("finishes a call that is in flight, exits 0 and is taken out of rotation", async () => {
    await timeUntil(envoySees("leads", "healthy"), 10_000);
    const { client, close } = leadClient(`127.0.0.1:${mesh.services.leads.grpc}`, tenant.accessToken, { certificates: mesh.tls });
    try {
      await client.getLead({ id: leadId });
      // Calls held inside their handler: the database is frozen while they
      // run, so none can finish before the service has received SIGTERM
      // (ListLeads: GetLead may be answered from the read cache without the database).
      freeze("ferretdb");
      const held = Array.from({ length: 20 }, async () => {
        try {
          const { leads } = await client.listLeads({ pageSize: 1 });
          return { code: Status.OK, at: Date.now(), leadIds: leads.map((lead) => lead.id) };
        } catch (error) {
          return { code: (error as { code?: Status }).code, at: Date.now(), leadIds: [] };
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 150));
      const sigtermAt = Date.now();
      const exitCode = mesh.processes.leads.stop(15_000);
      // Well inside the health check's 1 s budget, so the database never counts as down.
      await new Promise((resolve) => setTimeout(resolve, 250));
      thaw("ferretdb");

      const outcomes = await Promise.all(held);
      // The drain itself: calls that were in flight when SIGTERM arrived (sent
      // before it, unable to finish until after it) completed with their answer.
      const drained = outcomes.filter((outcome) => outcome.code === Status.OK && outcome.at > sigtermAt);
      expect(drained.length).toBeGreaterThan(0);
      for (const outcome of drained) expect(outcome.leadIds).toHaveLength(1);
      // Nothing finished before SIGTERM (the freeze held them all); a call that
      // reached the service only after its listener closed is refused as UNAVAILABLE (retryable).
      expect(outcomes.filter((outcome) => outcome.at <= sigtermAt)).toEqual([]);
      expect(outcomes.filter((outcome) => outcome.code !== Status.OK && outcome.code !== Status.UNAVAILABLE)).toEqual([]);
      expect(await exitCode).toBe(0);
      expect(mesh.processes.leads.logTail(5)).toMatch(/"msg":"stopped"/);
    } finally {
      close();
    }
    await timeUntil(envoySees("leads", "failed_active_hc"), 5_000);
    expect((await timedRest("GET", "/api/v1/leads")).status).toBe(503);
  });
});
