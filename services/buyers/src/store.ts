/**
 * The collections the buyers service's buyer side owns: `buyers` and
 * `buyer_revisions`. Enums are stored by name (BUYER_STATE_ACTIVE), money as
 * integer minor units (domain/money.ts). No method here reads across
 * tenants: queries carry tenantId, except reads of one buyer by id, which
 * check it in code (FerretDB v1 serves only `{_id}` alone from an index; see
 * platform revisions.ts).
 *
 * The ledger is the claims. Every write of a buyer goes through
 * RevisionedWrites, which first inserts a claim `<buyerId>:<revision>` into
 * `buyer_revisions`; a write that moves the balance records its ledger entry
 * ON that claim (RevisionedWrite.entry), so the entry exists exactly when the
 * revision lands. The ledger is the buyer's claims that carry an entry, up to
 * the buyer's current revision (a claim above it is claimed, not written);
 * hence balance == sum of the ledger, with no second collection to keep in
 * step. `buyer_revisions` also has a unique index on opId: a write with an
 * opId (a sale's charge, a top-up's request id) lands at most once across
 * all buyers.
 */

import { type Buyer, type BuyerLedgerEntry, BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import type { PageCursor } from "@leadmesh/contracts/common/v1/pagination";
import { LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import {
  ensureIndexes,
  ensureRevisionClaimIndexes,
  etagOf,
  fetchPage,
  findIn,
  type MongoQuery,
  type RevisionClaim,
  type RevisionedWrite,
  RevisionedWrites,
  type SortOrder,
} from "@leadmesh/platform";
import { type Collection, type Db, ObjectId } from "mongodb";
import type { BuyerInput, CriteriaInput } from "./domain/buyer-fields";
import { type CounterKeys, counterKeys } from "./domain/calendar";
import { isLedgerRecord, ledgerEntryType } from "./domain/ledger";
import { toAmount } from "./domain/money";

export const BUYERS_COLLECTION = "buyers";
export const BUYER_CLAIMS_COLLECTION = "buyer_revisions";

export interface CriteriaDocument {
  /** LeadSource names. */
  sources: string[];
  countryCodes: string[];
  minScore: number;
  maxScore: number;
  postalCodePrefixes: string[];
  tags: string[];
  maxLeadAgeSeconds: number | null;
}

/** Sales counted against the caps, per day and month of the tenant's time zone (domain/calendar.ts). */
export interface SaleCounters {
  /** "YYYY-MM-DD" the dayCount belongs to; "" before the first sale. */
  day: string;
  dayCount: number;
  /** "YYYY-MM" the monthCount belongs to; "" before the first sale. */
  month: string;
  monthCount: number;
}

export interface BuyerDocument {
  _id: string;
  tenantId: string;
  displayName: string;
  contactEmail: string;
  contactPhone: string;
  company: string;
  /** BuyerState name. */
  state: string;
  criteria: CriteriaDocument;
  /** The currency of price, balance and ledger; fixed at create. */
  currencyCode: string;
  pricePerLeadMinor: number;
  balanceMinor: number;
  /** 0: unlimited. */
  dailyCap: number;
  monthlyCap: number;
  counters: SaleCounters;
  returnWindowSeconds: number;
  createTime: Date;
  updateTime: Date;
  deleteTime: Date | null;
  /** Incremented on every write; the etag is derived from it. */
  revision: number;
}

export type BuyerWrite = RevisionedWrite<BuyerDocument>;
export type BuyerWriteResult = Awaited<ReturnType<RevisionedWrites<BuyerDocument>["write"]>>;

export function newId(): string {
  return new ObjectId().toHexString();
}

export async function ensureBuyerIndexes(db: Db): Promise<void> {
  await ensureIndexes(db.collection(BUYERS_COLLECTION), [
    { key: { tenantId: 1, displayName: 1, _id: 1 }, name: "tenant_display_name" },
    { key: { tenantId: 1, createTime: -1, _id: -1 }, name: "tenant_create_time" },
    { key: { tenantId: 1, updateTime: -1, _id: -1 }, name: "tenant_update_time" },
  ]);
  await ensureRevisionClaimIndexes(db, BUYER_CLAIMS_COLLECTION, { operations: true });
}

export class BuyerStore {
  private readonly buyers: Collection<BuyerDocument>;
  private readonly claims: Collection<RevisionClaim>;
  /** The buyers' revisioned writes; sales/ also seals and finds operations through it (sealOperation, findOperation). */
  readonly revisions: RevisionedWrites<BuyerDocument>;

  constructor(db: Db) {
    this.buyers = db.collection<BuyerDocument>(BUYERS_COLLECTION);
    this.claims = db.collection<RevisionClaim>(BUYER_CLAIMS_COLLECTION);
    this.revisions = new RevisionedWrites("buyer", this.buyers, this.claims);
  }

  async insert(tenantId: string, input: BuyerInput, now: Date, id = newId()): Promise<BuyerDocument> {
    const document: BuyerDocument = {
      _id: id,
      tenantId,
      ...storedFields(input),
      currencyCode: input.pricePerLead.currencyCode,
      balanceMinor: 0,
      counters: { day: "", dayCount: 0, month: "", monthCount: 0 },
      createTime: now,
      updateTime: now,
      deleteTime: null,
      revision: 1,
    };
    await this.buyers.insertOne(document);
    return document;
  }

  /** The buyer with this id in this tenant (deleted ones included); null when it does not exist or belongs to another tenant. */
  async get(tenantId: string, id: string): Promise<BuyerDocument | null> {
    const document = await this.buyers.findOne({ _id: id });
    return document?.tenantId === tenantId ? document : null;
  }

  /** Every buyer of the tenant that is not deleted (paused ones included): the candidates of a sale. */
  listLive(tenantId: string): Promise<BuyerDocument[]> {
    return this.buyers.find({ tenantId, deleteTime: null }).toArray();
  }

  list(tenantId: string, query: MongoQuery, showDeleted: boolean, order: SortOrder, pageSize: number, cursor: PageCursor | undefined, fingerprint: string) {
    const scope: MongoQuery = showDeleted ? { tenantId } : { tenantId, deleteTime: null };
    const combined = Object.keys(query).length === 0 ? scope : { $and: [scope, query] };
    return fetchPage<BuyerDocument>(findIn(this.buyers), combined, order, pageSize, cursor, fingerprint);
  }

  /**
   * Read-modify-write with optimistic concurrency (RevisionedWrites.write):
   * `entry` lands with the revision (a ledger entry), `opId` makes the write
   * an operation applied at most once (a replay answers `replayed`).
   */
  write(request: BuyerWrite): Promise<BuyerWriteResult> {
    return this.revisions.write(request);
  }

  /** The claim of one revision of a buyer (by _id alone; the caller checks the tenant). */
  claimOf(buyerId: string, revision: number): Promise<RevisionClaim | null> {
    return this.claims.findOne({ _id: `${buyerId}:${revision}` });
  }

  /**
   * The buyer's ledger, newest first: its claims carrying an entry, up to
   * `buyer.revision` (claims above it have not landed, or never will).
   */
  async listLedger(buyer: BuyerDocument, pageSize: number, cursor: PageCursor | undefined, fingerprint: string) {
    const page = await fetchPage<RevisionClaim>(
      findIn(this.claims),
      { tenantId: buyer.tenantId, subjectId: buyer._id, revision: { $lte: buyer.revision }, entry: { $exists: true } },
      LEDGER_ORDER,
      pageSize,
      cursor,
      fingerprint,
    );
    return { entries: page.items.filter((claim) => isLedgerRecord(claim.entry)).map(toLedgerEntry), nextPageToken: page.nextPageToken };
  }
}

export const LEDGER_ORDER: SortOrder = { path: "revision", kind: "number", descending: true };

export function storedCriteria(criteria: CriteriaInput): CriteriaDocument {
  return { ...criteria, sources: criteria.sources.map((source) => LeadSource[source]), countryCodes: [...criteria.countryCodes], tags: [...criteria.tags] };
}

export function criteriaOfDocument(criteria: CriteriaDocument): CriteriaInput {
  return {
    sources: criteria.sources.map((name) => enumValue(LeadSource, name)),
    countryCodes: criteria.countryCodes ?? [],
    minScore: criteria.minScore ?? 0,
    maxScore: criteria.maxScore ?? 0,
    postalCodePrefixes: criteria.postalCodePrefixes ?? [],
    tags: criteria.tags ?? [],
    maxLeadAgeSeconds: criteria.maxLeadAgeSeconds ?? null,
  };
}

/** The stored form of the client-settable fields (the currency is set once, by insert). */
export function storedFields(input: BuyerInput) {
  return {
    displayName: input.displayName,
    contactEmail: input.contactEmail,
    contactPhone: input.contactPhone,
    company: input.company,
    state: BuyerState[input.state],
    criteria: storedCriteria(input.criteria),
    pricePerLeadMinor: input.pricePerLead.amountMinor,
    dailyCap: input.dailyCap,
    monthlyCap: input.monthlyCap,
    returnWindowSeconds: input.returnWindowSeconds,
  } satisfies Partial<BuyerDocument>;
}

export function inputOfDocument(document: BuyerDocument): BuyerInput {
  return {
    displayName: document.displayName,
    contactEmail: document.contactEmail,
    contactPhone: document.contactPhone,
    company: document.company,
    state: enumValue(BuyerState, document.state),
    criteria: criteriaOfDocument(document.criteria),
    pricePerLead: { currencyCode: document.currencyCode, amountMinor: document.pricePerLeadMinor },
    dailyCap: document.dailyCap,
    monthlyCap: document.monthlyCap,
    returnWindowSeconds: document.returnWindowSeconds,
  };
}

/** Sales counted today and this month at `keys`: a counter of another day or month has reset. */
export function salesCounts(counters: SaleCounters, keys: CounterKeys): { today: number; thisMonth: number } {
  return { today: counters.day === keys.day ? counters.dayCount : 0, thisMonth: counters.month === keys.month ? counters.monthCount : 0 };
}

/** The buyer as the API returns it at `now`, its sale counters read in the tenant's time zone. */
export function toBuyer(document: BuyerDocument, now: Date, timeZone: string): Buyer {
  const counts = salesCounts(document.counters, counterKeys(now, timeZone));
  const criteria = criteriaOfDocument(document.criteria);
  return {
    id: document._id,
    tenantId: document.tenantId,
    displayName: document.displayName,
    contactEmail: document.contactEmail,
    contactPhone: document.contactPhone,
    company: document.company,
    state: enumValue(BuyerState, document.state),
    criteria: {
      sources: criteria.sources,
      countryCodes: criteria.countryCodes,
      minScore: criteria.minScore,
      maxScore: criteria.maxScore,
      postalCodePrefixes: criteria.postalCodePrefixes,
      tags: criteria.tags,
      maxLeadAge: criteria.maxLeadAgeSeconds === null ? undefined : { seconds: String(criteria.maxLeadAgeSeconds), nanos: 0 },
    },
    pricePerLead: toAmount(document.currencyCode, document.pricePerLeadMinor),
    dailyCap: String(document.dailyCap),
    monthlyCap: String(document.monthlyCap),
    balance: toAmount(document.currencyCode, document.balanceMinor),
    salesToday: String(counts.today),
    salesThisMonth: String(counts.thisMonth),
    returnWindow: { seconds: String(document.returnWindowSeconds), nanos: 0 },
    createTime: document.createTime,
    updateTime: document.updateTime,
    deleteTime: document.deleteTime ?? undefined,
    etag: etagOf(document),
  };
}

/** A landed claim with a ledger record as the API's ledger entry. */
export function toLedgerEntry(claim: RevisionClaim): BuyerLedgerEntry {
  const entry = claim.entry;
  if (!isLedgerRecord(entry)) throw new Error(`claim ${claim._id} carries no ledger entry`);
  return {
    id: ledgerEntryId(claim),
    tenantId: claim.tenantId,
    buyerId: claim.subjectId,
    type: ledgerEntryType(entry.type),
    amount: toAmount(entry.currencyCode, entry.amountMinor),
    balanceAfter: toAmount(entry.currencyCode, entry.balanceAfterMinor),
    leadSaleId: entry.leadSaleId ?? "",
    leadId: entry.leadId ?? "",
    note: entry.note ?? "",
    actorId: claim.actorId,
    createTime: claim.createTime,
  };
}

/** Stable and unique: one claim per revision of a buyer. */
export function ledgerEntryId(claim: Pick<RevisionClaim, "subjectId" | "revision">): string {
  return `${claim.subjectId}-${claim.revision}`;
}

export function enumValue<E extends Record<string, string | number>>(enumObject: E, name: string | undefined): number {
  const value = name === undefined ? undefined : enumObject[name];
  return typeof value === "number" ? value : 0;
}
