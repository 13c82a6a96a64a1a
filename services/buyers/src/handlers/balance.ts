/**
 * The buyer's balance: TopUpBuyer (a TOP_UP or CREDIT ledger entry) and
 * ListBuyerLedgerEntries. A top-up is one revisioned write of the buyer
 * whose claim carries the ledger entry (store.ts: the ledger is the claims);
 * with a request_id it is the operation `topup:<sha256(tenant, buyer,
 * request_id)>`, which lands at most once: a retry is answered with the
 * entry of the first attempt, however the first attempt ended.
 */
import { createHash } from "node:crypto";
import { type BuyerLedgerEntry, BuyerLedgerEntryType } from "@leadmesh/contracts/buyers/v1/buyer";
import type { BuyerServiceImplementation, TopUpBuyerRequest } from "@leadmesh/contracts/buyers/v1/buyers";
import {
  type CallerContext,
  DomainError,
  decodePageToken,
  FailedPreconditionError,
  IdempotencyKeys,
  InvalidArgumentError,
  OperationPendingError,
  queryFingerprint,
  type RevisionClaim,
  requireId,
  resolvePageSize,
  text,
  Violations,
} from "@leadmesh/platform";
import { Status } from "nice-grpc-common";
import { isLedgerRecord, type LedgerEntryTypeName, type LedgerRecord } from "../domain/ledger";
import { MAX_STORED_MINOR, MAX_TOP_UP_MINOR, type Money, parseAmount } from "../domain/money";
import { type BuyerDocument, type BuyerWriteResult, toLedgerEntry } from "../store";
import { actorOf, type BuyerAccess } from "./buyer-access";

export type BalanceHandlers = Pick<BuyerServiceImplementation<CallerContext>, "topUpBuyer" | "listBuyerLedgerEntries">;

const checkNote = text({ max: 500, multiline: true });

const TOP_UP_TYPES = new Map<BuyerLedgerEntryType, LedgerEntryTypeName>([
  [BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_UNSPECIFIED, "TOP_UP"],
  [BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_TOP_UP, "TOP_UP"],
  [BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CREDIT, "CREDIT"],
]);

interface TopUp {
  id: string;
  amount: Money;
  type: LedgerEntryTypeName;
  note: string;
  requestId: string;
}

/** Validates a TopUpBuyerRequest; every violation at once. */
export function parseTopUp(request: TopUpBuyerRequest): TopUp {
  const violations = new Violations();
  const id = requireId(request.id, "id");
  const amount = parseAmount(request.amount, "amount", { min: 1, max: MAX_TOP_UP_MINOR }, violations);
  const type = TOP_UP_TYPES.get(request.type);
  if (!type) violations.add("type", "must be BUYER_LEDGER_ENTRY_TYPE_TOP_UP (the default) or BUYER_LEDGER_ENTRY_TYPE_CREDIT");
  const note = request.note.trim();
  violations.check("note", note, checkNote);
  IdempotencyKeys.validate(request.requestId, violations);
  violations.throwIfAny();
  return { id, amount: amount as Money, type: type as LedgerEntryTypeName, note, requestId: request.requestId };
}

/** The operation id of a top-up with a request id: per tenant and buyer, so ids of different buyers never collide. */
export function topUpOperationId(tenantId: string, buyerId: string, requestId: string): string {
  return `topup:${createHash("sha256")
    .update(JSON.stringify([tenantId, buyerId, requestId]))
    .digest("hex")}`;
}

/** Whether a landed top-up is the one this request asks for (a retry), not a reuse of its request_id for another. */
function sameTopUp(claim: RevisionClaim, topUp: TopUp): boolean {
  const entry = claim.entry;
  return (
    claim.subjectId === topUp.id &&
    isLedgerRecord(entry) &&
    entry.type === topUp.type &&
    entry.amountMinor === topUp.amount.amountMinor &&
    entry.currencyCode === topUp.amount.currencyCode &&
    (entry.note ?? "") === topUp.note
  );
}

/**
 * A retried top-up whose change is refused now (the buyer was deleted since,
 * or its balance is full) is still answered with the entry it landed the
 * first time: the refusal is only final if the operation never landed.
 * Looking the operation up is a scan of the claims on FerretDB, so only
 * this refusal path does it. An operation still pending (its first attempt
 * claimed and is writing, or died and awaits release) may yet land: the
 * refusal is not final, so the answer is UNAVAILABLE OPERATION_PENDING
 * (retry shortly), as write() answers a pending operation it meets.
 */
