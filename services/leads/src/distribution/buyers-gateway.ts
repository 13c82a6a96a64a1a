/**
 * The leads service's calls to buyers.v1.BuyerService.SellLead. Leads calls
 * as itself (its certificate identity over mTLS; the topology opens SellLead
 * to leads only) in the tenant of the lead (metadata leadmesh-tenant): no
 * user token travels, since the user's access rule was applied to
 * DistributeLead already and SellLead admits services only.
 *
 * Each answer is sorted into what it means for the sale D:
 * - sold: buyers charged a buyer for D (the answer is the same on every retry);
 * - refused: buyers decided D is never sold: FAILED_PRECONDITION, after it
 *   sealed D (no buyer could take the lead), or NOT_FOUND (the named buyer
 *   does not exist in the tenant: nothing was claimed, and a buyer id never
 *   comes to exist later, ids are assigned by buyers). The error is relayed
 *   to the caller as it came, with its PreconditionFailure violations;
 * - anything else (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, a refused
 *   deployment...) is thrown: the outcome of D is unknown, and only another
 *   SellLead(D) can learn it.
 */

import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import type { LeadSale } from "@leadmesh/contracts/buyers/v1/lead_sale";
import type { Lead } from "@leadmesh/contracts/leads/v1/lead";
import { callOptionsFrom, createServiceClient, type DomainError, type MeshTransport, relayedAsItCame, TENANT_HEADER } from "@leadmesh/platform";
import { type CallContext, ClientError, Metadata, Status } from "nice-grpc-common";

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

export type SellOutcome = { kind: "sold"; sale: LeadSale } | { kind: "refused"; error: DomainError };

/** What distribution needs of buyers (faked in unit tests). Throws when the outcome is unknown. */
export interface SaleGateway {
  /** Within `context`'s deadline and cancellation (a DistributeLead call), or else its own deadline and `signal` (recovery). */
  sellLead(call: SellLeadCall, context?: CallContext, signal?: AbortSignal): Promise<SellOutcome>;
  close(): void;
}

const DECIDED_REFUSALS: ReadonlySet<Status> = new Set([Status.FAILED_PRECONDITION, Status.NOT_FOUND]);

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
      return { kind: "sold", sale: leadSale };
    } catch (error) {
      if (error instanceof ClientError && DECIDED_REFUSALS.has(error.code)) return { kind: "refused", error: relayedAsItCame(error) };
      throw error;
    }
  }

  close(): void {
    this.buyers.close();
  }
}
