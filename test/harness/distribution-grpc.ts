/**
 * Buyers, leads and sales straight over gRPC (mTLS as the operator, with a
 * tenant admin's token), for private meshes that run without Envoy (the
 * crash tests): register a tenant, make fixtures, distribute and return, and
 * read the whole tenant back in the REST JSON shape (the generated toJSON:
 * enum names, int64 strings, RFC 3339 times) so the same invariant check
 * (distribution-invariants.ts) judges it.
 */
import { randomUUID } from "node:crypto";
import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { Buyer, BuyerLedgerEntry } from "@leadmesh/contracts/buyers/v1/buyer";
import { BuyerServiceDefinition } from "@leadmesh/contracts/buyers/v1/buyers";
import { LeadSale, LeadSaleReturnReason } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import type { MeshCertificatePaths } from "../../scripts/mesh/certificates";
import { grpcClient } from "./clients";
import { CURRENCY } from "./distribution";
import type { TenantState } from "./distribution-invariants";
import { PASSWORD } from "./identity";

/** Where the services of a mesh listen and whose certificates to use. */
export interface GrpcMesh {
  grpcAddress(service: string): string;
  certificates: MeshCertificatePaths;
}

/** Registers a tenant through auth's Register (public), as the operator; its admin's access token. */
export async function registerTenantGrpc(mesh: GrpcMesh, tenantId: string): Promise<string> {
  const { client, close } = grpcClient(AuthServiceDefinition, mesh.grpcAddress("auth"), undefined, { certificates: mesh.certificates, server: "auth" });
  try {
    const response = await client.register({
      tenantId,
      tenantDisplayName: `${tenantId} Inc.`,
      email: `admin@${tenantId}.example`,
      password: PASSWORD,
      displayName: "Admin",
    });
    if (!response.tokens?.accessToken) throw new Error(`registering ${tenantId} returned no access token`);
    return response.tokens.accessToken;
  } finally {
    close();
  }
}

/** The leads and buyers clients of one tenant admin. */
export class DistributionGrpc {
  readonly leads;
  readonly buyers;
  private readonly closers: Array<() => void>;

  constructor(mesh: GrpcMesh, token: string) {
    const leads = grpcClient(LeadServiceDefinition, mesh.grpcAddress("leads"), token, { certificates: mesh.certificates, server: "leads" });
    const buyers = grpcClient(BuyerServiceDefinition, mesh.grpcAddress("buyers"), token, { certificates: mesh.certificates, server: "buyers" });
    this.leads = leads.client;
    this.buyers = buyers.client;
    this.closers = [leads.close, buyers.close];
  }

  close(): void {
    for (const close of this.closers) close();
  }

  async fundedBuyer(balanceMinor: number, priceMinor: number, dailyCap = 0) {
    const { buyer } = await this.buyers.createBuyer({
      buyer: {
        displayName: `Buyer ${randomUUID().slice(0, 8)}`,
        pricePerLead: { currencyCode: CURRENCY, amountMinor: String(priceMinor) },
        dailyCap: String(dailyCap),
      },
    });
    if (!buyer) throw new Error("CreateBuyer answered no buyer");
    const topped = await this.buyers.topUpBuyer({
      id: buyer.id,
      amount: { currencyCode: CURRENCY, amountMinor: String(balanceMinor) },
      requestId: randomUUID(),
    });
    return topped.buyer ?? buyer;
  }

  async qualifiedLead(label: string) {
    const { lead } = await this.leads.createLead({
      lead: { firstName: label, email: "crash@example.com", source: LeadSource.LEAD_SOURCE_WEB_FORM, status: LeadStatus.LEAD_STATUS_QUALIFIED, score: 50 },
    });
    if (!lead) throw new Error("CreateLead answered no lead");
    return lead;
  }

  distribute(leadId: string, requestId: string) {
    return this.leads.distributeLead({ leadId, requestId });
  }

  returnSale(id: string) {
    return this.buyers.returnLeadSale({ id, returnReason: LeadSaleReturnReason.LEAD_SALE_RETURN_REASON_DUPLICATE });
  }

  /** Everything the invariants look at, as REST would show it. */
  async readState(): Promise<TenantState> {
    const buyers = await pages(
      (pageToken) => this.buyers.listBuyers({ pageSize: 1000, pageToken, showDeleted: true }),
      (page) => page.buyers,
    );
    const leads = await pages(
      (pageToken) => this.leads.listLeads({ pageSize: 1000, pageToken }),
      (page) => page.leads,
    );
    const sales = await pages(
      (pageToken) => this.buyers.listLeadSales({ buyerId: "-", pageSize: 1000, pageToken }),
      (page) => page.leadSales,
    );
    const ledgers = new Map<string, unknown[]>();
    for (const buyer of buyers) {
      const entries = await pages(
        (pageToken) => this.buyers.listBuyerLedgerEntries({ buyerId: buyer.id, pageSize: 1000, pageToken }),
        (page) => page.ledgerEntries,
      );
      ledgers.set(
        buyer.id,
        entries.map((entry) => BuyerLedgerEntry.toJSON(entry)),
      );
    }
    return {
      buyers: buyers.map((buyer) => Buyer.toJSON(buyer)),
      leads: leads.map((lead) => Lead.toJSON(lead)),
      sales: sales.map((sale) => LeadSale.toJSON(sale)),
      // biome-ignore lint/suspicious/noExplicitAny: the REST JSON shape TenantState holds
      ledgers: ledgers as Map<string, any[]>,
    };
  }
}

async function pages<P extends { nextPageToken: string }, T>(fetchPage: (pageToken: string) => Promise<P>, items: (page: P) => T[]): Promise<T[]> {
  const all: T[] = [];
  let pageToken = "";
  for (let page = 0; page < 1000; page++) {
    const response = await fetchPage(pageToken);
    all.push(...items(response));
    pageToken = response.nextPageToken;
    if (!pageToken) return all;
  }
  throw new Error("a list kept returning next pages");
}
