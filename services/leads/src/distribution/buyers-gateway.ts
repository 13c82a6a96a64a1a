/**
 * The leads service's calls to buyers.v1.BuyerService.SellLead. Leads calls
 * as itself (its certificate identity over mTLS; the topology opens SellLead
 * to leads only) in the tenant of the lead (metadata leadmesh-tenant): no
 * user token travels, since the user's access rule was applied to
 * DistributeLead already and SellLead admits services only.
 *
 * Each answer is sorted into what it means for the sale D, keyed on what
 * buyers decided (ErrorInfo reason and metadata), never on the status code
 * alone: a FAILED_PRECONDITION buyers raised for another cause must not
 * clear a claim whose sale may still be made.
 * - sold: a LeadSale in state SOLD: buyers charged a buyer for D (the same
 *   answer on every retry);
 * - returned: D was sold and the buyer has returned it (buyers answers
 *   FAILED_PRECONDITION with metadata lead_sale_state=RETURNED and buyer_id,
 *   or, from an older buyers, the LeadSale in state RETURNED): D is decided
 *   and used up; the lead is released to sell again (without that buyer);
 * - refused: buyers decided D is never sold: FAILED_PRECONDITION with reason
 *   NO_MATCHING_BUYER, after it sealed D (no buyer could take the lead), or
 *   NOT_FOUND with resource_type "buyer" (the named buyer does not exist in
 *   the tenant: nothing was claimed, and a buyer id never comes to exist
 *   later, ids are assigned by buyers). The error is relayed to the caller
 *   as it came, with its PreconditionFailure violations;
 * - anything else (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, another
 *   FAILED_PRECONDITION, a sale in another state, a refused deployment...)
 *   is thrown: the outcome of D is unknown, and only another SellLead(D)
 *   can learn it.
 * validate_only decides nothing: its sale (PENDING) is "sold" and any
 * FAILED_PRECONDITION or NOT_FOUND is relayed as "refused".
 */

import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import { type LeadSale, LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import type { Lead } from "@leadmesh/contracts/leads/v1/lead";
import { callOptionsFrom, createServiceClient, type DomainError, type MeshTransport, relayedAsItCame, TENANT_HEADER } from "@leadmesh/platform";
import { type CallContext, ClientError, Metadata, Status } from "nice-grpc-common";
import { RETURNED_SALE_STATE } from "../domain/sale-rules";

/**
 * Each SellLead call, shortened to the caller's deadline (Envoy gives REST
 * calls 15 s). Generous: a sale is a few database round trips per candidate
 * buyer, slow under load, and running out of time only turns a sale that
 * will happen anyway into a pending answer (on 2 busy cores, 4 s turned 36
 * of 200 concurrent distributions into 503s).
 */
const SELL_DEADLINE_MS = 10_000;

export interface SellLeadCall {
  tenantId: string;
  leadSaleId: string;
  lead: Lead;
  buyerId: string;
  validateOnly: boolean;
}

export type SellOutcome =
  | { kind: "sold"; sale: LeadSale }
  /** D was sold to `buyerId` and returned by it. */
  | { kind: "returned"; buyerId: string }
  | { kind: "refused"; error: DomainError };

/** What distribution needs of buyers (faked in unit tests). Throws when the outcome is unknown. */
export interface SaleGateway {
  /** Within `context`'s deadline and cancellation (a DistributeLead call), or else its own deadline and `signal` (recovery). */
  sellLead(call: SellLeadCall, context?: CallContext, signal?: AbortSignal): Promise<SellOutcome>;
  close(): void;
}

export class BuyersGateway implements SaleGateway {
  private readonly buyers;

  constructor(address: string, transport: MeshTransport) {
    this.buyers = createServiceClient(BuyerServiceDefinition, address, { transport, peer: "buyers", defaultDeadlineMs: SELL_DEADLINE_MS });
  }

  async sellLead(call: SellLeadCall, context?: CallContext, signal?: AbortSignal): Promise<SellOutcome> {
    const options = context
      ? callOptionsFrom(context, { tenant: call.tenantId, deadlineMs: SELL_DEADLINE_MS })
      : { metadata: Metadata({ [TENANT_HEADER]: call.tenantId }), deadline: new Date(Date.now() + SELL_DEADLINE_MS), signal };
    try {
      const { leadSale } = await this.buyers.client.sellLead(
        { leadSaleId: call.leadSaleId, lead: call.lead, buyerId: call.buyerId, validateOnly: call.validateOnly },
        options,
      );
      if (!leadSale) throw new Error(`buyers.SellLead answered sale ${call.leadSaleId} without the sale`);
      return outcomeOfSale(leadSale, call);
    } catch (error) {
      const outcome = error instanceof ClientError ? outcomeOfError(error, call) : undefined;
      if (outcome) return outcome;
      throw error;
    }
  }

  close(): void {
    this.buyers.close();
  }
}

const RETURNED_STATES: ReadonlySet<string> = new Set([RETURNED_SALE_STATE, LeadSaleState[LeadSaleState.LEAD_SALE_STATE_RETURNED]]);

/** A sale buyers answered; throws for a state that decides nothing (a buyers bug: the claim stays, loudly). */
export function outcomeOfSale(sale: LeadSale, call: SellLeadCall): SellOutcome {
  if (call.validateOnly || sale.state === LeadSaleState.LEAD_SALE_STATE_SOLD) return { kind: "sold", sale };
  if (sale.state === LeadSaleState.LEAD_SALE_STATE_RETURNED && sale.buyerId !== "") return { kind: "returned", buyerId: sale.buyerId };
  throw new Error(`buyers.SellLead answered sale ${call.leadSaleId} in state ${LeadSaleState[sale.state] ?? sale.state}, which decides nothing`);
}

/** A refusal buyers decided for D, or undefined when the error leaves the outcome of D unknown. */
export function outcomeOfError(error: ClientError, call: SellLeadCall): SellOutcome | undefined {
  if (error.code !== Status.FAILED_PRECONDITION && error.code !== Status.NOT_FOUND) return undefined;
  const relayed = relayedAsItCame(error);
  if (call.validateOnly) return { kind: "refused", error: relayed };
  const { metadata } = relayed;
  if (error.code === Status.NOT_FOUND) return metadata.resource_type === "buyer" ? { kind: "refused", error: relayed } : undefined;
  if (relayed.reason === "NO_MATCHING_BUYER") return { kind: "refused", error: relayed };
  const buyerId = metadata.buyer_id ?? "";
  if (RETURNED_STATES.has(metadata.lead_sale_state ?? "") && buyerId !== "") return { kind: "returned", buyerId };
  return undefined;
}
