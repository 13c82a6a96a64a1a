import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import type { CallerContext } from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { agent, service } from "../../test/fixtures";
import { requiringNamedTenant } from "./named-tenant";

const contextOf = (caller: CallerContext["caller"]) => ({ caller }) as CallContext & CallerContext;

describe("requiringNamedTenant", () => {
  const handled: string[] = [];
  const handlers = requiringNamedTenant(TenantServiceDefinition, {
    async getTenant(_request: unknown, context: CallContext & CallerContext) {
      handled.push(context.caller.actorId);
      return { tenant: context.caller.tenantId };
    },
  });

  it("runs the handler for users and for services that named a tenant", async () => {
    await expect(handlers.getTenant({}, contextOf(agent))).resolves.toEqual({ tenant: "acme" });
    await expect(handlers.getTenant({}, contextOf(service))).resolves.toEqual({ tenant: "acme" });
    expect(handled).toEqual(["u-agent", "auth"]);
  });

  it("refuses a service that named no tenant before the handler runs, naming the RPC", async () => {
    handled.length = 0;
    await expect(handlers.getTenant({}, contextOf({ ...service, tenantId: "" }))).rejects.toMatchObject({
      reason: "PERMISSION_DENIED",
      message: 'service "auth" named no tenant for /users.v1.TenantService/GetTenant: send the tenant id in metadata leadmesh-tenant',
    });
    expect(handled).toEqual([]);
  });
});
