/**
 * What SREs rely on: reflection for grpcurl, grpc.health.v1 on the main and
 * the probe port, Prometheus metrics, and an Envoy config that validates and
 * is generated from the topology.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { meshInfo } from "../harness/mesh-info";
import { runTool } from "../harness/clients";
import { LOCAL_ENVOY_CONFIG, renderLocalEnvoyConfig } from "../../scripts/mesh/envoy-config";
import { REPO_ROOT } from "../../scripts/mesh/topology";

const info = meshInfo();
const leads = info.services.leads;

describe("server reflection (grpcurl without proto files)", () => {
  it("lists the leads service and health", async () => {
    const result = await runTool("grpcurl", ["-plaintext", `127.0.0.1:${leads.grpc}`, "list"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual(expect.arrayContaining(["leads.v1.LeadService", "grpc.health.v1.Health"]));
  });

  it("describes messages and calls methods from reflection alone", async () => {
    const described = await runTool("grpcurl", ["-plaintext", `127.0.0.1:${leads.grpc}`, "describe", "leads.v1.Lead"]);
    expect(described.stdout).toMatch(/string email = 5/);
    const call = await runTool("grpcurl", [
      "-plaintext",
      "-H",
      "x-tenant-id: sre-check",
      "-d",
      '{"page_size": 1}',
      `127.0.0.1:${leads.grpc}`,
      "leads.v1.LeadService/ListLeads",
    ]);
    expect(call.code).toBe(0);
    expect(JSON.parse(call.stdout)).toEqual({});
    const notFound = await runTool("grpcurl", ["-plaintext", "-d", '{"id":"aaaaaaaaaaaaaaaaaaaaaaaa"}', `127.0.0.1:${leads.grpc}`, "leads.v1.LeadService/GetLead"]);
    expect(notFound.code).not.toBe(0);
    expect(notFound.stderr).toMatch(/Code: NotFound/);
  });
});

describe("health", () => {
  it("answers SERVING on the main port, per service and for the whole server", async () => {
    for (const service of ["", "leads.v1.LeadService"]) {
      const result = await runTool("grpcurl", ["-plaintext", "-d", JSON.stringify({ service }), `127.0.0.1:${leads.grpc}`, "grpc.health.v1.Health/Check"]);
      expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });
    }
  });

  it("answers SERVING on the plaintext probe port used by Kubernetes", async () => {
    const probe = await runTool("grpc-health-probe", [`-addr=127.0.0.1:${leads.health}`]);
    expect(probe.code).toBe(0);
    expect(`${probe.stdout}${probe.stderr}`).toMatch(/status: SERVING/);
    const perService = await runTool("grpc-health-probe", [`-addr=127.0.0.1:${leads.health}`, "-service=leads.v1.LeadService"]);
    expect(perService.code).toBe(0);
  });

  it("is what Envoy's active health check sees", async () => {
    const clusters = await (await fetch(`${info.adminUrl}/clusters`)).text();
    expect(clusters).toMatch(new RegExp(`^leads::127\\.0\\.0\\.1:${leads.grpc}::health_flags::healthy$`, "m"));
  });
});

describe("metrics", () => {
  it("exports RED metrics per RPC and process metrics", async () => {
    await fetch(`${info.ingressUrl}/api/v1/leads/aaaaaaaaaaaaaaaaaaaaaaaa`);
    const text = await (await fetch(`http://127.0.0.1:${leads.metrics}/metrics`)).text();
    expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_service="leads\.v1\.LeadService"[^}]*grpc_method="GetLead"[^}]*grpc_code="NOT_FOUND"[^}]*\} [1-9]/);
    expect(text).toMatch(/grpc_server_handling_seconds_bucket\{/);
    expect(text).toMatch(/process_resident_memory_bytes \d+/);
    expect((await fetch(`http://127.0.0.1:${leads.metrics}/other`)).status).toBe(404);
  });
});

describe("envoy config", () => {
  it("committed envoy/ingress.local.yaml is what the topology generates", () => {
    expect(readFileSync(LOCAL_ENVOY_CONFIG, "utf8")).toBe(renderLocalEnvoyConfig());
  });

  it.each([
    ["the committed local config", LOCAL_ENVOY_CONFIG],
    ["the config rendered for this test mesh", info.envoyConfigPath],
  ])("%s passes envoy --mode validate", async (_label, path) => {
    const result = await runTool("envoy", ["--mode", "validate", "-c", path, "--log-level", "error"], 60_000);
    expect(`${result.stdout}${result.stderr}`).toMatch(/OK/);
    expect(result.code).toBe(0);
  });
});

describe("service process", () => {
  it("refuses a bad configuration with one clear message and exit code 78", async () => {
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(REPO_ROOT, "services", "leads", "dist", "main.js")],
        { env: { PATH: process.env.PATH, GRPC_PORT: "not-a-port", REDIS_URL: "redis://127.0.0.1:1" }, timeout: 20_000 },
        (error, _stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      );
    });
    expect(outcome.code).toBe(78);
    expect(outcome.stderr).toMatch(/^leads: invalid configuration:/);
    expect(outcome.stderr).toMatch(/GRPC_PORT="not-a-port" is invalid/);
    expect(outcome.stderr).toMatch(/MONGO_URL is required/);
    expect(outcome.stderr).not.toMatch(/\n\s+at /);
  });
});
