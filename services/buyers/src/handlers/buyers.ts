/**
 * Buyer CRUD and state: GetBuyer, ListBuyers, CreateBuyer, UpdateBuyer,
 * DeleteBuyer, UndeleteBuyer, PauseBuyer, ResumeBuyer. Each validates the
 * request, calls the domain rules and the store through BuyerAccess (tenant
 * scope, read cache) and maps the result; errors are platform DomainErrors.
 * Roles are the proto's access rules, enforced by the kernel.
 */
import { Buyer, BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import type { BuyerServiceImplementation } from "@leadmesh/contracts/buyers/v1/buyers";
import {
  type CallerContext,
  compileFilter,
  decodePageToken,
  enumFilterValues,
  FailedPreconditionError,
  type FilterFields,
  IdempotencyKeys,
  type OrderableField,
  parseOrderBy,
  queryFingerprint,
  requestFingerprint,
  requireId,
  requireMessage,
  resolvePageSize,
  Violations,
} from "@leadmesh/platform";
import { applyUpdate, newBuyer } from "../domain/buyer-rules";
import { type BuyerDocument, inputOfDocument, storedFields, toBuyer } from "../store";
import { actorOf, type BuyerAccess, type Context } from "./buyer-access";

export type BuyerCrudHandlers = Pick<
  BuyerServiceImplementation<CallerContext>,
  "getBuyer" | "listBuyers" | "createBuyer" | "updateBuyer" | "deleteBuyer" | "undeleteBuyer" | "pauseBuyer" | "resumeBuyer"
>;

const BUYER_FILTER_FIELDS: FilterFields = {
  state: { path: "state", type: { kind: "enum", values: enumFilterValues(BuyerState, "BUYER_STATE_") } },
  display_name: { path: "displayName", type: { kind: "string" } },
  create_time: { path: "createTime", type: { kind: "timestamp" } },
  update_time: { path: "updateTime", type: { kind: "timestamp" } },
};

const BUYER_ORDER_FIELDS: Record<string, OrderableField> = {
  display_name: { path: "displayName", kind: "string" },
  create_time: { path: "createTime", kind: "date" },
  update_time: { path: "updateTime", kind: "date" },
};

/** What a create asked for, to tell a retry (same request_id, same buyer) from a reused request_id (AIP-155). */
function buyerFingerprint(buyer: Buyer | undefined): string {
  return requestFingerprint(Buyer.encode(Buyer.fromPartial(buyer ?? {})).finish());
}

function refuseDeleted(document: BuyerDocument): void {
  if (document.deleteTime) throw new FailedPreconditionError(`buyer "${document._id}" is deleted; undelete it first`, { resource_id: document._id });
}

/** PauseBuyer / ResumeBuyer: moves to `state`, writing nothing when it is already there. */
function stateChange(state: BuyerState) {
  return (current: BuyerDocument) => {
    if (current.state === BuyerState[state]) return undefined;
    refuseDeleted(current);
    return { state: BuyerState[state] };
  };
}

export function buyerCrudHandlers(buyers: BuyerAccess, requestIds: IdempotencyKeys): BuyerCrudHandlers {
  const store = buyers.store;

  async function answer(document: BuyerDocument, context: Context): Promise<{ buyer: Buyer }> {
    return { buyer: await buyers.present(document, context) };
  }

  async function created(document: BuyerDocument, context: Context): Promise<{ buyer: Buyer }> {
    await buyers.written(document);
    return answer(document, context);
  }

  return {
    async getBuyer(request, context) {
      const id = requireId(request.id, "id");
      return { buyer: await buyers.read(context.caller.tenantId, id, context) };
    },

    async listBuyers(request, context) {
      const violations = new Violations();
      const pageSize = resolvePageSize(request.pageSize, violations);
      const order = parseOrderBy(request.orderBy, BUYER_ORDER_FIELDS, "display_name", violations);
      violations.throwIfAny();
      const query = compileFilter(request.filter, BUYER_FILTER_FIELDS);
      const tenantId = context.caller.tenantId;
      const fingerprint = queryFingerprint(tenantId, request.filter.trim(), order, request.showDeleted);
      const cursor = decodePageToken(request.pageToken, fingerprint);
      const [page, zone] = await Promise.all([
        store.list(tenantId, query, request.showDeleted, order, pageSize, cursor, fingerprint),
        buyers.zoneOf(tenantId, context),
      ]);
      const now = buyers.now();
      return { buyers: page.items.map((document) => toBuyer(document, now, zone)), nextPageToken: page.nextPageToken };
    },

    async createBuyer(request, context) {
      const violations = new Violations();
      IdempotencyKeys.validate(request.requestId, violations);
      violations.throwIfAny();
      const input = newBuyer(request.buyer);
      const tenantId = context.caller.tenantId;
      if (request.requestId === "") return created(await store.insert(tenantId, input, buyers.now()), context);

      const attempt = { tenantId, actorId: context.caller.actorId, requestId: request.requestId, fingerprint: buyerFingerprint(request.buyer) };
      const claim = await requestIds.claim(attempt);
      if (claim.kind === "completed") return answer(await buyers.existing(tenantId, claim.resultId), context);
      try {
        const document = await store.insert(tenantId, input, buyers.now());
        await buyers.written(document);
        await requestIds.complete(attempt, document._id);
        return answer(document, context);
      } catch (error) {
        await requestIds.release(attempt).catch(() => undefined);
        throw error;
      }
    },

    async updateBuyer(request, context) {
      const patch = requireMessage(request.buyer, "buyer");
      const id = requireId(patch.id, "buyer.id");
      const { after } = await buyers.write(actorOf(context), id, patch.etag, (current) => {
        refuseDeleted(current);
        const { next, changed } = applyUpdate(inputOfDocument(current), patch, request.updateMask);
        return changed ? storedFields(next) : undefined;
      });
      return answer(after, context);
    },

    async deleteBuyer(request, context) {
      const id = requireId(request.id, "id");
      const { after } = await buyers.write(actorOf(context), id, request.etag, (current) => (current.deleteTime ? undefined : { deleteTime: buyers.now() }));
      return answer(after, context);
    },

    async undeleteBuyer(request, context) {
      const id = requireId(request.id, "id");
      const { after } = await buyers.write(actorOf(context), id, "", (current) => {
        if (!current.deleteTime) throw new FailedPreconditionError(`buyer "${id}" is not deleted`, { resource_id: id });
        return { deleteTime: null };
      });
      return answer(after, context);
    },

    async pauseBuyer(request, context) {
      const id = requireId(request.id, "id");
      const { after } = await buyers.write(actorOf(context), id, request.etag, stateChange(BuyerState.BUYER_STATE_PAUSED));
      return answer(after, context);
    },

    async resumeBuyer(request, context) {
      const id = requireId(request.id, "id");
      const { after } = await buyers.write(actorOf(context), id, request.etag, stateChange(BuyerState.BUYER_STATE_ACTIVE));
      return answer(after, context);
    },
  };
}
