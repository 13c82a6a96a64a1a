/**
 * What SREs rely on: reflection for grpcurl, grpc.health.v1 on the main and
 * the probe port, Prometheus metrics, and an Envoy config that validates and
 * is generated from the topology. The main ports are mTLS: the tools run as
 * README shows them, with the operator's certificate; the probe port stays
 * plaintext and serves health only.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Status } from "nice-grpc";
import { definitionsOfPackage, rpcsOfPackage } from "../../scripts/mesh/contracts";
import { exposedServices, LOCAL_ENVOY_CONFIG, reachableFromOutside, renderLocalEnvoyConfig } from "../../scripts/mesh/envoy-config";
import { implementedServices, loadMeshModel, serviceOf } from "../../scripts/mesh/model";
import { REPO_ROOT } from "../../scripts/mesh/topology";
import { grpcClient, grpcurlTlsArgs, healthProbeTlsArgs, leadClient, runTool } from "../harness/clients";
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";

const info = meshInfo();
const MODEL = loadMeshModel();
const IMPLEMENTED = implementedServices(MODEL).map((service) => service.name);
const leads = info.services.leads;
let admin: RegisteredTenant;
beforeAll(async () => {
  admin = await registerTenant("sre");
});

describe("server reflection (grpcurl without proto files)", () => {
  it.each(IMPLEMENTED)("lists the %s service(s) and health to the operator's certificate, without a token", async (name) => {
    const result = await runTool("grpcurl", [...grpcurlTlsArgs(), `127.0.0.1:${info.services[name].grpc}`, "list"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const listed = result.stdout.trim().split("\n");
    expect(listed.sort()).toEqual(["grpc.health.v1.Health", ...serviceOf(MODEL, name).grpcServices].sort());
  });

  it("is refused without a client certificate, in plaintext, and to a service's certificate (operators only)", async () => {
    const address = `127.0.0.1:${leads.grpc}`;
    const noCertificate = await runTool("grpcurl", ["-cacert", join(info.certDir, "ca.crt"), address, "list"]);
    expect(noCertificate.code).not.toBe(0);
    expect(noCertificate.stderr).toMatch(/Unauthenticated|certificate|handshake/i);
    const plaintext = await runTool("grpcurl", ["-plaintext", address, "list"]);
    expect(plaintext.code).not.toBe(0);
    const asService = await runTool("grpcurl", [...grpcurlTlsArgs("users"), address, "list"]);
    expect(asService.code).not.toBe(0);
    expect(asService.stderr).toMatch(/PermissionDenied/);
  });

  it("describes messages and calls methods from reflection alone", async () => {
    const described = await runTool("grpcurl", [...grpcurlTlsArgs(), `127.0.0.1:${leads.grpc}`, "describe", "leads.v1.Lead"]);
    expect(described.stdout).toMatch(/string email = 5/);
    const call = await runTool("grpcurl", [
      ...grpcurlTlsArgs(),
      "-H",
      `authorization: Bearer ${admin.accessToken}`,
      "-d",
      '{"page_size": 1}',
      `127.0.0.1:${leads.grpc}`,
      "leads.v1.LeadService/ListLeads",
    ]);
    expect(call.code).toBe(0);
    expect(JSON.parse(call.stdout)).toEqual({});
    const unauthenticated = await runTool("grpcurl", [
      ...grpcurlTlsArgs(),
      "-d",
      '{"id":"aaaaaaaaaaaaaaaaaaaaaaaa"}',
      `127.0.0.1:${leads.grpc}`,
      "leads.v1.LeadService/GetLead",
    ]);
    expect(unauthenticated.stderr).toMatch(/Code: Unauthenticated/);
    const notFound = await runTool("grpcurl", [
      ...grpcurlTlsArgs(),
      "-H",
      `authorization: Bearer ${admin.accessToken}`,
      "-d",
      '{"id":"aaaaaaaaaaaaaaaaaaaaaaaa"}',
      `127.0.0.1:${leads.grpc}`,
      "leads.v1.LeadService/GetLead",
    ]);
    expect(notFound.code).not.toBe(0);
    expect(notFound.stderr).toMatch(/Code: NotFound/);
  });
});

describe("health", () => {
  it("answers SERVING on the main port over mTLS, per service and for the whole server", async () => {
    for (const service of ["", "leads.v1.LeadService"]) {
      const result = await runTool("grpcurl", [
        ...grpcurlTlsArgs(),
        "-d",
        JSON.stringify({ service }),
        `127.0.0.1:${leads.grpc}`,
        "grpc.health.v1.Health/Check",
      ]);
      expect(JSON.parse(result.stdout)).toEqual({ status: "SERVING" });
    }
    const probe = await runTool("grpc-health-probe", [`-addr=127.0.0.1:${leads.grpc}`, ...healthProbeTlsArgs()]);
    expect(`${probe.stdout}${probe.stderr}`).toMatch(/status: SERVING/);
    expect(probe.code).toBe(0);
  });

  it("refuses grpc-health-probe on the main port without TLS", async () => {
    const probe = await runTool("grpc-health-probe", [`-addr=127.0.0.1:${leads.grpc}`, "-connect-timeout=2s", "-rpc-timeout=2s"]);
    expect(probe.code).not.toBe(0);
  });

  it("answers SERVING on the plaintext probe port used by Kubernetes, without TLS", async () => {
    const probe = await runTool("grpc-health-probe", [`-addr=127.0.0.1:${leads.health}`]);
    expect(probe.code).toBe(0);
    expect(`${probe.stdout}${probe.stderr}`).toMatch(/status: SERVING/);
    const perService = await runTool("grpc-health-probe", [`-addr=127.0.0.1:${leads.health}`, "-service=leads.v1.LeadService"]);
    expect(perService.code).toBe(0);
  });

  it("serves nothing but grpc.health.v1 on the plaintext probe port", async () => {
    const { client, close } = leadClient(`127.0.0.1:${leads.health}`, admin.accessToken, { plaintext: true });
    await expect(client.listLeads({ pageSize: 1 })).rejects.toMatchObject({ code: Status.UNIMPLEMENTED });
    close();
    const reflection = await runTool("grpcurl", ["-plaintext", `127.0.0.1:${leads.health}`, "list"]);
    expect(reflection.code).not.toBe(0);
  });

  it.each(IMPLEMENTED)("%s is healthy in Envoy's active health checks", async (name) => {
    const clusters = await (await fetch(`${info.adminUrl}/clusters`)).text();
    expect(clusters).toMatch(new RegExp(`^${name}::127\\.0\\.0\\.1:${info.services[name].grpc}::health_flags::healthy$`, "m"));
  });
});

describe("metrics", () => {
  it("exports RED metrics per RPC and process metrics", async () => {
    await rest("GET", "/api/v1/leads/aaaaaaaaaaaaaaaaaaaaaaaa", { token: admin.accessToken });
    const text = await (await fetch(`http://127.0.0.1:${leads.metrics}/metrics`)).text();
    expect(text).toMatch(
      /grpc_server_handled_total\{[^}]*grpc_service="leads\.v1\.LeadService"[^}]*grpc_method="GetLead"[^}]*grpc_code="NOT_FOUND"[^}]*\} [1-9]/,
    );
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

describe("edge routes", () => {
  const topology = loadMeshModel();
  /** RPCs only services may call, of every service behind the ingress. */
  const internal = exposedServices(topology).flatMap((service) =>
    rpcsOfPackage(service.package)
      .filter((rpc) => !reachableFromOutside(rpc.access))
      .map((rpc) => ({ service: service.name, rpc })),
  );

  it("has no route for services-only RPCs: UNIMPLEMENTED from Envoy itself, even with an admin's valid token", async () => {
    expect(internal.map(({ rpc }) => rpc.path)).toEqual(
      expect.arrayContaining([
        "/users.v1.UserService/CreateUser",
        "/users.v1.UserService/LookupUser",
        "/users.v1.UserService/ActivateUser",
        "/users.v1.TenantService/CreateTenant",
        "/leads.v1.LeadService/BatchGetLeads",
      ]),
    );
    const ingress = new URL(info.ingressUrl).host;
    for (const { service, rpc } of internal) {
      // A token jwt_authn accepts: only the missing route stops the call (services reach these RPCs with their certificates, never through the edge).
      const definition = definitionsOfPackage(`${service}.v1`).find((candidate) => candidate.fullName === rpc.service)!;
      const { client, close } = grpcClient(definition as never, ingress, admin.accessToken, { plaintext: true });
      const method = (client as Record<string, (request: unknown) => Promise<unknown>>)[rpc.method.charAt(0).toLowerCase() + rpc.method.slice(1)];
      const request = rpc.requestType.fromPartial({ tenantId: admin.tenantId, email: admin.email, ids: ["aaaaaaaaaaaaaaaaaaaaaaaa"] });
      const outcome = await method(request).then(
        () => ({ rpc: rpc.path, code: Status.OK, message: "" }),
        (error: { code: Status; details: string }) => ({ rpc: rpc.path, code: error.code, message: error.details }),
      );
      // Envoy's own 404 reply (gRPC clients see UNIMPLEMENTED): the call never reached a service.
      expect(outcome).toEqual({ rpc: rpc.path, code: Status.UNIMPLEMENTED, message: expect.stringContaining(`no API at POST ${rpc.path}`) });
      close();
    }

    // Routed RPCs still work over gRPC on the same listener.
    const { client, close } = leadClient(ingress, admin.accessToken, { plaintext: true });
    await expect(client.listLeads({ pageSize: 1 })).resolves.toMatchObject({ leads: expect.any(Array) });
    close();
  });
});

describe("service process", () => {
  it("refuses a bad configuration with one clear message and exit code 78", async () => {
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(REPO_ROOT, "services", "leads", "dist", "main.js")],
        { env: { PATH: process.env.PATH, GRPC_PORT: "not-a-port", REDIS_URL: "redis://127.0.0.1:1", AUTH_ISSUER: "i", AUTH_AUDIENCE: "a" }, timeout: 20_000 },
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
