/**
 * mTLS on a service's main port, over real TLS: who is let in, who is
 * refused and how (status code, a warn log line naming the caller and the
 * RPC, leadmesh_peer_rejections_total), and a client that refuses a server
 * presenting another SPIFFE id than the one it meant to reach.
 *
 * The service is users.v1.TenantService in the real kernel with the allow-list
 * the mesh model renders for users (mesh/topology.yaml), its own CA and
 * certificates, and handlers that record the verified caller: a refused call
 * must never reach them.
 */
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { Status } from "nice-grpc";
import { uniqueTenant } from "../harness/clients";
import { createTestCertificates, foreignKeyPair, type KeyPair, type TestCertificates, testSpiffeId } from "../harness/mtls-certificates";
import {
  clientTransport,
  clientWith,
  failureOf,
  handmadeTlsCredentials,
  type MeshTestService,
  modelMeshPeers,
  peerRejections,
  type RecordedCall,
  recordingTenantService,
  startMeshTestService,
  TENANT_PATHS,
} from "../harness/mtls-services";
import { mintToken } from "../harness/tokens";

const HOUR_MS = 3_600_000;

let certificates: TestCertificates;
let users: MeshTestService;
let calls: RecordedCall[];
const opened: { close(): void }[] = [];

beforeAll(async () => {
  certificates = await createTestCertificates(["users", "auth", "leads", "ingress", "operator"]);
  const recording = recordingTenantService();
  calls = recording.calls;
  users = await startMeshTestService({ name: "users", services: [recording.service], meshPeers: modelMeshPeers("users"), certificates });
});

afterAll(async () => {
  for (const client of opened) client.close();
  await users?.stop();
  certificates?.remove();
});

/** A TenantService client presenting `keyPair` (or no certificate) and trusting the mesh CA. */
function tenantsAs(keyPair: KeyPair | undefined, metadata: Record<string, string> = {}) {
  const tenants = clientWith(TenantServiceDefinition, users.address, handmadeTlsCredentials(certificates.caPem(), keyPair), metadata);
  opened.push(tenants);
  return tenants.client;
}

function adminToken(tenant: string): string {
  return mintToken({ tenant, sub: `admin-of-${tenant}`, roles: ["admin"] });
}

describe("allowed callers get through, with the verified caller in the handler", () => {
  test("operator certificate with a user's token: the user's call, checked against the user's access rule", async () => {
    const tenant = uniqueTenant("mtls-operator");
    const before = calls.length;
    const response = await tenantsAs(certificates.keyPair("operator"), { authorization: `Bearer ${adminToken(tenant)}` }).getTenant({ id: "me" });
    expect(response.tenant?.id).toBe(tenant);
    expect(calls.slice(before)).toEqual([
      { method: "GetTenant", caller: expect.objectContaining({ kind: "user", tenantId: tenant, actorId: `admin-of-${tenant}`, peer: "operator" }) },
    ]);
  });

  test("auth's certificate with leadmesh-tenant: a service call to an RPC the topology gives auth", async () => {
    const tenant = uniqueTenant("mtls-auth");
    const before = calls.length;
    const response = await tenantsAs(certificates.keyPair("auth"), { "leadmesh-tenant": tenant }).createTenant({
      tenant: { id: tenant, displayName: "Auth Made" },
    });
    expect(response.tenant?.id).toBe(tenant);
    expect(calls.slice(before)).toEqual([
      { method: "CreateTenant", caller: expect.objectContaining({ kind: "service", actorId: "auth", tenantId: tenant, peer: "auth" }) },
    ]);
  });
});

describe("callers without a verified certificate are UNAUTHENTICATED, logged and counted", () => {
  const cases: { name: string; keyPair: () => Promise<KeyPair | undefined>; claims?: string }[] = [
    { name: "no client certificate", keyPair: async () => undefined },
    { name: "a certificate from another CA", keyPair: () => foreignKeyPair("operator"), claims: testSpiffeId("operator") },
    {
      name: "an expired certificate from the mesh CA",
      keyPair: () => certificates.issue("operator", { notBefore: new Date(Date.now() - 2 * HOUR_MS), notAfter: new Date(Date.now() - HOUR_MS) }),
      claims: testSpiffeId("operator"),
    },
  ];

  test.each(cases)("$name", async ({ keyPair, claims }) => {
    const tenant = uniqueTenant("mtls-refused");
    // A valid user token: the certificate alone must be the reason.
    const client = tenantsAs(await keyPair(), { authorization: `Bearer ${adminToken(tenant)}` });
    const callsBefore = calls.length;
    const logsBefore = users.log.lines().length;
    const countedBefore = await peerRejections(users.metricsPort, TENANT_PATHS.get, "no_identity");

    const failure = await failureOf(client.getTenant({ id: "me" }));

    expect(failure.code).toBe(Status.UNAUTHENTICATED);
    expect(calls.length).toBe(callsBefore);
    expect(await peerRejections(users.metricsPort, TENANT_PATHS.get, "no_identity")).toBe(countedBefore + 1);
    const refusals = users.log
      .lines()
      .slice(logsBefore)
      .filter((line) => line.level === "warn" && line.rpc === TENANT_PATHS.get);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ peer: "unknown", reason: "no_identity" });
    // Who it claimed to be, though unverified, is what an operator looks for in the log: a field of its own.
    if (claims) expect(refusals[0].claimed).toBe(claims);
    else expect(refusals[0]).not.toHaveProperty("claimed");
  });
});

