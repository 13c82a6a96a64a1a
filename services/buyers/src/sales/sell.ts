/**
 * SellLead: the buyers side of "exactly one sale, exactly one charge".
 *
 * The protocol. leads chooses the sale id D before it calls and keeps it
 * until it knows the outcome (leads' lead_distributions marker); every call
 * for D, first, retried, concurrent or a recovery sweep, runs this same code:
 *
 *   1. A sale document D exists: answer it if it is SOLD. It is written
 *      only after its charge landed, and only once (insert; a duplicate
 *      reads the first). A RETURNED D (sold, then given back: refunded, its
 *      lead released) answers FAILED_PRECONDITION "lead sale D of lead L
 *      was returned by buyer B" (ErrorInfo metadata lead_sale_state
 *      RETURNED, buyer_id, lead_sale_id, lead_id): final, D never sells
 *      again; leads gives the lead a new sale id. Step 4 answers the same
 *      when the document it meets was returned meanwhile.
 *   2. Candidates: the tenant's live buyers (or the one buyer_id names,
 *      NOT_FOUND when it does not exist), each either skipped with a reason
 *      (matching.ts) or eligible; eligible ones are ranked (price, sales
 *      today, a rotation fixed per lead). validate_only stops here and
 *      answers the would-be sale (PENDING, no id) or the skips, writing nothing.
 *   3. For each eligible buyer in rank order: the charge, one revisioned
 *      write of that buyer with operation id `sale:<D>`. Its change re-checks
 *      state, criteria, caps and balance on the fresh document (a buyer that
 *      no longer qualifies is skipped and the next one tried), moves the
 *      balance by -price and the day/month counters by +1, and its claim
 *      carries the CHARGE ledger entry (with the buyer's return window at
 *      the charge, so a replay dates the return deadline as the first
 *      attempt would have). The claims collection has a unique
 *      index on opId, so `sale:<D>` claims at most one revision of at most
 *      one buyer, ever. A write that finds the operation already claimed
 *      answers that claim (`replayed`): the sale is whatever buyer and price
 *      it records, possibly another buyer than the one tried.
 *      crashPoint "buyers.sell.after-charge" follows a charge that landed.
 *   4. Record sale document D (SOLD, buyer and price of the charge,
 *      sellTime the charge's time, returnDeadline = sellTime + the return
 *      window recorded on the charge entry; entries written before it was
 *      recorded fall back to the buyer's current window) and answer it.
 *   5. Nobody could be charged: seal `sale:<D>` (a claim of the operation for
 *      no buyer, carrying the skips). Sealed: FAILED_PRECONDITION
 *      NO_MATCHING_BUYER with one PreconditionFailure violation per buyer
 *      considered (type BUYER_SKIPPED, subject buyers/<id>, description
 *      "<BuyerSkipReason name>: why"). If the seal finds the operation
 *      landed (a concurrent attempt charged someone), go to 4.
 *
 * Invariants, and why they hold:
 *   - D is charged at most once across all buyers: every charge of D claims
 *     opId `sale:<D>`, which is unique in buyer_revisions.
 *   - A seal and a charge of D exclude each other: the seal is a claim of the
 *     same opId; whichever inserts first wins, and a pending charge claim is
 *     waited for (or released once abandoned, ABANDONED_CLAIM_MS) first.
 *   - The outcome of D, once decided (landed or sealed), never changes, so
 *     every call for D answers the same: the same sale, or the same skips
 *     (stored on the seal).
 *   - No sale without a charge: the sale document is written only from a
 *     landed claim. No charge without a sale: a charge whose caller died
 *     before step 4 leaves leads' marker for D; the recovery call finds the
 *     operation landed (replayed or via the seal) and records the sale.
 *   - Caps and balance: the charge is a revisioned write (claim of the next
 *     revision, then the update), so concurrent charges of one buyer
 *     serialise, and each re-checks cap and balance on the document it moves.
 *     The balance is the sum of the buyer's ledger because each entry is the
 *     claim of the revision that moved it.
 */

