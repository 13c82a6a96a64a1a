/**
 * Finishes returns whose call did not (the process died, leads was
 * unreachable, the client went away): every BUYERS_SWEEP_MS it reads the
 * markers of returns in progress (sales-store.ts `lead_sale_returns`, a
 * small collection, not a scan of every sale) and, for each sale that is
 * RETURNED with refunded or leadReleased false, runs the rest of the return
 * (returns.ts finishReturn: refund once by its operation id, release the
 * lead, set the flags). Every replica runs it; running the same return twice
 * at once is safe for the same reason a retried ReturnLeadSale is.
 *
 * A marker whose sale is still SOLD belongs to a return that is being made
 * right now or failed before marking the sale (window passed, stale etag);
 * it is dropped once older than any call could be (STALE_MARKER_MS).
 */
import { type Logger, loadConfig, config as setting } from "@leadmesh/platform";
import { finishReturn, type ReturnContext } from "./returns";

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
const STALE_MARKER_MS = 60_000;
/** Returns looked at per round; the rest wait for the next one. */
const BATCH = 100;

export interface SaleSweeper {
  /** Finishes the returns in progress now (one round); resolves when the round is done. */
  sweep(): Promise<number>;
  /** Stops the timer and waits for a running round. */
  stop(): Promise<void>;
}

export function startSaleSweeper(returns: ReturnContext, env: NodeJS.ProcessEnv, logger: Logger, actorId = "buyers"): SaleSweeper {
  const { sweepMs } = loadConfig(sweeperSettings, env);
  let running: Promise<number> | undefined;
  let stopped = false;

  async function round(): Promise<number> {
    let finished = 0;
    for (const marker of await returns.sales.listReturnsInProgress(BATCH)) {
      if (stopped) break;
      try {
        const sale = await returns.sales.get(marker.tenantId, marker._id);
        const done = sale?.state === "LEAD_SALE_STATE_RETURNED" && sale.refunded && sale.leadReleased;
        if (sale?.state === "LEAD_SALE_STATE_RETURNED" && !done) {
          await finishReturn(returns, sale, { tenantId: sale.tenantId, actorId });
          finished++;
          logger.info({ tenantId: sale.tenantId, leadSaleId: sale._id }, "sweeper finished an interrupted return");
        } else if (done || !sale || returns.clock().getTime() - marker.startTime.getTime() > STALE_MARKER_MS) {
          await returns.sales.markReturnDone(marker._id);
        }
      } catch (error) {
        // One return that cannot finish now (leads unreachable) must not hold up the others: the next round retries it.
        logger.warn({ err: error, tenantId: marker.tenantId, leadSaleId: marker._id }, "sweeper could not finish a return; retrying next round");
      }
    }
    return finished;
  }

  function sweep(): Promise<number> {
    running ??= round().finally(() => {
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
