/**
 * The path identifies the resource (AIP-134), through the real Envoy
 * transcoder. Envoy merges the path's variables and the JSON body into one
 * request message, and a body field overrides the path's value, so
 * `PATCH /api/v1/users/A` with `{"id":"B"}` used to update B. Now any request
 * field bound by the REST path that holds another value than the path is
 * INVALID_ARGUMENT with a field violation naming both values, whatever the
 * RPC (Update RPCs with `body: "<resource>"`, custom methods with `body: "*"`,
 * query parameters), and the other resource is untouched. A body that
 * repeats the path's id, or leaves it out, still works.
 */
import { Status } from "nice-grpc";
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";

let admin: RegisteredTenant;
let token: string;
beforeAll(async () => {
  admin = await registerTenant("path-vs-body");
  token = admin.accessToken;
});

interface FieldViolation {
  field: string;
  description: string;
}

/** 400 INVALID_ARGUMENT whose only field violation is on `field` and names the path's and the body's values. */
function expectPathConflict(response: Awaited<ReturnType<typeof rest>>, field: string, pathValue: string, bodyValue: string) {
  expect({ status: response.status, code: response.json?.code }).toEqual({ status: 400, code: Status.INVALID_ARGUMENT });
  const badRequest = response.json.details.find((detail: { "@type": string }) => detail["@type"].endsWith("google.rpc.BadRequest"));
  const violations: FieldViolation[] = badRequest.fieldViolations;
  expect(violations.map((violation) => violation.field)).toEqual([field]);
  for (const text of [violations[0].description, response.json.message]) {
    expect(text).toContain(pathValue);
    expect(text).toContain(bodyValue);
  }
}

const ok = (response: Awaited<ReturnType<typeof rest>>) => {
  if (response.status !== 200) throw new Error(`expected 200, got ${response.status} ${response.text}`);
  return response.json;
};