describe("a verified identity not on the RPC's allow-list is PERMISSION_DENIED, logged and counted", () => {
  const cases = [
    { name: "leads calling users' CreateTenant (leads calls no users RPC)", identity: "leads" },
    { name: "the edge (ingress) calling CreateTenant, which no REST route exposes", identity: "ingress" },
  ];

  test.each(cases)("$name", async ({ identity }) => {
    const tenant = uniqueTenant("mtls-denied");
    const client = tenantsAs(certificates.keyPair(identity), { "leadmesh-tenant": tenant });
    const callsBefore = calls.length;
    const logsBefore = users.log.lines().length;
    const countedBefore = await peerRejections(users.metricsPort, TENANT_PATHS.create, "not_allowed");

    const failure = await failureOf(client.createTenant({ tenant: { id: tenant, displayName: "Not Allowed" } }));

    expect(failure.code).toBe(Status.PERMISSION_DENIED);
    expect(calls.length).toBe(callsBefore);
    expect(await peerRejections(users.metricsPort, TENANT_PATHS.create, "not_allowed")).toBe(countedBefore + 1);
    const refusals = users.log
      .lines()
      .slice(logsBefore)
      .filter((line) => line.level === "warn" && line.rpc === TENANT_PATHS.create);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ peer: testSpiffeId(identity), reason: "not_allowed" });
  });

  test("a client cannot name itself: leadmesh-peer sent by an operator is not believed", async () => {
    const tenant = uniqueTenant("mtls-forged-peer");
    const client = tenantsAs(certificates.keyPair("operator"), { "leadmesh-peer": testSpiffeId("auth"), "leadmesh-tenant": tenant });
    const callsBefore = calls.length;
    // The operator may call CreateTenant, but only for a user (with a token): as itself it is nobody's service.
    const failure = await failureOf(client.createTenant({ tenant: { id: tenant, displayName: "Forged" } }));
    expect([Status.UNAUTHENTICATED, Status.PERMISSION_DENIED]).toContain(failure.code);
    expect(calls.length).toBe(callsBefore);
  });
});

