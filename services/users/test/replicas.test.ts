/**
 * In-mesh calls reach every replica: a caller given the replicas' target
 * (as the environment contract renders it) through the platform's one client
 * factory spreads its calls over all of them, and once a replica is gone (its
 * port closed) every call still succeeds on the others, including calls
 * that are never retried (CreateTenant is not idempotent), so it is the
 * balancer that skips the dead replica, not a retry. A replica that listens
 * but refuses every call (NOT_SERVING) still gets its share: idempotent RPCs
 * are retried on another replica, the others fail.
 */

import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { UserServiceDefinition } from "@leadmesh/contracts/users/v1/users";
import { createServiceClient, TENANT_HEADER } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { Metadata } from "nice-grpc";
import { loadMeshModel } from "../../../scripts/mesh/model";
import { replicasTarget, serviceEnvironment } from "../../../scripts/mesh/model-environment";
import { freePort } from "../../../scripts/mesh/processes";
import { uniqueTenant } from "../../../test/harness/clients";
import { serviceTls } from "../../../test/harness/in-process";
import { meshInfo } from "../../../test/harness/mesh-info";
import { testJwks } from "../../../test/harness/tokens";
import { meshTransportAs } from "../../../test/harness/transport";
import { startUsers } from "../src/main";
import { startUsersForTest } from "./harness";

type Replica = Awaited<ReturnType<typeof startUsersForTest>>;

let mongo: MongoClient;
// The caller is the auth service, as in the mesh: its certificate, the tenant it acts for in metadata.
const asAuth = meshTransportAs("auth");
const replicas: Replica[] = [];
const clients: { close(): void }[] = [];

beforeAll(async () => {
  mongo = new MongoClient(meshInfo().mongoUrl);
  // Each replica has a database of its own here, so where a tenant was stored tells which replica took the call.
  replicas.push(await startUsersForTest(), await startUsersForTest());
});
afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(replicas.map((replica) => replica.service.shutdown()));
  await mongo.close();
  asAuth.close();
});

function tenantClient(target: string) {
  const opened = createServiceClient(TenantServiceDefinition, target, { transport: asAuth, peer: "users", defaultDeadlineMs: 3000 });
  clients.push(opened);
  return async (): Promise<string> => {
    const tenant = uniqueTenant("replicas");
    const metadata = Metadata({ [TENANT_HEADER]: tenant });
    await opened.client.createTenant({ tenant: { id: tenant, displayName: "Replicas Inc" } }, { metadata });
    return tenant;
  };
}

/** Which replica stored each tenant (index into `replicas`; -1 for none). */
async function whereStored(tenants: string[]): Promise<number[]> {
  const stored = await Promise.all(
    replicas.map(async (replica) => {
      const documents = await mongo
        .db(replica.database)
        .collection("tenants")
        .find({ _id: { $in: tenants } } as never)
        .toArray();
      return new Set(documents.map((document) => String(document._id)));
    }),
  );
  return tenants.map((tenant) => stored.findIndex((ids) => ids.has(tenant)));
}

const count = (where: number[], replica: number) => where.filter((index) => index === replica).length;

describe("a peer target that lists every replica", () => {
  it("spreads calls over both replicas, and after one stops every call succeeds on the other", async () => {
    const target = replicasTarget(replicas.map((replica) => replica.address));
    expect(target).toBe(`ipv4:${replicas[0].address},${replicas[1].address}`);
    const createTenant = tenantClient(target);
    await createTenant(); // connects to both

    const whileBothUp: string[] = [];
    for (let i = 0; i < 20; i++) whileBothUp.push(await createTenant());
    const before = await whereStored(whileBothUp);
    expect(before).not.toContain(-1);
    // Round-robin over two READY replicas alternates; allow for a reconnect on a busy machine.
    expect(count(before, 0)).toBeGreaterThanOrEqual(5);
    expect(count(before, 1)).toBeGreaterThanOrEqual(5);

    await replicas[1].service.shutdown(); // its port closes
    const sequential: string[] = [];
    for (let i = 0; i < 10; i++) sequential.push(await createTenant());
    const concurrent = await Promise.allSettled(Array.from({ length: 20 }, () => createTenant()));
    expect(concurrent.filter((result) => result.status === "rejected")).toEqual([]);
    const after = await whereStored([...sequential, ...concurrent.map((result) => (result as PromiseFulfilledResult<string>).value)]);
    expect(count(after, 0)).toBe(30);
  });

  it("does not fail a call when a listed replica's port is closed from the start", async () => {
    const closed = `127.0.0.1:${await freePort()}`;
    const createTenant = tenantClient(replicasTarget([closed, replicas[0].address]));
    const tenants: string[] = [];
    for (let i = 0; i < 10; i++) tenants.push(await createTenant());
    expect(count(await whereStored(tenants), 0)).toBe(10);
  });
});

describe("a listed replica that listens but cannot serve (its database is unreachable)", () => {
  it("takes its share of calls: retried elsewhere for idempotent RPCs, refused for the others", async () => {
    // users, but its MONGO_URL points at a closed port: it answers every call with UNAVAILABLE (DEPENDENCY_UNAVAILABLE) at once.
    const environment = serviceEnvironment(loadMeshModel(), "users", {
      bindHost: "127.0.0.1",
      ports: { grpc: 0, health: 0, metrics: 0 },
      mongoUrl: `mongodb://127.0.0.1:${await freePort()}/?serverSelectionTimeoutMS=300&connectTimeoutMS=300`,
      redisUrl: meshInfo().redisUrl,
      peers: { auth: "127.0.0.1:1" },
      tls: serviceTls("users"),
    });
    const broken = await startUsers({ ...environment, SHUTDOWN_GRACE_MS: "1000" }, testJwks);
    try {
      const target = replicasTarget([replicas[0].address, `127.0.0.1:${broken.grpcPort}`]);
      const tenant = await tenantClient(replicas[0].address)();
      const opened = createServiceClient(UserServiceDefinition, target, { transport: asAuth, peer: "users", defaultDeadlineMs: 3000 });
      clients.push(opened);
      const metadata = Metadata({ [TENANT_HEADER]: tenant });
      const settle = async <T>(call: () => Promise<T>) => {
        try {
          return { value: await call() };
        } catch (error) {
          return { error: String(error) };
        }
      };
      // Round-robin alternates once both connections are READY; until then it has one replica to pick.
      const warmUp = async (call: () => Promise<unknown>) => {
        await settle(call);
        await new Promise((resolve) => setTimeout(resolve, 300));
      };
      // ListUsers (one of the RPCs the topology gives auth) is NO_SIDE_EFFECTS: the client retries its UNAVAILABLE on the next replica, so every call succeeds.
      const listUsers = () => opened.client.listUsers({ pageSize: 1 }, { metadata });
      await warmUp(listUsers);
      const reads: { value?: unknown; error?: string }[] = [];
      for (let i = 0; i < 10; i++) reads.push(await settle(listUsers));
      expect(reads.filter((read) => read.error)).toEqual([]);
      // CreateTenant may not be repeated: the calls the broken replica takes fail (it ran none of them).
      const createTenant = tenantClient(target);
      await warmUp(createTenant);
      const creates: { value?: string; error?: string }[] = [];
      for (let i = 0; i < 20; i++) creates.push(await settle(createTenant));
      const refused = creates.filter((create) => create.error);
      expect(refused.length).toBeGreaterThanOrEqual(5); // about half
      for (const create of refused) expect(create.error).toMatch(/UNAVAILABLE/);
    } finally {
      await broken.shutdown();
    }
  });
});
