/**
 * Recovery of interrupted distributions (step 5 of distribute.ts): every
 * replica sweeps the markers at startup and every LEADS_DISTRIBUTION_SWEEP_MS.
 * A marker older than LEADS_DISTRIBUTION_STALE_MS belongs to a distribution
 * that should have finished:
 *  - its lead is still claimed by D: SellLead(D) is asked again with the
 *    lead as stored (buyers answers the decided outcome or decides it now)
 *    and the outcome recorded;
 *  - its lead records D's outcome (sale D, or D among its past sale ids),
 *    or is gone: nothing can claim it under D any more, the marker is closed;
 *  - its lead does not mention D: the claim may still be on its way (a
 *    claim write keeps trying for up to CLAIM_BUDGET_MS), so the marker is
 *    closed only once it is older than the stale age plus that budget. A
 *    claim landing later still re-opens its marker (distribute.ts step 2).
 * A close names the opening it saw, so a marker re-opened meanwhile by a
 * live attempt stays.
 *
 * A marker whose attempt fails (buyers unreachable, an unexpected answer)
 * waits for its nextAttemptTime, backing off from sweepMs doubling up to the
 * stale age, so markers that keep failing never take the whole batch from
 * newer ones; each failure from the third on is logged at warn with the
 * marker's age.
 *
 * Replicas may sweep the same marker at once, and a sweep may race a live
 * retry of the same request: harmless, since SellLead(D) answers every caller
 * alike and each recording is a revisioned write conditional on the claim.
 * The stale age keeps the sweeper off distributions still running (a claim
 * write gives up within 10 s, a SellLead within its 10 s deadline).
 */
import { type ConfigSpec, config, type Logger, OperationPendingError } from "@leadmesh/platform";
import type { LeadDocument } from "../store";
import type { Distributor, MarkerRecords } from "./distribute";
import type { LeadWriter } from "./lead-writer";
import type { DistributionMarker } from "./markers";

export const distributionRecoverySettings: ConfigSpec<RecoverySettings> = {
  sweepMs: config.integer({
    env: "LEADS_DISTRIBUTION_SWEEP_MS",
    description: "how often each replica looks for interrupted lead distributions",
    default: 5000,
    min: 50,
    max: 3_600_000,
  }),
  staleMs: config.integer({
    env: "LEADS_DISTRIBUTION_STALE_MS",
    description: "age after which a distribution still in progress is taken as interrupted and completed by recovery",
    default: 30_000,
    min: 100,
    max: 86_400_000,
  }),
};

export interface RecoverySettings {
  sweepMs: number;
  staleMs: number;
}

/** Markers handled per sweep: a backlog drains over several sweeps instead of one long one. */
const SWEEP_BATCH = 100;

/**
 * How long after its marker opened a claim write may still land: the lead
 * writes' conflict budget (platform revisions.ts, 10 s), within which a
 * write keeps re-applying its change.
 */
export const CLAIM_BUDGET_MS = 10_000;

/** Failures of one marker before each further one is logged at warn. */
const QUIET_FAILURES = 2;

export interface SweepResult {
  /** Markers whose lead no longer referenced their distribution: closed. */
  closed: number;
  /** Distributions completed: the lead now SOLD, or unsold (buyers refused D). */
  completed: number;
  /** Distributions whose outcome is still unknown (buyers unreachable): retried after a backoff. */
  pending: number;
  /** Markers whose lead does not mention them yet, too young to close (their claim may still land): looked at again later. */
  deferred: number;
}

