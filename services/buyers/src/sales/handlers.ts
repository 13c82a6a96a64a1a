/**
 * The sale side of buyers.v1.BuyerService: SellLead (sell.ts), ReturnLeadSale
 * (returns.ts), GetLeadSale and ListLeadSales; handlers/index.ts merges them
 * with the buyer side. saleBackgroundTask is the returns sweeper (sweeper.ts),
 * which main.ts starts beside the server and stops at shutdown.
 */
import type { BuyerServiceImplementation } from "@leadmesh/contracts/buyers/v1/buyers";
import { LeadSaleReturnReason, LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import {
  type CallerContext,
  checkId,
  compileFilter,
  decodePageToken,
  enumFilterValues,
  type FilterFields,
  NotFoundError,
  type OrderableField,
  parseOrderBy,
  queryFingerprint,
  requireId,
  resolvePageSize,
  Violations,
} from "@leadmesh/platform";
import { actorOf } from "../handlers/buyer-access";
import type { BackgroundTask, SaleServiceDeps } from "../service-deps";
import { leadsReleaser } from "./leads-gateway";
import { type ReturnContext, returnLeadSale } from "./returns";
import { SaleStore, toLeadSale } from "./sales-store";
import { type SaleContext, sellLead } from "./sell";
import { startSaleSweeper } from "./sweeper";

export type SaleHandlers = Pick<BuyerServiceImplementation<CallerContext>, "sellLead" | "returnLeadSale" | "getLeadSale" | "listLeadSales">;

const SALE_FILTER_FIELDS: FilterFields = {
  lead_id: { path: "leadId", type: { kind: "string" } },
  state: { path: "state", type: { kind: "enum", values: enumFilterValues(LeadSaleState, "LEAD_SALE_STATE_") } },
  return_reason: { path: "returnReason", type: { kind: "enum", values: enumFilterValues(LeadSaleReturnReason, "LEAD_SALE_RETURN_REASON_") } },
  create_time: { path: "createTime", type: { kind: "timestamp" } },
  sell_time: { path: "sellTime", type: { kind: "timestamp" } },
  return_time: { path: "returnTime", type: { kind: "timestamp" } },
};

const SALE_ORDER_FIELDS: Record<string, OrderableField> = {
  create_time: { path: "createTime", kind: "date" },
  sell_time: { path: "sellTime", kind: "date" },
};

/** ListLeadSales' buyer_id for the sales of every buyer of the tenant (AIP-159). */
const ANY_BUYER = "-";

function returnContext(deps: SaleServiceDeps, sales: SaleStore, leads: ReturnContext["leads"]): ReturnContext {
  return { buyers: deps.buyers, sales, leads, clock: () => deps.buyers.now(), logger: deps.logger };
}

export function saleHandlers(deps: SaleServiceDeps): SaleHandlers {
  const sales = new SaleStore(deps.db);
  const selling: SaleContext = { buyers: deps.buyers, sales, clock: () => deps.buyers.now(), logger: deps.logger };
  const returns = returnContext(deps, sales, leadsReleaser(deps.leadsAddress, deps.transport));

  return {
    async sellLead(request, context) {
      const leadSale = await sellLead(selling, request, { tenantId: context.caller.tenantId, actorId: context.caller.actorId }, context);
      return { leadSale };
    },

    async returnLeadSale(request, context) {
      return { leadSale: await returnLeadSale(returns, request, { ...actorOf(context), context }) };
    },

    async getLeadSale(request, context) {
      const id = requireId(request.id, "id");
      const sale = await sales.get(context.caller.tenantId, id);
      if (!sale) throw new NotFoundError("lead sale", id);
      return { leadSale: toLeadSale(sale) };
    },

    async listLeadSales(request, context) {
      const violations = new Violations();
      if (request.buyerId !== ANY_BUYER) violations.check("buyer_id", request.buyerId, checkId);
      const pageSize = resolvePageSize(request.pageSize, violations);
      const order = parseOrderBy(request.orderBy, SALE_ORDER_FIELDS, "create_time desc", violations);
      violations.throwIfAny();
      const tenantId = context.caller.tenantId;
      const buyerId = request.buyerId === ANY_BUYER ? undefined : request.buyerId;
      // Another tenant's buyer id answers NOT_FOUND, as GetBuyer does.
      if (buyerId !== undefined) await deps.buyers.existing(tenantId, buyerId);
      const query = compileFilter(request.filter, SALE_FILTER_FIELDS);
      const fingerprint = queryFingerprint(tenantId, request.buyerId, request.filter.trim(), order);
      const cursor = decodePageToken(request.pageToken, fingerprint);
      const page = await sales.list(tenantId, buyerId, query, order, pageSize, cursor, fingerprint);
      return { leadSales: page.items.map(toLeadSale), nextPageToken: page.nextPageToken };
    },
  };
}

/** The returns sweeper as a task main.ts starts beside the server (main.ts backgroundTasks) and stops at shutdown. */
export function saleBackgroundTask(deps: SaleServiceDeps): BackgroundTask {
  const leads = leadsReleaser(deps.leadsAddress, deps.transport);
  const sweeper = startSaleSweeper(returnContext(deps, new SaleStore(deps.db), leads), deps.env, deps.logger);
  return {
    async stop() {
      await sweeper.stop();
      leads.close();
    },
  };
}
