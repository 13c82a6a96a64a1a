/**
 * MESH_SECURITY=sidecar, the path under Istio: the service listens in
 * plaintext and the local sidecar, which did the mTLS, names the caller in
 * x-forwarded-client-cert (XFCC). The header is believed only from a trusted
 * sidecar address (MESH_SIDECAR_PEERS), and the same per-RPC allow-lists as
 * in mtls mode apply (the users allow-list the mesh model renders).
 *
 * The sidecar is simulated: the test's plaintext client sets the header the
 * way Envoy does (By=<this service>;Hash=…;URI=<caller>), from 127.0.0.1.
 */
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { Status } from "nice-grpc";
import { uniqueTenant } from "../harness/clients";
import { testSpiffeId } from "../harness/mtls-certificates";
import {
  clientWith,
  failureOf,
  type MeshTestService,
  modelMeshPeers,
  peerRejections,
  type RecordedCall,
  recordingTenantService,
  startMeshTestService,
  TENANT_PATHS,
} from "../harness/mtls-services";
import { mintToken } from "../harness/tokens";

/** Envoy's XFCC element for a client certificate with `caller`'s SPIFFE id, as seen by the users sidecar. */
function xfccFor(caller: string): string {
  return `By=${testSpiffeId("users")};Hash=5c1f4e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b;Subject="";URI=${testSpiffeId(caller)}`;
}

let behindSidecar: MeshTestService;
/** The same service, but trusting only 127.0.0.6 (Istio's inbound source address) as its sidecar: the test client is not it. */
let sidecarElsewhere: MeshTestService;
let calls: RecordedCall[];
const opened: { close(): void }[] = [];

beforeAll(async () => {
  const recording = recordingTenantService();
  calls = recording.calls;
  const meshPeers = modelMeshPeers("users");
  // The test client (127.0.0.1) plays the sidecar; by default only Istio's 127.0.0.6 is trusted.
  behindSidecar = await startMeshTestService({
    name: "users",
    security: "sidecar",
    meshPeers,
    services: [recording.service],
    env: { MESH_SIDECAR_PEERS: "127.0.0.1,::1" },
  });
  sidecarElsewhere = await startMeshTestService({
    name: "users",
    security: "sidecar",
    meshPeers,
    services: [recording.service],
    env: { MESH_SIDECAR_PEERS: "127.0.0.6" },
  });
});

afterAll(async () => {
  for (const client of opened) client.close();
  await behindSidecar?.stop();
  await sidecarElsewhere?.stop();
});

function tenants(service: MeshTestService, metadata: Record<string, string>) {
  // No credentials: plaintext, as from the sidecar to its workload.
  const client = clientWith(TenantServiceDefinition, service.address, undefined, metadata);
  opened.push(client);
  return client.client;
}

function adminToken(tenant: string): string {
  return mintToken({ tenant, sub: `admin-of-${tenant}`, roles: ["admin"] });
}

test("the sidecar's header names the caller: the operator's tool with a user token gets through as that user", async () => {
  const tenant = uniqueTenant("sidecar-operator");
  const before = calls.length;
  const client = tenants(behindSidecar, { "x-forwarded-client-cert": xfccFor("operator"), authorization: `Bearer ${adminToken(tenant)}` });
  expect((await client.getTenant({ id: "me" })).tenant?.id).toBe(tenant);
  expect(calls.slice(before)).toEqual([{ method: "GetTenant", caller: expect.objectContaining({ kind: "user", tenantId: tenant, peer: "operator" }) }]);
});

test("a service named by the sidecar calls as itself where the topology allows it (auth → CreateTenant)", async () => {
  const tenant = uniqueTenant("sidecar-auth");
  const before = calls.length;
  const client = tenants(behindSidecar, { "x-forwarded-client-cert": xfccFor("auth"), "leadmesh-tenant": tenant });
  expect((await client.createTenant({ tenant: { id: tenant, displayName: "Via Sidecar" } })).tenant?.id).toBe(tenant);
  expect(calls.slice(before)).toEqual([
    { method: "CreateTenant", caller: expect.objectContaining({ kind: "service", actorId: "auth", tenantId: tenant, peer: "auth" }) },
  ]);
});

