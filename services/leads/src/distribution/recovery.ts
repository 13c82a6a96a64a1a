/**
 * Recovery of interrupted distributions (step 5 of distribute.ts): every
 * replica sweeps the markers at startup and every LEADS_DISTRIBUTION_SWEEP_MS.
 * A marker older than LEADS_DISTRIBUTION_STALE_MS belongs to a distribution
 * that should have finished: if its lead is still claimed by D, SellLead(D)
 * is asked again with the lead as stored (buyers answers the decided outcome
 * or decides it now) and the outcome recorded; if the lead no longer
 * references D (recorded, cleared, or never claimed), the marker is closed.
 *
 * Replicas may sweep the same marker at once, and a sweep may race a live
 * retry of the same request: harmless, since SellLead(D) answers every caller
 * alike and each recording is a revisioned write conditional on the claim.
 * The stale age keeps the sweeper off distributions still running (a claim
 * write gives up within 10 s, a SellLead within its 10 s deadline).
 */
import { type ConfigSpec, config, type Logger, OperationPendingError } from "@leadmesh/platform";
import type { Distributor, MarkerRecords } from "./distribute";
import type { LeadWriter } from "./lead-writer";

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

export interface SweepResult {
  /** Markers whose lead no longer referenced their distribution: closed. */
  closed: number;
  /** Distributions completed: the lead now SOLD, or unsold (buyers refused D). */
  completed: number;
  /** Distributions whose outcome is still unknown (buyers unreachable): left for the next sweep. */
  pending: number;
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

  /** One pass over the stale markers. */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { closed: 0, completed: 0, pending: 0 };
    const before = new Date(this.writer.clock().getTime() - this.settings.staleMs);
    for (const marker of await this.markers.stale(before, SWEEP_BATCH)) {
      if (this.stopped) break;
      const lead = await this.writer.leads.get(marker.tenantId, marker.leadId);
      const claim = lead?.distribution;
      if (!lead || !claim || claim.leadSaleId !== marker._id) {
        await this.markers.close(marker._id);
        result.closed += 1;
        continue;
      }
      const context = { leadId: lead._id, leadSaleId: claim.leadSaleId, tenantId: lead.tenantId };
      try {
        const outcome = await this.distributor.complete(lead, claim, undefined, this.abort.signal);
        if (outcome.kind === "sold") this.logger.info({ ...context, buyerId: outcome.sale.buyerId }, "recovered an interrupted distribution: lead sold");
        else this.logger.info({ ...context, reason: outcome.error.message }, "recovered an interrupted distribution: no buyer took the lead");
        result.completed += 1;
      } catch (error) {
        // OperationPendingError: buyers still unreachable (complete() logged it).
        if (!(error instanceof OperationPendingError))
          this.logger.warn({ ...context, err: error }, "could not recover a distribution; retried at the next sweep");
        result.pending += 1;
      }
    }
    return result;
  }
}
