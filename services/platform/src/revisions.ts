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
 * both by _id. (The stock v1.24.2 build does not use its _id index even then:
 * its SQL filters on `_ferretdb_sjson->'$._id'`, the index is on
 * `_ferretdb_sjson->"_id"`, and SQLite does not match the two; a read,
 * update or delete by _id scans the table, ~100-200 ms of FerretDB CPU at
 * 20,000 documents of all tenants, against 0.5-1 ms with the index.)
 * The update needs no revision condition: claims of every revision from 2
 * to the current one exist (a claim is only removed when its revision never
 * landed), so a successful claim of `revision + 1` proves the document is
 * still at `revision`.
 *
 * Operations (a charge, a refund, a top-up with a request id): a write can
 * carry an `opId`, and a claims collection created with `{ operations: true }`
 * has a unique index on it. Every claim carries an opId (its own _id when the
 * write names none), so an operation claims at most one revision of at most
 * one document of the collection, ever: a retry, a recovery and a concurrent
 * duplicate all run into the unique key and are answered with the claim that
 * won (`replayed`). `sealOperation` claims an opId for no document at all, so
 * an operation that was given up can never land later. Whether an op's claim
 * landed is decided like any claim: its document reached its revision.
 * Finding an op's claim is a scan on FerretDB (only recovery paths do it).
 */
import type { Collection, Db, Filter, UpdateFilter } from "mongodb";
import { EtagMismatchError, OperationPendingError } from "./errors";
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
  /** Id of the document the claim is about; "" for a sealed operation. */
  subjectId: string;
  /** The operation this write is (RevisionedWrite.opId), or the claim's own _id. Unique where the collection has operations. */
  opId: string;
  revision: number;
  actorId: string;
  /** Document fields written by this revision. */
  fields: string[];
  createTime: Date;
  /**
   * What the write records about itself (RevisionedWrite.entry), e.g. a
   * buyer's ledger entry: it lands exactly when the revision does, because
   * it is the claim. Readers must ignore claims above the document's current
   * revision (claimed, not yet or never written).
   */
  entry?: Record<string, unknown>;
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
  /**
   * Makes the write an operation applied at most once in the whole claims
   * collection (which needs `{ operations: true }`): if a claim with this
   * opId exists, nothing is written and write() answers it as `replayed`.
   */
  opId?: string;
  /** A record kept on this revision's claim (RevisionClaim.entry), given the document before and the changes; per attempt. */
  entry?(current: T, changes: RevisionedChanges<T>): Record<string, unknown> | undefined;
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
 * claim and write) is abandoned after this long, and the next writer that
 * runs into it deletes it. Releasing a claim whose update is still on its
 * way would let two writers take the same revision and free the claim's
 * operation for a second application, so the bound must exceed the longest
 * a live writer can take from its claim to its update reaching the
 * database: the writer itself gives up before sending the update once its
 * claim is CLAIM_WRITE_FENCE_MS old, and the update then waits at most
 * waitQueueTimeoutMS (5 s, mongo.ts) for a connection and runs at most
 * socketTimeoutMS (15 s) / maxTimeMS (15 s). 20 + 5 + 15 = 40 s < 60 s.
 * What remains is a database that executes a request long after the client
 * stopped waiting for it, which neither MongoDB (maxTimeMS) nor a local
 * FerretDB does in practice.
 */
const ABANDONED_CLAIM_MS = 60_000;
/** A writer whose own claim got this old before it could send the update (a stall) gives the revision up instead of writing late. */
const CLAIM_WRITE_FENCE_MS = 20_000;
/** Server-side bound of the update that follows a claim. */
const CLAIM_UPDATE_MAX_TIME_MS = 15_000;

export async function ensureRevisionClaimIndexes(db: Db, claimsCollection: string, options: { operations?: boolean } = {}): Promise<void> {
  await ensureIndexes(db.collection(claimsCollection), [
    { key: { tenantId: 1, subjectId: 1, revision: -1 }, name: "tenant_subject_revision" },
    ...(options.operations ? [{ key: { opId: 1 }, name: "operation_unique", unique: true }] : []),
  ]);
}

/** What write() did: the document before and after, or, for an operation that had already claimed a revision, that claim. */
export interface RevisionedWriteResult<T> {
  before: T;
  after: T;
  /** The operation's claim that won before this write (possibly on another document); nothing was written. */
  replayed?: RevisionClaim;
}

/** Where an operation stands (RevisionedWrites.findOperation). */
export type OperationState = "landed" | "pending" | "sealed";

function sealIdOf(opId: string): string {
  return `sealed:${opId}`;
}