export class DistributionRecovery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  /** Aborted by stop(): a SellLead in flight gives up instead of holding shutdown for its whole deadline. */
  private abort = new AbortController();

  constructor(
    private readonly distributor: Distributor,
    private readonly markers: MarkerRecords,
    private readonly writer: LeadWriter,
    private readonly settings: RecoverySettings,
    private readonly logger: Logger,
  ) {}

  /** Sweeps now, then every sweepMs after the previous sweep ends (sweeps never overlap). */
  start(): void {
    this.stopped = false;
    this.abort = new AbortController();
    this.schedule(0);
  }

  /** No new sweep starts; resolves once the running one, if any, has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // Its distribution stays claimed and marked: the next sweep, on any replica, completes it.
    this.abort.abort();
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.sweep()
        .catch((error) => this.logger.warn({ err: error }, "distribution recovery sweep failed; retried at the next sweep"))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule(this.settings.sweepMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** One pass over the stale markers that are due. */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { closed: 0, completed: 0, pending: 0, deferred: 0 };
    const now = this.writer.clock();
    const before = new Date(now.getTime() - this.settings.staleMs);
    for (const marker of await this.markers.due(before, now, SWEEP_BATCH)) {
      if (this.stopped) break;
      const context = { leadId: marker.leadId, leadSaleId: marker._id, tenantId: marker.tenantId };
      try {
        result[await this.recover(marker, now)] += 1;
      } catch (error) {
        // OperationPendingError: buyers still unreachable (complete() logged it).
        await this.failed(marker, now, error, context);
        result.pending += 1;
      }
    }
    return result;
  }

  private async recover(marker: DistributionMarker, now: Date): Promise<"closed" | "completed" | "deferred"> {
    const lead = await this.writer.leads.get(marker.tenantId, marker.leadId);
    const claim = lead?.distribution;
    if (lead && claim?.leadSaleId === marker._id) {
      const outcome = await this.distributor.complete(lead, claim, marker.openId ?? null, undefined, this.abort.signal);
      const context = { leadId: lead._id, leadSaleId: claim.leadSaleId, tenantId: lead.tenantId };
      if (outcome.kind === "sold") this.logger.info({ ...context, buyerId: outcome.sale.buyerId }, "recovered an interrupted distribution: lead sold");
      else this.logger.info({ ...context, reason: outcome.error.message }, "recovered an interrupted distribution: not sold");
      return "completed";
    }
    const closeAfter = marker.startTime.getTime() + this.settings.staleMs + CLAIM_BUDGET_MS;
    if (lead && !recordsOutcome(lead, marker._id) && now.getTime() < closeAfter) {
      await this.markers.defer(marker._id, marker.openId ?? null, marker.attempts ?? 0, new Date(closeAfter));
      return "deferred";
    }
    await this.markers.close(marker._id, marker.openId ?? null);
    return "closed";
  }

  /** Backs the marker off (sweepMs doubling per failure, at most the stale age), loudly once it keeps failing. */
  private async failed(marker: DistributionMarker, now: Date, error: unknown, context: Record<string, string>): Promise<void> {
    const attempts = (marker.attempts ?? 0) + 1;
    const backoffMs = Math.min(this.settings.sweepMs * 2 ** Math.min(attempts - 1, 20), Math.max(this.settings.sweepMs, this.settings.staleMs));
    const nextAttemptTime = new Date(now.getTime() + backoffMs);
    const ageMs = now.getTime() - marker.startTime.getTime();
    if (attempts > QUIET_FAILURES)
      this.logger.warn({ ...context, err: error, attempts, ageMs, nextAttemptTime }, "a distribution keeps failing to recover; retried after a backoff");
    else if (!(error instanceof OperationPendingError))
      this.logger.warn({ ...context, err: error, attempts, ageMs }, "could not recover a distribution; retried after a backoff");
    await this.markers
      .defer(marker._id, marker.openId ?? null, attempts, nextAttemptTime)
      .catch((deferError) => this.logger.warn({ ...context, err: deferError }, "could not back a distribution marker off"));
  }
}

/** The lead records D's outcome: sold under D, or D returned. No claim of the lead under D can land any more. */
function recordsOutcome(lead: LeadDocument, leadSaleId: string): boolean {
  return lead.sale?.leadSaleId === leadSaleId || (lead.pastSaleIds ?? []).includes(leadSaleId);
}
