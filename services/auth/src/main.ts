import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { apiService, connectMongo, connectRedis, createLogger, createMeshTransport, JwksCache, Revocations, runMain, startService } from "@leadmesh/platform";
import { trustedProxies } from "./client-address";
import { CredentialStore, ensureAuthIndexes } from "./credentials";
import { authHandlers } from "./handlers";
import { PasswordResets } from "./password-resets";
import { Passwords } from "./passwords";
import { SessionStore } from "./sessions";
import { loadAuthConfig } from "./settings";
import { SigningKeys } from "./signing-keys";
import { createThrottles } from "./throttle";
import { TokenIssuer } from "./tokens";
import { UsersGateway } from "./users-gateway";

export async function startAuth(env: NodeJS.ProcessEnv = process.env) {
  const { service: config, auth: settings } = loadAuthConfig(env);
  const logger = createLogger("auth");
  const transport = createMeshTransport(config, "auth", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "auth", ensureAuthIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  const keys = new SigningKeys(mongo.db, settings.keyRotationSeconds, Date.now, logger);
  const revocations = new Revocations(redis.redis);
  const tokens = new TokenIssuer(keys, revocations, {
    issuer: config.authIssuer,
    audience: config.authAudience,
    accessTokenTtlSeconds: settings.accessTokenTtlSeconds,
  });
  const users = new UsersGateway(settings.usersAddress, transport);
  const passwords = new Passwords({ memoryKib: settings.passwordMemoryKib, iterations: settings.passwordIterations });
  logger.info({ passwordHash: passwords.description, accessTokenTtlSeconds: settings.accessTokenTtlSeconds }, "auth settings");
  const handlers = authHandlers({
    credentials: new CredentialStore(mongo.db),
    passwords,
    sessions: new SessionStore(redis.redis, settings.refreshTokenTtlSeconds, settings.sessionMaxLifetimeSeconds),
    keys,
    tokens,
    throttles: createThrottles(redis.redis, {
      maxFailures: settings.loginMaxFailures,
      failureWindowSeconds: settings.loginFailureWindowSeconds,
      maxAttemptsPerAddress: settings.loginMaxAttemptsPerAddress,
      addressWindowSeconds: settings.loginAddressWindowSeconds,
    }),
    resets: new PasswordResets(redis.redis),
    users,
    revocations,
    trustedProxies: trustedProxies(settings.trustedProxies),
    devMode: settings.devMode,
  });
  return startService({
    name: "auth",
    config,
    logger,
    services: [apiService(AuthServiceDefinition, handlers)],
    dependencies: [mongo.healthCheck, redis.healthCheck],
    // The JWKS comes from memory (SigningKeys reads the database once per
    // rotation epoch) and is public (no revocation check in Redis): every
    // service's key cache may refetch it while auth's datastores are down.
    dependencyNeeds: { "/auth.v1.AuthService/GetJwks": [] },
    // The auth service verifies its own tokens (Logout, sessions) with its own published keys.
    auth: {
      issuer: config.authIssuer,
      audience: config.authAudience,
      jwks: new JwksCache(() => keys.published(), 60_000, 0),
      revocations,
    },
    transport,
    closeDependencies: async () => {
      users.close();
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
}

if (require.main === module) runMain("auth", () => startAuth());
