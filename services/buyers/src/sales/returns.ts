/**
 * ReturnLeadSale: the buyer gives a SOLD lead back within its return window
 * and is refunded once, and the lead goes back on sale.
 *
 * Steps (each idempotent, so a retry, a concurrent call or the sweeper can
 * resume at any point; sweeper.ts):
 *   0. Marker `lead_sale_returns/<D>` (sales-store.ts), so the sweeper finds
 *      the return if this process dies from here on. Upserted with
 *      startTime = now on every attempt: a retry long after a failed
 *      attempt (stale etag, cancelled) must not find the old attempt's
 *      marker, which the sweeper may take for stale and drop between this
 *      attempt's mark and its death (sweeper.ts restores a dropped marker
 *      whose sale turned RETURNED too).
 *   a. Sale D SOLD -> RETURNED (revisioned write, with the client's etag if
 *      given; refunded = leadReleased = false). The window is checked on the
 *      fresh document. crashPoint "buyers.return.after-mark".
 *   b. Refund: a write of the buyer with operation id `refund:<D>` and a
 *      REFUND ledger entry of +price (unique opId: at most one refund, ever;
 *      a replay means it landed before). Caps are not given back.
 *      crashPoint "buyers.return.after-refund".
 *   c. sale.refunded = true.
 *   d. leads.ReleaseLeadSale(lead, D) as the service: the lead becomes
 *      QUALIFIED again (only while D is still its sale), never again sold to
 *      this buyer.
 *   e. sale.leadReleased = true; the marker is deleted.
 * Returning a RETURNED sale resumes (b)-(e) and answers the sale.
 */

import type { ReturnLeadSaleRequest } from "@leadmesh/contracts/buyers/v1/buyers";
import { type LeadSale, LeadSaleReturnReason } from "@leadmesh/contracts/buyers/v1/lead_sale";
import {
  crashPoint,
  EtagMismatchError,
  FailedPreconditionError,
  isSpecifiedEnumValue,
  type Logger,
  NotFoundError,
  requireId,
  specifiedEnumNames,
  text,
  Violations,
} from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import type { LedgerRecord } from "../domain/ledger";
import type { Actor, BuyerAccess } from "../handlers/buyer-access";
import type { LeadReleaser } from "./leads-gateway";
import { type SaleDocument, type SaleStore, toLeadSale } from "./sales-store";

export const RETURN_MARKED_CRASH_POINT = "buyers.return.after-mark";
export const RETURN_REFUNDED_CRASH_POINT = "buyers.return.after-refund";
export const MAX_RETURN_COMMENT = 1000;

const checkComment = text({ max: MAX_RETURN_COMMENT, multiline: true });

/** The operation id of the refund of sale D (unique across all buyers' claims, like `sale:<D>`). */
export function refundOperationId(saleId: string): string {
  return `refund:${saleId}`;
}

export interface ReturnContext {
  buyers: BuyerAccess;
  sales: SaleStore;
  leads: LeadReleaser;
  clock: () => Date;
  logger: Logger;
}

export async function returnLeadSale(returns: ReturnContext, request: ReturnLeadSaleRequest, actor: Actor & { context: CallContext }): Promise<LeadSale> {
  const id = requireId(request.id, "id");
  // Existence first: another tenant's sale id answers NOT_FOUND whatever the body (no existence leak through validation).
  const found = await existingSale(returns.sales, actor.tenantId, id);
  const violations = new Violations();
  if (!isSpecifiedEnumValue(LeadSaleReturnReason, request.returnReason)) {
    violations.add("return_reason", `must be one of ${specifiedEnumNames(LeadSaleReturnReason)}`);
  }
  violations.check("return_comment", request.returnComment, checkComment);
  if (request.returnReason === LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_OTHER && request.returnComment.trim() === "") {
    violations.add("return_comment", "is required when return_reason is OTHER");
  }
  violations.throwIfAny();

  if (found.state === "LEAD_SALE_STATE_RETURNED") return toLeadSale(await finishReturn(returns, found, actor));
  checkWindow(found, returns.clock());

  await returns.sales.markReturnStarted(actor.tenantId, id, returns.clock());
  let marked: SaleDocument;
  try {
    const result = await returns.sales.write({
      id,
      actorId: actor.actorId,
      clientEtag: request.etag,
      signal: actor.context.signal,
      read: () => existingSale(returns.sales, actor.tenantId, id),
      change(current) {
        // A concurrent return of the same sale marked it first: this call resumes that return.
        if (current.state === "LEAD_SALE_STATE_RETURNED") return undefined;
        const now = returns.clock();
        checkWindow(current, now);
        return {
          state: "LEAD_SALE_STATE_RETURNED",
          returnReason: LeadSaleReturnReason[request.returnReason],
          returnComment: request.returnComment.trim(),
          returnTime: now,
          refunded: false,
          leadReleased: false,
        };
      },
      stamp: () => ({ updateTime: returns.clock() }),
    });
    marked = result.after;
    if (result.after.revision !== result.before.revision) {
      crashPoint(RETURN_MARKED_CRASH_POINT);
      returns.logger.info({ tenantId: actor.tenantId, leadSaleId: id, buyerId: marked.buyerId, leadId: marked.leadId }, "lead sale returned");
    }
  } catch (error) {
    // The etag was of the sale before a concurrent return of it: that return is this one's retry, answered as it is.
    if (!(error instanceof EtagMismatchError)) throw error;
    const latest = await existingSale(returns.sales, actor.tenantId, id);
    if (latest.state !== "LEAD_SALE_STATE_RETURNED") throw error;
    marked = latest;
  }
  return toLeadSale(await finishReturn(returns, marked, actor));
}

