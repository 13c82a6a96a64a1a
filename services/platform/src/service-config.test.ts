import { ConfigError } from "./config";
import { loadServiceConfig } from "./service-config";

const shared = { AUTH_ISSUER: "iss", AUTH_AUDIENCE: "aud" };

function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("datastores in the service config", () => {
  it("requires only the URLs of the datastores the service declares", () => {
    const problems = problemsOf(() => loadServiceConfig("audit", shared, ["redis"]));
    expect(problems).toEqual([expect.stringMatching(/^REDIS_URL is required/)]);
    const config = loadServiceConfig("audit", { ...shared, REDIS_URL: "redis://127.0.0.1:6379" }, ["redis"]);
    expect(config.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(config).not.toHaveProperty("mongoUrl");
    expect(config).not.toHaveProperty("mongoDatabase");
  });

  it("ignores the URL of a datastore the service does not declare, even if it is malformed", () => {
    const config = loadServiceConfig("stateless", { ...shared, MONGO_URL: "not a url", REDIS_URL: "nope" }, []);
    expect(config).not.toHaveProperty("mongoUrl");
    expect(config).not.toHaveProperty("redisUrl");
  });

  it("requires both by default and names the database after the service", () => {
    expect(problemsOf(() => loadServiceConfig("leads", shared))).toEqual([
      expect.stringMatching(/^MONGO_URL is required/),
      expect.stringMatching(/^REDIS_URL is required/),
    ]);
    const config = loadServiceConfig("leads", { ...shared, MONGO_URL: "mongodb://127.0.0.1:27017/", REDIS_URL: "redis://127.0.0.1:6379" }, [
      "mongodb",
      "redis",
    ]);
    expect(config).toMatchObject({ mongoUrl: "mongodb://127.0.0.1:27017/", mongoDatabase: "leads", redisUrl: "redis://127.0.0.1:6379" });
  });
});
