/**
 * `lead_distributions`: one marker per distribution in progress (_id = the
 * sale id D), written before the lead is claimed and deleted once the
 * outcome is recorded on the lead. Recovery (recovery.ts) finds interrupted
 * distributions here, in a collection that only ever holds the few in
 * flight, instead of scanning `leads` (FerretDB v1 decodes a whole
 * collection for any filter but {_id}).
 *
 * Every attempt that works on D opens the marker again (an upsert: its
 * startTime is now, its failures forgotten) and gets an openId; a close
 * names the openId it saw, so it never removes a marker someone has
 * re-opened since (a retry of the same request_id that is about to claim,
 * or has just claimed): that one is closed by its own opener, or by
 * recovery once stale.
 */
import { isDuplicateKey } from "@leadmesh/platform";
import { type Collection, type Db, ObjectId } from "mongodb";

export interface DistributionMarker {
  /** The sale id D of the distribution. */
  _id: string;
  tenantId: string;
  leadId: string;
  /** When the latest attempt on D opened the marker. */
  startTime: Date;
  /** The latest opening (absent on markers written before openings were named). */
  openId?: string | null;
  /** Recovery's failed attempts at D since it was opened. */
  attempts?: number;
  /** Recovery leaves the marker alone until then (null: as soon as it is stale). */
  nextAttemptTime?: Date | null;
}

/** What opening a marker takes: the attempt's D, its lead and its start. */
export type MarkerOpening = Pick<DistributionMarker, "_id" | "tenantId" | "leadId" | "startTime">;

export class DistributionMarkers {
  private readonly markers: Collection<DistributionMarker>;

  constructor(db: Db) {
    this.markers = db.collection<DistributionMarker>("lead_distributions");
  }

  /** Opens marker D, or re-opens it for this attempt; answers the opening's id (close names it). */
  async open(marker: MarkerOpening): Promise<string> {
    const openId = new ObjectId().toHexString();
    const fields = { tenantId: marker.tenantId, leadId: marker.leadId, startTime: marker.startTime, openId, attempts: 0, nextAttemptTime: null };
    try {
      await this.markers.updateOne({ _id: marker._id }, { $set: fields }, { upsert: true });
    } catch (error) {
      // Two attempts upserting a missing marker at once: one inserts, the other updates what it inserted.
      if (!isDuplicateKey(error)) throw error;
      await this.markers.updateOne({ _id: marker._id }, { $set: fields });
    }
    return openId;
  }

  /** Removes marker D unless it was re-opened since `openId` (null: a marker written before openings were named). */
  async close(leadSaleId: string, openId: string | null): Promise<void> {
    await this.markers.deleteOne({ _id: leadSaleId, openId });
  }

  /**
   * Markers opened before `before` whose next attempt is due at `now`,
   * oldest first: distributions that should have finished by now. A marker
   * recovery keeps failing on waits for its nextAttemptTime, so it never
   * holds back newer ones.
   */
  due(before: Date, now: Date, limit: number): Promise<DistributionMarker[]> {
    return this.markers
      .find({ startTime: { $lt: before }, $or: [{ nextAttemptTime: null }, { nextAttemptTime: { $lte: now } }] })
      .sort({ startTime: 1 })
      .limit(limit)
      .toArray();
  }

  /** Recovery comes back to marker D at `nextAttemptTime` (unless it was re-opened since `openId`). */
  async defer(leadSaleId: string, openId: string | null, attempts: number, nextAttemptTime: Date): Promise<void> {
    await this.markers.updateOne({ _id: leadSaleId, openId }, { $set: { attempts, nextAttemptTime } });
  }
}
