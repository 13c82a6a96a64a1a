/**
 * The collections of lead sales: `lead_sales` (one SaleDocument per sale,
 * _id = the sale id D chosen by leads), its revision claims in
 * `lead_sale_revisions`, and `lead_sale_returns`, one small marker per
 * return in progress (_id = D) so the sweeper (sweeper.ts) finds unfinished
 * returns without scanning every sale: FerretDB v1 decodes the whole
 * collection in Go for any filter but `{_id}` (platform revisions.ts).
 *
 * A sale document is inserted once, after its buyer was charged (sell.ts);
 * an insert that finds it there reads it instead. Reads of one sale are by
 * _id alone with the tenant checked here. Enums are stored by name.
 *
 * ensureSaleIndexes must run at startup (buyers main.ts passes it to
 * connectMongo together with the buyer indexes).
 */

import { LeadSale, LeadSaleReturnReason, LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import type { PageCursor } from "@leadmesh/contracts/common/v1/pagination";
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
  type RevisionedWriteResult,
  RevisionedWrites,
  type SortOrder,
} from "@leadmesh/platform";
import type { Collection, Db } from "mongodb";
import { toAmount } from "../domain/money";

export const SALES_COLLECTION = "lead_sales";
export const SALE_CLAIMS_COLLECTION = "lead_sale_revisions";
export const SALE_RETURNS_COLLECTION = "lead_sale_returns";

export type SaleStateName = "LEAD_SALE_STATE_SOLD" | "LEAD_SALE_STATE_RETURNED";

export interface SaleDocument {
  /** The sale id D: also the charge's operation `sale:<D>` on the buyer. */
  _id: string;
  tenantId: string;
  leadId: string;
  buyerId: string;
  priceMinor: number;
  currencyCode: string;
  state: SaleStateName;
  /** LeadSaleReturnReason name; "" while SOLD. */
  returnReason: string;
  returnComment: string;
  createTime: Date;
  updateTime: Date;
  /** When the charge landed. */
  sellTime: Date;
  /** sellTime + the buyer's return window at the time of sale. */
  returnDeadline: Date;
  returnTime: Date | null;
  /** RETURNED only: the REFUND ledger entry landed (operation `refund:<D>`). */
  refunded: boolean;
  /** RETURNED only: leads.ReleaseLeadSale answered, the lead is distributable again. */
  leadReleased: boolean;
  revision: number;
}

/** A return in progress: upserted before the sale is marked RETURNED, deleted once refund and release are done. */
export interface SaleReturnMarker {
  _id: string;
  tenantId: string;
  /** When the latest return attempt began (each attempt sets it: the marker is as young as the newest call). */
  startTime: Date;
  /** The sweeper's failed attempts to finish it since the last call (absent: none yet). */
  attempts?: number;
  /** The sweeper leaves it alone until then (absent: due now). */
  nextAttemptTime?: Date;
}

/** What the returns sweeper needs of the store (sweeper.ts; a fake in its unit test). */
export type ReturnMarkerStore = Pick<SaleStore, "get" | "listReturnsDue" | "markReturnStarted" | "markReturnDone" | "deferReturn">;

export type SaleWrite = RevisionedWrite<SaleDocument>;

export async function ensureSaleIndexes(db: Db): Promise<void> {
  await ensureIndexes(db.collection(SALES_COLLECTION), [
    { key: { tenantId: 1, createTime: -1, _id: -1 }, name: "tenant_create_time" },
    { key: { tenantId: 1, sellTime: -1, _id: -1 }, name: "tenant_sell_time" },
    { key: { tenantId: 1, buyerId: 1, createTime: -1, _id: -1 }, name: "tenant_buyer_create_time" },
    { key: { tenantId: 1, leadId: 1 }, name: "tenant_lead" },
  ]);
  await ensureRevisionClaimIndexes(db, SALE_CLAIMS_COLLECTION);
}

export class SaleStore {
  private readonly sales: Collection<SaleDocument>;
  private readonly returns: Collection<SaleReturnMarker>;
  private readonly writes: RevisionedWrites<SaleDocument>;

  constructor(db: Db) {
    this.sales = db.collection<SaleDocument>(SALES_COLLECTION);
    this.returns = db.collection<SaleReturnMarker>(SALE_RETURNS_COLLECTION);
    this.writes = new RevisionedWrites("lead sale", this.sales, db.collection<RevisionClaim>(SALE_CLAIMS_COLLECTION));
  }

