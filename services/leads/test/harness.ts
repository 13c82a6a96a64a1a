import { meshInfo } from "../../../test/harness/mesh-info";
import { leadClient } from "../../../test/harness/clients";
import { testJwks, TEST_AUDIENCE, TEST_ISSUER } from "../../../test/harness/tokens";
import type { RunningService } from "@leadmesh/platform";
import { startLeads } from "../src/main";

/**
 * Runs the leads service in-process against the test mesh's real FerretDB
 * and Redis, with a database of its own, so tests can inspect it directly.
 */
export async function startLeadsForTest(): Promise<{ service: RunningService; address: string; database: string }> {
  process.env.LOG_LEVEL ??= "silent";
  const info = meshInfo();
  const database = `leads_it_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const service = await startLeads({
    BIND_HOST: "127.0.0.1",
    GRPC_PORT: "0",
    HEALTH_PORT: "0",
    METRICS_PORT: "0",
    MONGO_URL: info.mongoUrl,
    MONGO_DATABASE: database,
    REDIS_URL: info.redisUrl,
    SHUTDOWN_GRACE_MS: "2000",
    MESH_CALLERS: "buyers",
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
  }, testJwks);
  for (let i = 0; i < 100 && service.health.status !== "SERVING"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (service.health.status !== "SERVING") throw new Error(`leads did not become SERVING: ${[...service.health.failures].join("; ")}`);
  return { service, address: `127.0.0.1:${service.grpcPort}`, database };
}

export { leadClient };
