import { Tenant } from "@leadmesh/contracts/users/v1/tenant";
import { violationsOf } from "../../test/fixtures";
import { applyTenantUpdate, newTenant } from "./tenant-rules";

describe("newTenant", () => {
  it("accepts lower-case ids and trims the name", () => {
    expect(newTenant(Tenant.fromPartial({ id: "acme-2", displayName: " Acme " }))).toEqual({ id: "acme-2", displayName: "Acme" });
    expect(newTenant(Tenant.fromPartial({ id: "0", displayName: "Zero" })).id).toBe("0");
  });

  it.each(["Acme", "-acme", "acme_corp", "a".repeat(64), "acme.com"])("refuses the id %p", (id) => {
    expect(Object.keys(violationsOf(() => newTenant(Tenant.fromPartial({ id, displayName: "Acme" }))))).toEqual(["tenant.id"]);
  });

  it("requires the tenant, its id and a name of at most 200 characters", () => {
    expect(violationsOf(() => newTenant(undefined))).toEqual({ tenant: "is required" });
    expect(violationsOf(() => newTenant(Tenant.fromPartial({ displayName: "x".repeat(201) })))).toEqual({
      "tenant.id": "is required",
      "tenant.display_name": "must be at most 200 characters (got 201)",
    });
  });
});

describe("applyTenantUpdate", () => {
  it("changes the display name only", () => {
    expect(applyTenantUpdate({ displayName: "Acme" }, Tenant.fromPartial({ id: "acme", displayName: "Acme Inc" }), undefined)).toEqual({
      displayName: "Acme Inc",
    });
    expect(applyTenantUpdate({ displayName: "Acme" }, Tenant.fromPartial({ displayName: "Acme" }), ["display_name"])).toBeUndefined();
    expect(violationsOf(() => applyTenantUpdate({ displayName: "Acme" }, Tenant.fromPartial({ id: "other" }), ["id"])).update_mask).toMatch(/never changes/);
    expect(violationsOf(() => applyTenantUpdate({ displayName: "Acme" }, Tenant.fromPartial({}), ["display_name"]))).toEqual({
      "tenant.display_name": "is required",
    });
  });
});
