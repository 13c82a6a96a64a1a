/**
 * PLACEHOLDER written by engineer A1 so the service builds and starts before
 * the sale side exists; engineer A2 owns this file and replaces it. Contract
 * with handlers/index.ts and main.ts: export `SaleHandlers` (the four sale
 * RPCs) and `saleHandlers(deps: SaleServiceDeps): SaleHandlers`.
 */
import type { BuyerServiceImplementation } from "@leadmesh/contracts/buyers/v1/buyers";
import type { CallerContext } from "@leadmesh/platform";
import { ServerError, Status } from "nice-grpc-common";
import type { SaleServiceDeps } from "../service-deps";

export type SaleHandlers = Pick<BuyerServiceImplementation<CallerContext>, "sellLead" | "returnLeadSale" | "getLeadSale" | "listLeadSales">;

export function saleHandlers(_deps: SaleServiceDeps): SaleHandlers {
  const unimplemented = async (): Promise<never> => {
    throw new ServerError(Status.UNIMPLEMENTED, "lead sales are not implemented yet");
  };
  return { sellLead: unimplemented, returnLeadSale: unimplemented, getLeadSale: unimplemented, listLeadSales: unimplemented };
}