describe("a request field bound by the REST path must equal the path", () => {
  it("UpdateUser (PATCH /api/v1/users/{user.id}, body user)", async () => {
    const other = ok(
      await rest("POST", "/api/v1/users:invite", { body: { email: "other@path-vs-body.example", displayName: "Other", roles: ["ROLE_AGENT"] }, token }),
    ).user;
    const own = admin.adminId;

    const conflict = await rest("PATCH", `/api/v1/users/${own}?updateMask=title`, { body: { id: other.id, title: "Hijacked" }, token });
    expectPathConflict(conflict, "user.id", own, other.id);
    // A client cannot steer the check: the transcoder replaces a client's x-envoy-original-path (and appends to a
    // client's x-envoy-original-method, which is why the verb is not used); a trailing slash is routed and checked.
    const spoofs: Record<string, string>[] = [{ "x-envoy-original-path": `/api/v1/users/${other.id}` }, { "x-envoy-original-method": "GET" }];
    for (const headers of spoofs) {
      const spoofed = await rest("PATCH", `/api/v1/users/${own}?updateMask=title`, { body: { id: other.id, title: "Hijacked" }, token, headers });
      expectPathConflict(spoofed, "user.id", own, other.id);
    }
    expectPathConflict(
      await rest("PATCH", `/api/v1/users/${own}/?updateMask=title`, { body: { id: other.id, title: "Hijacked" }, token }),
      "user.id",
      own,
      other.id,
    );
    expect(ok(await rest("GET", `/api/v1/users/${other.id}`, { token })).user.title).toBe("");
    expect(ok(await rest("GET", `/api/v1/users/${own}`, { token })).user.title).toBe("");

    expect(ok(await rest("PATCH", `/api/v1/users/${own}?updateMask=title`, { body: { id: own, title: "Same id" }, token })).user).toMatchObject({
      id: own,
      title: "Same id",
    });
    expect(ok(await rest("PATCH", `/api/v1/users/${own}?updateMask=title`, { body: { title: "No id" }, token })).user).toMatchObject({
      id: own,
      title: "No id",
    });
    expect(ok(await rest("GET", `/api/v1/users/${other.id}`, { token })).user.title).toBe("");
  });

  it("ChangeUserRoles (POST /api/v1/users/{id}:changeRoles, body *)", async () => {
    const first = ok(
      await rest("POST", "/api/v1/users:invite", { body: { email: "first@roles.example", displayName: "First", roles: ["ROLE_AGENT"] }, token }),
    ).user;
    const second = ok(
      await rest("POST", "/api/v1/users:invite", { body: { email: "second@roles.example", displayName: "Second", roles: ["ROLE_AGENT"] }, token }),
    ).user;

    const conflict = await rest("POST", `/api/v1/users/${first.id}:changeRoles`, { body: { id: second.id, roles: ["ROLE_MANAGER"] }, token });
    expectPathConflict(conflict, "id", first.id, second.id);
    expect(ok(await rest("GET", `/api/v1/users/${second.id}`, { token })).user.roles).toEqual(["ROLE_AGENT"]);

    const changed = ok(await rest("POST", `/api/v1/users/${first.id}:changeRoles`, { body: { roles: ["ROLE_MANAGER"] }, token }));
    expect(changed.user).toMatchObject({ id: first.id, roles: ["ROLE_MANAGER"] });
  });

  it("UpdateLead (PATCH /api/v1/leads/{lead.id}, body lead) and a query parameter naming another lead", async () => {
    const newLead = { firstName: "Path", email: "path@example.com", source: "LEAD_SOURCE_WEB_FORM" };
    const lead = ok(await rest("POST", "/api/v1/leads", { body: newLead, token })).lead;
    const other = ok(await rest("POST", "/api/v1/leads", { body: newLead, token })).lead;

    const conflict = await rest("PATCH", `/api/v1/leads/${lead.id}?updateMask=score`, { body: { id: other.id, score: 42 }, token });
    expectPathConflict(conflict, "lead.id", lead.id, other.id);
    expect(ok(await rest("GET", `/api/v1/leads/${other.id}`, { token })).lead).toMatchObject({ score: 0, etag: other.etag });
    expect(ok(await rest("GET", `/api/v1/leads/${lead.id}`, { token })).lead).toMatchObject({ score: 0, etag: lead.etag });

    // A query parameter overrides the path too (the transcoder applies path, then query, then body).
    expectPathConflict(await rest("GET", `/api/v1/leads/${lead.id}?id=${other.id}`, { token }), "id", lead.id, other.id);
    const byQuery = await rest("PATCH", `/api/v1/leads/${lead.id}?updateMask=score&lead.id=${other.id}`, { body: { score: 41 }, token });
    expectPathConflict(byQuery, "lead.id", lead.id, other.id);
    expect(ok(await rest("GET", `/api/v1/leads/${other.id}`, { token })).lead).toMatchObject({ score: 0, etag: other.etag });

    expect(ok(await rest("PATCH", `/api/v1/leads/${lead.id}?updateMask=score`, { body: { id: lead.id, score: 42 }, token })).lead).toMatchObject({
      id: lead.id,
      score: 42,
    });
    expect(ok(await rest("PATCH", `/api/v1/leads/${lead.id}?updateMask=score`, { body: { score: 43 }, token })).lead).toMatchObject({ id: lead.id, score: 43 });
  });

  it("UpdateBuyer (PATCH /api/v1/buyers/{buyer.id}, body buyer)", async () => {
    const newBuyer = (displayName: string) => ({
      displayName,
      contactEmail: "buyer@example.com",
      pricePerLead: { currencyCode: "USD", amountMinor: "1000" },
      dailyCap: "0",
      monthlyCap: "0",
    });
    const buyer = ok(await rest("POST", "/api/v1/buyers", { body: newBuyer("Path Buyer"), token })).buyer;
    const other = ok(await rest("POST", "/api/v1/buyers", { body: newBuyer("Other Buyer"), token })).buyer;

    const conflict = await rest("PATCH", `/api/v1/buyers/${buyer.id}?updateMask=displayName`, { body: { id: other.id, displayName: "Hijacked" }, token });
    expectPathConflict(conflict, "buyer.id", buyer.id, other.id);
    expect(ok(await rest("GET", `/api/v1/buyers/${other.id}`, { token })).buyer).toMatchObject({ displayName: "Other Buyer", etag: other.etag });
    expect(ok(await rest("GET", `/api/v1/buyers/${buyer.id}`, { token })).buyer).toMatchObject({ displayName: "Path Buyer", etag: buyer.etag });

    const renamed = ok(await rest("PATCH", `/api/v1/buyers/${buyer.id}?updateMask=displayName`, { body: { id: buyer.id, displayName: "Renamed" }, token }));
    expect(renamed.buyer).toMatchObject({ id: buyer.id, displayName: "Renamed" });
    const again = ok(await rest("PATCH", `/api/v1/buyers/${buyer.id}?updateMask=displayName`, { body: { displayName: "Renamed again" }, token }));
    expect(again.buyer).toMatchObject({ id: buyer.id, displayName: "Renamed again" });
  });
});
