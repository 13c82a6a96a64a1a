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
import { EtagMismatchError } from "./errors";
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

/** Fields a write may set: everything but the identity and the revision, which the write itself moves. */
export type RevisionedChanges<T extends RevisionedDocument> = Partial<Omit<T, "_id" | "tenantId" | "revision">>;

/** The etag clients see for a revisioned document. */
export function etagOf(document: Pick<RevisionedDocument, "revision">): string {
  return String(document.revision);
}

/** One read-modify-write of a document (see RevisionedWrites.write). */
export interface RevisionedWrite<T extends RevisionedDocument> {
  id: string;
  actorId: string;
  /** The etag the client sent, or "" when it sent none. */
  clientEtag: string;
  /** The current document as the caller may see it; throws NOT_FOUND when it may not. */
  read(): Promise<T>;
  /** The fields to write, given the current document; undefined writes nothing. Throws to refuse the change. */
  change(current: T): RevisionedChanges<T> | undefined | Promise<RevisionedChanges<T> | undefined>;
  /** Fields every write also sets, evaluated per attempt (the update time). */
  stamp?(): RevisionedChanges<T>;
}

/** Writers without an etag re-apply their change this often before reporting the conflict (ABORTED). */
export const MAX_WRITE_ATTEMPTS = 3;

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
    /** Names the document in errors: "lead", "user". */
    private readonly resourceType: string,
    private readonly documents: Collection<T>,
    private readonly claims: Collection<RevisionClaim>,
  ) {}

  /**
   * Read-modify-write with optimistic concurrency. With a client etag, the
   * client saw a version: a different current version, or a concurrent change
   * landing first, is the client's conflict (ABORTED with the current etag).
   * Without one, the change is re-applied to the newer version, up to
   * MAX_WRITE_ATTEMPTS times. Returns the document before and after (the
   * same document when the change wrote nothing).
   */
  async write(request: RevisionedWrite<T>): Promise<{ before: T; after: T }> {
    for (let attempt = 1; ; attempt++) {
      const current = await request.read();
      if (request.clientEtag !== "" && request.clientEtag !== etagOf(current)) throw new EtagMismatchError(this.resourceType, request.id, etagOf(current));
      const changes = await request.change(current);
      if (!changes) return { before: current, after: current };
      const after = await this.updateAtRevision(current.tenantId, current._id, current.revision, request.actorId, { ...changes, ...request.stamp?.() });
      if (after) return { before: current, after };
      if (request.clientEtag !== "" || attempt >= MAX_WRITE_ATTEMPTS) {
        const latest = await request.read();
        throw new EtagMismatchError(this.resourceType, request.id, etagOf(latest));
      }
    }
  }

  /**
   * Writes `changes` only if the document is still at `revision`; returns the
   * new document, or null when another writer got there first (or it is gone).
   */
  async updateAtRevision(tenantId: string, id: string, revision: number, actorId: string, changes: RevisionedChanges<T>): Promise<T | null> {
    const next = revision + 1;
    const claim: RevisionClaim = {
      _id: `${id}:${next}`,
      tenantId,
      subjectId: id,
      revision: next,
      actorId,
      fields: Object.keys(changes),
      createTime: new Date(),
    };
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
