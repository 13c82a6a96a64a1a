/**
 * What the rendered ingress does about replicas: one endpoint per replica,
 * retries only where a second try cannot repeat a side effect, fast
 * ejection and return. (`envoy --mode validate` of the same config is in
 * test/e2e/sre.test.ts.)
 */
import { parse } from "yaml";
import { renderLocalEnvoyConfig } from "./envoy-config";

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
