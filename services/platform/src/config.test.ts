import { ConfigError } from "./config";
import { loadServiceConfig, parseMeshPeers } from "./service-config";

const valid = { MONGO_URL: "mongodb://127.0.0.1:27017/", REDIS_URL: "redis://127.0.0.1:6379", AUTH_ISSUER: "iss", AUTH_AUDIENCE: "aud" };

function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("service configuration", () => {
  it("applies defaults and parses values", () => {
    const config = loadServiceConfig("leads", { ...valid, GRPC_PORT: "6000" });
    expect(config).toMatchObject({ grpcPort: 6000, healthPort: 8081, metricsPort: 9464, mongoDatabase: "leads" });
  });

  it("reports every bad or missing value at once, naming the variable and what is expected", () => {
    let error: unknown;
    try {
      loadServiceConfig("leads", { GRPC_PORT: "http", REDIS_URL: "mongodb://x", SHUTDOWN_GRACE_MS: "-5", AUTH_ISSUER: "i", AUTH_AUDIENCE: "a" });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    expect((error as ConfigError).problems).toHaveLength(4);
    expect(problems).toMatch(/GRPC_PORT="http" is invalid: not a port number/);
    expect(problems).toMatch(/MONGO_URL is required/);
    expect(problems).toMatch(/REDIS_URL="mongodb:\/\/x" is invalid: scheme mongodb: not allowed/);
    expect(problems).toMatch(/SHUTDOWN_GRACE_MS="-5" is invalid: out of range/);
  });

  it("rejects a port above 65535", () => {
    expect(() => loadServiceConfig("leads", { ...valid, METRICS_PORT: "70000" })).toThrow(/METRICS_PORT="70000"/);
  });
});

describe("mesh configuration", () => {
  it("defaults to mTLS in cluster.local/leadmesh with the mounted certificate files, and lets nobody call", () => {
    expect(loadServiceConfig("leads", valid)).toMatchObject({
      meshSecurity: "mtls",
      meshTrustDomain: "cluster.local",
      meshNamespace: "leadmesh",
      meshPeers: {},
      meshEdgeIdentity: "ingress",
      meshOperatorIdentity: "operator",
      meshIdentityService: "auth",
      tlsCertFile: "/etc/leadmesh/tls/tls.crt",
      tlsKeyFile: "/etc/leadmesh/tls/tls.key",
      tlsCaFile: "/etc/leadmesh/tls/ca.crt",
      tlsReloadMs: 1000,
      meshSidecarPeers: ["127.0.0.6"],
    });
    expect(loadServiceConfig("leads", valid)).not.toHaveProperty("meshCallers");
  });

  it("parses every mesh variable", () => {
    const config = loadServiceConfig("leads", {
      ...valid,
      MESH_SECURITY: "sidecar",
      MESH_TRUST_DOMAIN: "prod.example",
      MESH_NAMESPACE: "crm",
      MESH_PEERS: '{"auth":["/leads.v1.LeadService/GetLead"],"operator":["/grpc.health.v1.Health/Check"]}',
      MESH_EDGE_IDENTITY: "edge",
      MESH_OPERATOR_IDENTITY: "ops",
      MESH_IDENTITY_SERVICE: "identity",
      TLS_CERT_FILE: "/tls/leads.crt",
      TLS_KEY_FILE: "/tls/leads.key",
      TLS_CA_FILE: "/tls/ca.crt",
      TLS_RELOAD_MS: "250",
      MESH_SIDECAR_PEERS: "127.0.0.6, ::1",
    });
    expect(config).toMatchObject({
      meshSecurity: "sidecar",
      meshTrustDomain: "prod.example",
      meshNamespace: "crm",
      meshPeers: { auth: ["/leads.v1.LeadService/GetLead"], operator: ["/grpc.health.v1.Health/Check"] },
      meshEdgeIdentity: "edge",
      meshOperatorIdentity: "ops",
      meshIdentityService: "identity",
      tlsCertFile: "/tls/leads.crt",
      tlsReloadMs: 250,
      meshSidecarPeers: ["127.0.0.6", "::1"],
    });
  });

  it("rejects a bad security mode, sidecar address and reload interval together", () => {
    const problems = problemsOf(() =>
      loadServiceConfig("leads", { ...valid, MESH_SECURITY: "tls", MESH_SIDECAR_PEERS: "127.0.0.6,sidecar", TLS_RELOAD_MS: "0" }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^MESH_SECURITY="tls" is invalid: unknown value .*one of mtls, sidecar/),
      expect.stringMatching(/^TLS_RELOAD_MS="0" is invalid: out of range/),
      expect.stringMatching(/^MESH_SIDECAR_PEERS="127.0.0.6,sidecar" is invalid: "sidecar" is not an IP address/),
    ]);
  });

  it("explains what is wrong with MESH_PEERS", () => {
    const problemOf = (raw: string) => problemsOf(() => loadServiceConfig("leads", { ...valid, MESH_PEERS: raw }))[0];
    expect(problemOf("{auth: []}")).toMatch(/^MESH_PEERS="\{auth: \[\]\}" is invalid: not JSON \(.+\) \(.*expected a JSON object/);
    expect(problemOf('["auth"]')).toMatch(/is invalid: not a JSON object/);
    expect(problemOf('{"Auth":[]}')).toMatch(/identity "Auth" does not match/);
    expect(problemOf('{"auth":"/leads.v1.LeadService/GetLead"}')).toMatch(/the RPCs of "auth" are not an array/);
    expect(problemOf('{"auth":["leads.v1.LeadService.GetLead"]}')).toMatch(/"auth" lists "leads.v1.LeadService.GetLead", not a gRPC path/);
    expect(problemOf('{"auth":[7]}')).toMatch(/"auth" lists 7, not a gRPC path/);
  });

  it("accepts the reflection and health paths the model grants", () => {
    expect(
      parseMeshPeers('{"operator":["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo","/grpc.health.v1.Health/Watch"]}').operator,
    ).toHaveLength(2);
  });
});
