import { Tenant } from "@leadmesh/contracts/users/v1/tenant";
import { violationsOf } from "../../test/fixtures";
import { applyTenantUpdate, checkTimeZone, newTenant } from "./tenant-rules";

describe("newTenant", () => {
  it("accepts lower-case ids and trims the name", () => {
    expect(newTenant(Tenant.fromPartial({ id: "acme-2", displayName: " Acme " }))).toEqual({ id: "acme-2", displayName: "Acme", timeZone: "UTC" });
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

describe("tenant time zone", () => {
  it("defaults to UTC and accepts any IANA zone Intl knows, trimmed", () => {
    expect(newTenant(Tenant.fromPartial({ id: "acme", displayName: "Acme", timeZone: " Europe/Berlin " })).timeZone).toBe("Europe/Berlin");
    expect(newTenant(Tenant.fromPartial({ id: "acme", displayName: "Acme", timeZone: "" })).timeZone).toBe("UTC");
    expect(checkTimeZone("America/New_York")).toBeUndefined();
    expect(checkTimeZone("Asia/Kathmandu")).toBeUndefined();
  });

  it.each(["Mars/Olympus_Mons", "+01:00", "Europe/Berlin/Mitte", "UTC+1"])("refuses %p under tenant.time_zone", (timeZone) => {
    expect(violationsOf(() => newTenant(Tenant.fromPartial({ id: "acme", displayName: "Acme", timeZone })))).toEqual({
      "tenant.time_zone": `must be an IANA time zone such as "Europe/Berlin" (got "${timeZone}")`,
    });
  });

  it("is updatable by mask or when set, and a cleared zone is UTC", () => {
    const current = { displayName: "Acme", timeZone: "Europe/Berlin" };
    expect(applyTenantUpdate(current, Tenant.fromPartial({ timeZone: "Asia/Tokyo" }), ["time_zone"])).toEqual({ timeZone: "Asia/Tokyo" });
    expect(applyTenantUpdate(current, Tenant.fromPartial({ timeZone: "Asia/Tokyo" }), undefined)).toEqual({ timeZone: "Asia/Tokyo" });
    expect(applyTenantUpdate(current, Tenant.fromPartial({ timeZone: "" }), ["timeZone"])).toEqual({ timeZone: "UTC" });
    expect(applyTenantUpdate(current, Tenant.fromPartial({ timeZone: "Europe/Berlin" }), ["time_zone"])).toBeUndefined();
    // A tenant stored without a zone is in UTC already.
    expect(applyTenantUpdate({ displayName: "Acme" }, Tenant.fromPartial({ timeZone: "UTC" }), ["time_zone"])).toBeUndefined();
    expect(applyTenantUpdate(current, Tenant.fromPartial({ displayName: "Acme 2", timeZone: "UTC" }), ["*"])).toEqual({
      displayName: "Acme 2",
      timeZone: "UTC",
    });
    expect(violationsOf(() => applyTenantUpdate(current, Tenant.fromPartial({ timeZone: "Nowhere/Land" }), ["time_zone"]))).toEqual({
      "tenant.time_zone": 'must be an IANA time zone such as "Europe/Berlin" (got "Nowhere/Land")',
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
