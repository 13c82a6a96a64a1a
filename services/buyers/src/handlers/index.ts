/**
 * buyers.v1.BuyerService: the buyer side (buyers.ts, balance.ts) merged with
 * the sale side (src/sales/handlers.ts: SellLead, ReturnLeadSale,
 * GetLeadSale, ListLeadSales).
 */
import type { BuyerServiceImplementation } from "@leadmesh/contracts/buyers/v1/buyers";
import type { CallerContext, IdempotencyKeys } from "@leadmesh/platform";
import type { SaleHandlers } from "../sales/handlers";
import { balanceHandlers } from "./balance";
import type { BuyerAccess } from "./buyer-access";
import { buyerCrudHandlers } from "./buyers";

export function buyerServiceHandlers(buyers: BuyerAccess, requestIds: IdempotencyKeys, sales: SaleHandlers): BuyerServiceImplementation<CallerContext> {
  return { ...buyerCrudHandlers(buyers, requestIds), ...balanceHandlers(buyers), ...sales };
}
