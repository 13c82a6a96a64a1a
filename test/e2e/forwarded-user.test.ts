/**
 * A call that acts for a user, across a hop over real mTLS: the upstream
 * handler calls on with callOptionsFrom(context, { forwardUser: true }), so
 * the callee applies both its allow-list (to the upstream's certificate
 * identity) and its access rule (to the user's token).
 *
 * The upstream serves users.v1.TenantService.GetTenant (agents may call it)
 * and calls the downstream's UpdateTenant (admins only). Two upstreams run
 * the same handler: auth, which the downstream's allow-list lists, and leads,
 * which it does not. Both hops also carry W3C trace context: the downstream
 * handler continues the upstream's trace.
 */
import { TenantServiceDefinition, UpdateTenantResponse } from "@leadmesh/contracts/users/v1/tenants";
import { activeTraceIds, apiService, type Caller, callOptionsFrom, createServiceClient, type MeshTransport } from "@leadmesh/platform";
import { ClientError, Status } from "nice-grpc";
import { uniqueTenant } from "../harness/clients";
import { createTestCertificates, type TestCertificates, testSpiffeId } from "../harness/mtls-certificates";
import {
  clientWith,
  failureOf,
  handmadeTlsCredentials,
  type MeshTestService,
  peerRejections,
  startMeshTestService,
  TENANT_PATHS,
} from "../harness/mtls-services";
import { mintToken } from "../harness/tokens";

interface Seen {
  tenant: string;
  caller: Caller;
  traceId?: string;
  spanId?: string;
}

/** What the upstream handler saw of its call on: its own trace, and the downstream's failure if any. */
interface UpstreamSeen extends Omit<Seen, "caller"> {
  downstreamFailure?: { code: Status; details: string };
}

let certificates: TestCertificates;
let downstream: MeshTestService;
const upstreams: Record<"auth" | "leads", MeshTestService | undefined> = { auth: undefined, leads: undefined };
const downstreamClients: { close(): void }[] = [];
const opened: { close(): void }[] = [];
const downstreamSeen: Seen[] = [];
const upstreamSeen: UpstreamSeen[] = [];

/** An upstream whose GetTenant calls the downstream's UpdateTenant for the user (forwarding the user's token). */
async function startUpstream(name: "auth" | "leads"): Promise<MeshTestService> {
  let client: ReturnType<typeof createServiceClient<typeof TenantServiceDefinition>>["client"] | undefined;
  const service = await startMeshTestService({
    name,
    certificates,
    meshPeers: { operator: [TENANT_PATHS.get] },
    services: [
      apiService(TenantServiceDefinition, {
        getTenant: async (_request, context) => {
          if (!client) throw new Error("downstream client not ready");
          const tenant = context.caller.tenantId;
          const seen: UpstreamSeen = { tenant, traceId: activeTraceIds()?.trace_id, spanId: activeTraceIds()?.span_id };
          upstreamSeen.push(seen);
          try {
            const updated = await client.updateTenant({ tenant: { id: tenant, displayName: `via ${name}` } }, callOptionsFrom(context, { forwardUser: true }));
            return { tenant: updated.tenant };
          } catch (error) {
            if (error instanceof ClientError) seen.downstreamFailure = { code: error.code, details: error.details };
            throw error;
          }
        },
        createTenant: async () => {
          throw new Error("not part of this test");
        },
        updateTenant: async () => {
          throw new Error("not part of this test");
        },
      }),
    ],
  });
  const downstreamClient = createServiceClient(TenantServiceDefinition, downstream.address, { transport: service.transport as MeshTransport, peer: "users" });
  downstreamClients.push(downstreamClient);
  client = downstreamClient.client;
  return service;
}

beforeAll(async () => {
  certificates = await createTestCertificates(["auth", "leads", "users", "operator"]);
  downstream = await startMeshTestService({
    name: "users",
    certificates,
    // auth may call UpdateTenant; leads may call nothing here.
    meshPeers: { auth: [TENANT_PATHS.update] },
    services: [
      apiService(TenantServiceDefinition, {
        updateTenant: async (request, context) => {
          const ids = activeTraceIds();
          downstreamSeen.push({ tenant: request.tenant?.id ?? "", caller: context.caller, traceId: ids?.trace_id, spanId: ids?.span_id });
          return UpdateTenantResponse.fromPartial({ tenant: request.tenant });
        },
        getTenant: async () => {
          throw new Error("not part of this test");
        },
        createTenant: async () => {
          throw new Error("not part of this test");
        },
      }),
    ],
  });
  upstreams.auth = await startUpstream("auth");
  upstreams.leads = await startUpstream("leads");
});

afterAll(async () => {
  for (const client of [...opened, ...downstreamClients]) client.close();
  await upstreams.auth?.stop();
  await upstreams.leads?.stop();
  await downstream?.stop();
  certificates?.remove();
});

