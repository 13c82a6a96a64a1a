/**
 * DistributeLead: sells a QUALIFIED lead to exactly one buyer, charged
 * exactly once, across replicas, retries and processes killed at any step.
 * This header is the protocol, both halves; the buyers half lives in
 * services/buyers/src/sales/sell.ts (design: /tmp/work/design.md, issue 9).
 *
 * The only atomic primitive on FerretDB v1 is a unique-key insert (no
 * transactions, no compare-and-set). Everything below is built from two:
 * revision claims (platform revisions.ts: a write of a document lands only
 * if its claim `<docId>:<revision+1>` was inserted first) and, at buyers,
 * operation ids (a unique opId on the claims: an operation lands at most once
 * across all documents of a collection, or is sealed as never to land).
 *
 * The sale id D names one attempt to sell the lead: the idempotency key of
 * the whole flow. With a request_id, D = leadSaleIdFor(tenant, lead,
 * request_id), so every retry of the request works on the same D; without
 * one, D is fresh per call.
 *
 * Leads (this file):
 *  1. Read the lead: it must exist, not be deleted, be QUALIFIED. Already
 *     sold under D: answer that sale (a retry). Sold under another sale:
 *     FAILED_PRECONDITION naming it. D among the lead's past (returned) sale
 *     ids: FAILED_PRECONDITION, the request_id is used up. A request_id's
 *     retry must ask for the same buyer_id its sale or claim recorded (the
 *     request fingerprint), else INVALID_ARGUMENT. validate_only: ask
 *     SellLead for the would-be sale and change nothing.
 *  2. Open the marker D in `lead_distributions` (markers.ts; an upsert: each
 *     attempt re-opens it with startTime now and a new openId), then claim
 *     the lead: a revisioned write setting lead.distribution = {D, request,
 *     buyer} only while no distribution holds it. One claim wins per lead;
 *     a concurrent call with another D gets ABORTED (DISTRIBUTION_IN_PROGRESS),
 *     one with the same D (same request_id) joins D (and re-opens the marker).
 *     Once the claim lands the marker is re-opened: a marker recovery closed
 *     while the claim write was slow comes back, and recovery stays off the
 *     SellLead about to run. A failed claim write closes the marker only if
 *     change() refused the claim (in progress, not distributable, not found,
 *     fingerprint) and D is this call's own (no request_id): any other
 *     failure may have landed, and recovery decides.
 *     crashPoint "leads.distribute.after-claim".
 *  3. SellLead(D, lead, buyer) at buyers, as the leads service in the
 *     lead's tenant. crashPoint "leads.distribute.after-sell".
 *  4. By the answer (buyers-gateway.ts sorts it on ErrorInfo, not on codes):
 *     - a SOLD sale: record it on the lead (status SOLD, sale with the
 *       requested buyer_id, distribution null), only while the lead's
 *       distribution is still D (a revisioned write; a twin that recorded it
 *       first leaves nothing to do), with a status change activity.
 *       crashPoint "leads.distribute.after-record". Close the marker. Answer
 *       the lead and its sale. If a release got there first (D among the past
 *       sale ids), answer as RETURNED below.
 *     - RETURNED (buyers' FAILED_PRECONDITION with lead_sale_state=RETURNED
 *       and buyer_id, or a LeadSale in state RETURNED): D was sold and the
 *       buyer returned it before leads recorded it. Release the lead as
 *       ReleaseLeadSale does (distribution null, QUALIFIED, buyer into
 *       returnedBuyerIds, D into pastSaleIds), close the marker, answer
 *       FAILED_PRECONDITION naming the returned sale.
 *     - NO_MATCHING_BUYER (buyers sealed D) or NOT_FOUND of the named buyer:
 *       D is decided as never sold. Clear the claim (only while it is D),
 *       close the marker, relay the error with its details (one
 *       BUYER_SKIPPED violation per buyer).
 *     - anything else (UNAVAILABLE, DEADLINE_EXCEEDED, a crash of buyers,
 *       any other FAILED_PRECONDITION): the outcome of D is unknown, so the
 *       claim stays: nothing else can sell the lead meanwhile. Answer
 *       UNAVAILABLE (OPERATION_PENDING) naming D; a retry with the same
 *       request_id resumes at step 3, and recovery does the same for every
 *       stale marker.
 *     Every close names the marker's openId it opened or read: a marker
 *     re-opened since by another attempt on D is that attempt's to close.
 *  5. Recovery (recovery.ts), on every replica, at startup and every
 *     LEADS_DISTRIBUTION_SWEEP_MS: each marker older than
 *     LEADS_DISTRIBUTION_STALE_MS and due (not backing off) whose lead is
 *     still claimed by D runs steps 3-4 again with the lead as stored; a
 *     marker whose lead records D's outcome (sale D, or D returned) or is gone
 *     is closed; a marker whose lead does not mention D is closed only once
 *     older than the stale age plus the claim budget (CLAIM_BUDGET_MS: its
 *     claim may still be landing). A marker whose recovery fails backs off
 *     (nextAttemptTime, doubling from the sweep interval up to the stale
 *     age), so failing markers never starve newer ones.
 *  6. ReleaseLeadSale(D) (release.ts) releases a lead whose sale is D, and
 *     also one still claimed by D (returned before it was recorded): it runs
 *     steps 3-4 for D, which answer RETURNED with the buyer.
 *
 * Buyers (services/buyers/src/sales/sell.ts), SellLead(D, lead, buyer):
 *  a. A sale document D exists: answer it if SOLD; if RETURNED, answer
 *     FAILED_PRECONDITION with lead_sale_state=RETURNED and its buyer_id.
 *  b. Rank the tenant's buyers that can take the lead (state, criteria, not
 *     returned before, caps in the tenant's time zone, balance).
 *  c. Charge the first that still can: a revisioned write of the buyer with
 *     opId `sale:<D>` (balance -= price, cap counters += 1, the ledger entry
 *     on the claim). The unique opId makes D chargeable once across all
 *     buyers: a second attempt gets the landed charge back (`replayed`) and
 *     sells to that buyer. crashPoint "buyers.sell.after-charge".
 *  d. Insert the sale document D (SOLD), or read it if a twin did: answer it.
 *  e. No buyer could be charged: seal `sale:<D>` (it can never be charged
 *     afterwards) and answer FAILED_PRECONDITION with the reasons; if the
 *     seal finds the charge landed (a twin charged), continue at d.
 * So D is charged at most once, a seal and a charge exclude each other, and
 * the outcome of D, once decided, never changes: every SellLead(D), however
 * many, concurrent or late, answers the same.
 *
 * Why each crash recovers (every lead ends SOLD with exactly one charge, or
 * unsold with none):
 *  - before the claim lands (marker open, no claim): the marker's lead does
 *    not reference D; recovery closes the marker once older than the stale
 *    age plus the claim budget (a claim landing later re-opens it). No
 *    SellLead(D) ever ran: no charge.
 *  - after-claim: the lead is held by D, nothing asked buyers yet. Recovery
 *    (or a retry with the request_id) calls SellLead(D), which decides now.
 *    Until then UpdateLead's status changes and DeleteLead answer ABORTED.
 *  - inside buyers, before or after its charge (buyers.sell.after-charge):
 *    leads sees UNAVAILABLE, keeps the claim; the next SellLead(D) finds the
 *    landed charge (opId) and completes the sale document, or charges/seals
 *    now if nothing landed.
 *  - after-sell: buyers decided D (sold, or sealed); the lead still says D.
 *    Recovery's SellLead(D) gets the same answer and records it. If the
 *    buyer returned the sale meanwhile, buyers' release (or recovery's
 *    SellLead(D), answered RETURNED) releases the lead instead: it is never
 *    recorded SOLD with a refunded charge.
 *  - after-record: the lead is SOLD with sale D; only the marker is left.
 *    Recovery finds the lead records D and closes the marker.
 * A late SellLead(D) (a slow twin, recovery racing a live call) is harmless:
 * it answers the decided outcome, and recording is conditional on the claim.
 */

