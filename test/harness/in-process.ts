import type { JwksFetcher, RunningService } from "@leadmesh/platform";
import { loadMeshModel } from "../../scripts/mesh/model";
import { serviceEnvironment } from "../../scripts/mesh/model-environment";
import { meshCertificates, meshInfo } from "./mesh-info";
import { testJwks } from "./tokens";

export type ServiceStarter = (env: NodeJS.ProcessEnv, fetchKeys?: JwksFetcher) => Promise<RunningService>;

/** Where a peer would be; in-process services never call out (their peers are not started here). */
const UNSTARTED_PEER = "127.0.0.1:1";

/** TLS files of `identity` in the test mesh's certificate directory, as serviceEnvironment's `tls` takes them. */
export function serviceTls(identity: string): { certFile: string; keyFile: string; caFile: string } {
  const certificates = meshCertificates();
  return { certFile: certificates.certFile(identity), keyFile: certificates.keyFile(identity), caFile: certificates.caFile };
}

/**
 * Runs a service in-process against the test mesh's real FerretDB and Redis,
 * with a database of its own and tokens signed by the test key (testJwks),
 * so tests can inspect it directly. Its environment is the one the mesh model
 * gives it (allowed peers, identity, datastores), on ephemeral ports, and it
 * serves mTLS with its own certificate from the test mesh's certificate
 * directory, so tests reach it as the operator or as a service (clients.ts).
 */
export async function startInProcess(name: string, start: ServiceStarter): Promise<{ service: RunningService; address: string; database: string }> {
  process.env.LOG_LEVEL ??= "silent";
  const info = meshInfo();
  const model = loadMeshModel();
  const database = `${name}_it_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const environment = serviceEnvironment(model, name, {
    bindHost: "127.0.0.1",
    ports: { grpc: 0, health: 0, metrics: 0 },
    mongoUrl: info.mongoUrl,
    redisUrl: info.redisUrl,
    peers: Object.fromEntries(model.services.map((service) => [service.name, UNSTARTED_PEER])),
    tls: serviceTls(name),
  });
  const service = await start({ ...environment, MONGO_DATABASE: database, SHUTDOWN_GRACE_MS: "2000" }, testJwks);
  for (let i = 0; i < 100 && service.health.status !== "SERVING"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (service.health.status !== "SERVING") throw new Error(`${name} did not become SERVING: ${[...service.health.failures].join("; ")}`);
  return { service, address: `127.0.0.1:${service.grpcPort}`, database };
}