/** What one claim attempt came to: written, lost to another writer, the operation replayed or still pending elsewhere. */
type ClaimOutcome<T> = { kind: "written"; document: T } | { kind: "lost" } | { kind: "replayed"; claim: RevisionClaim } | { kind: "pending" };

/** How long write()/sealOperation() wait between looks at an operation another call is still applying. */
const PENDING_OPERATION_POLL_MS = 50;

export class RevisionedWrites<T extends RevisionedDocument> {
  /** The last queued write of each document this process is writing (write()). */
  private readonly queues = new Map<string, Promise<void>>();

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
  async write(request: RevisionedWrite<T>): Promise<RevisionedWriteResult<T>> {
    // Writes of one document from this process queue instead of racing for
    // the same revision claim: a popular document (a buyer charged by many
    // concurrent sales) then costs one claim per write instead of a storm of
    // failed claims and backoffs. Other replicas still race, and win or lose
    // as before. A change() must not write its own document (it would wait
    // for itself).
    const previous = this.queues.get(request.id);
    const run = (previous ?? Promise.resolve()).then(() => {
      // A caller that gave up while its write waited in the queue is not written for.
      if (previous) request.signal?.throwIfAborted();
      return this.writeNow(request);
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(request.id, settled);
    void settled.then(() => {
      if (this.queues.get(request.id) === settled) this.queues.delete(request.id);
    });
    return run;
  }

  private async writeNow(request: RevisionedWrite<T>): Promise<RevisionedWriteResult<T>> {
    const giveUpAt = Date.now() + (this.options.conflictBudgetMs ?? DEFAULT_CONFLICT_BUDGET_MS);
    for (let attempt = 1; ; attempt++) {
      const current = await request.read();
      if (request.clientEtag !== "" && request.clientEtag !== etagOf(current)) throw new EtagMismatchError(this.resourceType, request.id, etagOf(current));
      const changes = await request.change(current);
      if (!changes) return { before: current, after: current };
      const stamped = { ...changes, ...request.stamp?.() };
      const outcome = await this.claimAndWrite(current, request.actorId, stamped, request.entry?.(current, stamped), request.opId);
      if (outcome.kind === "replayed") return { before: current, after: current, replayed: outcome.claim };
      if (outcome.kind === "pending") {
        // Another call is applying this very operation: wait for it to land (or be abandoned), then look again.
        if (request.signal?.aborted || Date.now() + PENDING_OPERATION_POLL_MS >= giveUpAt) throw this.pendingError(request.opId as string);
        await new Promise((resolve) => setTimeout(resolve, PENDING_OPERATION_POLL_MS));
        continue;
      }
      if (outcome.kind === "written") return { before: current, after: outcome.document };
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
  private async claimAndWrite(
    current: T,
    actorId: string,
    changes: RevisionedChanges<T>,
    entry: Record<string, unknown> | undefined,
    opId: string | undefined,
  ): Promise<ClaimOutcome<T>> {
    const { _id: id, tenantId, revision } = current;
    const next = revision + 1;
    const claimId = `${id}:${next}`;
    const claim: RevisionClaim = {
      _id: claimId,
      tenantId,
      subjectId: id,
      opId: opId ?? claimId,
      revision: next,
      actorId,
      fields: Object.keys(changes),
      createTime: new Date(),
      ...(entry ? { entry } : {}),
    };
    try {
      await this.claims.insertOne(claim);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      // Which unique key: the revision (another writer got there first) or the operation (it already has a claim)?
      const holder = opId === undefined ? null : await this.claims.findOne({ _id: claimId });
      if (opId === undefined || (holder !== null && holder.opId !== opId)) {
        await this.releaseIfAbandoned(claimId, tenantId, id, revision);
        return { kind: "lost" };
      }
      const found = await this.findOperation(opId);
      if (!found) return { kind: "lost" }; // released meanwhile: try again
      if (found.claim.tenantId !== tenantId) throw new Error(`operation "${opId}" of ${this.resourceType} "${id}" belongs to another tenant`);
      if (found.state !== "pending") return { kind: "replayed", claim: found.claim };
      if (await this.releaseIfAbandoned(found.claim._id, tenantId, found.claim.subjectId, found.claim.revision - 1)) return { kind: "lost" };
      return { kind: "pending" };
    }
    if (Date.now() - claim.createTime.getTime() > CLAIM_WRITE_FENCE_MS) {
      // Stalled between claim and update: a late update could land after the claim was released as abandoned.
      await this.claims.deleteOne({ _id: claim._id, createTime: claim.createTime });
      return { kind: "lost" };
    }
    // By _id alone: the claim is the condition (see the header). The document as it was proves it.
    const update = { $set: { ...changes, revision: next } } as unknown as UpdateFilter<T>;
    const before = (await this.documents.findOneAndUpdate({ _id: id } as Filter<T>, update, {
      returnDocument: "before",
      maxTimeMS: CLAIM_UPDATE_MAX_TIME_MS,
    })) as T | null;
    if (!before) {
      await this.claims.deleteOne({ _id: claim._id });
      return { kind: "lost" };
    }
    if (before.revision !== revision || before.tenantId !== tenantId) {
      throw new Error(`revision claims of ${this.resourceType} "${id}" are inconsistent: claimed revision ${next}, but it was at ${before.revision}`);
    }
    return { kind: "written", document: { ...before, ...changes, revision: next } };
  }

  /** Deletes the claim if its writer is gone (the document never reached it within ABANDONED_CLAIM_MS); true if it did. */
  private async releaseIfAbandoned(claimId: string, tenantId: string, id: string, revision: number): Promise<boolean> {
    // Both by _id alone (FerretDB pushes nothing else down); the tenant is checked here.
    const claim = await this.claims.findOne({ _id: claimId });
    const current = await this.documents.findOne({ _id: id } as Filter<T>, { projection: { tenantId: 1, revision: 1 } });
    if (claim?.tenantId !== tenantId || current?.tenantId !== tenantId) return false;
    if (current.revision === revision && Date.now() - claim.createTime.getTime() > ABANDONED_CLAIM_MS) {
      const { deletedCount } = await this.claims.deleteOne({ _id: claimId, createTime: claim.createTime });
      return deletedCount === 1;
    }
    return false;
  }

  /**
   * The claim of an operation and where it stands: landed (its document
   * reached the claimed revision), pending (claimed, not written yet, or
   * abandoned by a crashed writer until released) or sealed. null if the
   * operation never claimed anything. A scan of the claims on FerretDB.
   */
  async findOperation(opId: string): Promise<{ state: OperationState; claim: RevisionClaim } | null> {
    // A seal is found by _id (an index lookup); only a claim on a document needs the scan.
    const claim = (await this.claims.findOne({ _id: sealIdOf(opId) })) ?? (await this.claims.findOne({ opId }));
    if (!claim) return null;
    if (claim.subjectId === "") return { state: "sealed", claim };
    const subject = await this.documents.findOne({ _id: claim.subjectId } as Filter<T>, { projection: { tenantId: 1, revision: 1 } });
    const landed = subject !== null && subject.tenantId === claim.tenantId && subject.revision >= claim.revision;
    return { state: landed ? "landed" : "pending", claim };
  }

  /**
   * Makes sure an operation never lands: claims its opId for no document.
   * Answers `{ sealed: true }` (now or by an earlier seal), or the
   * operation's landed claim if it won first; waits while it is pending.
   */
  async sealOperation(
    opId: string,
    tenantId: string,
    actorId: string,
    entry?: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<{ sealed: true; claim: RevisionClaim } | { sealed: false; claim: RevisionClaim }> {
    const giveUpAt = Date.now() + (this.options.conflictBudgetMs ?? DEFAULT_CONFLICT_BUDGET_MS);
    const seal: RevisionClaim = {
      _id: sealIdOf(opId),
      tenantId,
      subjectId: "",
      opId,
      revision: 0,
      actorId,
      fields: [],
      createTime: new Date(),
      ...(entry ? { entry } : {}),
    };
    for (;;) {
      try {
        await this.claims.insertOne(seal);
        return { sealed: true, claim: seal };
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      const found = await this.findOperation(opId);
      if (found && found.claim.tenantId !== tenantId) throw new Error(`operation "${opId}" belongs to another tenant`);
      if (found?.state === "sealed") return { sealed: true, claim: found.claim };
      if (found?.state === "landed") return { sealed: false, claim: found.claim };
      if (found && (await this.releaseIfAbandoned(found.claim._id, tenantId, found.claim.subjectId, found.claim.revision - 1))) continue;
      if (signal?.aborted || Date.now() + PENDING_OPERATION_POLL_MS >= giveUpAt) throw this.pendingError(opId);
      await new Promise((resolve) => setTimeout(resolve, PENDING_OPERATION_POLL_MS));
    }
  }

  private pendingError(opId: string): OperationPendingError {
    return new OperationPendingError(`operation "${opId}" on a ${this.resourceType} is still being applied by another call; retry shortly`, 1000, {
      resource_type: this.resourceType,
      operation_id: opId,
    });
  }
}