import type { LeadSale } from "@leadmesh/contracts/buyers/v1/lead_sale";
import type { Lead, LeadSaleSummary } from "@leadmesh/contracts/leads/v1/lead";
import type { DistributeLeadRequest, DistributeLeadResponse } from "@leadmesh/contracts/leads/v1/leads";
import {
  type CallerContext,
  checkOptionalId,
  crashPoint,
  type DomainError,
  FailedPreconditionError,
  IdempotencyKeys,
  InvalidArgumentError,
  type Logger,
  NotFoundError,
  OperationPendingError,
  Violations,
} from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import {
  type DistributionClaim,
  DistributionInProgressError,
  distributionStep,
  leadSaleIdFor,
  returnedChanges,
  returnedSaleError,
  type SaleRecord,
  soldChanges,
  unsoldChanges,
} from "../domain/sale-rules";
import { mayView } from "../domain/visibility";
import { type LeadDocument, newId, toLead, toSaleSummary } from "../store";
import type { SaleGateway, SellOutcome } from "./buyers-gateway";
import type { LeadWriter } from "./lead-writer";
import type { DistributionMarker, MarkerOpening } from "./markers";

type Context = CallContext & CallerContext;

/** A retry with the same request_id resumes at once; without one, recovery finishes the sale after LEADS_DISTRIBUTION_STALE_MS. */
const PENDING_RETRY_AFTER_MS = 1000;

