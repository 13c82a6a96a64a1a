/**
 * Starts one real local mesh (FerretDB, Redis, every implemented service,
 * Envoy) on random loopback ports for the whole test run, and publishes its
 * addresses to the test workers through a JSON file named in the environment.
 * Every hop is mTLS, as under `npm start`: the mesh's certificates (CA, one
 * per identity) are in `<runDir>/tls`, and tests connect as `operator` or as
 * a service with the certificates there (clients.ts).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMesh } from "../../scripts/mesh/local-mesh";
import { MESH_INFO_ENV, type MeshInfo } from "./mesh-info";

export default async function globalSetup(): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), "leadmesh-test-"));
  const mesh = await startMesh({
    ports: "random",
    runDir,
    // One process per service keeps the shared run light; replicas are covered by test/e2e/supervision.test.ts.
    replicas: 1,
    // Tight sign-in throttling so its test runs in seconds; the per-address
    // limit is lifted because every test signs in from 127.0.0.1.
    serviceEnv: { LOGIN_MAX_FAILURES: "3", LOGIN_FAILURE_WINDOW_SECONDS: "2", LOGIN_MAX_ATTEMPTS_PER_ADDRESS: "100000" },
  });
  const info: MeshInfo = {
    runDir,
    mongoUrl: mesh.mongoUrl,
    redisUrl: mesh.redisUrl,
    ingressUrl: mesh.ingressUrl!,
    adminUrl: mesh.adminUrl!,
    envoyConfigPath: mesh.envoyConfigPath!,
    services: mesh.services,
    certDir: mesh.tls.dir,
  };
  const infoPath = join(runDir, "mesh.json");
  writeFileSync(infoPath, JSON.stringify(info, null, 2));
  process.env[MESH_INFO_ENV] = infoPath;
  (globalThis as { __leadmeshMesh?: typeof mesh }).__leadmeshMesh = mesh;
}
