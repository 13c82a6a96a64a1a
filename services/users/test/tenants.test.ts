/**
 * users.v1.TenantService over real gRPC against real FerretDB and Redis.
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { Status } from "nice-grpc";
import { uniqueTenant } from "../../../test/harness/clients";
import { codeOf, connectAsService, details, rpcError, useUsersService } from "./harness";

const users = useUsersService();
const tenantFor = (label: string) => users.tenantFor(label);

describe("CreateTenant", () => {
  it("registers a tenant once, for the tenant the calling service named", async () => {
    const id = uniqueTenant("register");
    const auth = connectAsService(users.address, "auth", id);
    const { tenant } = await auth.tenants.createTenant({ tenant: { id, displayName: " Acme Corp " } });
    expect(tenant).toMatchObject({ id, displayName: "Acme Corp" });
    expect(tenant!.createTime).toBeInstanceOf(Date);
    const taken = await rpcError(auth.tenants.createTenant({ tenant: { id, displayName: "Again" } }));
    expect(details(taken)).toMatchObject({ code: Status.ALREADY_EXISTS, reason: "ALREADY_EXISTS" });
    const elsewhere = await rpcError(auth.tenants.createTenant({ tenant: { id: uniqueTenant("other"), displayName: "Other" } }));
    expect(details(elsewhere)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["tenant.id"] });
    auth.close();
  });

  it("registers the tenant's time zone, refusing one Intl does not know", async () => {
    const id = uniqueTenant("zoned");
    const auth = connectAsService(users.address, "auth", id);
    const refused = await rpcError(auth.tenants.createTenant({ tenant: { id, displayName: "Zoned", timeZone: "GMT+25" } }));
    expect(details(refused)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["tenant.time_zone"] });
    const { tenant } = await auth.tenants.createTenant({ tenant: { id, displayName: "Zoned", timeZone: "America/New_York" } });
    expect(tenant).toMatchObject({ id, timeZone: "America/New_York" });
    auth.close();
  });

  it("validates the id and name", async () => {
    const auth = connectAsService(users.address, "auth", uniqueTenant("validate"));
    const error = await rpcError(auth.tenants.createTenant({ tenant: { id: "Bad_Tenant", displayName: "" } }));
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["tenant.id", "tenant.display_name"] });
    expect(details(await rpcError(auth.tenants.createTenant({}))).fields).toEqual(["tenant"]);
    auth.close();
  });

  it("refuses a malformed tenant in leadmesh-tenant before the request is looked at", async () => {
    const auth = connectAsService(users.address, "auth", "Bad_Tenant");
    const error = await rpcError(auth.tenants.createTenant({ tenant: { id: "Bad_Tenant", displayName: "Bad" } }));
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["leadmesh-tenant"] });
    auth.close();
  });

  it("is internal: users cannot call it", async () => {
    const t = await tenantFor("create-internal");
    expect(await codeOf(t.admin.tenants.createTenant({ tenant: { id: t.tenant, displayName: "x" } }))).toBe(Status.PERMISSION_DENIED);
  });
});

describe("GetTenant / UpdateTenant", () => {
  it('returns the caller\'s own tenant, by id or "me", and nothing else', async () => {
    const a = await tenantFor("get-a");
    const b = await tenantFor("get-b");
    const agentId = await a.createUser("Agent", [Role.ROLE_AGENT]);
    const agent = a.as(agentId, "agent");
    expect((await agent.tenants.getTenant({ id: "me" })).tenant).toMatchObject({ id: a.tenant, displayName: "get-a Inc" });
    // Only buyers is given GetTenant in mesh/topology.yaml (tenant time zones): the auth service's certificate does not open it.
    expect(await codeOf(a.service.tenants.getTenant({ id: a.tenant }))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(agent.tenants.getTenant({ id: b.tenant }))).toBe(Status.NOT_FOUND);
    expect(await codeOf(a.admin.tenants.updateTenant({ tenant: { id: b.tenant, displayName: "Hijacked" } }))).toBe(Status.NOT_FOUND);
    expect((await b.admin.tenants.getTenant({ id: "me" })).tenant!.displayName).toBe("get-b Inc");
    expect(details(await rpcError(agent.tenants.getTenant({ id: "" }))).fields).toEqual(["id"]);
  });

  it("lets admins rename their tenant", async () => {
    const t = await tenantFor("rename");
    const { tenant } = await t.admin.tenants.updateTenant({ tenant: { id: "me", displayName: "Renamed Ltd" } });
    expect(tenant).toMatchObject({ id: t.tenant, displayName: "Renamed Ltd" });
    expect(tenant!.updateTime!.getTime()).toBeGreaterThan(tenant!.createTime!.getTime());
    expect((await t.admin.tenants.getTenant({ id: t.tenant })).tenant!.displayName).toBe("Renamed Ltd");
    expect(details(await rpcError(t.admin.tenants.updateTenant({ tenant: { id: t.tenant, displayName: "" }, updateMask: ["display_name"] }))).fields).toEqual([
      "tenant.display_name",
    ]);
    expect(details(await rpcError(t.admin.tenants.updateTenant({ tenant: { id: t.tenant }, updateMask: ["id"] }))).fields).toEqual(["update_mask"]);
    const managerId = await t.createUser("Manager", [Role.ROLE_MANAGER]);
    expect(await codeOf(t.as(managerId, "manager").tenants.updateTenant({ tenant: { id: "me", displayName: "Nope" } }))).toBe(Status.PERMISSION_DENIED);
  });

  it("keeps the tenant's time zone: UTC by default, set at registration, changed by admins, validated", async () => {
    const t = await tenantFor("time-zone");
    const agent = t.as(await t.createUser("Agent", [Role.ROLE_AGENT]), "agent");
    expect((await agent.tenants.getTenant({ id: "me" })).tenant!.timeZone).toBe("UTC");
    const { tenant } = await t.admin.tenants.updateTenant({ tenant: { id: "me", timeZone: "Europe/Berlin" }, updateMask: ["time_zone"] });
    expect(tenant).toMatchObject({ id: t.tenant, displayName: "time-zone Inc", timeZone: "Europe/Berlin" });
    expect((await agent.tenants.getTenant({ id: "me" })).tenant!.timeZone).toBe("Europe/Berlin");
    const invalid = await rpcError(t.admin.tenants.updateTenant({ tenant: { id: "me", timeZone: "Europe/Atlantis" }, updateMask: ["time_zone"] }));
    expect(details(invalid)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["tenant.time_zone"] });
    expect((await agent.tenants.getTenant({ id: "me" })).tenant!.timeZone).toBe("Europe/Berlin");
    // buyers reads it with its certificate (its cap counters reset in this zone), for the tenant it names.
    const buyers = connectAsService(users.address, "buyers", t.tenant);
    expect((await buyers.tenants.getTenant({ id: t.tenant })).tenant).toMatchObject({ id: t.tenant, timeZone: "Europe/Berlin" });
    buyers.close();
    // Cleared through the mask: back to UTC.
    expect((await t.admin.tenants.updateTenant({ tenant: { id: "me" }, updateMask: ["time_zone"] })).tenant!.timeZone).toBe("UTC");
  });
});
