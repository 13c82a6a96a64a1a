/**
 * Redis holds authoritative state (revocations, sessions, throttling windows,
 * idempotency keys, buyers' counters), so a full restart of the local mesh
 * must not forget it. A private mesh signs two sessions in, ends one, is
 * stopped completely (ingress, services, datastores) and started again on
 * the same run directory, as a second `npm start` on `.run/local` would:
 * the ended session's access and refresh tokens are still refused, the other
 * session's still work.
 *
 * Without persistence (`--save "" --appendonly no`) the restarted Redis was
 * empty: the logged-out access token worked again until it expired.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningMesh, startMesh } from "../../scripts/mesh/local-mesh";
import { PASSWORD, type RegisteredTenant, registerTenant, rest } from "../harness/identity";

const runDir = mkdtempSync(join(tmpdir(), "leadmesh-durability-"));
let mesh: RunningMesh | undefined;

afterAll(async () => {
  await mesh?.stop();
  if (!process.env.KEEP_TEST_RUN_DIR) rmSync(runDir, { recursive: true, force: true });
}, 60_000);

const me = (token: string) => rest("GET", "/api/v1/users/me", { baseUrl: mesh!.ingressUrl, token });
const refresh = (refreshToken: string) => rest("POST", "/api/v1/auth:refresh", { baseUrl: mesh!.ingressUrl, body: { refreshToken } });

it("a logged-out session stays logged out after the whole mesh restarts on the same run directory", async () => {
  mesh = await startMesh({ ports: "random", runDir });
  const admin: RegisteredTenant = await registerTenant("durable", mesh.ingressUrl);
  const login = await rest("POST", "/api/v1/auth:login", {
    baseUrl: mesh.ingressUrl,
    body: { tenantId: admin.tenantId, email: admin.email, password: PASSWORD },
  });
  expect(login.status).toBe(200);
  const kept = login.json.tokens as { accessToken: string; refreshToken: string };

  const logout = await rest("POST", "/api/v1/auth:logout", { baseUrl: mesh.ingressUrl, token: admin.accessToken, body: {} });
  expect(logout.status).toBe(200);
  expect((await me(admin.accessToken)).status).toBe(401);
  expect((await me(kept.accessToken)).status).toBe(200);

  await mesh.stop();
  mesh = undefined;
  mesh = await startMesh({ ports: "random", runDir });

  // The kept session first: proves the restarted mesh accepts this run's tokens at all (signing keys live in FerretDB).
  expect((await me(kept.accessToken)).status).toBe(200);
  expect((await me(admin.accessToken)).status).toBe(401);
  expect((await refresh(admin.refreshToken)).status).toBe(401);
  // The kept session's refresh family survived too (sessions are Redis hashes).
  expect((await refresh(kept.refreshToken)).status).toBe(200);
}, 240_000);
