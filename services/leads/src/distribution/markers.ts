/**
 * `lead_distributions`: one marker per distribution in progress (_id = the
 * sale id D), written before the lead is claimed and deleted once the
 * outcome is recorded on the lead. Recovery (recovery.ts) finds interrupted
 * distributions here, in a collection that only ever holds the few in
 * flight, instead of scanning `leads` (FerretDB v1 decodes a whole
 * collection for any filter but {_id}).
 */
import { isDuplicateKey } from "@leadmesh/platform";
import type { Collection, Db } from "mongodb";

export interface DistributionMarker {
  /** The sale id D of the distribution. */
  _id: string;
  tenantId: string;
  leadId: string;
  startTime: Date;
}

export class DistributionMarkers {
  private readonly markers: Collection<DistributionMarker>;

  constructor(db: Db) {
    this.markers = db.collection<DistributionMarker>("lead_distributions");
  }

  /** Records that D may be in progress; a retry of the same D (same request_id) finds its marker already there. */
  async open(marker: DistributionMarker): Promise<void> {
    try {
      await this.markers.insertOne(marker);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
  }

  async close(leadSaleId: string): Promise<void> {
    await this.markers.deleteOne({ _id: leadSaleId });
  }

  /** Markers opened before `before`, oldest first: distributions that should have finished by now. */
  stale(before: Date, limit: number): Promise<DistributionMarker[]> {
    return this.markers
      .find({ startTime: { $lt: before } })
      .sort({ startTime: 1 })
      .limit(limit)
      .toArray();
  }
}