/**
 * Steps (b)-(e) of a RETURNED sale: whatever is not done yet. Safe to run
 * concurrently with itself (refund once by its operation id; the flags and
 * the release are idempotent). `actor.context` undefined: the sweeper.
 */
export async function finishReturn(returns: ReturnContext, sale: SaleDocument, actor: Actor): Promise<SaleDocument> {
  let current = sale;
  if (!current.refunded) {
    await refund(returns, current, actor);
    current = await setFlag(returns, current, actor, "refunded");
  }
  if (!current.leadReleased) {
    await returns.leads.releaseLeadSale(current.tenantId, current.leadId, current._id, actor.context);
    current = await setFlag(returns, current, actor, "leadReleased");
  }
  await returns.sales.markReturnDone(current._id);
  return current;
}

async function refund(returns: ReturnContext, sale: SaleDocument, actor: Actor): Promise<void> {
  const result = await returns.buyers.write(
    { ...actor, tenantId: sale.tenantId },
    sale.buyerId,
    "",
    (current) => {
      // Never mixed: a buyer's currency is fixed at create, so this only fails on corrupted data.
      if (current.currencyCode !== sale.currencyCode) {
        throw new Error(`sale ${sale._id} was paid in ${sale.currencyCode}, but buyer ${current._id} keeps ${current.currencyCode}`);
      }
      return { balanceMinor: current.balanceMinor + sale.priceMinor };
    },
    {
      opId: refundOperationId(sale._id),
      entry(current, changes): LedgerRecord {
        return {
          type: "REFUND",
          amountMinor: sale.priceMinor,
          currencyCode: current.currencyCode,
          balanceAfterMinor: changes.balanceMinor as number,
          leadSaleId: sale._id,
          leadId: sale.leadId,
        };
      },
    },
  );
  if (result.replayed) return;
  crashPoint(RETURN_REFUNDED_CRASH_POINT);
  returns.logger.info(
    { tenantId: sale.tenantId, leadSaleId: sale._id, buyerId: sale.buyerId, priceMinor: sale.priceMinor },
    "buyer refunded for a returned lead",
  );
}

async function setFlag(returns: ReturnContext, sale: SaleDocument, actor: Actor, flag: "refunded" | "leadReleased"): Promise<SaleDocument> {
  const { after } = await returns.sales.write({
    id: sale._id,
    actorId: actor.actorId,
    clientEtag: "",
    signal: actor.context?.signal,
    read: () => existingSale(returns.sales, sale.tenantId, sale._id),
    change: (current) => (current[flag] ? undefined : { [flag]: true }),
    stamp: () => ({ updateTime: returns.clock() }),
  });
  return after;
}

async function existingSale(sales: SaleStore, tenantId: string, id: string): Promise<SaleDocument> {
  const sale = await sales.get(tenantId, id);
  if (!sale) throw new NotFoundError("lead sale", id);
  return sale;
}

function checkWindow(sale: SaleDocument, now: Date): void {
  if (now.getTime() > sale.returnDeadline.getTime()) {
    throw new FailedPreconditionError(`the return window of lead sale "${sale._id}" closed at ${sale.returnDeadline.toISOString()}`, {
      lead_sale_id: sale._id,
      return_deadline: sale.returnDeadline.toISOString(),
    });
  }
}
