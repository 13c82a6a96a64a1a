/**
 * Adding a service is a topology entry plus a service folder, and nothing
 * else. This test does exactly that on a private mesh: it takes a copy of
 * mesh/topology.yaml in which audit (a contract without an implementation) is
 * implemented and needs Redis only, and the fixture folder
 * test/fixtures/services/audit (what services/audit would hold). With no other
 * change, the launcher starts it with its environment contract, Envoy routes
 * its REST paths and health-checks it, and the authorization matrix covers it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { healthStatus } from "../../scripts/mesh/health-client";
import { type RunningMesh, startMesh } from "../../scripts/mesh/local-mesh";
import { loadMeshModel, serviceOf, spiffeIdOf } from "../../scripts/mesh/model";
import { REPO_ROOT, TOPOLOGY_PATH } from "../../scripts/mesh/topology";
import { defineAuthorizationMatrix } from "../harness/authorization-matrix";
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";

const FIXTURE_MAIN = join(REPO_ROOT, "test", "fixtures", "services", "audit", "src", "main.ts");
const runDir = mkdtempSync(join(tmpdir(), "leadmesh-add-a-service-"));

/** The one topology change: audit becomes implemented, with Redis only. */
function topologyWithAudit(): string {
  const document = parseDocument(readFileSync(TOPOLOGY_PATH, "utf8"));
  document.setIn(["services", "audit", "implemented"], true);
  document.setIn(["services", "audit", "datastores"], document.createNode(["redis"], { flow: true }));
  const path = join(runDir, "topology.yaml");
  writeFileSync(path, document.toString());
  return path;
}

const topologyPath = topologyWithAudit();
const model = loadMeshModel(topologyPath);
let mesh: RunningMesh;
let admin: RegisteredTenant;

beforeAll(async () => {
  mesh = await startMesh({ ports: "random", runDir, topologyPath, entryPoints: { audit: FIXTURE_MAIN } });
  admin = await registerTenant("add-a-service", mesh.ingressUrl);
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  if (!process.env.KEEP_TEST_RUN_DIR) rmSync(runDir, { recursive: true, force: true });
});

describe("a service added by a topology entry and a folder", () => {
  it("is started by the launcher with the environment the model gives it (Redis, no MongoDB)", () => {
    const pid = mesh.processes.audit?.pid;
    expect(pid).toBeDefined();
    const environment = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .filter(Boolean)
        .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
    );
    expect(environment).toMatchObject({
      REDIS_URL: mesh.redisUrl,
      AUTH_ADDRESS: `127.0.0.1:${mesh.services.auth.grpc}`,
      GRPC_PORT: String(mesh.services.audit.grpc),
    });
    expect(environment.MONGO_URL).toBeUndefined();
    expect(serviceOf(model, "audit").datastores).toEqual(["redis"]);
  });

  it("reports SERVING on its main and probe ports, and Envoy sees it healthy", async () => {
    expect(await healthStatus(mesh.services.audit.grpc, { tls: { certificates: mesh.tls, server: spiffeIdOf(model, "audit") } })).toBe("SERVING");
    expect(await healthStatus(mesh.services.audit.health)).toBe("SERVING");
    const clusters = await (await fetch(`${mesh.adminUrl}/clusters`)).text();
    expect(clusters).toMatch(new RegExp(`^audit::127\\.0\\.0\\.1:${mesh.services.audit.grpc}::health_flags::healthy$`, "m"));
  });

  it("is routed at the edge: its REST paths reach it, with its access rules", async () => {
    const list = await rest("GET", "/api/v1/auditEntries", { token: admin.accessToken, baseUrl: mesh.ingressUrl });
    expect(list.status).toBe(200);
    expect(list.json).toEqual({ auditEntries: [], nextPageToken: "" });
    const entry = await rest("GET", "/api/v1/auditEntries/nope", { token: admin.accessToken, baseUrl: mesh.ingressUrl });
    expect(entry.status).toBe(404);
    expect(entry.json.message).toMatch(/audit entry "nope" not found/);
    expect((await rest("GET", "/api/v1/auditEntries", { baseUrl: mesh.ingressUrl })).status).toBe(401);
  });

  it("is not routed in the unchanged topology (the entry is what adds it)", () => {
    expect(serviceOf(loadMeshModel(), "audit").implemented).toBe(false);
    expect(serviceOf(model, "audit").rpcs.every((rpc) => rpc.edge)).toBe(true);
  });
});

describe("authorization matrix of the added service", () => {
  defineAuthorizationMatrix({
    model,
    services: ["audit"],
    target: () => ({
      ingressUrl: mesh.ingressUrl ?? "",
      mongoUrl: mesh.mongoUrl,
      grpcAddress: (service) => `127.0.0.1:${mesh.services[service].grpc}`,
      certificates: mesh.tls,
    }),
  });
});
