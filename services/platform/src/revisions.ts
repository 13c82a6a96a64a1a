/**
 * Optimistic concurrency without transactions or a reliable compare-and-set.
 *
 * FerretDB v1 implements findOneAndUpdate/updateOne as "query, then write by
 * _id", so two writers conditioned on the same revision can both succeed (a
 * lost update; the leads concurrency test caught it). The one atomic
 * primitive both FerretDB and MongoDB give is a unique-key insert, so every
 * write first claims its target revision in a claims collection (_id
 * "<document>:<revision>"); only the claimant may then move the document to
 * that revision. The claims double as the document's change history.
 */
import type { Collection, Db, Filter, UpdateFilter } from "mongodb";
import { ensureIndexes, isDuplicateKey } from "./mongo";

export interface RevisionedDocument {
  _id: string;
  tenantId: string;
  /** Incremented on every write; etags derive from it. */
  revision: number;
}

export interface RevisionClaim {
  _id: string;
  tenantId: string;
  /** Id of the document the claim is about. */
  subjectId: string;
  revision: number;
  actorId: string;
  /** Document fields written by this revision. */
  fields: string[];
  createTime: Date;
}

/**
 * A claim whose document never reached its revision (writer crashed between
 * claim and write) is abandoned after this long. It exceeds the driver's
 * socket timeout, so the original writer cannot still be writing.
 */
const ABANDONED_CLAIM_MS = 20_000;

export async function ensureRevisionClaimIndexes(db: Db, claimsCollection: string): Promise<void> {
  await ensureIndexes(db.collection(claimsCollection), [{ key: { tenantId: 1, subjectId: 1, revision: -1 }, name: "tenant_subject_revision" }]);
}

export class RevisionedWrites<T extends RevisionedDocument> {
  constructor(
    private readonly documents: Collection<T>,
    private readonly claims: Collection<RevisionClaim>,
  ) {}

  /**
   * Writes `changes` only if the document is still at `revision`; returns the
   * new document, or null when another writer got there first (or it is gone).
   */
  async updateAtRevision(tenantId: string, id: string, revision: number, actorId: string, changes: Partial<Omit<T, "_id" | "tenantId" | "revision">>): Promise<T | null> {
    const next = revision + 1;
    const claim: RevisionClaim = { _id: `${id}:${next}`, tenantId, subjectId: id, revision: next, actorId, fields: Object.keys(changes), createTime: new Date() };
    try {
      await this.claims.insertOne(claim);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      await this.releaseIfAbandoned(claim._id, tenantId, id, revision);
      return null;
    }
    const filter = { _id: id, tenantId, revision } as Filter<T>;
    const update = { $set: { ...changes, revision: next } } as unknown as UpdateFilter<T>;
    const updated = (await this.documents.findOneAndUpdate(filter, update, { returnDocument: "after" })) as T | null;
    if (!updated) await this.claims.deleteOne({ _id: claim._id });
    return updated;
  }

  private async releaseIfAbandoned(claimId: string, tenantId: string, id: string, revision: number): Promise<void> {
    const claim = await this.claims.findOne({ _id: claimId, tenantId });
    const current = await this.documents.findOne({ _id: id, tenantId } as Filter<T>, { projection: { revision: 1 } });
    if (claim && current?.revision === revision && Date.now() - claim.createTime.getTime() > ABANDONED_CLAIM_MS) {
      await this.claims.deleteOne({ _id: claimId, createTime: claim.createTime });
    }
  }
}
