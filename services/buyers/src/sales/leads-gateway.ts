/**
 * The buyers service's one call to the leads service: a returned sale puts
 * its lead back on sale (leads.v1.LeadService.ReleaseLeadSale; topology:
 * buyers calls leads [LeadService.ReleaseLeadSale]). Called as the buyers
 * service itself (its certificate, the tenant in leadmesh-tenant metadata),
 * never with the user's token: the returns sweeper has no user, and the
 * release is the service's step of a return the user already made.
 */
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { callOptionsFrom, createServiceClient, type MeshTransport, TENANT_HEADER } from "@leadmesh/platform";
import { type CallContext, ClientError, Metadata, Status } from "nice-grpc-common";

const LEADS_DEADLINE_MS = 3_000;

/** Releases a returned sale's lead; resolves once leads has done it (or the lead has nothing left to release). */
export interface LeadReleaser {
  releaseLeadSale(tenantId: string, leadId: string, leadSaleId: string, context?: CallContext): Promise<void>;
}

export function leadsReleaser(leadsAddress: string, transport: MeshTransport): LeadReleaser & { close(): void } {
  const leads = createServiceClient(LeadServiceDefinition, leadsAddress, { transport, peer: "leads", defaultDeadlineMs: LEADS_DEADLINE_MS });
  return {
    async releaseLeadSale(tenantId, leadId, leadSaleId, context) {
      const options = context
        ? callOptionsFrom(context, { tenant: tenantId, deadlineMs: LEADS_DEADLINE_MS })
        : { metadata: Metadata({ [TENANT_HEADER]: tenantId }) };
      try {
        await leads.client.releaseLeadSale({ leadId, leadSaleId }, options);
      } catch (error) {
        // A lead that no longer exists has no sale to release: the return is complete without it.
        if (error instanceof ClientError && error.code === Status.NOT_FOUND) return;
        throw error;
      }
    },
    close: () => leads.close(),
  };
}
