/**
 * The invariants of lead distribution (issue 9: exactly one sale, exactly one
 * charge), checked over everything a tenant holds, read back over REST:
 * - every lead is either SOLD with exactly one SOLD sale, which its
 *   lead.sale names, and exactly one CHARGE for that sale on that buyer at
 *   that price; or unsold with no SOLD sale;
 * - every sale (SOLD or RETURNED) has exactly one CHARGE, every RETURNED one
 *   exactly one REFUND; every CHARGE and REFUND belongs to a sale (no charge
 *   without a sale);
 * - for every buyer: the balance is the sum of its ledger entries, never
 *   negative, and no calendar day (UTC, the tenants' default time zone) has
 *   more charges than the daily cap;
 * - a lead is never sold again to a buyer that returned it.
 * Returns the problems as sentences (empty when everything holds), so a
 * failing test names every broken lead and buyer at once.
 */
import { type Api, allBuyers, allLeads, leadSales, ledgerEntries, minor } from "./distribution";

const CHARGE = "BUYER_LEDGER_ENTRY_TYPE_CHARGE";
const REFUND = "BUYER_LEDGER_ENTRY_TYPE_REFUND";

export interface TenantState {
  // biome-ignore lint/suspicious/noExplicitAny: REST JSON of buyers.v1.Buyer
  buyers: any[];
  // biome-ignore lint/suspicious/noExplicitAny: REST JSON of leads.v1.Lead
  leads: any[];
  // biome-ignore lint/suspicious/noExplicitAny: REST JSON of buyers.v1.LeadSale
  sales: any[];
  /** Ledger entries by buyer id. */
  // biome-ignore lint/suspicious/noExplicitAny: REST JSON of buyers.v1.BuyerLedgerEntry
  ledgers: Map<string, any[]>;
}

