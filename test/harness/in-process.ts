import type { JwksFetcher, RunningService } from "@leadmesh/platform";
import { meshInfo } from "./mesh-info";
import { testJwks, TEST_AUDIENCE, TEST_ISSUER } from "./tokens";

export type ServiceStarter = (env: NodeJS.ProcessEnv, fetchKeys?: JwksFetcher) => Promise<RunningService>;

/**
 * Runs a service in-process against the test mesh's real FerretDB and Redis,
 * with a database of its own and tokens signed by the test key (testJwks),
 * so tests can inspect it directly. `meshCallers` lists the services whose
 * service tokens it accepts.
 */
export async function startInProcess(
  name: string,
  start: ServiceStarter,
  meshCallers: string[] = [],
): Promise<{ service: RunningService; address: string; database: string }> {
  process.env.LOG_LEVEL ??= "silent";
  const info = meshInfo();
  const database = `${name}_it_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const service = await start(
    {
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      HEALTH_PORT: "0",
      METRICS_PORT: "0",
      MONGO_URL: info.mongoUrl,
      MONGO_DATABASE: database,
      REDIS_URL: info.redisUrl,
      SHUTDOWN_GRACE_MS: "2000",
      MESH_CALLERS: meshCallers.join(","),
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_AUDIENCE: TEST_AUDIENCE,
    },
    testJwks,
  );
  for (let i = 0; i < 100 && service.health.status !== "SERVING"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (service.health.status !== "SERVING") throw new Error(`${name} did not become SERVING: ${[...service.health.failures].join("; ")}`);
  return { service, address: `127.0.0.1:${service.grpcPort}`, database };
}
