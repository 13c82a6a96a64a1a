/**
 * leads.v1.LeadService over real gRPC against real FerretDB and Redis.
 */

import { CallDirection, CallOutcome, type Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import type { RunningService } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { Status } from "nice-grpc";
import { BadRequest, ErrorInfo, RichClientError } from "nice-grpc-error-details";
import { serviceClient, uniqueTenant } from "../../../test/harness/clients";
import { startInProcess } from "../../../test/harness/in-process";
import { meshInfo } from "../../../test/harness/mesh-info";
import { mintToken } from "../../../test/harness/tokens";
import { startLeads } from "../src/main";
import { ensureLeadIndexes } from "../src/store";
import { leadClient, startLeadsForTest } from "./harness";

let service: RunningService;
let address: string;

beforeAll(async () => {
  ({ service, address } = await startLeadsForTest());
});

afterAll(async () => {
  await service?.shutdown();
});

/** A client acting as a user of `tenant` (a manager unless roles say otherwise). */
function clientFor(tenant: string, roles: string[] = ["manager"], sub = "manager-1") {
  return leadClient(address, mintToken({ tenant, sub, roles }));
}

const sample = (overrides: Partial<Lead> = {}): Partial<Lead> => ({
  firstName: "Ada",
  lastName: "Lovelace",
  email: "ada@example.com",
  source: LeadSource.LEAD_SOURCE_WEB_FORM,
  ...overrides,
});

async function rpcError(call: Promise<unknown>): Promise<RichClientError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(RichClientError);
    return error as RichClientError;
  }
  throw new Error("call succeeded but an error was expected");
}

function details(error: RichClientError) {
  const info = error.extra.find((detail) => detail.$type === ErrorInfo.$type) as ErrorInfo | undefined;
  const badRequest = error.extra.find((detail) => detail.$type === BadRequest.$type) as BadRequest | undefined;
  return { reason: info?.reason, metadata: info?.metadata, fields: badRequest?.fieldViolations.map((violation) => violation.field) ?? [] };
}

describe("CreateLead / GetLead", () => {
  it("stores a lead, assigns server fields and ignores client-sent output-only fields", async () => {
    const tenant = uniqueTenant("crud");
    const { client, close } = clientFor(tenant);
    const { lead } = await client.createLead({ lead: sample({ id: "chosen-by-client", tenantId: "other", etag: "99" }) });
    expect(lead).toMatchObject({ firstName: "Ada", tenantId: tenant, status: LeadStatus.LEAD_STATUS_NEW, etag: "1" });
    expect(lead!.id).toMatch(/^[0-9a-f]{24}$/);
    expect(lead!.createTime).toBeInstanceOf(Date);
    const fetched = await client.getLead({ id: lead!.id });
    expect(fetched.lead).toEqual(lead);
    close();
  });

  it("answers INVALID_ARGUMENT with a field violation per bad field", async () => {
    const { client, close } = clientFor(uniqueTenant("invalid"));
    const error = await rpcError(client.createLead({ lead: sample({ email: "nope", phone: "123", score: 500 }) }));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(details(error)).toMatchObject({ reason: "INVALID_FIELDS", fields: ["lead.email", "lead.phone", "lead.score"] });
    close();
  });

  it("answers NOT_FOUND for an unknown id and INVALID_ARGUMENT for a malformed one", async () => {
    const { client, close } = clientFor(uniqueTenant("missing"));
    const missing = await rpcError(client.getLead({ id: "aaaaaaaaaaaaaaaaaaaaaaaa" }));
    expect(missing.code).toBe(Status.NOT_FOUND);
    expect(details(missing)).toMatchObject({ reason: "NOT_FOUND", metadata: { resource_type: "lead", resource_id: "aaaaaaaaaaaaaaaaaaaaaaaa" } });
    expect((await rpcError(client.getLead({ id: "" }))).code).toBe(Status.INVALID_ARGUMENT);
    expect((await rpcError(client.getLead({ id: "../../etc" }))).code).toBe(Status.INVALID_ARGUMENT);
    close();
  });

  it("returns the first result when a create is retried with the same request_id, and refuses the id for a different lead", async () => {
    const tenant = uniqueTenant("idem");
    const { client, close } = clientFor(tenant);
    const first = await client.createLead({ lead: sample({ attributes: { campaign: "spring", channel: "email" } }), requestId: "req-123" });
    // A retry may encode the map in another order: still the same request.
    const again = await client.createLead({ lead: sample({ attributes: { channel: "email", campaign: "spring" } }), requestId: "req-123" });
    expect(again.lead).toEqual(first.lead);

    // AIP-155: the same id with a different body is a client bug, not a retry.
    const reused = await rpcError(client.createLead({ lead: sample({ firstName: "Changed" }), requestId: "req-123" }));
    expect(reused.code).toBe(Status.INVALID_ARGUMENT);
    expect(details(reused)).toMatchObject({ reason: "INVALID_FIELDS", fields: ["request_id"] });
    const violation = (reused.extra.find((detail) => detail.$type === BadRequest.$type) as BadRequest).fieldViolations[0];
    expect(violation.description).toMatch(/was already used with a different request/);

    // Request ids belong to the caller: a colleague reusing the same id gets a lead of their own.
    const colleague = clientFor(tenant, ["manager"], "manager-2");
    const theirs = await colleague.client.createLead({ lead: sample(), requestId: "req-123" });
    expect(theirs.lead!.id).not.toBe(first.lead!.id);
    expect((await colleague.client.createLead({ lead: sample(), requestId: "req-123" })).lead!.id).toBe(theirs.lead!.id);
    expect((await client.listLeads({})).leads.map((lead) => lead.id).sort()).toEqual([first.lead!.id, theirs.lead!.id].sort());

    expect((await rpcError(client.createLead({ lead: sample(), requestId: "not valid!" }))).code).toBe(Status.INVALID_ARGUMENT);
    colleague.close();
    close();
  });
});

