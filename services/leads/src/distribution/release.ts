/**
 * ReleaseLeadSale (buyers, as the service, once a return is refunded:
 * services/buyers ReturnLeadSale step d): the lead goes back to QUALIFIED,
 * its sale is cleared, the buyer that returned it joins returned_buyer_ids
 * (buyers never sells it to that buyer again) and the sale id joins the
 * lead's past sale ids (the request_id behind it cannot sell it again).
 *
 * The sale may not be recorded on the lead yet: buyers sold it and the buyer
 * returned it before leads recorded the sale (a leads crash after SellLead,
 * or a slow record), so the lead is still claimed by the distribution D.
 * Then the distribution is completed here: SellLead(D) now answers that D
 * was returned, with its buyer, and the lead is released the same way
 * (distribute.ts step 4, RETURNED). Without that, the release would be a
 * no-op and recovery would later record the returned sale as SOLD.
 *
 * Idempotent: a lead whose sale is no longer `lead_sale_id` (released
 * already, or sold again since) is answered unchanged, so buyers' retries
 * and its sweeper may call it any number of times.
 */
import type { ReleaseLeadSaleRequest, ReleaseLeadSaleResponse } from "@leadmesh/contracts/leads/v1/leads";
import { type CallerContext, checkId, NotFoundError, Violations } from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { releasedChanges } from "../domain/sale-rules";
import { type LeadDocument, toLead } from "../store";
import type { Distributor } from "./distribute";
import type { LeadWriter } from "./lead-writer";

export interface ReleaseDependencies {
  writer: LeadWriter;
  distributor: Distributor;
}

export async function releaseLeadSale(
  deps: ReleaseDependencies,
  request: ReleaseLeadSaleRequest,
  context: CallContext & CallerContext,
): Promise<ReleaseLeadSaleResponse> {
  const violations = new Violations();
  violations.check("lead_id", request.leadId, checkId);
  violations.check("lead_sale_id", request.leadSaleId, checkId);
  violations.throwIfAny();
  const { tenantId, actorId } = context.caller;
  const { writer } = deps;
  let current = await existing(writer, tenantId, request.leadId);
  const pending = current.distribution;
  if (pending?.leadSaleId === request.leadSaleId) {
    // Throws UNAVAILABLE while buyers cannot say: buyers retries the release (its returns sweeper).
    await deps.distributor.resume(current, pending, context);
    current = await existing(writer, tenantId, request.leadId);
  }
  // Most calls after the first change nothing: answered without a write.
  if (!releasedChanges(current, request.leadSaleId)) return { lead: toLead(current) };
  const { before, after } = await writer.write(tenantId, request.leadId, actorId, (lead) => releasedChanges(lead, request.leadSaleId), context.signal);
  await writer.recordStatusChange(before, after, actorId);
  return { lead: toLead(after) };
}

async function existing(writer: LeadWriter, tenantId: string, leadId: string): Promise<LeadDocument> {
  const lead = await writer.leads.get(tenantId, leadId);
  if (!lead) throw new NotFoundError("lead", leadId);
  return lead;
}
