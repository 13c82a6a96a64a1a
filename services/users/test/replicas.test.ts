/**
 * In-mesh calls reach every replica: a caller given the replicas' target
 * (as the environment contract renders it) through the platform's one client
 * factory spreads its calls over all of them, and once a replica is gone (its
 * port closed) every call still succeeds on the others, including calls
 * that are never retried (CreateTenant is not idempotent), so it is the
 * balancer that skips the dead replica, not a retry.
 */

import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { createServiceClient } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { Metadata } from "nice-grpc";
import { replicasTarget } from "../../../scripts/mesh/model-environment";
import { freePort } from "../../../scripts/mesh/processes";
import { uniqueTenant } from "../../../test/harness/clients";
import { meshInfo } from "../../../test/harness/mesh-info";
import { serviceToken, startUsersForTest } from "./harness";

type Replica = Awaited<ReturnType<typeof startUsersForTest>>;

let mongo: MongoClient;
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
});

function tenantClient(target: string) {
  const opened = createServiceClient(TenantServiceDefinition, target, { defaultDeadlineMs: 3000 });
  clients.push(opened);
  return async (): Promise<string> => {
    const tenant = uniqueTenant("replicas");
    const metadata = Metadata({ authorization: `Bearer ${serviceToken(tenant)}` });
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
