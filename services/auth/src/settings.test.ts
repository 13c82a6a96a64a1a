import { ConfigError } from "@leadmesh/platform";
import { trustedProxies } from "./client-address";
import { loadAuthConfig } from "./settings";

const valid = { MONGO_URL: "mongodb://127.0.0.1:27017/", REDIS_URL: "redis://127.0.0.1:6379", AUTH_ISSUER: "iss", AUTH_AUDIENCE: "aud" };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadAuthConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("loadAuthConfig", () => {
  it("reads the shared service config and auth's own settings, with defaults", () => {
    const { service, auth } = loadAuthConfig({ ...valid, ACCESS_TOKEN_TTL_SECONDS: "600", TRUSTED_PROXIES: "10.1.0.0/16, fd00::/8" });
    expect(service).toMatchObject({ mongoUrl: valid.MONGO_URL, mongoDatabase: "auth", redisUrl: valid.REDIS_URL, authIssuer: "iss" });
    expect(auth).toMatchObject({ accessTokenTtlSeconds: 600, keyRotationSeconds: 86400, trustedProxies: ["10.1.0.0/16", "fd00::/8"], devMode: false });
    expect(trustedProxies(auth.trustedProxies).check("10.1.2.3", "ipv4")).toBe(true);
  });

  it("reports every bad value, shared and auth's own, in one error", () => {
    const problems = problemsOf({ ...valid, MONGO_URL: "", PASSWORD_ITERATIONS: "0", AUTH_DEV_MODE: "yes", USERS_ADDRESS: "users" });
    expect(problems).toHaveLength(4);
    expect(problems.join("\n")).toMatch(/MONGO_URL is required/);
    expect(problems.join("\n")).toMatch(/PASSWORD_ITERATIONS="0" is invalid: out of range \(argon2id time cost; expected an integer from 1 to 10\)/);
    expect(problems.join("\n")).toMatch(/AUTH_DEV_MODE="yes" is invalid/);
    expect(problems.join("\n")).toMatch(/USERS_ADDRESS="users" is invalid/);
  });

  it.each(["10.0.0.0", "10.0.0.0/33", "999.0.0.0/8", "fc00::/129", "10.0.0.0/8/8", "example.com/8", "10.0.0.0/-1"])("refuses TRUSTED_PROXIES=%s", (cidr) => {
    expect(problemsOf({ ...valid, TRUSTED_PROXIES: `127.0.0.0/8,${cidr}` })).toEqual([expect.stringContaining(`"${cidr}" is not a CIDR`)]);
  });

  it("refuses a key rotation shorter than two token lifetimes as a configuration problem", () => {
    expect(problemsOf({ ...valid, ACCESS_TOKEN_TTL_SECONDS: "900", KEY_ROTATION_SECONDS: "1000" })).toEqual([
      "KEY_ROTATION_SECONDS (1000) must be at least twice ACCESS_TOKEN_TTL_SECONDS (900) so retired keys outlive their tokens",
    ]);
  });
});
