/**
 * The auth service's settings: the shared service config plus its own, read
 * through one config spec, so every bad value (its own included) is reported
 * together and the process exits 78 with the list, like any other service.
 */
import { isIP } from "node:net";
import {
  ConfigError,
  type ConfigSpec,
  config,
  loadConfig,
  MAX_ACCESS_TOKEN_TTL_SECONDS,
  peerAddress,
  type ServiceConfigWith,
  serviceConfigSpec,
} from "@leadmesh/platform";

/** The auth service's own settings, on top of the shared service config. */
export interface AuthConfig {
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** A session ends this long after sign-in, however often it is refreshed. */
  sessionMaxLifetimeSeconds: number;
  /** Peers whose x-forwarded-for is believed (the edge proxies), as CIDRs. */
  trustedProxies: string[];
  /** Length of a signing-key epoch; the next key is published one epoch before it signs. */
  keyRotationSeconds: number;
  /** gRPC address of the users service. */
  usersAddress: string;
  /** Development only: RequestPasswordReset returns the token. */
  devMode: boolean;
  loginMaxFailures: number;
  loginFailureWindowSeconds: number;
  loginMaxAttemptsPerAddress: number;
  loginAddressWindowSeconds: number;
  /** argon2id memory cost in KiB (OWASP: ≥ 19456 with t=2). */
  passwordMemoryKib: number;
  passwordIterations: number;
}

type AuthServiceConfig = ServiceConfigWith<"mongodb" | "redis">;

/** CIDRs in address/prefix form, each address and prefix length checked (BlockList would throw on them at start). */
const trustedProxiesSpec: ConfigSpec<AuthConfig>["trustedProxies"] = {
  env: "TRUSTED_PROXIES",
  description: "CIDRs of the proxies in front of auth (x-forwarded-for is believed only from them)",
  default: ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
  expected: "a comma-separated list of CIDRs such as 10.0.0.0/8 or fc00::/7",
  parse(raw) {
    const cidrs = raw
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
    for (const cidr of cidrs) {
      const [address, bits, extra] = cidr.split("/");
      const family = isIP(address);
      const maxBits = family === 6 ? 128 : 32;
      if (family === 0 || extra !== undefined || !/^\d{1,3}$/.test(bits ?? "") || Number(bits) > maxBits) throw new Error(`"${cidr}" is not a CIDR`);
    }
    return cidrs;
  },
};

export function loadAuthConfig(env: NodeJS.ProcessEnv): { service: AuthServiceConfig; auth: AuthConfig } {
  const settings = loadConfig<AuthServiceConfig & AuthConfig>(
    {
      ...serviceConfigSpec("auth", ["mongodb", "redis"]),
      accessTokenTtlSeconds: config.integer({
        env: "ACCESS_TOKEN_TTL_SECONDS",
        description: "lifetime of access tokens",
        default: 900,
        min: 30,
        max: MAX_ACCESS_TOKEN_TTL_SECONDS,
      }),
      refreshTokenTtlSeconds: config.integer({
        env: "REFRESH_TOKEN_TTL_SECONDS",
        description: "idle lifetime of a session",
        default: 30 * 86400,
        min: 60,
        max: 365 * 86400,
      }),
      sessionMaxLifetimeSeconds: config.integer({
        env: "SESSION_MAX_LIFETIME_SECONDS",
        description: "absolute lifetime of a session",
        default: 90 * 86400,
        min: 60,
        max: 365 * 86400,
      }),
      trustedProxies: trustedProxiesSpec,
      keyRotationSeconds: config.integer({
        env: "KEY_ROTATION_SECONDS",
        description: "signing key rotation period",
        default: 86400,
        min: 120,
        max: 90 * 86400,
      }),
      usersAddress: peerAddress({ env: "USERS_ADDRESS", description: "the users service's replicas", default: "dns:///users:50051" }),
      devMode: config.boolean({ env: "AUTH_DEV_MODE", description: "development mode (password reset returns its token)", default: false }),
      loginMaxFailures: config.integer({
        env: "LOGIN_MAX_FAILURES",
        description: "failed sign-ins per account before throttling",
        default: 5,
        min: 1,
        max: 1000,
      }),
      loginFailureWindowSeconds: config.integer({
        env: "LOGIN_FAILURE_WINDOW_SECONDS",
        description: "window of the per-account count",
        default: 900,
        min: 1,
        max: 86400,
      }),
      loginMaxAttemptsPerAddress: config.integer({
        env: "LOGIN_MAX_ATTEMPTS_PER_ADDRESS",
        description: "sign-ins per client address per window",
        default: 30,
        min: 1,
        max: 100000,
      }),
      loginAddressWindowSeconds: config.integer({
        env: "LOGIN_ADDRESS_WINDOW_SECONDS",
        description: "window of the per-address count",
        default: 300,
        min: 1,
        max: 86400,
      }),
      passwordMemoryKib: config.integer({ env: "PASSWORD_MEMORY_KIB", description: "argon2id memory cost", default: 19456, min: 8192, max: 1048576 }),
      passwordIterations: config.integer({ env: "PASSWORD_ITERATIONS", description: "argon2id time cost", default: 2, min: 1, max: 10 }),
    },
    env,
  );
  if (settings.keyRotationSeconds < 2 * settings.accessTokenTtlSeconds) {
    throw new ConfigError([
      `KEY_ROTATION_SECONDS (${settings.keyRotationSeconds}) must be at least twice ACCESS_TOKEN_TTL_SECONDS (${settings.accessTokenTtlSeconds}) so retired keys outlive their tokens`,
    ]);
  }
  // One validated object, seen through two types: the kernel's part and auth's own.
  return { service: settings, auth: settings };
}