  /** The sale with this id in this tenant; null when it does not exist or belongs to another tenant. */
  async get(tenantId: string, id: string): Promise<SaleDocument | null> {
    const document = await this.sales.findOne({ _id: id });
    return document?.tenantId === tenantId ? document : null;
  }

  /**
   * Records the sale; when it is already recorded (another attempt of the
   * same sale got there first), answers the recorded one: the first record
   * of a sale is the sale.
   */
  async insertOnce(document: SaleDocument): Promise<SaleDocument> {
    try {
      await this.sales.insertOne(document);
      return document;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    const existing = await this.sales.findOne({ _id: document._id });
    if (existing?.tenantId !== document.tenantId) throw new Error(`lead sale "${document._id}" exists in another tenant`);
    return existing;
  }

  write(request: SaleWrite): Promise<RevisionedWriteResult<SaleDocument>> {
    return this.writes.write(request);
  }

  /** `buyerId` undefined: the sales of every buyer of the tenant. */
  list(
    tenantId: string,
    buyerId: string | undefined,
    query: MongoQuery,
    order: SortOrder,
    pageSize: number,
    cursor: PageCursor | undefined,
    fingerprint: string,
  ) {
    const scope: MongoQuery = buyerId === undefined ? { tenantId } : { tenantId, buyerId };
    const combined = Object.keys(query).length === 0 ? scope : { $and: [scope, query] };
    return fetchPage<SaleDocument>(findIn(this.sales), combined, order, pageSize, cursor, fingerprint);
  }

  /**
   * Marks a return as in progress as of `now`: an attempt of a return that
   * has a marker already (an earlier attempt failed) makes it young again,
   * so the sweeper never takes the marker of a running call for stale.
   * Due to the sweeper at once, its backoff reset.
   */
  async markReturnStarted(tenantId: string, saleId: string, now: Date): Promise<void> {
    const update = { $set: { tenantId, startTime: now, attempts: 0, nextAttemptTime: now } };
    try {
      await this.returns.updateOne({ _id: saleId }, update, { upsert: true });
    } catch (error) {
      // Two upserts raced to insert it: the other inserted, this one updates.
      if (!isDuplicateKey(error)) throw error;
      await this.returns.updateOne({ _id: saleId }, update);
    }
  }

  /** `startTime` given: only the marker of that attempt (a newer attempt's marker stays). */
  async markReturnDone(saleId: string, startTime?: Date): Promise<void> {
    await this.returns.deleteOne(startTime === undefined ? { _id: saleId } : { _id: saleId, startTime });
  }

  /** The sweeper leaves the marker until `nextAttemptTime` (never re-creates a deleted one). */
  async deferReturn(saleId: string, attempts: number, nextAttemptTime: Date): Promise<void> {
    await this.returns.updateOne({ _id: saleId }, { $set: { attempts, nextAttemptTime } });
  }

  /**
   * Returns in progress that are due, least recently deferred first (a
   * small collection: one marker per unfinished return): a marker that keeps
   * failing is deferred behind the others, never in their way.
   */
  listReturnsDue(now: Date, limit: number): Promise<SaleReturnMarker[]> {
    return this.returns
      .find({ $or: [{ nextAttemptTime: { $exists: false } }, { nextAttemptTime: { $lte: now } }] })
      .sort({ nextAttemptTime: 1, startTime: 1 })
      .limit(limit)
      .toArray();
  }
}

export function toLeadSale(document: SaleDocument): LeadSale {
  return LeadSale.fromPartial({
    id: document._id,
    tenantId: document.tenantId,
    leadId: document.leadId,
    buyerId: document.buyerId,
    price: toAmount(document.currencyCode, document.priceMinor),
    state: LeadSaleState[document.state],
    returnReason: document.returnReason === "" ? LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_UNSPECIFIED : returnReasonValue(document.returnReason),
    returnComment: document.returnComment,
    createTime: document.createTime,
    updateTime: document.updateTime,
    sellTime: document.sellTime,
    returnTime: document.returnTime ?? undefined,
    etag: etagOf(document),
    returnDeadline: document.returnDeadline,
  });
}

function returnReasonValue(name: string): LeadSaleReturnReason {
  const value = (LeadSaleReturnReason as unknown as Record<string, number | undefined>)[name];
  return typeof value === "number" ? value : LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_UNSPECIFIED;
}
