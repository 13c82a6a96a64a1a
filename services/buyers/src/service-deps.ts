/**
 * What main.ts hands the sale side (src/sales/, engineer A2's: SellLead,
 * ReturnLeadSale, GetLeadSale, ListLeadSales and the returns sweeper), so
 * that side needs no wiring of its own in main.
 */
import type { Logger, MeshTransport } from "@leadmesh/platform";
import type { Db } from "mongodb";
import type { BuyerAccess } from "./handlers/buyer-access";

export interface SaleServiceDeps {
  /** The buyers service's database (lead_sales, lead_sale_revisions live here). */
  db: Db;
  /** Buyers: tenant-scoped reads, revisioned writes (opId, entry) that keep GetBuyer's cache current, zones. */
  buyers: BuyerAccess;
  logger: Logger;
  transport: MeshTransport;
  /** gRPC target of the leads service's replicas (LEADS_ADDRESS): ReleaseLeadSale. */
  leadsAddress: string;
  /** The process environment (BUYERS_SWEEP_MS and the like). */
  env: NodeJS.ProcessEnv;
}

/** A task running beside the server (the returns sweeper), stopped at shutdown. */
export interface BackgroundTask {
  stop(): void | Promise<void>;
}