/** Everything the invariants look at, read as the tenant's admin or manager. */
export async function readTenantState(api: Api): Promise<TenantState> {
  const [buyers, leads, sales] = await Promise.all([allBuyers(api), allLeads(api), leadSales(api, "-")]);
  const ledgers = new Map(await Promise.all(buyers.map(async (buyer) => [buyer.id, await ledgerEntries(api, buyer.id)] as const)));
  return { buyers, leads, sales, ledgers };
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

export function distributionProblems(state: TenantState): string[] {
  const problems: string[] = [];
  const entries = [...state.ledgers.entries()].flatMap(([buyerId, list]) => list.map((entry) => ({ ...entry, buyerId: entry.buyerId || buyerId })));
  const charges = entries.filter((entry) => entry.type === CHARGE);
  const refunds = entries.filter((entry) => entry.type === REFUND);
  const chargesOfSale = countBy(charges, (entry) => entry.leadSaleId);
  const refundsOfSale = countBy(refunds, (entry) => entry.leadSaleId);
  const salesById = new Map(state.sales.map((sale) => [sale.id, sale]));

  for (const buyer of state.buyers) {
    const ledger = state.ledgers.get(buyer.id) ?? [];
    const sum = ledger.reduce((total, entry) => total + minor(entry.amount), 0n);
    const balance = minor(buyer.balance);
    if (sum !== balance) problems.push(`buyer ${buyer.id}: balance ${balance} but its ${ledger.length} ledger entries sum to ${sum}`);
    if (balance < 0n) problems.push(`buyer ${buyer.id}: negative balance ${balance}`);
    const cap = Number(buyer.dailyCap ?? 0);
    if (cap > 0) {
      const perDay = countBy(
        ledger.filter((entry) => entry.type === CHARGE),
        (entry) => String(entry.createTime).slice(0, 10),
      );
      for (const [day, count] of perDay) if (count > cap) problems.push(`buyer ${buyer.id}: ${count} charges on ${day}, daily cap ${cap}`);
      if (Number(buyer.salesToday ?? 0) > cap) problems.push(`buyer ${buyer.id}: salesToday ${buyer.salesToday} above daily cap ${cap}`);
    }
    const monthlyCap = Number(buyer.monthlyCap ?? 0);
    if (monthlyCap > 0 && Number(buyer.salesThisMonth ?? 0) > monthlyCap) {
      problems.push(`buyer ${buyer.id}: salesThisMonth ${buyer.salesThisMonth} above monthly cap ${monthlyCap}`);
    }
  }

  for (const entry of [...charges, ...refunds]) {
    const sale = salesById.get(entry.leadSaleId);
    if (!sale) problems.push(`${entry.type} ${entry.id} of buyer ${entry.buyerId} names sale "${entry.leadSaleId}", which does not exist`);
    else if (sale.buyerId !== entry.buyerId) problems.push(`${entry.type} ${entry.id} is on buyer ${entry.buyerId}, its sale ${sale.id} on ${sale.buyerId}`);
    else if (entry.leadId && entry.leadId !== sale.leadId)
      problems.push(`${entry.type} ${entry.id} names lead ${entry.leadId}, its sale ${sale.id} ${sale.leadId}`);
  }

  for (const sale of state.sales) {
    const chargeCount = chargesOfSale.get(sale.id) ?? 0;
    if (chargeCount !== 1) problems.push(`sale ${sale.id} (${sale.state}, lead ${sale.leadId}): ${chargeCount} CHARGE entries, want 1`);
    const charge = charges.find((entry) => entry.leadSaleId === sale.id);
    if (charge && minor(charge.amount) !== -minor(sale.price))
      problems.push(`sale ${sale.id}: charged ${charge.amount.amountMinor}, price ${sale.price?.amountMinor}`);
    const refundCount = refundsOfSale.get(sale.id) ?? 0;
    const wantRefunds = sale.state === "LEAD_SALE_STATE_RETURNED" ? 1 : 0;
    if (refundCount !== wantRefunds) problems.push(`sale ${sale.id} (${sale.state}): ${refundCount} REFUND entries, want ${wantRefunds}`);
    if (sale.state !== "LEAD_SALE_STATE_SOLD" && sale.state !== "LEAD_SALE_STATE_RETURNED") problems.push(`sale ${sale.id} is stored as ${sale.state}`);
  }

  const salesOfLead = new Map<string, typeof state.sales>();
  for (const sale of state.sales) salesOfLead.set(sale.leadId, [...(salesOfLead.get(sale.leadId) ?? []), sale]);
  for (const lead of state.leads) {
    const sales = salesOfLead.get(lead.id) ?? [];
    const sold = sales.filter((sale) => sale.state === "LEAD_SALE_STATE_SOLD");
    if (lead.status === "LEAD_STATUS_SOLD") {
      if (sold.length !== 1) problems.push(`lead ${lead.id} is SOLD with ${sold.length} SOLD sales, want 1`);
      else if (lead.sale?.leadSaleId !== sold[0].id || lead.sale?.buyerId !== sold[0].buyerId) {
        problems.push(`lead ${lead.id} records sale ${lead.sale?.leadSaleId} to ${lead.sale?.buyerId}, the SOLD sale is ${sold[0].id} to ${sold[0].buyerId}`);
      }
    } else {
      if (sold.length > 0) problems.push(`lead ${lead.id} is ${lead.status} but has SOLD sales ${sold.map((sale) => sale.id).join(", ")}`);
      if (lead.sale) problems.push(`lead ${lead.id} is ${lead.status} but records sale ${lead.sale.leadSaleId}`);
    }
    const returnedTo = new Set(sales.filter((sale) => sale.state === "LEAD_SALE_STATE_RETURNED").map((sale) => sale.buyerId));
    for (const buyerId of returnedTo) {
      if (!(lead.returnedBuyerIds ?? []).includes(buyerId)) problems.push(`lead ${lead.id}: returned by ${buyerId}, not in returnedBuyerIds`);
    }
    const soldAgainTo = sold.filter((sale) => returnedTo.has(sale.buyerId));
    for (const sale of soldAgainTo) problems.push(`lead ${lead.id} was sold again (sale ${sale.id}) to ${sale.buyerId}, which had returned it`);
  }
  return problems;
}

/** Reads the tenant and returns the broken invariants. */
export async function checkDistributionInvariants(api: Api): Promise<string[]> {
  return distributionProblems(await readTenantState(api));
}
