/**
 * The collections the leads service owns: `leads` and `lead_activities`.
 * Enums are stored by name (LEAD_STATUS_NEW) so documents stay readable and
 * survive enum renumbering. No method here can read across tenants: every
 * query carries tenantId, except reads of one lead by id, which check it in
 * code instead (FerretDB v1 serves only `{_id}` alone from an index; any other
 * filter scans the whole collection: see platform revisions.ts).
 *
 * Writes go through the platform's revision claims (RevisionedWrites, in
 * `lead_revisions`), the compare-and-set that works on FerretDB and MongoDB.
 */

import type { PageCursor } from "@leadmesh/contracts/common/v1/pagination";
import { CallDirection, CallOutcome, type Lead, type LeadActivity, type LeadSaleSummary, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import {
  ensureIndexes,
  ensureRevisionClaimIndexes,
  etagOf,
  fetchPage,
  findIn,
  isDuplicateKey,
  type MongoQuery,
  type RevisionClaim,
  type RevisionedWrite,
  RevisionedWrites,
  type SortOrder,
} from "@leadmesh/platform";
import { type Collection, type Db, ObjectId } from "mongodb";
import type { ActivityDetail } from "./domain/activity-rules";
import type { LeadInput } from "./domain/lead-fields";
import type { DistributionClaim, SaleRecord } from "./domain/sale-rules";

export interface LeadDocument {
  _id: string;
  tenantId: string;
  firstName: string;
  lastName: string;
  email: string;
  phone: string;
  company: string;
  source: string;
  status: string;
  assigneeId: string;
  score: number;
  tags: string[];
  attributes: Record<string, string>;
  countryCode: string;
  postalCode: string;
  createTime: Date;
  updateTime: Date;
  deleteTime: Date | null;
  /** The sale while the lead is SOLD (DistributeLead records it, ReleaseLeadSale clears it); absent on leads never sold. */
  sale?: SaleRecord | null;
  /** Buyers that returned the lead: never sold to again (buyers' SellLead skips them). */
  returnedBuyerIds?: string[];
  /** Sale ids of returned sales: their request_ids are used up (sale-rules.ts distributionStep). Not part of the API's Lead. */
  pastSaleIds?: string[];
  /** The distribution that holds the lead while it sells it (distribution/distribute.ts); absent or null when none does. */
  distribution?: DistributionClaim | null;
  /** Incremented on every write; the etag is derived from it. */
  revision: number;
}

interface ActivityDocument {
  _id: string;
  tenantId: string;
  leadId: string;
  authorId: string;
  kind: "note" | "call" | "statusChange";
  note?: { text: string };
  call?: { direction: string; outcome: string; durationSeconds: number; summary: string };
  statusChange?: { fromStatus: string; toStatus: string };
  createTime: Date;
}

export function newId(): string {
  return new ObjectId().toHexString();
}

export async function ensureLeadIndexes(db: Db): Promise<void> {
  await ensureIndexes(db.collection("leads"), [
    { key: { tenantId: 1, createTime: -1, _id: -1 }, name: "tenant_create_time" },
    { key: { tenantId: 1, updateTime: -1, _id: -1 }, name: "tenant_update_time" },
    { key: { tenantId: 1, status: 1, createTime: -1 }, name: "tenant_status" },
    { key: { tenantId: 1, assigneeId: 1, createTime: -1 }, name: "tenant_assignee" },
  ]);
  await dropRetiredIndexes(db.collection("leads"), RETIRED_LEAD_INDEXES);
  await ensureRevisionClaimIndexes(db, "lead_revisions");
  await ensureIndexes(db.collection("lead_activities"), [{ key: { tenantId: 1, leadId: 1, createTime: -1, _id: -1 }, name: "tenant_lead_time" }]);
}

/**
 * Indexes no query uses, dropped where an older version created them: each
 * one costs every insert and update (FerretDB's SQLite rewrites every index
 * of the row on an update). tenant_email: no filter, order or lookup is by email.
 */
const RETIRED_LEAD_INDEXES = ["tenant_email"];

async function dropRetiredIndexes(collection: Collection<LeadDocument>, names: string[]): Promise<void> {
  const existing = new Set((await collection.listIndexes().toArray()).map((index) => String(index.name)));
  for (const name of names) if (existing.has(name)) await collection.dropIndex(name);
}

export class LeadStore {
  private readonly leads: Collection<LeadDocument>;
  private readonly activities: Collection<ActivityDocument>;
  private readonly writes: RevisionedWrites<LeadDocument>;

  constructor(db: Db) {
    this.leads = db.collection<LeadDocument>("leads");
    this.activities = db.collection<ActivityDocument>("lead_activities");
    this.writes = new RevisionedWrites("lead", this.leads, db.collection<RevisionClaim>("lead_revisions"));
  }

  async insert(tenantId: string, input: LeadInput, now: Date): Promise<LeadDocument> {
    const document: LeadDocument = {
      _id: newId(),
      tenantId,
      ...storedFields(input),
      createTime: now,
      updateTime: now,
      deleteTime: null,
      revision: 1,
    };
    await this.leads.insertOne(document);
    return document;
  }

  /** The lead with this id in this tenant; null when it does not exist or belongs to another tenant. */
  async get(tenantId: string, id: string): Promise<LeadDocument | null> {
    const document = await this.leads.findOne({ _id: id });
    return document?.tenantId === tenantId ? document : null;
  }

  async getMany(tenantId: string, ids: string[]): Promise<LeadDocument[]> {
    return this.leads.find({ tenantId, _id: { $in: ids } }).toArray();
  }

  list(tenantId: string, query: MongoQuery, showDeleted: boolean, order: SortOrder, pageSize: number, cursor: PageCursor | undefined, fingerprint: string) {
    const scope: MongoQuery = showDeleted ? { tenantId } : { tenantId, deleteTime: null };
    const combined = Object.keys(query).length === 0 ? scope : { $and: [scope, query] };
    return fetchPage<LeadDocument>(findIn(this.leads), combined, order, pageSize, cursor, fingerprint);
  }

  /** Read-modify-write with optimistic concurrency (see RevisionedWrites.write). */
  write(request: RevisionedWrite<LeadDocument>): Promise<{ before: LeadDocument; after: LeadDocument }> {
    return this.writes.write(request);
  }

  async insertActivity(tenantId: string, leadId: string, authorId: string, detail: ActivityDetail, now: Date, id = newId()): Promise<LeadActivity> {
    const document: ActivityDocument = { _id: id, tenantId, leadId, authorId, kind: detail.$case, createTime: now };
    if (detail.$case === "note") document.note = { text: detail.value.text };
    if (detail.$case === "call") {
      document.call = {
        direction: CallDirection[detail.value.direction],
        outcome: CallOutcome[detail.value.outcome],
        durationSeconds: detail.value.durationSeconds,
        summary: detail.value.summary,
      };
    }
    if (detail.$case === "statusChange") {
      document.statusChange = { fromStatus: LeadStatus[detail.value.fromStatus], toStatus: LeadStatus[detail.value.toStatus] };
    }
    try {
      await this.activities.insertOne(document);
    } catch (error) {
      // A retried status-change write reuses its deterministic id: already recorded.
      if (!isDuplicateKey(error)) throw error;
    }
    return toActivity(document);
  }

  async listActivities(tenantId: string, leadId: string, order: SortOrder, pageSize: number, cursor: PageCursor | undefined, fingerprint: string) {
    const page = await fetchPage<ActivityDocument>(findIn(this.activities), { tenantId, leadId }, order, pageSize, cursor, fingerprint);
    return { activities: page.items.map(toActivity), nextPageToken: page.nextPageToken };
  }
}

export function storedFields(input: LeadInput): Omit<LeadDocument, "_id" | "tenantId" | "createTime" | "updateTime" | "deleteTime" | "revision"> {
  return {
    ...input,
    source: LeadSource[input.source],
    status: LeadStatus[input.status],
    tags: [...input.tags],
    attributes: { ...input.attributes },
  };
}

export function inputOfDocument(document: LeadDocument): LeadInput {
  return {
    firstName: document.firstName,
    lastName: document.lastName,
    email: document.email,
    phone: document.phone,
    company: document.company,
    source: enumValue(LeadSource, document.source),
    status: enumValue(LeadStatus, document.status),
    assigneeId: document.assigneeId,
    score: document.score,
    tags: document.tags ?? [],
    attributes: document.attributes ?? {},
    countryCode: document.countryCode,
    postalCode: document.postalCode,
  };
}

export function toLead(document: LeadDocument): Lead {
  return {
    id: document._id,
    tenantId: document.tenantId,
    ...inputOfDocument(document),
    sale: document.sale ? toSaleSummary(document.sale) : undefined,
    returnedBuyerIds: [...(document.returnedBuyerIds ?? [])],
    createTime: document.createTime,
    updateTime: document.updateTime,
    deleteTime: document.deleteTime ?? undefined,
    etag: etagOf(document),
  };
}

export function toSaleSummary(sale: SaleRecord): LeadSaleSummary {
  return {
    leadSaleId: sale.leadSaleId,
    buyerId: sale.buyerId,
    price: { currencyCode: sale.currencyCode, amountMinor: String(sale.priceMinor) },
    sellTime: sale.sellTime,
  };
}

function toActivity(document: ActivityDocument): LeadActivity {
  const base = { id: document._id, leadId: document.leadId, tenantId: document.tenantId, authorId: document.authorId, createTime: document.createTime };
  switch (document.kind) {
    case "note":
      return { ...base, detail: { $case: "note", value: { text: document.note?.text ?? "" } } };
    case "call":
      return {
        ...base,
        detail: {
          $case: "call",
          value: {
            direction: enumValue(CallDirection, document.call?.direction),
            outcome: enumValue(CallOutcome, document.call?.outcome),
            durationSeconds: document.call?.durationSeconds ?? 0,
            summary: document.call?.summary ?? "",
          },
        },
      };
    case "statusChange":
      return {
        ...base,
        detail: {
          $case: "statusChange",
          value: {
            fromStatus: enumValue(LeadStatus, document.statusChange?.fromStatus),
            toStatus: enumValue(LeadStatus, document.statusChange?.toStatus),
          },
        },
      };
  }
}

function enumValue<E extends Record<string, string | number>>(enumObject: E, name: string | undefined): number {
  const value = name === undefined ? undefined : enumObject[name];
  return typeof value === "number" ? value : 0;
}