describe("tenant isolation", () => {
  it("never shows one tenant's leads to another", async () => {
    const a = clientFor(uniqueTenant("tenant-a"));
    const b = clientFor(uniqueTenant("tenant-b"));
    const { lead } = await a.client.createLead({ lead: sample() });
    expect((await rpcError(b.client.getLead({ id: lead!.id }))).code).toBe(Status.NOT_FOUND);
    expect((await rpcError(b.client.updateLead({ lead: { id: lead!.id, score: 5 }, updateMask: ["score"] }))).code).toBe(Status.NOT_FOUND);
    expect((await rpcError(b.client.deleteLead({ id: lead!.id }))).code).toBe(Status.NOT_FOUND);
    expect((await b.client.listLeads({})).leads).toEqual([]);
    expect((await a.client.listLeads({})).leads.map((found) => found.id)).toEqual([lead!.id]);
    a.close();
    b.close();
  });

  it("answers UNAUTHENTICATED without a valid token and PERMISSION_DENIED for a role the rule lacks", async () => {
    const anonymous = leadClient(address);
    expect((await rpcError(anonymous.client.listLeads({}))).code).toBe(Status.UNAUTHENTICATED);
    anonymous.close();
    const expired = leadClient(address, mintToken({ tenant: "t", sub: "u", roles: ["admin"], ttlSeconds: -120 }));
    expect((await rpcError(expired.client.listLeads({}))).code).toBe(Status.UNAUTHENTICATED);
    expired.close();
    const agent = clientFor(uniqueTenant("agent-delete"), ["agent"], "agent-1");
    expect((await rpcError(agent.client.deleteLead({ id: "aaaaaaaaaaaaaaaaaaaaaaaa" }))).code).toBe(Status.PERMISSION_DENIED);
    expect((await rpcError(agent.client.batchGetLeads({ tenantId: "x", ids: ["a"] }))).code).toBe(Status.PERMISSION_DENIED);
    agent.close();
  });
});

