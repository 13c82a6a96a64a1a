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
 *
 * Cost on FerretDB v1 (SQLite): it pushes a filter down to SQL only when the
 * filter is exactly `{_id: <string>}`; any other filter scans and decodes the
 * whole collection in Go (a 500-lead tenant: ~40 ms of FerretDB CPU per
 * query). So every query here names the document by _id alone and checks
 * tenant and revision in code: a write is one claim insert plus one update,
 * both index lookups. The update needs no revision condition: claims of
 * every revision from 2 to the current one exist (a claim is only removed
 * when its revision never landed), so a successful claim of `revision + 1`
 * proves the document is still at `revision`.
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
  /** The call's cancellation (deadline or client gone): a writer without etag stops re-applying its change then. */
  signal?: AbortSignal;
}

export interface RevisionedWritesOptions {
  /**
   * How long a writer without an etag keeps re-applying its change while
   * others win the race for the next revision, before it reports the
   * conflict (ABORTED). A write without etag is last-writer-wins (AIP-154),
   * so it should not fail for contention: the bound is only a safety net
   * for a call without deadline, far above any measured contention.
   */
  conflictBudgetMs?: number;
}

const DEFAULT_CONFLICT_BUDGET_MS = 10_000;
/** Backoff between re-applications: full jitter, doubling from 2 ms up to 50 ms, so racing writers spread out instead of colliding again. */
const BACKOFF_BASE_MS = 2;
const BACKOFF_CAP_MS = 50;

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
    private readonly options: RevisionedWritesOptions = {},
  ) {}

  /**
   * Read-modify-write with optimistic concurrency. With a client etag, the
   * client saw a version: a different current version, or a concurrent change
   * landing first, is the client's conflict (ABORTED with the current etag).
   * Without one, the change is re-applied to the newer version (after a
   * jittered backoff) until it lands, the call is cancelled or the conflict
   * budget is spent. Returns the document before and after (the same
   * document when the change wrote nothing).
   */
  async write(request: RevisionedWrite<T>): Promise<{ before: T; after: T }> {
    const giveUpAt = Date.now() + (this.options.conflictBudgetMs ?? DEFAULT_CONFLICT_BUDGET_MS);
    for (let attempt = 1; ; attempt++) {
      const current = await request.read();
      if (request.clientEtag !== "" && request.clientEtag !== etagOf(current)) throw new EtagMismatchError(this.resourceType, request.id, etagOf(current));
      const changes = await request.change(current);
      if (!changes) return { before: current, after: current };
      const after = await this.claimAndWrite(current, request.actorId, { ...changes, ...request.stamp?.() });
      if (after) return { before: current, after };
      const backoffMs = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      if (request.clientEtag !== "" || request.signal?.aborted || Date.now() + backoffMs >= giveUpAt) {
        const latest = await request.read();
        throw new EtagMismatchError(this.resourceType, request.id, etagOf(latest));
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }

  /**
   * Moves `current` (as `write` just read it, in its tenant) to the next
   * revision with `changes`; returns the new document, or null when another
   * writer claimed that revision first (or the document is gone).
   */
  private async claimAndWrite(current: T, actorId: string, changes: RevisionedChanges<T>): Promise<T | null> {
    const { _id: id, tenantId, revision } = current;
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
    // By _id alone: the claim is the condition (see the header). The document as it was proves it.
    const update = { $set: { ...changes, revision: next } } as unknown as UpdateFilter<T>;
    const before = (await this.documents.findOneAndUpdate({ _id: id } as Filter<T>, update, { returnDocument: "before" })) as T | null;
    if (!before) {
      await this.claims.deleteOne({ _id: claim._id });
      return null;
    }
    if (before.revision !== revision || before.tenantId !== tenantId) {
      throw new Error(`revision claims of ${this.resourceType} "${id}" are inconsistent: claimed revision ${next}, but it was at ${before.revision}`);
    }
    return { ...before, ...changes, revision: next };
  }

  private async releaseIfAbandoned(claimId: string, tenantId: string, id: string, revision: number): Promise<void> {
    // Both by _id alone (FerretDB pushes nothing else down); the tenant is checked here.
    const claim = await this.claims.findOne({ _id: claimId });
    const current = await this.documents.findOne({ _id: id } as Filter<T>, { projection: { tenantId: 1, revision: 1 } });
    if (claim?.tenantId !== tenantId || current?.tenantId !== tenantId) return;
    if (current.revision === revision && Date.now() - claim.createTime.getTime() > ABANDONED_CLAIM_MS) {
      await this.claims.deleteOne({ _id: claimId, createTime: claim.createTime });
    }
  }
}
