/**
 * Finishes returns whose call did not (the process died, leads was
 * unreachable, the client went away): every BUYERS_SWEEP_MS it reads the
 * markers of returns in progress that are due (sales-store.ts
 * `lead_sale_returns`, a small collection, not a scan of every sale) and,
 * for each sale that is RETURNED with refunded or leadReleased false, runs
 * the rest of the return (returns.ts finishReturn: refund once by its
 * operation id, release the lead, set the flags). Every replica runs it;
 * running the same return twice at once is safe for the same reason a
 * retried ReturnLeadSale is.
 *
 * A marker whose sale is still SOLD belongs to a return that is being made
 * right now or failed before marking the sale (window passed, stale etag);
 * it is dropped once older than any call could be (STALE_MARKER_MS). Every
 * attempt of a return makes its marker young again (markReturnStarted), and
 * only the marker of that attempt is dropped (by its startTime); the sale is
 * read again after the drop, and a sale that turned RETURNED meanwhile, still
 * unfinished, gets its marker back: a return is never left without one.
 *
 * One return that cannot finish (leads keeps refusing, a corrupted buyer)
 * must not hold up the others: a failed marker is deferred (attempts,
 * nextAttemptTime, doubling from BUYERS_SWEEP_MS up to MAX_BACKOFF_MS) and
 * the due markers are read least recently deferred first, so the rest of
 * the collection keeps moving; from the FAILURES_BEFORE_WARNING-th failure
 * on, each one is logged at warn with the marker's age.
 */
import { type Logger, loadConfig, config as setting } from "@leadmesh/platform";
import { finishReturn, type ReturnContext } from "./returns";
import type { ReturnMarkerStore, SaleDocument, SaleReturnMarker } from "./sales-store";

const sweeperSettings = {
  sweepMs: setting.integer({
    env: "BUYERS_SWEEP_MS",
    description: "how often each replica finishes interrupted sale returns (refund, lead release)",
    default: 5000,
    min: 50,
    max: 3_600_000,
  }),
};

/** Far above any call's deadline: a return started this long ago is not running any more. */
export const STALE_MARKER_MS = 60_000;
/** Returns looked at per round; the rest wait for the next one. */
const BATCH = 100;
/** A return failing for good is still retried this often. */
export const MAX_BACKOFF_MS = 300_000;
/** Failures in a row before each further one is a warning (the first ones are routine: leads restarting). */
export const FAILURES_BEFORE_WARNING = 3;

export interface SaleSweeper {
  /** Finishes the returns in progress now (one round); resolves when the round is done. */
  sweep(): Promise<number>;
  /** Stops the timer and waits for a running round. */
  stop(): Promise<void>;
}

/** What one round works with: the markers and sales, and how a RETURNED sale is finished. */
export interface ReturnSweep {
  sales: ReturnMarkerStore;
  finish(sale: SaleDocument): Promise<unknown>;
  clock: () => Date;
  logger: Logger;
  sweepMs: number;
  /** True once the sweeper is stopping: the round ends after the marker in hand. */
  stopped(): boolean;
}

const finished = (sale: SaleDocument) => sale.state === "LEAD_SALE_STATE_RETURNED" && sale.refunded && sale.leadReleased;
const unfinishedReturn = (sale: SaleDocument | null): sale is SaleDocument => sale?.state === "LEAD_SALE_STATE_RETURNED" && !finished(sale);

/** The wait after the n-th failure in a row (n >= 1). */
export function backoffMs(sweepMs: number, failures: number): number {
  return Math.min(MAX_BACKOFF_MS, sweepMs * 2 ** Math.min(failures - 1, 20));
}

/** One round: every due marker, least recently deferred first; answers how many returns it finished. */
export async function sweepReturns(sweep: ReturnSweep): Promise<number> {
  let count = 0;
  for (const marker of await sweep.sales.listReturnsDue(sweep.clock(), BATCH)) {
    if (sweep.stopped()) break;
    try {
      if (await sweepOne(sweep, marker)) count++;
    } catch (error) {
      await deferFailed(sweep, marker, error);
    }
  }
  return count;
}

/** One marker: finish its return, drop it, or leave it to the call that is making the return; true if a return was finished. */
async function sweepOne(sweep: ReturnSweep, marker: SaleReturnMarker): Promise<boolean> {
  const sale = await sweep.sales.get(marker.tenantId, marker._id);
  if (unfinishedReturn(sale)) {
    await sweep.finish(sale);
    sweep.logger.info({ tenantId: sale.tenantId, leadSaleId: sale._id, attempts: marker.attempts ?? 0 }, "sweeper finished an interrupted return");
    return true;
  }
  const now = sweep.clock();
  if (sale && !finished(sale) && now.getTime() - marker.startTime.getTime() <= STALE_MARKER_MS) {
    // SOLD: a call is marking it right now. Look again next round, behind the markers due meanwhile.
    await sweep.sales.deferReturn(marker._id, marker.attempts ?? 0, new Date(now.getTime() + sweep.sweepMs));
    return false;
  }
  await sweep.sales.markReturnDone(marker._id, marker.startTime);
  // A call may have marked the sale RETURNED between the read above and the drop (and died): it keeps a marker.
  const after = await sweep.sales.get(marker.tenantId, marker._id);
  if (unfinishedReturn(after)) {
    await sweep.sales.markReturnStarted(after.tenantId, after._id, sweep.clock());
    sweep.logger.info({ tenantId: after.tenantId, leadSaleId: after._id }, "sale was returned while its stale marker was dropped: marker restored");
  }
  return false;
}

async function deferFailed(sweep: ReturnSweep, marker: SaleReturnMarker, error: unknown): Promise<void> {
  const now = sweep.clock();
  const attempts = (marker.attempts ?? 0) + 1;
  const retryInMs = backoffMs(sweep.sweepMs, attempts);
  const fields = { err: error, tenantId: marker.tenantId, leadSaleId: marker._id, attempts, ageMs: now.getTime() - marker.startTime.getTime(), retryInMs };
  if (attempts >= FAILURES_BEFORE_WARNING) sweep.logger.warn(fields, "sweeper keeps failing to finish a return; retrying later");
  else sweep.logger.info(fields, "sweeper could not finish a return; retrying later");
  try {
    await sweep.sales.deferReturn(marker._id, attempts, new Date(now.getTime() + retryInMs));
  } catch (deferError) {
    // The store itself failing: the marker stays due, the next round tries it again.
    sweep.logger.warn({ err: deferError, tenantId: marker.tenantId, leadSaleId: marker._id }, "sweeper could not defer a failed return");
  }
}

export function startSaleSweeper(returns: ReturnContext, env: NodeJS.ProcessEnv, logger: Logger, actorId = "buyers"): SaleSweeper {
  const { sweepMs } = loadConfig(sweeperSettings, env);
  let running: Promise<number> | undefined;
  let stopped = false;
  const round: ReturnSweep = {
    sales: returns.sales,
    finish: (sale) => finishReturn(returns, sale, { tenantId: sale.tenantId, actorId }),
    clock: returns.clock,
    logger,
    sweepMs,
    stopped: () => stopped,
  };

  function sweep(): Promise<number> {
    running ??= sweepReturns(round).finally(() => {
      running = undefined;
    });
    return running;
  }

  const timer = setInterval(() => {
    sweep().catch((error) => logger.warn({ err: error }, "sale returns sweep failed"));
  }, sweepMs);
  timer.unref();
  // Once at startup too: returns cut off by the previous process's death finish without waiting a period.
  sweep().catch((error) => logger.warn({ err: error }, "sale returns sweep failed"));

  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