describe("ListLeads", () => {
  const tenant = uniqueTenant("list");
  let client: ReturnType<typeof clientFor>["client"];
  let close: () => void;
  const created: Lead[] = [];

  beforeAll(async () => {
    ({ client, close } = clientFor(tenant));
    const statuses = [LeadStatus.LEAD_STATUS_NEW, LeadStatus.LEAD_STATUS_CONTACTED, LeadStatus.LEAD_STATUS_QUALIFIED];
    for (let i = 0; i < 7; i++) {
      const { lead } = await client.createLead({
        lead: sample({ email: `lead${i}@example.com`, score: i * 10, status: statuses[i % 3], assigneeId: i % 2 === 0 ? "agent-1" : "" }),
      });
      created.push(lead!);
    }
  });
  afterAll(() => close());

  it("pages through every lead exactly once, newest first by default", async () => {
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await client.listLeads({ pageSize: 3, pageToken });
      seen.push(...page.leads.map((lead) => lead.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(pages).toBe(3);
    expect(seen).toEqual(created.map((lead) => lead.id).reverse());
  });

  it("orders by score ascending or descending", async () => {
    const ascending = await client.listLeads({ orderBy: "score" });
    expect(ascending.leads.map((lead) => lead.score)).toEqual([0, 10, 20, 30, 40, 50, 60]);
    const page1 = await client.listLeads({ orderBy: "score desc", pageSize: 4 });
    const page2 = await client.listLeads({ orderBy: "score desc", pageSize: 4, pageToken: page1.nextPageToken });
    expect([...page1.leads, ...page2.leads].map((lead) => lead.score)).toEqual([60, 50, 40, 30, 20, 10, 0]);
    expect(page2.nextPageToken).toBe("");
  });

  it("filters by status, assignee, score and creation time", async () => {
    const statusFilter = await client.listLeads({ filter: "status = QUALIFIED OR status = CONTACTED" });
    expect(statusFilter.leads).toHaveLength(4);
    const assigned = await client.listLeads({ filter: 'assignee_id = "agent-1" AND score >= 20' });
    expect(assigned.leads.map((lead) => lead.score).sort((x, y) => x - y)).toEqual([20, 40, 60]);
    const since = created[4].createTime!.toISOString();
    const recent = await client.listLeads({ filter: `create_time >= "${since}"` });
    expect(recent.leads.map((lead) => lead.id).sort()).toEqual(
      created
        .slice(4)
        .map((lead) => lead.id)
        .sort(),
    );
    const bySource = await client.listLeads({ filter: "source = REFERRAL" });
    expect(bySource.leads).toEqual([]);
  });

  it("rejects a bad filter, order_by, page size or page token with field violations", async () => {
    expect(details(await rpcError(client.listLeads({ filter: "email = x" }))).fields).toEqual(["filter"]);
    expect(details(await rpcError(client.listLeads({ orderBy: "email" }))).fields).toEqual(["order_by"]);
    expect(details(await rpcError(client.listLeads({ pageSize: -1 }))).fields).toEqual(["page_size"]);
    const page = await client.listLeads({ pageSize: 2 });
    const reused = await rpcError(client.listLeads({ pageSize: 2, pageToken: page.nextPageToken, filter: "score > 0" }));
    expect(details(reused)).toMatchObject({ reason: "INVALID_PAGE_TOKEN", fields: ["page_token"] });
    expect(details(await rpcError(client.listLeads({ pageToken: "garbage!" }))).reason).toBe("INVALID_PAGE_TOKEN");
  });
});

describe("UpdateLead", () => {
  it("applies the mask, bumps the etag and records a status change activity", async () => {
    const { client, close } = clientFor(uniqueTenant("update"));
    const { lead } = await client.createLead({ lead: sample({ score: 10 }) });
    const updated = await client.updateLead({
      lead: { id: lead!.id, etag: lead!.etag, status: LeadStatus.LEAD_STATUS_QUALIFIED, score: 90, firstName: "ignored" },
      updateMask: ["status", "score"],
    });
    expect(updated.lead).toMatchObject({ status: LeadStatus.LEAD_STATUS_QUALIFIED, score: 90, firstName: "Ada", etag: "2" });
    expect(updated.lead!.updateTime!.getTime()).toBeGreaterThanOrEqual(lead!.updateTime!.getTime());
    const { activities } = await client.listLeadActivities({ leadId: lead!.id });
    expect(activities).toHaveLength(1);
    expect(activities[0].detail).toEqual({
      $case: "statusChange",
      value: { fromStatus: LeadStatus.LEAD_STATUS_NEW, toStatus: LeadStatus.LEAD_STATUS_QUALIFIED },
    });
    close();
  });

  it("refuses a stale etag with ABORTED and the current etag", async () => {
    const { client, close } = clientFor(uniqueTenant("etag"));
    const { lead } = await client.createLead({ lead: sample() });
    await client.updateLead({ lead: { id: lead!.id, etag: "1", score: 1 }, updateMask: ["score"] });
    const stale = await rpcError(client.updateLead({ lead: { id: lead!.id, etag: "1", score: 2 }, updateMask: ["score"] }));
    expect(stale.code).toBe(Status.ABORTED);
    expect(details(stale)).toMatchObject({ reason: "ETAG_MISMATCH", metadata: { current_etag: "2" } });
    expect((await client.getLead({ id: lead!.id })).lead!.score).toBe(1);
    close();
  });

  it("lands every concurrent update without etag: none lost, none refused (last writer wins)", async () => {
    const { client, close } = clientFor(uniqueTenant("race"));
    const { lead } = await client.createLead({ lead: sample() });
    const writers = 12;
    const results = await Promise.all(
      Array.from({ length: writers }, (_, i) => client.updateLead({ lead: { id: lead!.id, tags: [`t${i}`] }, updateMask: ["tags"] })),
    );
    // Each write got its own revision, and the lead holds the one acknowledged last.
    const etags = results.map((result) => Number(result.lead!.etag)).sort((a, b) => a - b);
    expect(etags).toEqual(Array.from({ length: writers }, (_, i) => 2 + i));
    const final = (await client.getLead({ id: lead!.id })).lead!;
    expect(final.etag).toBe(String(1 + writers));
    expect(final.tags).toEqual(results.find((result) => result.lead!.etag === final.etag)!.lead!.tags);
    close();
  });

  it("validates the result and the mask", async () => {
    const { client, close } = clientFor(uniqueTenant("update-invalid"));
    const { lead } = await client.createLead({ lead: sample() });
    expect(details(await rpcError(client.updateLead({ lead: { id: lead!.id, email: "" }, updateMask: ["email"] }))).fields).toEqual(["lead.email"]);
    expect(details(await rpcError(client.updateLead({ lead: { id: lead!.id }, updateMask: ["tenant_id"] }))).fields).toEqual(["update_mask"]);
    expect(details(await rpcError(client.updateLead({}))).fields).toEqual(["lead"]);
    close();
  });
});

describe("soft delete", () => {
  it("hides deleted leads from List unless asked, blocks updates, and can undelete", async () => {
    const { client, close } = clientFor(uniqueTenant("delete"));
    const { lead } = await client.createLead({ lead: sample() });
    const deleted = await client.deleteLead({ id: lead!.id });
    expect(deleted.lead!.deleteTime).toBeInstanceOf(Date);
    expect((await client.getLead({ id: lead!.id })).lead!.deleteTime).toBeInstanceOf(Date);
    expect((await client.listLeads({})).leads).toEqual([]);
    expect((await client.listLeads({ showDeleted: true })).leads.map((found) => found.id)).toEqual([lead!.id]);
    expect((await rpcError(client.updateLead({ lead: { id: lead!.id, score: 3 }, updateMask: ["score"] }))).code).toBe(Status.FAILED_PRECONDITION);
    const again = await client.deleteLead({ id: lead!.id });
    expect(again.lead!.etag).toBe(deleted.lead!.etag);
    const restored = await client.undeleteLead({ id: lead!.id });
    expect(restored.lead!.deleteTime).toBeUndefined();
    expect((await rpcError(client.undeleteLead({ id: lead!.id }))).code).toBe(Status.FAILED_PRECONDITION);
    expect((await rpcError(client.deleteLead({ id: lead!.id, etag: "1" }))).code).toBe(Status.ABORTED);
    close();
  });
});

describe("lead activities", () => {
  it("records notes and calls and lists them newest first with paging", async () => {
    const { client, close } = clientFor(uniqueTenant("activity"));
    const { lead } = await client.createLead({ lead: sample() });
    await client.createLeadActivity({ leadId: lead!.id, activity: { detail: { $case: "note", value: { text: "first" } } } });
    const call = { direction: CallDirection.CALL_DIRECTION_OUTBOUND, outcome: CallOutcome.CALL_OUTCOME_VOICEMAIL, durationSeconds: 30, summary: "" };
    await client.createLeadActivity({ leadId: lead!.id, activity: { detail: { $case: "call", value: call } } });
    await client.createLeadActivity({ leadId: lead!.id, activity: { detail: { $case: "note", value: { text: "third" } } } });
    const first = await client.listLeadActivities({ leadId: lead!.id, pageSize: 2 });
    const second = await client.listLeadActivities({ leadId: lead!.id, pageSize: 2, pageToken: first.nextPageToken });
    const kinds = [...first.activities, ...second.activities].map((activity) => activity.detail?.$case);
    expect(kinds).toEqual(["note", "call", "note"]);
    expect(first.activities[0].detail).toEqual({ $case: "note", value: { text: "third" } });
    expect(second.nextPageToken).toBe("");
    expect((await rpcError(client.listLeadActivities({ leadId: "aaaaaaaaaaaaaaaaaaaaaaaa" }))).code).toBe(Status.NOT_FOUND);
    expect(details(await rpcError(client.createLeadActivity({ leadId: lead!.id, activity: {} }))).fields).toEqual(["activity"]);
    close();
  });
});

describe("agent visibility", () => {
  it("shows agents their own and unassigned leads only, and lets them assign only to themselves", async () => {
    const tenant = uniqueTenant("visibility");
    const manager = clientFor(tenant);
    const agent = clientFor(tenant, ["agent"], "agent-1");
    const mine = (await manager.client.createLead({ lead: sample({ assigneeId: "agent-1" }) })).lead!;
    const others = (await manager.client.createLead({ lead: sample({ assigneeId: "agent-2" }) })).lead!;
    const pool = (await manager.client.createLead({ lead: sample() })).lead!;
    const visible = (await agent.client.listLeads({})).leads.map((lead) => lead.id).sort();
    expect(visible).toEqual([mine.id, pool.id].sort());
    expect((await rpcError(agent.client.getLead({ id: others.id }))).code).toBe(Status.NOT_FOUND);
    expect((await rpcError(agent.client.listLeadActivities({ leadId: others.id }))).code).toBe(Status.NOT_FOUND);
    const taken = await agent.client.updateLead({ lead: { id: pool.id, assigneeId: "agent-1" }, updateMask: ["assignee_id"] });
    expect(taken.lead!.assigneeId).toBe("agent-1");
    expect((await rpcError(agent.client.updateLead({ lead: { id: mine.id, assigneeId: "agent-2" }, updateMask: ["assignee_id"] }))).code).toBe(
      Status.PERMISSION_DENIED,
    );
    expect((await rpcError(agent.client.createLead({ lead: sample({ assigneeId: "agent-2" }) }))).code).toBe(Status.PERMISSION_DENIED);
    expect((await manager.client.listLeads({})).leads).toHaveLength(3);
    manager.close();
    agent.close();
  });
});

const BATCH_GET = "/leads.v1.LeadService/BatchGetLeads";

/** MESH_PEERS with `path` added to `peer`'s allowed calls. */
function allowing(meshPeers: string | undefined, peer: string, path: string): string {
  const peers = JSON.parse(meshPeers ?? "{}") as Record<string, string[]>;
  return JSON.stringify({ ...peers, [peer]: [...(peers[peer] ?? []), path] });
}

describe("BatchGetLeads", () => {
  it("returns the caller's leads in request order and skips unknown ids", async () => {
    const tenant = uniqueTenant("batch");
    const { client, close } = clientFor(tenant);
    const created = (await client.createLead({ lead: sample() })).lead!;
    // No service reads leads in bulk today (mesh/topology.yaml); a leads whose allow-list opens it to buyers serves it to
    // buyers' certificate, for the tenant it names.
    const opened = await startInProcess("leads", (env, fetchKeys) =>
      startLeads({ ...env, MESH_PEERS: allowing(env.MESH_PEERS, "buyers", BATCH_GET) }, fetchKeys),
    );
    const buyers = serviceClient(LeadServiceDefinition, opened.address, "buyers", tenant, { server: "leads" });
    // Its own database: the leads are created there.
    const manager = leadClient(opened.address, mintToken({ tenant, sub: "manager-1", roles: ["manager"] }));
    const one = (await manager.client.createLead({ lead: sample() })).lead!;
    const two = (await manager.client.createLead({ lead: sample() })).lead!;
    const { leads } = await buyers.client.batchGetLeads({ tenantId: tenant, ids: [two.id, "aaaaaaaaaaaaaaaaaaaaaaaa", one.id] });
    expect(leads.map((lead) => lead.id)).toEqual([two.id, one.id]);
    expect(details(await rpcError(buyers.client.batchGetLeads({ tenantId: "someone-else", ids: [one.id] }))).fields).toEqual(["tenant_id"]);
    buyers.close();
    manager.close();
    await opened.service.shutdown();
    // As the topology stands, neither buyers (it gets the lead with SellLead) nor analytics may call it.
    for (const peer of ["buyers", "analytics"]) {
      const notInTopology = serviceClient(LeadServiceDefinition, address, peer, tenant, { server: "leads" });
      expect((await rpcError(notInTopology.client.batchGetLeads({ tenantId: tenant, ids: [created.id] }))).code).toBe(Status.PERMISSION_DENIED);
      notInTopology.close();
    }
    close();
  });
});

describe("indexes", () => {
  it("can be ensured again on an existing database (service restart), dropping a retired index", async () => {
    const client = new MongoClient(meshInfo().mongoUrl);
    const db = client.db(`leads_idx_${Date.now().toString(36)}`);
    // As an older version left it: tenant_email is used by no query and costs every write.
    await db.collection("leads").createIndex({ tenantId: 1, email: 1 }, { name: "tenant_email" });
    await ensureLeadIndexes(db);
    await ensureLeadIndexes(db);
    const names = (await db.collection("leads").listIndexes().toArray()).map((index) => index.name);
    expect(names).toEqual(expect.arrayContaining(["tenant_create_time", "tenant_status"]));
    expect(names).not.toContain("tenant_email");
    await client.close();
  });
});
