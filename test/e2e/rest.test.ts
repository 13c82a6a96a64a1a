/**
 * The frontend's view: REST/JSON through the real Envoy transcoder to the
 * real leads service, FerretDB and Redis.
 */
import { Status } from "nice-grpc";
import { leadClient } from "../harness/clients";
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";

const { ingressUrl } = meshInfo();

let admin: RegisteredTenant;
beforeAll(async () => {
  admin = await registerTenant("rest");
});

const newLead = { firstName: "Grace", lastName: "Hopper", email: "grace@example.com", source: "LEAD_SOURCE_LANDING_PAGE", tags: ["navy"] };

describe("REST /api/v1/leads through Envoy", () => {
  it("round-trips create, get, update, list, delete and undelete", async () => {
    const tenant = await registerTenant("rest-crud");
    const token = tenant.accessToken;
    const created = await rest("POST", "/api/v1/leads", { body: newLead, token });
    expect(created.status).toBe(200);
    expect(created.headers.get("content-type")).toMatch(/application\/json/);
    const lead = created.json.lead;
    expect(lead).toMatchObject({ ...newLead, tenantId: tenant.tenantId, status: "LEAD_STATUS_NEW", score: 0, etag: "1" });
    expect(lead.createTime).toMatch(/^\d{4}-\d\d-\d\dT/);

    const fetched = await rest("GET", `/api/v1/leads/${lead.id}`, { token });
    expect(fetched.status).toBe(200);
    expect(fetched.json.lead).toEqual(lead);

    const patched = await rest("PATCH", `/api/v1/leads/${lead.id}?updateMask=status,score`, {
      body: { status: "LEAD_STATUS_QUALIFIED", score: 75, etag: "1" },
      token,
    });
    expect(patched.status).toBe(200);
    expect(patched.json.lead).toMatchObject({ status: "LEAD_STATUS_QUALIFIED", score: 75, email: "grace@example.com", etag: "2" });

    // URLSearchParams encodes spaces as "+", as a browser frontend would send them.
    const query = new URLSearchParams({ filter: "status = QUALIFIED AND score >= 50", orderBy: "score desc", pageSize: "10" });
    const listed = await rest("GET", `/api/v1/leads?${query}`, { token });
    expect(listed.status).toBe(200);
    expect(listed.json.leads.map((item: { id: string }) => item.id)).toEqual([lead.id]);
    expect(listed.json.nextPageToken).toBe("");

    const activities = await rest("GET", `/api/v1/leads/${lead.id}/activities`, { token });
    expect(activities.json.activities[0].statusChange).toEqual({ fromStatus: "LEAD_STATUS_NEW", toStatus: "LEAD_STATUS_QUALIFIED" });
    const note = await rest("POST", `/api/v1/leads/${lead.id}/activities`, { body: { note: { text: "asked for pricing" } }, token });
    expect(note.status).toBe(200);
    expect(note.json.activity.note.text).toBe("asked for pricing");

    const deleted = await rest("DELETE", `/api/v1/leads/${lead.id}`, { token });
    expect(deleted.status).toBe(200);
    expect(deleted.json.lead.deleteTime).toBeDefined();
    expect((await rest("GET", "/api/v1/leads", { token })).json.leads).toEqual([]);
    const restored = await rest("POST", `/api/v1/leads/${lead.id}:undelete`, { body: {}, token });
    expect(restored.status).toBe(200);
    expect(restored.json.lead.deleteTime).toBeUndefined();
  });

  it("answers 400 with field violations for invalid input", async () => {
    const response = await rest("POST", "/api/v1/leads", {
      body: { firstName: "", email: "nope", source: "LEAD_SOURCE_WEB_FORM", score: 101 },
      token: admin.accessToken,
    });
    expect(response.status).toBe(400);
    expect(response.json.code).toBe(Status.INVALID_ARGUMENT);
    const badRequest = response.json.details.find((detail: { "@type": string }) => detail["@type"].endsWith("google.rpc.BadRequest"));
    expect(badRequest.fieldViolations.map((violation: { field: string }) => violation.field)).toEqual(["lead.first_name", "lead.email", "lead.score"]);
    const info = response.json.details.find((detail: { "@type": string }) => detail["@type"].endsWith("google.rpc.ErrorInfo"));
    expect(info).toMatchObject({ reason: "INVALID_FIELDS", domain: "leadmesh.io" });
  });

  it("answers 400 with a JSON body for malformed JSON, wrong types and unknown parameters", async () => {
    for (const [body, path] of [
      ['{"firstName":', "/api/v1/leads"],
      ['{"score":"high"}', "/api/v1/leads"],
      ['{"source":"LEAD_SOURCE_SPACESHIP"}', "/api/v1/leads"],
    ]) {
      const response = await rest("POST", path, { body, token: admin.accessToken });
      expect(response.status).toBe(400);
      expect(response.json).toMatchObject({ code: Status.INVALID_ARGUMENT, message: expect.stringMatching(/^bad request: /) });
    }
    const unknownParameter = await rest("GET", "/api/v1/leads?pagesize=5", { token: admin.accessToken });
    expect(unknownParameter.status).toBe(400);
    expect(unknownParameter.json.message).toMatch(/pagesize/);
  });

  it("answers hostile input with 4xx JSON, never 5xx", async () => {
    const token = admin.accessToken;
    const cases: [string, string, unknown, number][] = [
      ["POST", "/api/v1/leads", `{"firstName":"${"a".repeat(2 * 1024 * 1024)}"}`, 413],
      ["POST", "/api/v1/leads", "[1,2,3]", 400],
      ["POST", "/api/v1/leads", { firstName: "x\u0000y", email: "a@b.co", source: "LEAD_SOURCE_OTHER" }, 400],
      ["POST", "/api/v1/leads", { firstName: "x", email: "a@b.co", source: "LEAD_SOURCE_OTHER", attributes: { $where: "1", "a.b": "c" } }, 400],
      ["GET", `/api/v1/leads?filter=${encodeURIComponent("(".repeat(1500))}`, undefined, 400],
      ["GET", `/api/v1/leads?filter=${encodeURIComponent("x".repeat(5000))}`, undefined, 400],
      ["GET", "/api/v1/leads?pageSize=99999999999", undefined, 400],
      ["GET", `/api/v1/leads?pageToken=${"A".repeat(300)}`, undefined, 400],
      ["GET", "/api/v1/leads/%2e%2e%2fetc", undefined, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const response = await rest(method, path, { body, token });
      expect({ path: path.slice(0, 60), status: response.status }).toEqual({ path: path.slice(0, 60), status });
      expect(response.json).toMatchObject({ code: expect.any(Number), message: expect.any(String) });
    }
  });

  it("answers 404 for a missing lead", async () => {
    const response = await rest("GET", "/api/v1/leads/aaaaaaaaaaaaaaaaaaaaaaaa", { token: admin.accessToken });
    expect(response.status).toBe(404);
    expect(response.json).toMatchObject({ code: Status.NOT_FOUND, message: 'lead "aaaaaaaaaaaaaaaaaaaaaaaa" not found' });
  });

  it("answers 404 JSON for unknown routes and methods without reaching a service", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/nothing-here"],
      ["PUT", "/api/v1/leads"],
      ["GET", "/"],
      ["GET", "/api/v2/leads"],
    ]) {
      const response = await rest(method, path, { token: admin.accessToken });
      expect(response.status).toBe(404);
      expect(response.json).toEqual({ code: Status.NOT_FOUND, message: `no API at ${method} ${path}` });
    }
  });

  it("answers 409 for a stale etag", async () => {
    const token = admin.accessToken;
    const { lead } = (await rest("POST", "/api/v1/leads", { body: newLead, token })).json;
    await rest("PATCH", `/api/v1/leads/${lead.id}`, { body: { score: 1 }, token });
    const stale = await rest("PATCH", `/api/v1/leads/${lead.id}`, { body: { score: 2, etag: "1" }, token });
    expect(stale.status).toBe(409);
    expect(stale.json.code).toBe(Status.ABORTED);
  });

  it("allows CORS from a local frontend", async () => {
    const preflight = await fetch(`${ingressUrl}/api/v1/leads`, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:3000", "access-control-request-method": "PATCH", "access-control-request-headers": "content-type,authorization" },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(preflight.headers.get("access-control-allow-methods")).toMatch(/PATCH/);
    const foreign = await fetch(`${ingressUrl}/api/v1/leads`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("continues the caller's W3C trace and returns its trace id", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const response = await rest("GET", "/api/v1/leads", { token: admin.accessToken, headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-trace-id")).toBe(traceId);
    const fresh = await rest("GET", "/api/v1/leads", { token: admin.accessToken });
    expect(fresh.headers.get("x-trace-id")).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh.headers.get("x-trace-id")).not.toBe(traceId);
  });

  it("serves gRPC clients on the same listener", async () => {
    // The ingress listener is plain HTTP/2 (the browsers' side); only the hops behind it are mTLS.
    const { client, close } = leadClient(new URL(ingressUrl).host, admin.accessToken, { plaintext: true });
    const { lead } = await client.createLead({ lead: { firstName: "Edge", phone: "+14155550123", source: 1 } });
    expect((await client.getLead({ id: lead!.id })).lead!.phone).toBe("+14155550123");
    close();
  });
});