/** The marker collection as distribution uses it (DistributionMarkers). */
export interface MarkerRecords {
  open(marker: MarkerOpening): Promise<string>;
  close(leadSaleId: string, openId: string | null): Promise<void>;
  due(before: Date, now: Date, limit: number): Promise<DistributionMarker[]>;
  defer(leadSaleId: string, openId: string | null, attempts: number, nextAttemptTime: Date): Promise<void>;
}

export interface DistributionDependencies {
  writer: LeadWriter;
  markers: MarkerRecords;
  buyers: SaleGateway;
  logger: Logger;
}

/** How a distribution ended: the lead sold, or not (buyers' final refusal of D relayed as it came, or D returned: the lead released). */
export type DistributionOutcome = { kind: "sold"; lead: Lead; sale: LeadSaleSummary } | { kind: "refused"; error: DomainError };

export class Distributor {
  constructor(private readonly deps: DistributionDependencies) {}

  /** The DistributeLead RPC (steps 1-4 above). */
  async distribute(request: DistributeLeadRequest, context: Context): Promise<DistributeLeadResponse> {
    const violations = new Violations();
    violations.check("lead_id", request.leadId, (id) => (id === "" ? "is required" : checkOptionalId(id)));
    violations.check("buyer_id", request.buyerId, checkOptionalId);
    IdempotencyKeys.validate(request.requestId, violations);
    violations.throwIfAny();
    const leadId = request.leadId;
    const { tenantId, actorId } = context.caller;

    const current = await this.deps.writer.leads.get(tenantId, leadId);
    if (!current || !mayView(context.caller, current.assigneeId)) throw new NotFoundError("lead", leadId);
    const leadSaleId = request.requestId === "" ? newId() : leadSaleIdFor(tenantId, leadId, request.requestId);
    const step = distributionStep(current, leadSaleId, request.buyerId);
    if (step.kind === "sold") return { lead: toLead(current), sale: toSaleSummary(step.sale) };
    if (request.validateOnly) return this.preview(current, leadSaleId, request.buyerId, context);

    let outcome: DistributionOutcome;
    if (step.kind === "resume") {
      outcome = await this.resume(current, step.claim, context);
    } else {
      const claim: DistributionClaim = { leadSaleId, requestId: request.requestId, buyerId: request.buyerId, actorId, startTime: this.deps.writer.clock() };
      const result = await this.claim(tenantId, leadId, claim, context);
      if ("sold" in result) return result.sold;
      outcome = await this.complete(result.lead, result.claim, result.openId, context);
    }
    if (outcome.kind === "refused") throw outcome.error;
    return { lead: outcome.lead, sale: outcome.sale };
  }

  /**
   * Steps 3-4 for a lead already claimed by `claim`, from a retry with its
   * request_id or a release of its sale: re-opens the marker for this
   * attempt first (recovery stays off it for another stale period, and a
   * marker closed meanwhile comes back).
   */
  async resume(lead: LeadDocument, claim: DistributionClaim, context: CallContext): Promise<DistributionOutcome> {
    const openId = await this.openMarker(lead, claim.leadSaleId);
    return this.complete(lead, claim, openId, context);
  }