import type { SellLeadRequest } from "@leadmesh/contracts/buyers/v1/buyers";
import type { LeadSale as LeadSaleMessage } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { BuyerSkipReason, LeadSale, LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { type Lead, LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import {
  checkId,
  checkOptionalId,
  crashPoint,
  FailedPreconditionError,
  type Logger,
  NotFoundError,
  PreconditionFailureError,
  type PreconditionViolation,
  type RevisionClaim,
  Violations,
} from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { counterKeys } from "../domain/calendar";
import type { LedgerRecord } from "../domain/ledger";
import { toAmount } from "../domain/money";
import type { BuyerAccess } from "../handlers/buyer-access";
import type { BuyerDocument, BuyerStore, BuyerWriteResult } from "../store";
import { countedSale, rankBuyers, type SaleBuyer, type SaleLead, type Skip, salesToday, skipDescription, skipReason } from "./matching";
import type { SaleDocument, SaleStore } from "./sales-store";
import { toLeadSale } from "./sales-store";

export const SALE_CRASH_POINT = "buyers.sell.after-charge";

/** The operation id of the charge of sale D (unique across all buyers' claims). */
export function saleOperationId(saleId: string): string {
  return `sale:${saleId}`;
}

export interface SaleContext {
  /** Buyer reads and writes (writes keep GetBuyer's read cache current), the tenant's time zone. */
  buyers: BuyerAccess;
  sales: SaleStore;
  clock: () => Date;
  logger: Logger;
}

/** Who sells: the calling service (leads) acting in a tenant. */
export interface Seller {
  tenantId: string;
  actorId: string;
}

/** What the seal of a sale records: the lead and why each buyer was skipped, answered again on every retry. */
type SealRecord = { leadId: string; violations: PreconditionViolation[] };

/** A landed charge of a sale, as the sale document needs it. */
export interface Charge {
  buyerId: string;
  priceMinor: number;
  currencyCode: string;
  sellTime: Date;
  returnWindowSeconds: number;
}

type ChargeOutcome = { kind: "charged"; charge: Charge } | { kind: "skipped"; skip: Skip } | { kind: "sealed"; claim: RevisionClaim };

/** Thrown inside a charge's change() to refuse it: the fresh buyer no longer qualifies. */
class SkippedBuyer extends Error {
  constructor(readonly skip: Skip) {
    super(skipDescription(skip));
  }
}

export async function sellLead(sale: SaleContext, request: SellLeadRequest, seller: Seller, context: CallContext): Promise<LeadSaleMessage> {
  const { saleId, lead } = validRequest(request, seller.tenantId);
  const tenantId = seller.tenantId;
  if (!request.validateOnly) {
    const recorded = await sale.sales.get(tenantId, saleId);
    if (recorded) return soldAnswer(recorded, lead.id);
  }

  const timeZone = await sale.buyers.zoneOf(tenantId, context);
  const now = sale.clock();
  const keys = counterKeys(now, timeZone);
  const saleLead = saleLeadOf(lead);
  const skips = new Map<string, Skip>();
  const eligible: { id: string; priceMinor: number; salesToday: number; document: BuyerDocument }[] = [];
  for (const document of await candidates(sale.buyers, tenantId, request.buyerId)) {
    const skip = skipReason(saleBuyerOf(document), saleLead, now, keys);
    if (skip) skips.set(document._id, skip);
    else eligible.push({ id: document._id, priceMinor: document.pricePerLeadMinor, salesToday: salesToday(document.counters, keys), document });
  }
  const ranked = rankBuyers(eligible, lead.id);

  if (request.validateOnly) {
    const first = ranked[0];
    if (!first) throw noMatchingBuyer(lead.id, saleId, violationsOf(skips));
    return pendingSale(tenantId, lead.id, first.document);
  }

  for (const candidate of ranked) {
    const outcome = await charge(sale, seller, saleId, saleLead, candidate.id, timeZone, context);
    if (outcome.kind === "skipped") {
      skips.set(candidate.id, outcome.skip);
      continue;
    }
    if (outcome.kind === "sealed") throw sealedSale(outcome.claim, lead.id, saleId);
    return soldAnswer(await record(sale, tenantId, saleId, lead.id, outcome.charge), lead.id);
  }

  const seal: SealRecord = { leadId: lead.id, violations: violationsOf(skips) };
  const sealed = await sale.buyers.store.revisions.sealOperation(saleOperationId(saleId), tenantId, seller.actorId, seal, context.signal);
  if (sealed.sealed) {
    sale.logger.info({ tenantId, leadId: lead.id, leadSaleId: saleId, skipped: seal.violations.length }, "no buyer can take the lead: sale sealed");
    throw sealedSale(sealed.claim, lead.id, saleId);
  }
  // A concurrent attempt of this sale charged a buyer while this one found none.
  return soldAnswer(await record(sale, tenantId, saleId, lead.id, await chargeOfClaim(sale.buyers.store, sealed.claim, lead.id, saleId)), lead.id);
}

/**
 * The answer for a recorded sale D: only a SOLD sale is a sale to record.
 * A RETURNED D was sold and given back (refunded, its lead released): its
 * charge is spent and D can never sell again, so every call for it answers
 * this same final FAILED_PRECONDITION, never the returned sale (leads would
 * record it as sold with no net charge).
 */
function soldAnswer(document: SaleDocument, leadId: string): LeadSaleMessage {
  const recorded = sameLead(document, leadId);
  if (recorded.state === "LEAD_SALE_STATE_RETURNED") throw returnedSale(recorded);
  return toLeadSale(recorded);
}

export function returnedSale(document: SaleDocument): FailedPreconditionError {
  return new FailedPreconditionError(`lead sale ${document._id} of lead ${document.leadId} was returned by buyer ${document.buyerId}`, {
    lead_sale_state: "RETURNED",
    buyer_id: document.buyerId,
    lead_sale_id: document._id,
    lead_id: document.leadId,
  });
}

function validRequest(request: SellLeadRequest, tenantId: string): { saleId: string; lead: Lead } {
  const violations = new Violations();
  violations.check("lead_sale_id", request.leadSaleId, checkId);
  violations.check("buyer_id", request.buyerId, checkOptionalId);
  if (!request.lead) violations.add("lead", "is required");
  else {
    violations.check("lead.id", request.lead.id, checkId);
    if (request.lead.tenantId !== "" && request.lead.tenantId !== tenantId) violations.add("lead.tenant_id", "must be the tenant the call acts in");
  }
  violations.throwIfAny();
  return { saleId: request.leadSaleId, lead: request.lead as Lead };
}

/** A sale id is chosen per lead: the same id for another lead is the caller's bug, never a sale to answer. */
function sameLead(document: SaleDocument, leadId: string): SaleDocument {
  if (document.leadId !== leadId) {
    throw new FailedPreconditionError(`lead sale "${document._id}" is the sale of lead "${document.leadId}", not of "${leadId}"`, {
      lead_sale_id: document._id,
      lead_id: leadId,
    });
  }
  return document;
}

async function candidates(buyers: BuyerAccess, tenantId: string, buyerId: string): Promise<BuyerDocument[]> {
  return buyerId === "" ? buyers.store.listLive(tenantId) : [await buyers.existing(tenantId, buyerId)];
}

/**
 * Step 3 for one buyer: the charge, or why the fresh buyer no longer
 * qualifies, or the operation's earlier outcome (replayed: a charge, maybe
 * of another buyer, or the seal).
 */
async function charge(
  sale: SaleContext,
  seller: Seller,
  saleId: string,
  lead: SaleLead,
  buyerId: string,
  timeZone: string,
  context: CallContext,
): Promise<ChargeOutcome> {
  let result: BuyerWriteResult;
  try {
    result = await sale.buyers.write(
      { tenantId: seller.tenantId, actorId: seller.actorId, context },
      buyerId,
      "",
      (current) => {
        const now = sale.clock();
        const keys = counterKeys(now, timeZone);
        const skip = skipReason(saleBuyerOf(current), lead, now, keys);
        if (skip) throw new SkippedBuyer(skip);
        return { balanceMinor: current.balanceMinor - current.pricePerLeadMinor, counters: countedSale(current.counters, keys) };
      },
      {
        opId: saleOperationId(saleId),
        entry(current, changes): LedgerRecord {
          return {
            type: "CHARGE",
            amountMinor: -current.pricePerLeadMinor,
            currencyCode: current.currencyCode,
            balanceAfterMinor: changes.balanceMinor as number,
            leadSaleId: saleId,
            leadId: lead.id,
            returnWindowSeconds: current.returnWindowSeconds,
          };
        },
      },
    );
  } catch (error) {
    if (error instanceof SkippedBuyer) return { kind: "skipped", skip: error.skip };
    // BuyerSkipReason has no reason for a buyer gone since it was listed; matching.ts reports a deleted one as PAUSED too.
    if (error instanceof NotFoundError)
      return { kind: "skipped", skip: { reason: BuyerSkipReason.BUYER_SKIP_REASON_PAUSED, text: "the buyer no longer exists" } };
    throw error;
  }
  if (result.replayed) {
    if (result.replayed.subjectId === "") return { kind: "sealed", claim: result.replayed };
    return { kind: "charged", charge: await chargeOfClaim(sale.buyers.store, result.replayed, lead.id, saleId) };
  }
  // write() only answers without a replay when its change landed (a refused change throws).
  crashPoint(SALE_CRASH_POINT);
  const { before, after } = result;
  sale.logger.info(
    { tenantId: seller.tenantId, leadId: lead.id, leadSaleId: saleId, buyerId, priceMinor: before.pricePerLeadMinor },
    "buyer charged for a lead",
  );
  return {
    kind: "charged",
    charge: {
      buyerId,
      priceMinor: before.pricePerLeadMinor,
      currencyCode: before.currencyCode,
      sellTime: after.updateTime,
      returnWindowSeconds: after.returnWindowSeconds,
    },
  };
}

/** The charge a landed claim of `sale:<D>` records (a replay, or what the seal found). */
export async function chargeOfClaim(buyers: Pick<BuyerStore, "get">, claim: RevisionClaim, leadId: string, saleId: string): Promise<Charge> {
  const entry = claim.entry as LedgerRecord | undefined;
  if (entry?.type !== "CHARGE" || entry.leadSaleId !== saleId)
    throw new Error(`claim ${claim._id} of operation ${claim.opId} is not the charge of sale ${saleId}`);
  if (entry.leadId !== leadId) {
    throw new FailedPreconditionError(`lead sale "${saleId}" is the sale of lead "${entry.leadId}", not of "${leadId}"`, {
      lead_sale_id: saleId,
      lead_id: leadId,
    });
  }
  return {
    buyerId: claim.subjectId,
    priceMinor: -entry.amountMinor,
    currencyCode: entry.currencyCode,
    sellTime: claim.createTime,
    returnWindowSeconds: entry.returnWindowSeconds ?? (await currentReturnWindow(buyers, claim, saleId)),
  };
}

/** Charges recorded before their entry carried the return window: the buyer's window now, the best left to know. */
async function currentReturnWindow(buyers: Pick<BuyerStore, "get">, claim: RevisionClaim, saleId: string): Promise<number> {
  const buyer = await buyers.get(claim.tenantId, claim.subjectId);
  if (!buyer) throw new Error(`buyer "${claim.subjectId}" charged for sale ${saleId} does not exist`);
  return buyer.returnWindowSeconds;
}

/** Step 4: the sale document of a landed charge (the first record of D wins; later ones read it). */
async function record(sale: SaleContext, tenantId: string, saleId: string, leadId: string, charged: Charge): Promise<SaleDocument> {
  const now = sale.clock();
  const recorded = await sale.sales.insertOnce({
    _id: saleId,
    tenantId,
    leadId,
    buyerId: charged.buyerId,
    priceMinor: charged.priceMinor,
    currencyCode: charged.currencyCode,
    state: "LEAD_SALE_STATE_SOLD",
    returnReason: "",
    returnComment: "",
    createTime: now,
    updateTime: now,
    sellTime: charged.sellTime,
    returnDeadline: new Date(charged.sellTime.getTime() + charged.returnWindowSeconds * 1000),
    returnTime: null,
    refunded: false,
    leadReleased: false,
    revision: 1,
  });
  return sameLead(recorded, leadId);
}

function violationsOf(skips: ReadonlyMap<string, Skip>): PreconditionViolation[] {
  return [...skips].map(([buyerId, skip]) => ({ type: "BUYER_SKIPPED", subject: `buyers/${buyerId}`, description: skipDescription(skip) }));
}

function noMatchingBuyer(leadId: string, saleId: string, violations: PreconditionViolation[]): PreconditionFailureError {
  const why = violations.length === 0 ? "the tenant has no live buyer" : `${violations.length} buyer(s) considered, each skipped (see the violations)`;
  return new PreconditionFailureError("NO_MATCHING_BUYER", `no buyer can take lead "${leadId}": ${why}`, violations, {
    lead_id: leadId,
    ...(saleId === "" ? {} : { lead_sale_id: saleId }),
  });
}

/** A sealed sale answers the skips recorded when it was sealed, whichever call asks. */
function sealedSale(claim: RevisionClaim, leadId: string, saleId: string): PreconditionFailureError {
  const seal = claim.entry as SealRecord | undefined;
  if (seal?.leadId !== undefined && seal.leadId !== leadId) {
    throw new FailedPreconditionError(`lead sale "${saleId}" is the sale of lead "${seal.leadId}", not of "${leadId}"`, {
      lead_sale_id: saleId,
      lead_id: leadId,
    });
  }
  return noMatchingBuyer(leadId, saleId, seal?.violations ?? []);
}

function pendingSale(tenantId: string, leadId: string, buyer: BuyerDocument): LeadSaleMessage {
  return LeadSale.fromPartial({
    tenantId,
    leadId,
    buyerId: buyer._id,
    price: toAmount(buyer.currencyCode, buyer.pricePerLeadMinor),
    state: LeadSaleState.LEAD_SALE_STATE_PENDING,
  });
}

/** The stored buyer as matching reads it. Price and balance share the buyer's one currency (fixed at create). */
export function saleBuyerOf(document: BuyerDocument): SaleBuyer {
  const criteria = document.criteria;
  return {
    id: document._id,
    paused: document.state === "BUYER_STATE_PAUSED",
    deleted: document.deleteTime !== null && document.deleteTime !== undefined,
    criteria: {
      sources: criteria.sources ?? [],
      countryCodes: criteria.countryCodes ?? [],
      minScore: criteria.minScore ?? 0,
      maxScore: criteria.maxScore ?? 0,
      postalCodePrefixes: criteria.postalCodePrefixes ?? [],
      tags: criteria.tags ?? [],
      maxLeadAgeMs: (criteria.maxLeadAgeSeconds ?? 0) * 1000,
    },
    priceMinor: document.pricePerLeadMinor,
    priceCurrencyCode: document.currencyCode,
    balanceMinor: document.balanceMinor,
    balanceCurrencyCode: document.currencyCode,
    dailyCap: document.dailyCap,
    monthlyCap: document.monthlyCap,
    counters: document.counters,
  };
}

export function saleLeadOf(lead: Lead): SaleLead {
  return {
    id: lead.id,
    source: LeadSource[lead.source] ?? "",
    countryCode: lead.countryCode,
    score: lead.score,
    postalCode: lead.postalCode,
    tags: lead.tags,
    createTime: lead.createTime,
    returnedBuyerIds: lead.returnedBuyerIds,
  };
}
