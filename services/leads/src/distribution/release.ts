/**
 * ReleaseLeadSale (buyers, as the service, once a return is refunded:
 * services/buyers ReturnLeadSale step d): the lead goes back to QUALIFIED,
 * its sale is cleared and the buyer that returned it joins
 * returned_buyer_ids, so buyers never sells it to that buyer again.
 * Idempotent: a lead whose sale is no longer `lead_sale_id` (released
 * already, or sold again since) is answered unchanged, so buyers' retries
 * and its sweeper may call it any number of times.
 */
import type { ReleaseLeadSaleRequest, ReleaseLeadSaleResponse } from "@leadmesh/contracts/leads/v1/leads";
import { type CallerContext, checkId, NotFoundError, Violations } from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { releasedChanges } from "../domain/sale-rules";
import { toLead } from "../store";
import type { LeadWriter } from "./lead-writer";

export async function releaseLeadSale(
  writer: LeadWriter,
  request: ReleaseLeadSaleRequest,
  context: CallContext & CallerContext,
): Promise<ReleaseLeadSaleResponse> {
  const violations = new Violations();
  violations.check("lead_id", request.leadId, checkId);
  violations.check("lead_sale_id", request.leadSaleId, checkId);
  violations.throwIfAny();
  const { tenantId, actorId } = context.caller;
  const current = await writer.leads.get(tenantId, request.leadId);
  if (!current) throw new NotFoundError("lead", request.leadId);
  // Most calls after the first change nothing: answered without a write.
  if (!releasedChanges(current, request.leadSaleId)) return { lead: toLead(current) };
  const { before, after } = await writer.write(tenantId, request.leadId, actorId, (lead) => releasedChanges(lead, request.leadSaleId), context.signal);
  await writer.recordStatusChange(before, after, actorId);
  return { lead: toLead(after) };
}
