/**
 * The auth service's calls to a real users service (in-process, over mTLS
 * with the test mesh's certificates): as the auth identity, acting in the
 * tenant each call names, and bound to the auth RPC that makes them (its
 * deadline and cancellation reach the users call).
 */
import { Role } from "@leadmesh/contracts/common/v1/access";
import { UserStatus } from "@leadmesh/contracts/users/v1/user";
import { DEADLINE_HEADER, DomainError, type MeshTransport, type RunningService } from "@leadmesh/platform";
import { type CallContext, Metadata, Status } from "nice-grpc-common";
import { uniqueTenant } from "../../../test/harness/clients";
import { startInProcess } from "../../../test/harness/in-process";
import { meshTransportAs } from "../../../test/harness/transport";
import { startUsers } from "../../users/src/main";
import { UsersGateway } from "../src/users-gateway";

let users: RunningService;
let address: string;
const transports: MeshTransport[] = [];
const gateways: UsersGateway[] = [];

function gatewayAs(identity: string): UsersGateway {
  const transport = meshTransportAs(identity);
  const gateway = new UsersGateway(address, transport);
  transports.push(transport);
  gateways.push(gateway);
  return gateway;
}

/** The call context of an auth RPC being served: what the kernel's interceptor leaves for handlers. */
function servedCall(options: { deadline?: number; signal?: AbortSignal } = {}): CallContext {
  const metadata = Metadata();
  if (options.deadline !== undefined) metadata.set(DEADLINE_HEADER, String(options.deadline));
  return { metadata, peer: "ipv4:127.0.0.1:1", signal: options.signal ?? new AbortController().signal } as unknown as CallContext;
}

beforeAll(async () => {
  const started = await startInProcess("users", startUsers);
  users = started.service;
  address = started.address;
});
afterAll(async () => {
  for (const gateway of gateways) gateway.close();
  for (const transport of transports) transport.close();
  await users.shutdown();
});

describe("UsersGateway", () => {
  it("registers and reads a tenant's admin as the auth identity, for the tenant it names", async () => {
    const gateway = gatewayAs("auth");
    const tenant = uniqueTenant("gateway");
    const context = servedCall({ deadline: Date.now() + 10_000 });
    await gateway.createTenant(tenant, "Gateway Inc", context);
    expect(await gateway.tenantHasUsers(tenant, context)).toBe(false);
    const admin = await gateway.createAdmin(tenant, "Admin@Example.com", "Admin", context);
    expect(admin).toMatchObject({ tenantId: tenant, roles: [Role.ROLE_ADMIN], status: UserStatus.USER_STATUS_ACTIVE });
    expect(await gateway.tenantHasUsers(tenant)).toBe(true);
    expect((await gateway.getUser(tenant, admin.id))?.email).toBe(admin.email);
    expect((await gateway.lookupUser(tenant, "admin@example.com", context))?.id).toBe(admin.id);
    expect(await gateway.lookupUser(tenant, "nobody@example.com", context)).toBeUndefined();
    // Another tenant's view: the same user id is not there.
    expect(await gateway.getUser(uniqueTenant("elsewhere"), admin.id, context)).toBeUndefined();
    // The users service's own refusals keep their status (e.g. 409 for the registering client).
    const again = await gateway.createTenant(tenant, "Again", context).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(DomainError);
    expect(again).toMatchObject({ code: Status.ALREADY_EXISTS, reason: "ALREADY_EXISTS" });
  });

  it("ends the users call with the auth call's deadline", async () => {
    const gateway = gatewayAs("auth");
    const tenant = uniqueTenant("deadline");
    await gateway.createTenant(tenant, "Deadline Inc");
    const expired = await gateway.tenantHasUsers(tenant, servedCall({ deadline: Date.now() - 1 })).catch((error: unknown) => error);
    expect(expired).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    // A later upstream deadline does not stretch the gateway's own 3 s bound, and the call succeeds within it.
    expect(await gateway.tenantHasUsers(tenant, servedCall({ deadline: Date.now() + 60_000 }))).toBe(false);
  });

  it("is cancelled with the auth call", async () => {
    const gateway = gatewayAs("auth");
    const tenant = uniqueTenant("cancel");
    const cancelled = new AbortController();
    cancelled.abort();
    const outcome = await gateway.createTenant(tenant, "Cancelled Inc", servedCall({ signal: cancelled.signal })).catch((error: unknown) => error);
    expect(outcome).toMatchObject({ name: "AbortError" });
    // The cancelled call never created the tenant.
    await expect(gateway.createTenant(tenant, "Created Inc")).resolves.toBeUndefined();
  });

  it("reports a users service that refuses the caller's identity as a deployment error, not the end user's", async () => {
    // leads has a certificate of the mesh, but mesh/topology.yaml lets it call none of these users RPCs.
    const gateway = gatewayAs("leads");
    const refused = await gateway.createTenant(uniqueTenant("refused"), "Refused Inc").catch((error: unknown) => error);
    expect(refused).not.toBeInstanceOf(DomainError);
    expect(String(refused)).toMatch(/users service refused the auth service: leads may not call \/users\.v1\.TenantService\/CreateTenant/);
  });
});