  /**
   * Steps 3-4 for a lead claimed by `claim`: asks buyers for the outcome of
   * D and records it, then closes the marker opening `openId` (a marker
   * re-opened since is its opener's to close). Shared by DistributeLead,
   * ReleaseLeadSale and recovery (no context: the gateway's own deadline,
   * and `signal` to give up at shutdown). Throws OperationPendingError
   * while the outcome of D is unknown.
   */
  async complete(
    lead: LeadDocument,
    claim: DistributionClaim,
    openId: string | null,
    context?: CallContext,
    signal?: AbortSignal,
  ): Promise<DistributionOutcome> {
    const leadSaleId = claim.leadSaleId;
    let outcome: SellOutcome;
    try {
      outcome = await this.deps.buyers.sellLead(
        { tenantId: lead.tenantId, leadSaleId, lead: toLead(lead), buyerId: claim.buyerId, validateOnly: false },
        context,
        signal,
      );
    } catch (error) {
      this.deps.logger.warn({ err: error, leadId: lead._id, leadSaleId }, "sale outcome unknown; the distribution stays claimed until recovered");
      throw new OperationPendingError(
        `distribution of lead "${lead._id}" is pending and completes automatically (sale ${leadSaleId})`,
        PENDING_RETRY_AFTER_MS,
        {
          resource_id: lead._id,
          lead_sale_id: leadSaleId,
        },
      );
    }
    crashPoint("leads.distribute.after-sell");
    if (outcome.kind === "refused") {
      await this.deps.writer.write(lead.tenantId, lead._id, claim.actorId, (current) => unsoldChanges(current, leadSaleId));
      await this.deps.markers.close(leadSaleId, openId);
      return outcome;
    }
    if (outcome.kind === "returned") return this.returned(lead, claim, outcome.buyerId, openId);
    return this.record(lead, claim, saleRecordOf(outcome.sale, claim), openId);
  }

  /**
   * Step 4, RETURNED: buyers sold D and the buyer returned it before the
   * sale was recorded here (or while it was): released as ReleaseLeadSale
   * releases a recorded sale (QUALIFIED, the buyer never again, D used up).
   * The caller learns that its request_id's sale was returned.
   */
  private async returned(lead: LeadDocument, claim: DistributionClaim, buyerId: string, openId: string | null): Promise<DistributionOutcome> {
    const leadSaleId = claim.leadSaleId;
    const { before, after } = await this.deps.writer.write(lead.tenantId, lead._id, claim.actorId, (current) => returnedChanges(current, leadSaleId, buyerId));
    await this.deps.writer.recordStatusChange(before, after, claim.actorId);
    if (after.revision !== before.revision)
      this.deps.logger.info({ leadId: lead._id, leadSaleId, buyerId }, "sale returned before it was recorded on the lead: lead released");
    await this.deps.markers.close(leadSaleId, openId);
    return { kind: "refused", error: returnedSaleError(lead._id, leadSaleId) };
  }

  private openMarker(lead: LeadDocument, leadSaleId: string): Promise<string> {
    return this.deps.markers.open({ _id: leadSaleId, tenantId: lead.tenantId, leadId: lead._id, startTime: this.deps.writer.clock() });
  }

  /** validate_only: the sale buyers would make now, without an id; nothing is claimed or charged. */
  private async preview(lead: LeadDocument, leadSaleId: string, buyerId: string, context: Context): Promise<DistributeLeadResponse> {
    const outcome = await this.deps.buyers.sellLead({ tenantId: lead.tenantId, leadSaleId, lead: toLead(lead), buyerId, validateOnly: true }, context);
    if (outcome.kind === "refused") throw outcome.error;
    if (outcome.kind === "returned") throw returnedSaleError(lead._id, leadSaleId);
    const { sale } = outcome;
    return { lead: toLead(lead), sale: { leadSaleId: "", buyerId: sale.buyerId, price: sale.price, sellTime: undefined } };
  }

