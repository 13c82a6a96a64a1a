/**
 * Pure rules of selling a lead (distribution/distribute.ts runs them on the
 * lead as stored): when a lead may be distributed, how a retry finds the sale
 * it started, what a recorded sale or a release changes, and what UpdateLead
 * and DeleteLead may no longer do once a sale is involved.
 */
import { createHash } from "node:crypto";
import { LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { DomainError, FailedPreconditionError } from "@leadmesh/platform";
import { Status } from "nice-grpc-common";

/** The lead's record of its sale (buyers.v1.LeadSale has the whole sale). Money in integer minor units, never a float. */
export interface SaleRecord {
  leadSaleId: string;
  buyerId: string;
  /** A safe integer: amounts are at most 10^12 minor units (the contract's bound). */
  priceMinor: number;
  currencyCode: string;
  sellTime: Date;
}

/** A distribution in progress: the sale id it sells under (the idempotency key at buyers), and what it was asked. */
export interface DistributionClaim {
  leadSaleId: string;
  /** The client's request_id ("" when none was given). */
  requestId: string;
  /** The buyer named by the request ("" lets buyers pick). */
  buyerId: string;
  /** Who asked (the user or service): the status change to SOLD is theirs, also when recovery records it. */
  actorId: string;
  startTime: Date;
}

/** What the sale rules read of a stored lead. */
export interface SellableLead {
  _id: string;
  status: string;
  deleteTime: Date | null;
  sale?: SaleRecord | null;
  distribution?: DistributionClaim | null;
  returnedBuyerIds?: string[];
}

const SOLD = LeadStatus[LeadStatus.LEAD_STATUS_SOLD];
const QUALIFIED = LeadStatus[LeadStatus.LEAD_STATUS_QUALIFIED];

/**
 * The sale id of a distribution with a request_id: the same for every retry
 * of the request (so a retry resumes or answers the same sale, and buyers
 * charge it once), different for another tenant, lead or request. Without a
 * request_id each call is its own sale (a fresh id).
 */
export function leadSaleIdFor(tenantId: string, leadId: string, requestId: string): string {
  // JSON of the parts: no text can move from one part into another and still hash the same.
  return createHash("sha256")
    .update(JSON.stringify([tenantId, leadId, requestId]))
    .digest("base64url")
    .slice(0, 32);
}

/** A distribution of the lead is running under another sale id: the caller retries later (or with that request_id). */
export class DistributionInProgressError extends DomainError {
  constructor(leadId: string, leadSaleId: string) {
    super(Status.ABORTED, "DISTRIBUTION_IN_PROGRESS", `a distribution of lead "${leadId}" is in progress; retry shortly`, {
      resource_id: leadId,
      lead_sale_id: leadSaleId,
    });
  }
}

export type DistributionStep =
  /** Already sold by this very request (a retry): answer the recorded sale. */
  | { kind: "sold"; sale: SaleRecord }
  /** This request's distribution holds the lead (a retry, or a concurrent twin): finish it. */
  | { kind: "resume"; claim: DistributionClaim }
  /** Free to claim. */
  | { kind: "claim" };

/**
 * Where a distribution under `leadSaleId` stands on this lead; throws when it
 * may not run: deleted or not QUALIFIED (FAILED_PRECONDITION), sold by
 * another sale (FAILED_PRECONDITION naming it), held by another distribution
 * (ABORTED, DISTRIBUTION_IN_PROGRESS).
 */
export function distributionStep(lead: SellableLead, leadSaleId: string): DistributionStep {
  const id = lead._id;
  if (lead.sale?.leadSaleId === leadSaleId) return { kind: "sold", sale: lead.sale };
  if (lead.distribution?.leadSaleId === leadSaleId) return { kind: "resume", claim: lead.distribution };
  if (lead.deleteTime) throw new FailedPreconditionError(`lead "${id}" is deleted; undelete it first`, { resource_id: id });
  if (lead.sale) {
    throw new FailedPreconditionError(`lead "${id}" is already sold (sale ${lead.sale.leadSaleId})`, { resource_id: id, lead_sale_id: lead.sale.leadSaleId });
  }
  if (lead.distribution) throw new DistributionInProgressError(id, lead.distribution.leadSaleId);
  if (lead.status !== QUALIFIED) {
    throw new FailedPreconditionError(`lead "${id}" is ${lead.status}; only a LEAD_STATUS_QUALIFIED lead can be distributed`, { resource_id: id });
  }
  return { kind: "claim" };
}

/** The lead's change when buyers sold it under the distribution `leadSaleId`; undefined when that distribution no longer holds it. */
export function soldChanges(lead: SellableLead, sale: SaleRecord): { status: string; sale: SaleRecord; distribution: null } | undefined {
  if (lead.distribution?.leadSaleId !== sale.leadSaleId) return undefined;
  return { status: SOLD, sale, distribution: null };
}

/** The lead's change when buyers sold it to nobody under `leadSaleId`: the claim goes, nothing else changes. */
export function unsoldChanges(lead: SellableLead, leadSaleId: string): { distribution: null } | undefined {
  return lead.distribution?.leadSaleId === leadSaleId ? { distribution: null } : undefined;
}

/** ReleaseLeadSale: back to QUALIFIED, never to be sold to the returning buyer again; undefined unless `leadSaleId` is the lead's sale. */
export function releasedChanges(lead: SellableLead, leadSaleId: string): { status: string; sale: null; returnedBuyerIds: string[] } | undefined {
  if (!lead.sale || lead.sale.leadSaleId !== leadSaleId) return undefined;
  const returned = lead.returnedBuyerIds ?? [];
  return {
    status: QUALIFIED,
    sale: null,
    returnedBuyerIds: returned.includes(lead.sale.buyerId) ? [...returned] : [...returned, lead.sale.buyerId],
  };
}

/**
 * UpdateLead of a lead's status: refused while a distribution holds the lead
 * (ABORTED: it is about to change), and on a SOLD lead (its status belongs to
 * the sale; a return through buyers releases it).
 */
export function checkStatusChange(lead: SellableLead): void {
  if (lead.distribution) throw new DistributionInProgressError(lead._id, lead.distribution.leadSaleId);
  if (lead.status === SOLD) {
    const leadSaleId = lead.sale?.leadSaleId ?? "";
    throw new FailedPreconditionError(`lead "${lead._id}" is sold (sale ${leadSaleId}); return the sale to change its status`, {
      resource_id: lead._id,
      lead_sale_id: leadSaleId,
    });
  }
}

/** DeleteLead: not while a distribution holds the lead (the sale it may be making would lose its lead). */
export function checkDeletable(lead: SellableLead): void {
  if (lead.distribution) throw new DistributionInProgressError(lead._id, lead.distribution.leadSaleId);
}