describe("peers refused by the auth middleware, after the allow-list, are logged and counted like the allow-list's refusals", () => {
  /** users with an allow-list that lets auth and the operator and the edge reach every TenantService RPC: the auth middleware must be what refuses. */
  let permissive: MeshTestService;
  let permissiveCalls: RecordedCall[];

  beforeAll(async () => {
    const recording = recordingTenantService();
    permissiveCalls = recording.calls;
    const every = Object.values(TENANT_PATHS);
    permissive = await startMeshTestService({
      name: "users",
      services: [recording.service],
      meshPeers: { auth: every, operator: every, ingress: every },
      certificates,
    });
  });

  afterAll(async () => {
    await permissive?.stop();
  });

  function permissiveAs(identity: string, metadata: Record<string, string>) {
    const tenants = clientWith(
      TenantServiceDefinition,
      permissive.address,
      handmadeTlsCredentials(certificates.caPem(), certificates.keyPair(identity)),
      metadata,
    );
    opened.push(tenants);
    return tenants.client;
  }

  const tenant = uniqueTenant("mtls-after-peer");
  interface RefusedCase {
    name: string;
    identity: string;
    metadata: Record<string, string>;
    rpc: string;
    code: Status;
    reason?: string;
  }
  const cases: RefusedCase[] = [
    {
      name: "the operator without a user's token",
      identity: "operator",
      metadata: { "leadmesh-tenant": tenant },
      rpc: TENANT_PATHS.get,
      code: Status.UNAUTHENTICATED,
      reason: "no_token",
    },
    {
      name: "a service token (a correctly signed JWT with the retired role service)",
      identity: "auth",
      metadata: { authorization: `Bearer ${mintToken({ tenant, sub: "auth", roles: ["service"] })}` },
      rpc: TENANT_PATHS.get,
      code: Status.UNAUTHENTICATED,
      reason: "service_token",
    },
    {
      name: "a service on an RPC whose access rule admits no services (UpdateTenant)",
      identity: "auth",
      metadata: { "leadmesh-tenant": tenant },
      rpc: TENANT_PATHS.update,
      code: Status.PERMISSION_DENIED,
      reason: "service_not_allowed_by_rule",
    },
    { name: "a service naming no tenant", identity: "auth", metadata: {}, rpc: TENANT_PATHS.create, code: Status.PERMISSION_DENIED, reason: "no_tenant" },
    {
      name: "a service naming a malformed tenant",
      identity: "auth",
      metadata: { "leadmesh-tenant": "Not A Tenant!" },
      rpc: TENANT_PATHS.create,
      code: Status.INVALID_ARGUMENT,
      reason: "malformed_tenant",
    },
  ];

  async function call(identity: string, metadata: Record<string, string>, rpc: string) {
    const client = permissiveAs(identity, metadata);
    if (rpc === TENANT_PATHS.get) return failureOf(client.getTenant({ id: "me" }));
    if (rpc === TENANT_PATHS.update) return failureOf(client.updateTenant({ tenant: { id: tenant, displayName: "Refused" } }));
    return failureOf(client.createTenant({ tenant: { id: tenant, displayName: "Refused" } }));
  }

  test.each(cases)(
    "$name: refused, one warn line with the peer's SPIFFE id, the RPC and the reason, counted",
    async ({ identity, metadata, rpc, code, reason }) => {
      const callsBefore = permissiveCalls.length;
      const logsBefore = permissive.log.lines().length;
      const countedBefore = await peerRejections(permissive.metricsPort, rpc, reason);

      const failure = await call(identity, metadata, rpc);

      expect(failure.code).toBe(code);
      expect(permissiveCalls.length).toBe(callsBefore);
      expect(await peerRejections(permissive.metricsPort, rpc, reason)).toBe(countedBefore + 1);
      const refusals = permissive.log
        .lines()
        .slice(logsBefore)
        .filter((line) => line.level === "warn");
      expect(refusals).toEqual([expect.objectContaining({ msg: "mesh peer refused", peer: testSpiffeId(identity), rpc, reason })]);
    },
  );

  const ordinary: RefusedCase[] = [
    {
      name: "a user whose roles the rule does not admit (an agent updating the tenant)",
      identity: "operator",
      metadata: { authorization: `Bearer ${mintToken({ tenant, sub: "agent-1", roles: ["agent"] })}` },
      rpc: TENANT_PATHS.update,
      code: Status.PERMISSION_DENIED,
    },
    {
      name: "an expired user token",
      identity: "operator",
      metadata: { authorization: `Bearer ${mintToken({ tenant, sub: "admin-1", roles: ["admin"], ttlSeconds: -60 })}` },
      rpc: TENANT_PATHS.get,
      code: Status.UNAUTHENTICATED,
    },
    { name: "a browser's call without a token, through the edge", identity: "ingress", metadata: {}, rpc: TENANT_PATHS.get, code: Status.UNAUTHENTICATED },
  ];

  test.each(ordinary)("$name: the user's ordinary 401/403, neither logged at warn nor counted", async ({ identity, metadata, rpc, code }) => {
    const logsBefore = permissive.log.lines().length;
    const countedBefore = await peerRejections(permissive.metricsPort, rpc);

    const failure = await call(identity, metadata, rpc);

    expect(failure.code).toBe(code);
    expect(await peerRejections(permissive.metricsPort, rpc)).toBe(countedBefore);
    expect(
      permissive.log
        .lines()
        .slice(logsBefore)
        .filter((line) => line.level === "warn"),
    ).toEqual([]);
  });
});

describe("clients check the server's SPIFFE id, not only its CA", () => {
  test("a client that means to reach leads refuses users' certificate: UNAVAILABLE, and no handler runs", async () => {
    const operator = clientTransport("operator", certificates);
    const tenant = uniqueTenant("mtls-wrong-server");
    const token = { authorization: `Bearer ${adminToken(tenant)}` };
    const wrong = clientWith(TenantServiceDefinition, users.address, operator.channelCredentials("leads"), token);
    const right = clientWith(TenantServiceDefinition, users.address, operator.channelCredentials("users"), token);
    try {
      const callsBefore = calls.length;
      const failure = await failureOf(wrong.client.getTenant({ id: "me" }, { signal: AbortSignal.timeout(5000) }));
      expect(failure.code).toBe(Status.UNAVAILABLE);
      expect(calls.length).toBe(callsBefore);
      // The same client, expecting the identity the server has, gets through: the refusal was the identity check.
      expect((await right.client.getTenant({ id: "me" }, { signal: AbortSignal.timeout(5000) })).tenant?.id).toBe(tenant);
      expect(calls.length).toBe(callsBefore + 1);
    } finally {
      wrong.close();
      right.close();
      operator.close();
    }
  });
});
