import { DepartmentServiceDefinition } from "@leadmesh/contracts/users/v1/departments";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { UserServiceDefinition } from "@leadmesh/contracts/users/v1/users";
import {
  apiService,
  connectMongo,
  connectRedis,
  createLogger,
  createMeshTransport,
  type JwksFetcher,
  loadServiceConfig,
  meshAuth,
  Revocations,
  runMain,
  startService,
} from "@leadmesh/platform";
import { departmentHandlers } from "./handlers/departments";
import { References } from "./handlers/references";
import { tenantHandlers } from "./handlers/tenants";
import { userHandlers } from "./handlers/users";
import { DepartmentStore, ensureUserIndexes, TenantStore, UserStore } from "./store";

/** `fetchKeys` replaces the JWKS lookup at the auth service (tests that sign their own tokens). */
export async function startUsers(env: NodeJS.ProcessEnv = process.env, fetchKeys?: JwksFetcher) {
  const config = loadServiceConfig("users", env, ["mongodb", "redis"]);
  const logger = createLogger("users");
  const transport = createMeshTransport(config, "users", logger);
  const mongo = connectMongo(config.mongoUrl, config.mongoDatabase, "users", ensureUserIndexes);
  const redis = connectRedis(config.redisUrl, logger);
  const users = new UserStore(mongo.db);
  const departments = new DepartmentStore(mongo.db);
  const references = new References(users, departments);
  const auth = meshAuth(config, redis.redis, transport, fetchKeys);
  return startService({
    name: "users",
    config,
    logger,
    services: [
      apiService(UserServiceDefinition, userHandlers(users, references, new Revocations(redis.redis))),
      apiService(TenantServiceDefinition, tenantHandlers(new TenantStore(mongo.db))),
      apiService(DepartmentServiceDefinition, departmentHandlers(departments, users, references)),
    ],
    dependencies: [mongo.healthCheck, redis.healthCheck],
    auth,
    transport,
    closeDependencies: async () => {
      auth.close();
      await Promise.all([mongo.close(), redis.close()]);
    },
  });
}

if (require.main === module) runMain("users", () => startUsers());
