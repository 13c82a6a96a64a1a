/**
 * GetBuyer's read cache (platform ReadCache), keys `cache:buyers:buyer:
 * <tenant>:<id>`. What is cached is the buyer as stored, not as answered:
 * sales_today / sales_this_month depend on the clock (they reset at the
 * tenant's midnight without a write), so an entry holds the Buyer message
 * plus its raw sale counters with their day and month keys, and every read
 * presents them at the current time (presentCached). Deletes are soft: a
 * delete puts the deleted buyer at its new revision; there are no tombstones.
 */
import { Buyer } from "@leadmesh/contracts/buyers/v1/buyer";
import { type Logger, ReadCache, type RedisHandle, type ResourceCodec } from "@leadmesh/platform";
import { counterKeys } from "./domain/calendar";
import { type BuyerDocument, type SaleCounters, salesCounts, toBuyer } from "./store";

export interface CachedBuyer {
  /** The buyer with its counters as stored (presentCached replaces sales_today / sales_this_month). */
  buyer: Buyer;
  counters: SaleCounters;
}

/** Entry layout: 4-byte big-endian length of the counters' JSON, the JSON, then the Buyer's protobuf bytes. */
export const buyerCodec: ResourceCodec<CachedBuyer> = {
  encode({ buyer, counters }) {
    const header = Buffer.from(JSON.stringify(counters));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length);
    return Buffer.concat([length, header, Buyer.encode(buyer).finish()]);
  },
  decode(bytes) {
    const buffer = Buffer.from(bytes);
    const length = buffer.readUInt32BE(0);
    const counters = JSON.parse(buffer.subarray(4, 4 + length).toString("utf8")) as SaleCounters;
    return { counters, buyer: Buyer.decode(buffer.subarray(4 + length)) };
  },
  revisionOf: (cached) => revisionOfEtag(cached.buyer.etag),
  tenantOf: (cached) => cached.buyer.tenantId,
};

function revisionOfEtag(etag: string): number {
  const revision = Number(etag);
  if (!Number.isSafeInteger(revision) || revision < 1) throw new Error(`buyer etag "${etag}" is not a revision`);
  return revision;
}

/** What a write puts into the cache. */
export function cachedBuyer(document: BuyerDocument): CachedBuyer {
  // The zone does not matter here: presentCached recomputes the counts.
  return { buyer: toBuyer(document, document.updateTime, "UTC"), counters: { ...document.counters } };
}

/** The cached buyer as GetBuyer answers it at `now` in the tenant's zone. */
export function presentCached(cached: CachedBuyer, now: Date, timeZone: string): Buyer {
  const counts = salesCounts(cached.counters, counterKeys(now, timeZone));
  return { ...cached.buyer, salesToday: String(counts.today), salesThisMonth: String(counts.thisMonth) };
}

export function buyerReadCache(redis: RedisHandle["redis"], logger: Logger): ReadCache<CachedBuyer> {
  return new ReadCache({ redis, service: "buyers", resource: "buyer", codec: buyerCodec, logger });
}
