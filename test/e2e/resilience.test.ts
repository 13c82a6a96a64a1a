/**
 * Losing and regaining dependencies, on a private mesh (so stopping its
 * database does not disturb the other tests): health must flip within 2 s,
 * Envoy must answer 503 promptly instead of hanging, and everything must
 * come back by itself. Then a graceful SIGTERM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "nice-grpc";
import { healthStatus } from "../../scripts/mesh/health-client";
import { ferretProcess, startMesh, type RunningMesh } from "../../scripts/mesh/local-mesh";
import { ManagedProcess } from "../../scripts/mesh/processes";
import { leadClient } from "../harness/clients";
import { registerTenant, rest } from "../harness/identity";

let mesh: RunningMesh;
let leadId: string;
let token: string;

beforeAll(async () => {
  mesh = await startMesh({ ports: "random", runDir: mkdtempSync(join(tmpdir(), "leadmesh-resilience-")) });
  token = (await registerTenant("resilience", mesh.ingressUrl)).accessToken;
  const created = await rest("POST", "/api/v1/leads", { baseUrl: mesh.ingressUrl, token, body: { firstName: "Kept", email: "kept@example.com", source: "LEAD_SOURCE_REFERRAL" } });
  leadId = created.json.lead.id;
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  if (mesh) rmSync(mesh.runDir, { recursive: true, force: true });
});

async function timeUntil(condition: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (await condition()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not reached within ${limitMs} ms`);
}

const probeIs = (status: string) => async () => (await healthStatus(mesh.services.leads.health)) === status;
const envoySeesLeads = (flag: "healthy" | "failed_active_hc") => async () =>
  new RegExp(`^leads::.*::health_flags::.*${flag}`, "m").test(await (await fetch(`${mesh.adminUrl}/clusters`)).text());

async function timedGet(path: string) {
  const started = Date.now();
  const response = await rest("GET", path, { baseUrl: mesh.ingressUrl, token });
  return { status: response.status, body: response.json, ms: Date.now() - started };
}

async function restart(name: "ferretdb" | "redis") {
  const replacement =
    name === "ferretdb" ? ferretProcess(mesh.runDir, mesh.mongoPort) : new ManagedProcess(mesh.processes.redis.spec);
  mesh.processes[name] = replacement.start();
}

describe("losing the database", () => {
  it("goes NOT_SERVING within 2 s, Envoy answers 503 at once, and all recovers when it returns", async () => {
    await mesh.processes.ferretdb.kill();
    const flipMs = await timeUntil(probeIs("NOT_SERVING"), 5_000);
    expect(flipMs).toBeLessThanOrEqual(2_000);
    expect(await healthStatus(mesh.services.leads.grpc)).toBe("NOT_SERVING");

    await timeUntil(envoySeesLeads("failed_active_hc"), 5_000);
    const during = await timedGet(`/api/v1/leads/${leadId}`);
    expect(during.status).toBe(503);
    expect(during.body.code).toBe(Status.UNAVAILABLE);
    expect(during.ms).toBeLessThan(1_000);

    await restart("ferretdb");
    await timeUntil(probeIs("SERVING"), 20_000);
    await timeUntil(envoySeesLeads("healthy"), 10_000);
    const after = await timedGet(`/api/v1/leads/${leadId}`);
    expect(after.status).toBe(200);
    expect(after.body.lead.email).toBe("kept@example.com");
  });

  it("answers UNAVAILABLE, not a hang or INTERNAL, to calls that reach the service meanwhile", async () => {
    await mesh.processes.ferretdb.kill();
    const { client, close } = leadClient(`127.0.0.1:${mesh.services.leads.grpc}`, token);
    const started = Date.now();
    await expect(client.getLead({ id: leadId })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    expect(Date.now() - started).toBeLessThan(5_000);
    close();
    await restart("ferretdb");
    await timeUntil(probeIs("SERVING"), 20_000);
  });
});

describe("losing redis", () => {
  it("goes NOT_SERVING within 2 s and back to SERVING when redis returns", async () => {
    await mesh.processes.redis.kill();
    expect(await timeUntil(probeIs("NOT_SERVING"), 5_000)).toBeLessThanOrEqual(2_000);
    await restart("redis");
    await timeUntil(probeIs("SERVING"), 20_000);
  });
});

describe("SIGTERM", () => {
  // Draining of calls already inside handlers is proven in-process by
  // services/platform/test/server.test.ts; here: the real process exits 0.
  it("stops gracefully with exit code 0 and is taken out of rotation", async () => {
    await timeUntil(envoySeesLeads("healthy"), 10_000);
    const { client, close } = leadClient(`127.0.0.1:${mesh.services.leads.grpc}`, token);
    await client.getLead({ id: leadId });
    const inFlight = Array.from({ length: 20 }, () => client.listLeads({ pageSize: 100 }));
    const exitCode = mesh.processes.leads.stop(15_000);
    const outcomes = await Promise.allSettled(inFlight);
    for (const outcome of outcomes) {
      // Accepted calls finish; calls that arrive after the listener closed are refused as UNAVAILABLE (retryable).
      if (outcome.status === "rejected") expect(outcome.reason).toMatchObject({ code: Status.UNAVAILABLE });
    }
    expect(await exitCode).toBe(0);
    expect(mesh.processes.leads.logTail(5)).toMatch(/"msg":"stopped"/);
    close();
    await timeUntil(envoySeesLeads("failed_active_hc"), 5_000);
    expect((await timedGet("/api/v1/leads")).status).toBe(503);
  });
});