/** GetTenant on `upstream` as the operator's tool, for a user of a fresh tenant with `role`. */
function callAsUser(upstream: MeshTestService, role: "admin" | "agent") {
  const tenant = uniqueTenant(`forwarded-${role}`);
  const user = `${role}-of-${tenant}`;
  const token = mintToken({ tenant, sub: user, roles: [role] });
  const tenants = clientWith(TenantServiceDefinition, upstream.address, handmadeTlsCredentials(certificates.caPem(), certificates.keyPair("operator")), {
    authorization: `Bearer ${token}`,
  });
  opened.push(tenants);
  return { tenant, user, response: tenants.client.getTenant({ id: "me" }) };
}

test("a user the downstream's rule admits: the downstream handler sees the user as the caller, with the upstream service as the peer", async () => {
  const { tenant, user, response } = callAsUser(upstreams.auth!, "admin");
  expect((await response).tenant).toMatchObject({ id: tenant, displayName: "via auth" });
  const seen = downstreamSeen.filter((entry) => entry.tenant === tenant);
  expect(seen).toHaveLength(1);
  expect(seen[0].caller).toMatchObject({ kind: "user", actorId: user, tenantId: tenant, peer: "auth" });
});

test("W3C trace context crosses the hop: the downstream handler's active trace is the upstream handler's", async () => {
  const { tenant, response } = callAsUser(upstreams.auth!, "admin");
  await response;
  const up = upstreamSeen.find((entry) => entry.tenant === tenant);
  const down = downstreamSeen.find((entry) => entry.tenant === tenant);
  // Without an exporter spans are not recorded, but they still carry real ids (telemetry.ts): never the all-zero invalid id.
  expect(up?.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(up?.traceId).not.toMatch(/^0+$/);
  expect(down?.traceId).toBe(up?.traceId);
  // The same trace, a span of its own.
  expect(down?.spanId).toMatch(/^[0-9a-f]{16}$/);
  expect(down?.spanId).not.toBe(up?.spanId);
});

test("a user the downstream's rule refuses: the downstream's PERMISSION_DENIED reaches the user as PERMISSION_DENIED, and it is no mesh refusal", async () => {
  const countedBefore = await peerRejections(downstream.metricsPort, TENANT_PATHS.update);
  const logsBefore = downstream.log.lines().length;
  const { tenant, response } = callAsUser(upstreams.auth!, "agent");

  const failure = await failureOf(response);

  // The upstream itself admits agents (GetTenant): the refusal is the downstream's rule, applied to the forwarded user.
  expect(upstreamSeen.find((entry) => entry.tenant === tenant)?.downstreamFailure).toMatchObject({ code: Status.PERMISSION_DENIED });
  expect(failure.code).toBe(Status.PERMISSION_DENIED);
  expect(failure.details).toContain("your roles (agent) do not allow /users.v1.TenantService/UpdateTenant");
  expect(downstreamSeen.filter((entry) => entry.tenant === tenant)).toEqual([]);
  // A user's ordinary 403: not counted or logged as a refused mesh peer.
  expect(await peerRejections(downstream.metricsPort, TENANT_PATHS.update)).toBe(countedBefore);
  expect(downstream.log.find("warn", "mesh peer refused").filter((line) => downstream.log.lines().indexOf(line) >= logsBefore)).toEqual([]);
});

test("an upstream the downstream's allow-list does not list is refused even with an admin's token; the user gets INTERNAL (the deployment's fault)", async () => {
  const countedBefore = await peerRejections(downstream.metricsPort, TENANT_PATHS.update, "not_allowed");
  const { tenant, response } = callAsUser(upstreams.leads!, "admin");

  const failure = await failureOf(response);

  expect(upstreamSeen.find((entry) => entry.tenant === tenant)?.downstreamFailure).toMatchObject({
    code: Status.PERMISSION_DENIED,
    details: expect.stringContaining("leads may not call /users.v1.TenantService/UpdateTenant"),
  });
  expect(downstreamSeen.filter((entry) => entry.tenant === tenant)).toEqual([]);
  expect(await peerRejections(downstream.metricsPort, TENANT_PATHS.update, "not_allowed")).toBe(countedBefore + 1);
  expect(downstream.log.find("warn", "mesh peer refused", testSpiffeId("leads"), TENANT_PATHS.update).length).toBeGreaterThanOrEqual(1);
  // Not the user's refusal: the admin may update the tenant; the topology does not let leads call on for it.
  expect(failure.code).toBe(Status.INTERNAL);
  expect(upstreams.leads!.log.find("error", "unhandled error in the call path", TENANT_PATHS.get).length).toBeGreaterThanOrEqual(1);
});