async function replayedAfterRefusal(buyers: BuyerAccess, opId: string, tenantId: string, error: unknown): Promise<BuyerWriteResult> {
  if (!(error instanceof DomainError) || (error.code !== Status.FAILED_PRECONDITION && error.code !== Status.INVALID_ARGUMENT)) throw error;
  const found = await buyers.store.revisions.findOperation(opId);
  if (found === null || found.claim.tenantId !== tenantId) throw error;
  if (found.state === "pending") {
    throw new OperationPendingError(`top-up "${opId}" of buyer "${found.claim.subjectId}" is still being applied by an earlier attempt; retry shortly`, 1000, {
      resource_type: "buyer",
      resource_id: found.claim.subjectId,
      operation_id: opId,
    });
  }
  if (found.state !== "landed") throw error;
  const current = await buyers.existing(tenantId, found.claim.subjectId);
  return { before: current, after: current, replayed: found.claim };
}

export function balanceHandlers(buyers: BuyerAccess): BalanceHandlers {
  return {
    async topUpBuyer(request, context) {
      const tenantId = context.caller.tenantId;
      // Existence first: another tenant's buyer id answers NOT_FOUND whatever the body.
      await buyers.existing(tenantId, requireId(request.id, "id"));
      const topUp = parseTopUp(request);
      const change = (current: BuyerDocument) => {
        if (current.deleteTime) throw new FailedPreconditionError(`buyer "${topUp.id}" is deleted; undelete it first`, { resource_id: topUp.id });
        if (topUp.amount.currencyCode !== current.currencyCode) {
          throw new InvalidArgumentError([{ field: "amount.currency_code", description: `must be ${current.currencyCode}, the buyer's currency` }]);
        }
        const balanceMinor = current.balanceMinor + topUp.amount.amountMinor;
        if (balanceMinor > MAX_STORED_MINOR) {
          throw new FailedPreconditionError(`buyer "${topUp.id}" cannot hold a balance above ${MAX_STORED_MINOR} minor units`, { resource_id: topUp.id });
        }
        return { balanceMinor };
      };
      const opId = topUp.requestId === "" ? undefined : topUpOperationId(tenantId, topUp.id, topUp.requestId);
      const write = buyers.write(actorOf(context), topUp.id, "", change, {
        opId,
        entry: (current, changes): LedgerRecord => ({
          type: topUp.type,
          amountMinor: topUp.amount.amountMinor,
          currencyCode: current.currencyCode,
          balanceAfterMinor: changes.balanceMinor as number,
          ...(topUp.note === "" ? {} : { note: topUp.note }),
        }),
      });
      const result = opId === undefined ? await write : await write.catch((error: unknown) => replayedAfterRefusal(buyers, opId, tenantId, error));
      let ledgerEntry: BuyerLedgerEntry;
      let buyer = result.after;
      if (result.replayed) {
        if (!sameTopUp(result.replayed, topUp)) {
          throw new InvalidArgumentError([
            { field: "request_id", description: "was already used with a different top-up; use a new request_id for a new request" },
          ]);
        }
        ledgerEntry = toLedgerEntry(result.replayed);
        // The replayed entry landed: the buyer is at its revision or later.
        buyer = await buyers.existing(tenantId, topUp.id);
      } else {
        if (result.after.revision === result.before.revision) throw new Error(`top-up of buyer "${topUp.id}" wrote nothing`);
        // The entry exactly as the ledger lists it: the landed claim of that revision.
        const claim = await buyers.store.claimOf(topUp.id, result.after.revision);
        if (!claim || claim.tenantId !== tenantId) throw new Error(`top-up of buyer "${topUp.id}" landed revision ${result.after.revision} without its claim`);
        ledgerEntry = toLedgerEntry(claim);
      }
      return { buyer: await buyers.present(buyer, context), ledgerEntry };
    },

    async listBuyerLedgerEntries(request, context) {
      const violations = new Violations();
      const buyerId = requireId(request.buyerId, "buyer_id");
      const pageSize = resolvePageSize(request.pageSize, violations);
      violations.throwIfAny();
      const tenantId = context.caller.tenantId;
      const fingerprint = queryFingerprint(tenantId, buyerId, "ledger");
      const cursor = decodePageToken(request.pageToken, fingerprint);
      // Read the buyer after the token check and before the claims: its revision bounds the landed entries.
      const buyer = await buyers.existing(tenantId, buyerId);
      const page = await buyers.store.listLedger(buyer, pageSize, cursor, fingerprint);
      return { ledgerEntries: page.entries, nextPageToken: page.nextPageToken };
    },
  };
}