test("no header: UNAUTHENTICATED, logged and counted", async () => {
  const tenant = uniqueTenant("sidecar-absent");
  const client = tenants(behindSidecar, { authorization: `Bearer ${adminToken(tenant)}` });
  const before = {
    calls: calls.length,
    logs: behindSidecar.log.lines().length,
    counted: await peerRejections(behindSidecar.metricsPort, TENANT_PATHS.get, "no_identity"),
  };
  expect((await failureOf(client.getTenant({ id: "me" }))).code).toBe(Status.UNAUTHENTICATED);
  expect(calls.length).toBe(before.calls);
  expect(await peerRejections(behindSidecar.metricsPort, TENANT_PATHS.get, "no_identity")).toBe(before.counted + 1);
  const refusals = behindSidecar.log
    .lines()
    .slice(before.logs)
    .filter((line) => line.level === "warn" && line.rpc === TENANT_PATHS.get);
  expect(refusals).toHaveLength(1);
  expect(refusals[0]).toMatchObject({ reason: "no_identity" });
});

test("a client cannot name itself with leadmesh-peer instead of the sidecar's header", async () => {
  const tenant = uniqueTenant("sidecar-peer-header");
  const before = calls.length;
  const client = tenants(behindSidecar, { "leadmesh-peer": testSpiffeId("auth"), "leadmesh-tenant": tenant });
  expect((await failureOf(client.createTenant({ tenant: { id: tenant, displayName: "Forged" } }))).code).toBe(Status.UNAUTHENTICATED);
  expect(calls.length).toBe(before);
});

test("the header from an address that is not a trusted sidecar is a forgery: UNAUTHENTICATED, logged with where it came from", async () => {
  const tenant = uniqueTenant("sidecar-forged");
  const client = tenants(sidecarElsewhere, { "x-forwarded-client-cert": xfccFor("operator"), authorization: `Bearer ${adminToken(tenant)}` });
  const before = {
    calls: calls.length,
    logs: sidecarElsewhere.log.lines().length,
    counted: await peerRejections(sidecarElsewhere.metricsPort, TENANT_PATHS.get, "no_identity"),
  };
  expect((await failureOf(client.getTenant({ id: "me" }))).code).toBe(Status.UNAUTHENTICATED);
  expect(calls.length).toBe(before.calls);
  expect(await peerRejections(sidecarElsewhere.metricsPort, TENANT_PATHS.get, "no_identity")).toBe(before.counted + 1);
  const refusals = sidecarElsewhere.log
    .lines()
    .slice(before.logs)
    .filter((line) => line.level === "warn" && line.rpc === TENANT_PATHS.get);
  expect(refusals).toHaveLength(1);
  expect(refusals[0]).toMatchObject({ reason: "no_identity" });
  expect(JSON.stringify(refusals[0])).toContain("127.0.0.1");
});

describe("the same allow-lists as in mtls mode: an identity not allowed for the RPC is PERMISSION_DENIED, logged and counted", () => {
  const cases = [
    { name: "leads → CreateTenant", xfcc: xfccFor("leads"), denied: "leads" },
    { name: "the edge → CreateTenant (no REST route)", xfcc: xfccFor("ingress"), denied: "ingress" },
    // Envoy appends the element of the hop it terminated: the last one is the caller, not an earlier one.
    { name: "a chain whose last element is leads", xfcc: `${xfccFor("auth")},${xfccFor("leads")}`, denied: "leads" },
  ];

  test.each(cases)("$name", async ({ xfcc, denied }) => {
    const tenant = uniqueTenant("sidecar-denied");
    const client = tenants(behindSidecar, { "x-forwarded-client-cert": xfcc, "leadmesh-tenant": tenant });
    const before = {
      calls: calls.length,
      logs: behindSidecar.log.lines().length,
      counted: await peerRejections(behindSidecar.metricsPort, TENANT_PATHS.create, "not_allowed"),
    };
    expect((await failureOf(client.createTenant({ tenant: { id: tenant, displayName: "Denied" } }))).code).toBe(Status.PERMISSION_DENIED);
    expect(calls.length).toBe(before.calls);
    expect(await peerRejections(behindSidecar.metricsPort, TENANT_PATHS.create, "not_allowed")).toBe(before.counted + 1);
    const refusals = behindSidecar.log
      .lines()
      .slice(before.logs)
      .filter((line) => line.level === "warn" && line.rpc === TENANT_PATHS.create);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ peer: testSpiffeId(denied), reason: "not_allowed" });
  });
});
