/**
 * How every handler (and sales/) reads and writes one buyer: tenant-scoped
 * (another tenant's buyer is NOT_FOUND, never revealed), every landed write
 * put into GetBuyer's read cache before the RPC answers, and buyers
 * presented with their sale counters in the tenant's time zone.
 */
import type { Buyer } from "@leadmesh/contracts/buyers/v1/buyer";
import { type CallerContext, NotFoundError, type ReadCache, type RevisionedChanges } from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { type CachedBuyer, cachedBuyer, presentCached } from "../buyer-cache";
import { type BuyerDocument, type BuyerStore, type BuyerWrite, type BuyerWriteResult, toBuyer } from "../store";
import type { TimeZoneSource } from "../tenant-time-zones";

export type Context = CallContext & CallerContext;

export interface BuyerAccessDeps {
  store: BuyerStore;
  timeZones: TimeZoneSource;
  /** GetBuyer's read cache (buyer-cache.ts); without one GetBuyer reads the database every time. */
  cache?: ReadCache<CachedBuyer>;
  clock: () => Date;
}

/** Who writes and in which call: the RPC's caller, or the service itself in a background task (no context). */
export interface Actor {
  tenantId: string;
  actorId: string;
  context?: CallContext;
}

export function actorOf(context: Context): Actor {
  return { tenantId: context.caller.tenantId, actorId: context.caller.actorId, context };
}

/** What a buyer write asks for beyond the change (RevisionedWrite): the operation id and the ledger entry. */
export type WriteOptions = Pick<BuyerWrite, "opId" | "entry">;

export class BuyerAccess {
  constructor(private readonly deps: BuyerAccessDeps) {}

  get store(): BuyerStore {
    return this.deps.store;
  }

  now(): Date {
    return this.deps.clock();
  }

  /** The buyer if it exists in the tenant (deleted or not); NOT_FOUND otherwise. */
  async existing(tenantId: string, id: string): Promise<BuyerDocument> {
    const document = await this.deps.store.get(tenantId, id);
    if (!document) throw new NotFoundError("buyer", id);
    return document;
  }

  /** The tenant's IANA zone its caps count in. */
  zoneOf(tenantId: string, context?: CallContext): Promise<string> {
    return this.deps.timeZones.zoneOf(tenantId, context);
  }

  /** The buyer as the API answers it now. */
  async present(document: BuyerDocument, context?: CallContext): Promise<Buyer> {
    return toBuyer(document, this.deps.clock(), await this.zoneOf(document.tenantId, context));
  }

  /** GetBuyer's read: from the cache (or the database, filling it). */
  async read(tenantId: string, id: string, context?: CallContext): Promise<Buyer> {
    const zone = await this.zoneOf(tenantId, context);
    const cache = this.deps.cache;
    if (!cache) return toBuyer(await this.existing(tenantId, id), this.deps.clock(), zone);
    const cached = await cache.read(tenantId, id, async () => {
      const document = await this.deps.store.get(tenantId, id);
      return document && cachedBuyer(document);
    });
    if (!cached) throw new NotFoundError("buyer", id);
    return presentCached(cached, this.deps.clock(), zone);
  }

  /** Every write's result reaches the cache before the write is acknowledged (platform read-cache.ts). */
  async written(document: BuyerDocument): Promise<void> {
    await this.deps.cache?.put(document.tenantId, document._id, cachedBuyer(document));
  }

  /**
   * Read-modify-write of a buyer of the actor's tenant (RevisionedWrites.write):
   * update time stamped, the landed revision put into the cache. `replayed`
   * means the operation (options.opId) had landed before and nothing was written.
   */
  async write(
    actor: Actor,
    id: string,
    clientEtag: string,
    change: (current: BuyerDocument) => RevisionedChanges<BuyerDocument> | undefined,
    options: WriteOptions = {},
  ): Promise<BuyerWriteResult> {
    const result = await this.deps.store.write({
      id,
      actorId: actor.actorId,
      clientEtag,
      read: () => this.existing(actor.tenantId, id),
      change,
      stamp: () => ({ updateTime: this.deps.clock() }),
      signal: actor.context?.signal,
      ...options,
    });
    // An unchanged buyer (nothing written, or a replay) is already what the cache may hold.
    if (result.after.revision !== result.before.revision) await this.written(result.after);
    return result;
  }
}
