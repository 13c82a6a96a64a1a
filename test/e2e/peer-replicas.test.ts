/**
 * Service-to-service calls reach every replica, on a private mesh whose
 * users service runs two replicas: registration (auth → users: CreateTenant,
 * ListUsers, CreateUser) lands on both while both are up, keeps succeeding
 * while one is killed (`kill -9`, then restarted by the supervisor) and
 * after one is stopped for good. The launcher gives auth USERS_ADDRESS as one
 * target listing both replicas (scripts/mesh/model-environment.ts), and the
 * platform's client balances round-robin over the replicas that accept
 * connections.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningMesh, startMesh } from "../../scripts/mesh/local-mesh";
import type { SupervisorEvent } from "../../scripts/mesh/processes";
import { PASSWORD, registerTenant, rest } from "../harness/identity";

let mesh: RunningMesh;
const events: SupervisorEvent[] = [];

beforeAll(async () => {
  mesh = await startMesh({
    ports: "random",
    runDir: mkdtempSync(join(tmpdir(), "leadmesh-peer-replicas-")),
    replicas: { users: 2 },
    // Every registration and login here comes from one address.
    serviceEnv: { LOGIN_MAX_ATTEMPTS_PER_ADDRESS: "100000" },
    onSupervisorEvent: (event) => events.push(event),
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
  if (mesh && !process.env.KEEP_TEST_RUN_DIR) rmSync(mesh.runDir, { recursive: true, force: true });
});

/** CreateTenant calls a users replica has answered OK, from its own /metrics. */
async function createTenantsServed(replica: number): Promise<number> {
  const { metrics } = mesh.replicas.users[replica].ports;
  const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("grpc_server_handled_total{") && line.includes('"CreateTenant"') && line.includes('"OK"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

async function registerAll(count: number, label: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const registered = await registerTenant(label, mesh.ingressUrl);
    const login = await rest("POST", "/api/v1/auth:login", {
      baseUrl: mesh.ingressUrl,
      body: { tenantId: registered.tenantId, email: registered.email, password: PASSWORD },
    });
    expect([login.status, login.text]).toEqual([200, expect.any(String)]);
  }
}

describe("auth → users with two users replicas", () => {
  it("spreads registrations over both replicas and keeps registering while one is killed or stopped", async () => {
    await registerAll(6, "peers-both");
    const served = [await createTenantsServed(0), await createTenantsServed(1)];
    expect(served[0] + served[1]).toBe(6);
    expect(served[0]).toBeGreaterThanOrEqual(1);
    expect(served[1]).toBeGreaterThanOrEqual(1);

    // kill -9: once it is dead (the supervisor saw it exit and restarts it), every registration must succeed.
    const victim = mesh.replicas.users[1].process;
    process.kill(victim.pid as number, "SIGKILL");
    for (let waited = 0; !events.some((event) => event.kind === "restarting" && event.process === "users-2") && waited < 5000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(events.filter((event) => event.kind === "restarting").map((event) => event.process)).toEqual(["users-2"]);
    await registerAll(4, "peers-killed");

    // A graceful stop is not restarted: users-2 stays down.
    await victim.stop();
    const servedBefore = await createTenantsServed(0);
    await registerAll(6, "peers-stopped");
    expect(await createTenantsServed(0)).toBe(servedBefore + 6);
  }, 120_000);
});
