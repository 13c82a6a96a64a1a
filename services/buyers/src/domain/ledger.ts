/**
 * A buyer's ledger entry as the write that moved the balance records it on
 * its revision claim (RevisionedWrite.entry; see store.ts): the entry lands
 * exactly when the balance change does, so the balance is always the sum of
 * the landed entries. Charges and refunds (sales/) and top-ups
 * (handlers/balance.ts) all record this shape.
 */
import { BuyerLedgerEntryType } from "@leadmesh/contracts/buyers/v1/buyer";

export type LedgerEntryTypeName = "TOP_UP" | "CREDIT" | "CHARGE" | "REFUND";

/** Stored on the claim (a type alias, not an interface: it must be a Record<string, unknown>). */
export type LedgerRecord = {
  type: LedgerEntryTypeName;
  /** Signed: negative for charges. */
  amountMinor: number;
  currencyCode: string;
  balanceAfterMinor: number;
  /** Charges and refunds: the sale and its lead. */
  leadSaleId?: string;
  leadId?: string;
  /** Charges: the buyer's return window (seconds) when charged; the sale's return deadline is counted from it, whenever the sale is recorded. */
  returnWindowSeconds?: number;
  /** Top-ups and credits: the client's note. */
  note?: string;
};

const TYPES: Record<LedgerEntryTypeName, BuyerLedgerEntryType> = {
  TOP_UP: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_TOP_UP,
  CREDIT: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CREDIT,
  CHARGE: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CHARGE,
  REFUND: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_REFUND,
};

export function ledgerEntryType(name: string): BuyerLedgerEntryType {
  return TYPES[name as LedgerEntryTypeName] ?? BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_UNSPECIFIED;
}

/** Whether a claim's entry is a ledger record (claims of other writes carry none). */
export function isLedgerRecord(entry: Record<string, unknown> | undefined): entry is LedgerRecord {
  return entry !== undefined && typeof entry.type === "string" && entry.type in TYPES && typeof entry.amountMinor === "number";
}