  /**
   * Step 2: marker first (recovery must find every claim), then the claim,
   * then the marker re-opened (it may have been closed as unreferenced while
   * the claim write was slow, and the refresh keeps recovery off the
   * SellLead about to run). Answers the lead as claimed by D, or the sale
   * when a twin (same D) already finished it.
   */
  private async claim(
    tenantId: string,
    leadId: string,
    claim: DistributionClaim,
    context: Context,
  ): Promise<{ lead: LeadDocument; claim: DistributionClaim; openId: string } | { sold: DistributeLeadResponse }> {
    const leadSaleId = claim.leadSaleId;
    const openedId = await this.deps.markers.open({ _id: leadSaleId, tenantId, leadId, startTime: claim.startTime });
    let after: LeadDocument;
    try {
      ({ after } = await this.deps.writer.write(
        tenantId,
        leadId,
        claim.actorId,
        (current) => (distributionStep(current, leadSaleId, claim.buyerId).kind === "claim" ? { distribution: claim } : undefined),
        context.signal,
      ));
    } catch (error) {
      // Only a claim change() refused surely never lands; any other failure (a timeout, a lost connection) may
      // have reached the database, so its marker stays for recovery. A request_id's D may be a twin's that is
      // about to claim (it re-opens the marker after its claim): recovery closes it once stale.
      if (claim.requestId === "" && isRefusedClaim(error)) await this.deps.markers.close(leadSaleId, openedId).catch(() => undefined);
      throw error;
    }
    crashPoint("leads.distribute.after-claim");
    const step = distributionStep(after, leadSaleId, claim.buyerId);
    if (step.kind === "sold") {
      await this.deps.markers.close(leadSaleId, openedId);
      return { sold: { lead: toLead(after), sale: toSaleSummary(step.sale) } };
    }
    if (step.kind === "claim") throw new Error(`lead "${leadId}" was claimed for sale ${leadSaleId} but does not show the claim`);
    const openId = await this.openMarker(after, leadSaleId);
    return { lead: after, claim: step.claim, openId };
  }

  /** Step 4, SOLD: the sale onto the lead (once, while D holds it), then the marker goes. */
  private async record(lead: LeadDocument, claim: DistributionClaim, sale: SaleRecord, openId: string | null): Promise<DistributionOutcome> {
    const { before, after } = await this.deps.writer.write(lead.tenantId, lead._id, claim.actorId, (current) => soldChanges(current, sale));
    if (after.pastSaleIds?.includes(sale.leadSaleId)) {
      // Returned meanwhile: ReleaseLeadSale reached the lead while it was still claimed by D and released it.
      await this.deps.markers.close(sale.leadSaleId, openId);
      return { kind: "refused", error: returnedSaleError(lead._id, sale.leadSaleId) };
    }
    if (after.sale?.leadSaleId !== sale.leadSaleId) {
      // Cannot happen under the protocol (only a refusal of D clears D's claim, and a refusal is final): loud, never silent.
      this.deps.logger.error({ leadId: lead._id, leadSaleId: sale.leadSaleId, buyerId: sale.buyerId }, "buyers sold a lead its distribution no longer holds");
      throw new Error(`buyers sold lead "${lead._id}" under sale ${sale.leadSaleId}, which no longer holds the lead`);
    }
    await this.deps.writer.recordStatusChange(before, after, claim.actorId);
    crashPoint("leads.distribute.after-record");
    await this.deps.markers.close(sale.leadSaleId, openId);
    return { kind: "sold", lead: toLead(after), sale: toSaleSummary(sale) };
  }
}

/** Errors of a claim write that mean its change() refused it: the claim never lands. */
function isRefusedClaim(error: unknown): boolean {
  return (
    error instanceof DistributionInProgressError ||
    error instanceof FailedPreconditionError ||
    error instanceof NotFoundError ||
    error instanceof InvalidArgumentError
  );
}

/** The lead's record of buyers' sale. Amounts travel as int64 strings; stored as numbers (safe integers: at most 10^12). */
function saleRecordOf(sale: LeadSale, claim: DistributionClaim): SaleRecord {
  const leadSaleId = claim.leadSaleId;
  const priceMinor = Number(sale.price?.amountMinor ?? "0");
  if (!Number.isSafeInteger(priceMinor)) throw new Error(`buyers answered sale ${leadSaleId} with price ${sale.price?.amountMinor}, not a safe integer`);
  return {
    leadSaleId,
    buyerId: sale.buyerId,
    priceMinor,
    currencyCode: sale.price?.currencyCode ?? "",
    sellTime: sale.sellTime ?? new Date(),
    requestedBuyerId: claim.buyerId,
  };
}
