/**
 * leads.v1.LeadService: one function per RPC. Each validates the request,
 * calls the store / domain rules and maps the result; errors are thrown as
 * platform DomainErrors and mapped to gRPC statuses by the kernel.
 */

import { Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import type { LeadServiceImplementation } from "@leadmesh/contracts/leads/v1/leads";
import {
  type CallerContext,
  checkId,
  compileFilter,
  decodePageToken,
  enumFilterValues,
  FailedPreconditionError,
  type FilterFields,
  IdempotencyKeys,
  NotFoundError,
  type OrderableField,
  parseOrderBy,
  queryFingerprint,
  type ReadCache,
  type RevisionedChanges,
  requestFingerprint,
  requireId,
  resolvePageSize,
  Violations,
} from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import type { Distributor } from "./distribution/distribute";
import type { LeadWriter } from "./distribution/lead-writer";
import { releaseLeadSale } from "./distribution/release";
import { clientActivity } from "./domain/activity-rules";
import { applyUpdate, newLead } from "./domain/lead-rules";
import { checkDeletable, checkStatusChange } from "./domain/sale-rules";
import { checkAssignment, mayView, visibleLeads } from "./domain/visibility";
import { inputOfDocument, type LeadDocument, type LeadStore, storedFields, toLead } from "./store";

type Context = CallContext & CallerContext;

const LEAD_FILTER_FIELDS: FilterFields = {
  status: { path: "status", type: { kind: "enum", values: enumFilterValues(LeadStatus, "LEAD_STATUS_") } },
  source: { path: "source", type: { kind: "enum", values: enumFilterValues(LeadSource, "LEAD_SOURCE_") } },
  assignee_id: { path: "assigneeId", type: { kind: "string" } },
  country_code: { path: "countryCode", type: { kind: "string" } },
  score: { path: "score", type: { kind: "integer" } },
  create_time: { path: "createTime", type: { kind: "timestamp" } },
  update_time: { path: "updateTime", type: { kind: "timestamp" } },
};

const LEAD_ORDER_FIELDS: Record<string, OrderableField> = {
  create_time: { path: "createTime", kind: "date" },
  update_time: { path: "updateTime", kind: "date" },
  score: { path: "score", kind: "number" },
};

const ACTIVITY_ORDER = { path: "createTime", kind: "date", descending: true } as const;
const MAX_BATCH = 1000;

/**
 * What a create asked for, to tell a retry (same request_id, same lead)
 * from a reused request_id (AIP-155). Map entries are sorted: their order
 * is not part of the request.
 */
function leadFingerprint(lead: Lead | undefined): string {
  const attributes = Object.fromEntries(Object.entries(lead?.attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return requestFingerprint(Lead.encode(Lead.fromPartial({ ...lead, attributes })).finish());
}

export interface LeadHandlerOptions {
  clock?: () => Date;
  /** GetLead's read cache (lead-cache.ts); without one GetLead reads the database every time. */
  cache?: ReadCache<Lead>;
}

/** Selling leads (distribution/): DistributeLead runs the distributor; ReleaseLeadSale writes through the same writer (and cache), completing a distribution its sale still holds. */
export interface LeadSales {
  distributor: Distributor;
  writer: LeadWriter;
}

/**
 * What every lead write does with its result before the write is
 * acknowledged: it reaches the read cache (read-cache.ts: visible to every
 * replica's next read). The handlers and the sale flow's LeadWriter share it.
 */
export function cachedLeadWrites(cache: ReadCache<Lead> | undefined): (lead: Lead) => Promise<Lead> {
  return async (lead) => {
    await cache?.put(lead.tenantId, lead.id, lead);
    return lead;
  };
}

export function leadHandlers(
  store: LeadStore,
  requestIds: IdempotencyKeys,
  sales: LeadSales,
  options: LeadHandlerOptions = {},
): LeadServiceImplementation<CallerContext> {
  const clock = options.clock ?? (() => new Date());
  const cache = options.cache;
  const written = cachedLeadWrites(cache);

  /**
   * GetLead's read: from the cache (or the database, filling it), then the
   * same visibility rule the database query applies (visibleLeads), so a
   * cached lead reaches exactly the callers a database read would.
   */
  async function readLead(context: Context, id: string): Promise<Lead> {
    if (!cache) return toLead(await existing(context, id));
    const tenantId = context.caller.tenantId;
    const lead = await cache.read(tenantId, id, async () => {
      const document = await store.get(tenantId, id);
      return document && toLead(document);
    });
    if (!lead || !mayView(context.caller, lead.assigneeId)) throw new NotFoundError("lead", id);
    return lead;
  }

  /** The lead if it exists in the caller's tenant and is visible to them; NOT_FOUND otherwise (no existence leak). */
  async function existing(context: Context, id: string): Promise<LeadDocument> {
    // mayView is visibleLeads' rule in code: the store reads one lead by id alone (store.get).
    const document = await store.get(context.caller.tenantId, id);
    if (!document || !mayView(context.caller, document.assigneeId)) throw new NotFoundError("lead", id);
    return document;
  }

  /** Read-modify-write of a lead the caller can see (optimistic concurrency: RevisionedWrites.write). */
  async function writeLead(
    context: Context,
    id: string,
    clientEtag: string,
    change: (current: LeadDocument) => RevisionedChanges<LeadDocument> | undefined,
  ): Promise<{ before: LeadDocument; after: LeadDocument; lead: Lead }> {
    const { before, after } = await store.write({
      id,
      actorId: context.caller.actorId,
      clientEtag,
      read: () => existing(context, id),
      change,
      signal: context.signal,
      stamp: () => ({ updateTime: clock() }),
    });
    const lead = toLead(after);
    // An unchanged lead (nothing to write) is already what the cache may hold.
    if (after.revision !== before.revision) await written(lead);
    return { before, after, lead };
  }

  return {
    async getLead(request, context) {
      return { lead: await readLead(context, requireId(request.id, "id")) };
    },

    async listLeads(request, context) {
      const violations = new Violations();
      const pageSize = resolvePageSize(request.pageSize, violations);
      const order = parseOrderBy(request.orderBy, LEAD_ORDER_FIELDS, "create_time desc", violations);
      violations.throwIfAny();
      const query = compileFilter(request.filter, LEAD_FILTER_FIELDS);
      const fingerprint = queryFingerprint(context.caller.tenantId, context.caller.actorId, request.filter.trim(), order, request.showDeleted);
      const cursor = decodePageToken(request.pageToken, fingerprint);
      const visible = visibleLeads(context.caller);
      const scoped = Object.keys(visible).length === 0 ? query : Object.keys(query).length === 0 ? visible : { $and: [visible, query] };
      const page = await store.list(context.caller.tenantId, scoped, request.showDeleted, order, pageSize, cursor, fingerprint);
      return { leads: page.items.map(toLead), nextPageToken: page.nextPageToken };
    },

    async createLead(request, context) {
      const violations = new Violations();
      IdempotencyKeys.validate(request.requestId, violations);
      violations.throwIfAny();
      const input = newLead(request.lead);
      checkAssignment(context.caller, input.assigneeId);
      const tenantId = context.caller.tenantId;
      if (request.requestId === "") return { lead: await written(toLead(await store.insert(tenantId, input, clock()))) };

      const attempt = { tenantId, actorId: context.caller.actorId, requestId: request.requestId, fingerprint: leadFingerprint(request.lead) };
      const claim = await requestIds.claim(attempt);
      if (claim.kind === "completed") return { lead: toLead(await existing(context, claim.resultId)) };
      try {
        const document = await store.insert(tenantId, input, clock());
        const lead = await written(toLead(document));
        await requestIds.complete(attempt, document._id);
        return { lead };
      } catch (error) {
        await requestIds.release(attempt).catch(() => undefined);
        throw error;
      }
    },

    async updateLead(request, context) {
      if (!request.lead) {
        const violations = new Violations();
        violations.add("lead", "is required");
        violations.throwIfAny();
      }
      const patch = request.lead as Lead;
      const id = requireId(patch.id, "lead.id");
      const { before, after, lead } = await writeLead(context, id, patch.etag, (current) => {
        if (current.deleteTime) throw new FailedPreconditionError(`lead "${id}" is deleted; undelete it first`, { resource_id: id });
        const { next, changed } = applyUpdate(inputOfDocument(current), patch, request.updateMask);
        if (changed.includes("status")) checkStatusChange(current);
        if (changed.includes("assigneeId")) checkAssignment(context.caller, next.assigneeId);
        return changed.length === 0 ? undefined : storedFields(next);
      });
      if (before.status !== after.status) {
        const from = inputOfDocument(before).status;
        const to = inputOfDocument(after).status;
        // Deterministic id: a retried write records the change once.
        await store.insertActivity(
          context.caller.tenantId,
          id,
          context.caller.actorId,
          { $case: "statusChange", value: { fromStatus: from, toStatus: to } },
          after.updateTime,
          `${id}-r${after.revision}`,
        );
      }
      return { lead };
    },

    async deleteLead(request, context) {
      const id = requireId(request.id, "id");
      const { lead } = await writeLead(context, id, request.etag, (current) => {
        if (current.deleteTime) return undefined;
        checkDeletable(current);
        return { deleteTime: clock() };
      });
      return { lead };
    },

    async undeleteLead(request, context) {
      const id = requireId(request.id, "id");
      const { lead } = await writeLead(context, id, "", (current) => {
        if (!current.deleteTime) throw new FailedPreconditionError(`lead "${id}" is not deleted`, { resource_id: id });
        return { deleteTime: null };
      });
      return { lead };
    },

    async listLeadActivities(request, context) {
      const violations = new Violations();
      const leadId = requireId(request.leadId, "lead_id");
      const pageSize = resolvePageSize(request.pageSize, violations);
      violations.throwIfAny();
      await existing(context, leadId);
      const fingerprint = queryFingerprint(context.caller.tenantId, context.caller.actorId, leadId);
      const cursor = decodePageToken(request.pageToken, fingerprint);
      return store.listActivities(context.caller.tenantId, leadId, ACTIVITY_ORDER, pageSize, cursor, fingerprint);
    },

    async createLeadActivity(request, context) {
      const leadId = requireId(request.leadId, "lead_id");
      // Existence first: another tenant's lead id answers NOT_FOUND whatever the body.
      const lead = await existing(context, leadId);
      const detail = clientActivity(request.activity);
      if (lead.deleteTime) throw new FailedPreconditionError(`lead "${leadId}" is deleted; undelete it first`, { resource_id: leadId });
      const activity = await store.insertActivity(context.caller.tenantId, leadId, context.caller.actorId, detail, clock());
      return { activity };
    },

    async distributeLead(request, context) {
      return sales.distributor.distribute(request, context);
    },

    async releaseLeadSale(request, context) {
      return releaseLeadSale(sales, request, context);
    },

    async batchGetLeads(request, context) {
      const violations = new Violations();
      if (request.tenantId !== context.caller.tenantId) violations.add("tenant_id", "must be the caller's tenant");
      if (request.ids.length === 0) violations.add("ids", "is required");
      if (request.ids.length > MAX_BATCH) violations.add("ids", `must have at most ${MAX_BATCH} entries`);
      for (const [index, id] of request.ids.entries()) violations.check(`ids[${index}]`, id, checkId);
      violations.throwIfAny();
      const found = new Map((await store.getMany(context.caller.tenantId, request.ids)).map((document) => [document._id, document]));
      return { leads: request.ids.flatMap((id) => found.get(id) ?? []).map(toLead) };
    },
  };
}
