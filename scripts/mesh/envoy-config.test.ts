/**
 * What the rendered ingress does about replicas (one endpoint per replica,
 * retries only where a second try cannot repeat a side effect, fast
 * ejection and return) and about mTLS to its upstreams; and that Envoy
 * itself accepts the config (`envoy --mode validate`). The same config
 * against real processes: ingress-mtls.test.ts.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { DESCRIPTOR_PATH } from "./descriptor";
import {
  exposedServices,
  LOCAL_ENVOY_CONFIG,
  LOCAL_SDS_DIR,
  LOCAL_TLS_DIR,
  renderEnvoyConfig,
  renderLocalEnvoyConfig,
  renderLocalEnvoySdsFiles,
  spiffeIdOf,
} from "./envoy-config";
import { writeEnvoySdsFiles } from "./envoy-sds";
import { TOOLS_BIN } from "./ingress";
import { loadMeshModel } from "./model";
import { REPO_ROOT } from "./topology";

interface Route {
  match: { path?: string; prefix?: string };
  route: { cluster: string; retry_policy?: { retry_on: string; per_try_timeout?: string; retry_host_predicate?: { name: string }[] } };
}

const config = parse(renderLocalEnvoyConfig());
const routes: Route[] = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
const retryOn = (path: string) => routes.find((route) => route.match.path === path)?.route.retry_policy;
const cluster = (name: string) => config.static_resources.clusters.find((candidate: { name: string }) => candidate.name === name);

describe("ingress config for replicas", () => {
  it("has one endpoint per replica of the topology", () => {
    const endpoints = cluster("leads").load_assignment.endpoints[0].lb_endpoints.map(
      (entry: { endpoint: { address: { socket_address: { port_value: number } } } }) => entry.endpoint.address.socket_address.port_value,
    );
    expect(endpoints).toEqual([20300, 20301]);
  });

  it("retries idempotent RPCs (GET binding or idempotency_level) on reset and UNAVAILABLE, on another replica", () => {
    for (const path of ["/leads.v1.LeadService/GetLead", "/leads.v1.LeadService/ListLeads", "/leads.v1.LeadService/DeleteLead"]) {
      expect(retryOn(path)).toMatchObject({
        retry_on: "connect-failure,refused-stream,reset,unavailable",
        per_try_timeout: "5s",
        retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
      });
    }
  });

  it("retries other RPCs only when the request never reached a service", () => {
    for (const path of ["/leads.v1.LeadService/CreateLead", "/leads.v1.LeadService/UpdateLead", "/auth.v1.AuthService/Login"]) {
      expect(retryOn(path)?.retry_on).toBe("connect-failure,refused-stream,reset-before-request");
      expect(retryOn(path)?.per_try_timeout).toBeUndefined();
    }
  });

  it("ejects a replica at its first local-origin failure, checks health every 0.5 s, and budgets retries instead of capping them at 3", () => {
    const leads = cluster("leads");
    expect(leads.outlier_detection).toMatchObject({ split_external_local_origin_errors: true, consecutive_local_origin_failure: 1, max_ejection_percent: 100 });
    expect(leads.health_checks[0]).toMatchObject({ interval: "0.5s", healthy_threshold: 1, unhealthy_threshold: 2, grpc_health_check: { service_name: "" } });
    expect(leads.common_lb_config.healthy_panic_threshold.value).toBe(0);
    expect(leads.circuit_breakers.thresholds[0].retry_budget).toEqual({ budget_percent: { value: 50 }, min_retry_concurrency: 16 });
  });
});

interface SdsSecretConfig {
  name: string;
  sds_config: { path_config_source: { path: string; watched_directory: { path: string } } };
}

describe("ingress config for mTLS upstreams", () => {
  const model = loadMeshModel();
  const services = exposedServices(model).map((service) => service.name);

  it.each(services)("%s: TLS with ALPN h2, the edge certificate and CA from file-based SDS, and the service's own SPIFFE id required", (name) => {
    const socket = cluster(name).transport_socket;
    expect(socket.name).toBe("envoy.transport_sockets.tls");
    expect(socket.typed_config["@type"]).toBe("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
    const common = socket.typed_config.common_tls_context;
    expect(common.alpn_protocols).toEqual(["h2"]);
    // Certificates only through SDS: inline ones would never be re-read.
    expect(common.tls_certificates).toBeUndefined();
    expect(common.validation_context).toBeUndefined();
    const [certificate] = common.tls_certificate_sds_secret_configs as SdsSecretConfig[];
    expect(certificate.sds_config.path_config_source).toEqual({ path: `${LOCAL_SDS_DIR}/ingress.envoy-sds.yaml`, watched_directory: { path: LOCAL_SDS_DIR } });
    const validation = common.combined_validation_context;
    expect(validation.default_validation_context.match_typed_subject_alt_names).toEqual([{ san_type: "URI", matcher: { exact: spiffeIdOf(model, name) } }]);
    expect((validation.validation_context_sds_secret_config as SdsSecretConfig).sds_config.path_config_source.path).toBe(`${LOCAL_SDS_DIR}/ca.envoy-sds.yaml`);
  });

  it("health checks run over the cluster's TLS socket (no plaintext socket match of their own)", () => {
    for (const name of services) {
      for (const check of cluster(name).health_checks) {
        expect(check.transport_socket_match_criteria).toBeUndefined();
        expect(check.grpc_health_check).toBeDefined();
      }
      expect(cluster(name).transport_socket_matches).toBeUndefined();
    }
  });

  it("the SDS secrets name the edge certificate, key and CA in the certificate directory, each watched for renewal", () => {
    const files = renderLocalEnvoySdsFiles(model);
    const certificate = parse(files[`${LOCAL_SDS_DIR}/ingress.envoy-sds.yaml`]).resources[0];
    expect(certificate.tls_certificate).toEqual({
      certificate_chain: { filename: `${LOCAL_TLS_DIR}/ingress.crt` },
      private_key: { filename: `${LOCAL_TLS_DIR}/ingress.key` },
      watched_directory: { path: LOCAL_TLS_DIR },
    });
    const ca = parse(files[`${LOCAL_SDS_DIR}/ca.envoy-sds.yaml`]).resources[0];
    expect(ca.validation_context).toEqual({ trusted_ca: { filename: `${LOCAL_TLS_DIR}/ca.crt` }, watched_directory: { path: LOCAL_TLS_DIR } });
  });

  it("the committed SDS files and config are what the topology generates (npm run generate)", () => {
    for (const [file, content] of Object.entries(renderLocalEnvoySdsFiles(model))) expect(readFileSync(join(REPO_ROOT, file), "utf8")).toBe(content);
    expect(readFileSync(LOCAL_ENVOY_CONFIG, "utf8")).toBe(renderLocalEnvoyConfig(model));
  });

  it("the listener stays plain HTTP, sanitizes x-forwarded-client-cert and removes leadmesh-* request headers first", () => {
    const listener = config.static_resources.listeners[0];
    expect(listener.filter_chains[0].transport_socket).toBeUndefined();
    const manager = listener.filter_chains[0].filters[0].typed_config;
    expect(manager.forward_client_cert_details).toBe("SANITIZE");
    const [first] = manager.http_filters;
    expect(first.name).toBe("envoy.filters.http.header_mutation");
    expect(first.typed_config.mutations.request_mutations).toEqual([{ remove_on_match: { key_matcher: { prefix: "leadmesh-", ignore_case: true } } }]);
  });
});

describe("envoy --mode validate", () => {
  const validate = (configPath: string) => {
    const result = spawnSync(join(TOOLS_BIN, "envoy"), ["--mode", "validate", "-c", configPath, "--log-level", "critical"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: result.status, output: `${result.stdout}${result.stderr}` };
  };

  it("accepts the committed local config (its SDS files are committed too)", () => {
    const result = validate(LOCAL_ENVOY_CONFIG);
    expect(result.output).toMatch(/OK/);
    expect(result.code).toBe(0);
  });

  it("accepts a config rendered for a certificate directory with its SDS files, and refuses one whose SDS files are missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "leadmesh-envoy-validate-"));
    try {
      const model = loadMeshModel();
      const tlsDir = join(dir, "tls");
      const render = () =>
        renderEnvoyConfig(model, {
          listenPort: 18080,
          adminPort: 18081,
          upstreamPorts: Object.fromEntries(exposedServices(model).map((service, index) => [service.name, [18100 + index]])),
          descriptorPath: DESCRIPTOR_PATH,
          tlsDir,
        });
      const configPath = join(dir, "envoy.yaml");
      writeFileSync(configPath, render());
      const missing = validate(configPath);
      expect(missing.code).not.toBe(0);
      expect(missing.output).toMatch(/envoy-sds\.yaml/);
      writeEnvoySdsFiles({ tlsDir, sdsDir: tlsDir, edge: "ingress" });
      const result = validate(configPath);
      expect(result.output).toMatch(/OK/);
      expect(result.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
