import { ConfigError } from "./config";
import { loadServiceConfig } from "./service-config";

const valid = { MONGO_URL: "mongodb://127.0.0.1:27017/", REDIS_URL: "redis://127.0.0.1:6379", AUTH_ISSUER: "iss", AUTH_AUDIENCE: "aud" };

describe("service configuration", () => {
  it("applies defaults and parses values", () => {
    const config = loadServiceConfig("leads", { ...valid, GRPC_PORT: "6000" });
    expect(loadServiceConfig("leads", { ...valid, MESH_CALLERS: "buyers, auth" }).meshCallers).toEqual(["buyers", "auth"]);
    expect(config).toMatchObject({ grpcPort: 6000, healthPort: 8081, metricsPort: 9464, mongoDatabase: "leads", meshCallers: [] });
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
