/**
 * Pure rules of selling a lead (distribution/distribute.ts runs them on the
 * lead as stored): when a lead may be distributed, how a retry finds the sale
 * it started, what a recorded sale or a release changes, and what UpdateLead
 * and DeleteLead may no longer do once a sale is involved.
 */
import { createHash } from "node:crypto";
import { LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { DomainError, FailedPreconditionError, InvalidArgumentError } from "@leadmesh/platform";
import { Status } from "nice-grpc-common";

/** The lead's record of its sale (buyers.v1.LeadSale has the whole sale). Money in integer minor units, never a float. */
export interface SaleRecord {
  leadSaleId: string;
  buyerId: string;
  /** A safe integer: amounts are at most 10^12 minor units (the contract's bound). */
  priceMinor: number;
  currencyCode: string;
  sellTime: Date;
  /**
   * The buyer_id the request named ("" when buyers picked): with the
   * request_id, the fingerprint a retry must match. Absent on sales
   * recorded before it was kept (not checked then).
   */
  requestedBuyerId?: string;
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
  /**
   * Sale ids of this lead's returned sales (and of a sale returned before
   * leads recorded it): a request_id whose sale id is here was used up, and
   * a retry with it is refused instead of selling the lead under it again.
   */
  pastSaleIds?: string[];
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

/** The lead_sale_state buyers and leads name a returned sale with (ErrorInfo metadata). */
export const RETURNED_SALE_STATE = "RETURNED";

/**
 * Sale D of the lead was returned (possibly before leads recorded it): the
 * request_id behind D is used up, a new request_id distributes the lead again.
 */
export function returnedSaleError(leadId: string, leadSaleId: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `request_id was used for sale ${leadSaleId} of lead "${leadId}", which was returned; use a new request_id to distribute the lead again`,
    { resource_id: leadId, lead_sale_id: leadSaleId, lead_sale_state: RETURNED_SALE_STATE },
  );
}

/** A request_id reused with another buyer_id (AIP-155): the client's bug, never the first request's answer. */
function reusedRequestIdError(leadId: string, firstBuyerId: string): InvalidArgumentError {
  const first = firstBuyerId === "" ? "without a buyer_id" : `with buyer_id "${firstBuyerId}"`;
  return new InvalidArgumentError([
    { field: "request_id", description: `was already used to distribute lead "${leadId}" ${first}; use a new request_id for a new request` },
  ]);
}

export type DistributionStep =
  /** Already sold by this very request (a retry): answer the recorded sale. */
  | { kind: "sold"; sale: SaleRecord }
  /** This request's distribution holds the lead (a retry, or a concurrent twin): finish it. */
  | { kind: "resume"; claim: DistributionClaim }
  /** Free to claim. */
  | { kind: "claim" };

/**
 * Where a distribution under `leadSaleId`, asked for `buyerId`, stands on
 * this lead; throws when it may not run: its request_id asked for another
 * buyer before (INVALID_ARGUMENT), its sale was returned (FAILED_PRECONDITION:
 * the request_id is used up), deleted or not QUALIFIED (FAILED_PRECONDITION),
 * sold by another sale (FAILED_PRECONDITION naming it), held by another
 * distribution (ABORTED, DISTRIBUTION_IN_PROGRESS).
 */
export function distributionStep(lead: SellableLead, leadSaleId: string, buyerId: string): DistributionStep {
  const id = lead._id;
  if (lead.sale?.leadSaleId === leadSaleId) {
    const requested = lead.sale.requestedBuyerId;
    if (requested !== undefined && requested !== buyerId) throw reusedRequestIdError(id, requested);
    return { kind: "sold", sale: lead.sale };
  }
  if (lead.distribution?.leadSaleId === leadSaleId) {
    if (lead.distribution.buyerId !== buyerId) throw reusedRequestIdError(id, lead.distribution.buyerId);
    return { kind: "resume", claim: lead.distribution };
  }
  if (lead.pastSaleIds?.includes(leadSaleId)) throw returnedSaleError(id, leadSaleId);
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

export interface ReturnedChanges {
  status: string;
  sale: null;
  distribution?: null;
  returnedBuyerIds: string[];
  pastSaleIds: string[];
}

/**
 * `buyerId` returned sale `leadSaleId`: the lead goes back to QUALIFIED,
 * never to be sold to that buyer again nor under that sale id. Applies
 * while the sale is the lead's recorded sale, or still the distribution
 * holding it (buyers sold it, and it was returned before leads recorded
 * the sale); undefined otherwise (released already, or never the lead's).
 */
export function returnedChanges(lead: SellableLead, leadSaleId: string, buyerId: string): ReturnedChanges | undefined {
  const recorded = lead.sale?.leadSaleId === leadSaleId;
  const pending = lead.distribution?.leadSaleId === leadSaleId;
  if (!recorded && !pending) return undefined;
  const returned = lead.returnedBuyerIds ?? [];
  const past = lead.pastSaleIds ?? [];
  return {
    status: QUALIFIED,
    sale: null,
    ...(pending ? { distribution: null } : {}),
    returnedBuyerIds: returned.includes(buyerId) ? [...returned] : [...returned, buyerId],
    pastSaleIds: past.includes(leadSaleId) ? [...past] : [...past, leadSaleId],
  };
}

/** ReleaseLeadSale of the lead's recorded sale: back to QUALIFIED, never to be sold to the returning buyer again; undefined unless `leadSaleId` is the lead's sale. */
export function releasedChanges(lead: SellableLead, leadSaleId: string): ReturnedChanges | undefined {
  if (!lead.sale || lead.sale.leadSaleId !== leadSaleId) return undefined;
  return returnedChanges(lead, leadSaleId, lead.sale.buyerId);
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
