/**
 * The returns sweeper's rounds over an in-memory marker store with the
 * semantics of sales-store.ts (upsert by _id, delete by _id and startTime,
 * due = no nextAttemptTime or one not after now, least recently deferred
 * first): failing markers are rotated out of the way and backed off, a
 * marker is never dropped from a return that turned RETURNED meanwhile.
 */
import pino from "pino";
import type { ReturnMarkerStore, SaleDocument, SaleReturnMarker } from "./sales-store";
import { backoffMs, FAILURES_BEFORE_WARNING, MAX_BACKOFF_MS, type ReturnSweep, STALE_MARKER_MS, sweepReturns } from "./sweeper";

const SWEEP_MS = 5_000;
const T0 = new Date("2026-12-02T12:00:00Z");

function saleOf(id: string, state: SaleDocument["state"], flags: { refunded?: boolean; leadReleased?: boolean } = {}): SaleDocument {
  return {
    _id: id,
    tenantId: "acme",
    leadId: `lead-${id}`,
    buyerId: "buyer-1",
    priceMinor: 1000,
    currencyCode: "USD",
    state,
    returnReason: state === "LEAD_SALE_STATE_RETURNED" ? "LEAD_SALE_RETURN_REASON_DUPLICATE" : "",
    returnComment: "",
    createTime: T0,
    updateTime: T0,
    sellTime: T0,
    returnDeadline: new Date(T0.getTime() + 86_400_000),
    returnTime: state === "LEAD_SALE_STATE_RETURNED" ? T0 : null,
    refunded: flags.refunded ?? false,
    leadReleased: flags.leadReleased ?? false,
    revision: 2,
  };
}

class Markers implements ReturnMarkerStore {
  readonly markers = new Map<string, SaleReturnMarker>();
  readonly sales = new Map<string, SaleDocument>();
  /** Runs inside get(): what another call does between the sweeper's reads. */
  onGet: (id: string) => void = () => undefined;

  async get(tenantId: string, id: string) {
    this.onGet(id);
    const sale = this.sales.get(id);
    return sale?.tenantId === tenantId ? sale : null;
  }
  async listReturnsDue(now: Date, limit: number) {
    const due = [...this.markers.values()].filter((marker) => marker.nextAttemptTime === undefined || marker.nextAttemptTime <= now);
    const time = (marker: SaleReturnMarker) => marker.nextAttemptTime?.getTime() ?? Number.NEGATIVE_INFINITY;
    return due
      .sort((a, b) => time(a) - time(b) || a.startTime.getTime() - b.startTime.getTime())
      .slice(0, limit)
      .map((marker) => ({ ...marker }));
  }
  async markReturnStarted(tenantId: string, id: string, now: Date) {
    this.markers.set(id, { _id: id, tenantId, startTime: now, attempts: 0, nextAttemptTime: now });
  }
  async markReturnDone(id: string, startTime?: Date) {
    const marker = this.markers.get(id);
    if (marker && (startTime === undefined || marker.startTime.getTime() === startTime.getTime())) this.markers.delete(id);
  }
  async deferReturn(id: string, attempts: number, nextAttemptTime: Date) {
    const marker = this.markers.get(id);
    if (marker) this.markers.set(id, { ...marker, attempts, nextAttemptTime });
  }
  add(id: string, sale: SaleDocument | null, startTime: Date) {
    if (sale) this.sales.set(id, sale);
    this.markers.set(id, { _id: id, tenantId: "acme", startTime });
  }
}

function sweeper(store: Markers, failing: ReadonlySet<string> = new Set()) {
  let now = T0;
  const logs: Array<{ level: number; msg: string; leadSaleId?: string; attempts?: number; ageMs?: number; retryInMs?: number }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const finished: string[] = [];
  const sweep: ReturnSweep = {
    sales: store,
    async finish(sale) {
      if (failing.has(sale._id)) throw new Error(`leads refuses the release of ${sale._id}`);
      store.sales.set(sale._id, { ...sale, refunded: true, leadReleased: true });
      store.markers.delete(sale._id);
      finished.push(sale._id);
    },
    clock: () => now,
    logger,
    sweepMs: SWEEP_MS,
    stopped: () => false,
  };
  return {
    round: () => sweepReturns(sweep),
    advance(ms: number) {
      now = new Date(now.getTime() + ms);
    },
    logs,
    finished,
  };
}

const returned = (id: string) => saleOf(id, "LEAD_SALE_STATE_RETURNED");

describe("sweepReturns", () => {
  it("rotates past 150 returns that fail for good: a newer one is finished in the next round", async () => {
    const store = new Markers();
    const failing = new Set<string>();
    for (let index = 0; index < 150; index++) {
      const id = `bad-${String(index).padStart(3, "0")}`;
      failing.add(id);
      store.add(id, returned(id), new Date(T0.getTime() - 10_000 + index));
    }
    store.add("good", returned("good"), T0);
    const sweep = sweeper(store, failing);

    expect(await sweep.round()).toBe(0); // the 100 oldest, all failing
    expect(store.markers.get("bad-000")).toMatchObject({ attempts: 1, nextAttemptTime: new Date(T0.getTime() + SWEEP_MS) });
    expect(await sweep.round()).toBe(1); // the other 50 and the good one; the 100 deferred are not due
    expect(sweep.finished).toEqual(["good"]);
    expect(store.markers.has("good")).toBe(false);
    expect(store.markers.size).toBe(150);
  });

  it("backs a failing return off, doubling up to the cap, and warns with its age once it keeps failing", async () => {
    const store = new Markers();
    store.add("bad", returned("bad"), new Date(T0.getTime() - 1_000));
    const sweep = sweeper(store, new Set(["bad"]));

    const waits: number[] = [];
    for (let failure = 1; failure <= FAILURES_BEFORE_WARNING; failure++) {
      await sweep.round();
      const marker = store.markers.get("bad") as SaleReturnMarker;
      expect(marker.attempts).toBe(failure);
      waits.push((marker.nextAttemptTime as Date).getTime() - (T0.getTime() + waits.reduce((sum, wait) => sum + wait, 0)));
      // Not due before its time: a round now leaves it alone.
      sweep.advance(waits[waits.length - 1] as number);
    }
    expect(waits).toEqual([SWEEP_MS, 2 * SWEEP_MS, 4 * SWEEP_MS]);
    const failures = sweep.logs.filter((log) => log.leadSaleId === "bad");
    expect(failures.map((log) => log.level)).toEqual([30, 30, 40]);
    expect(failures[2]).toMatchObject({ attempts: 3, ageMs: 1_000 + SWEEP_MS + 2 * SWEEP_MS, msg: expect.stringContaining("keeps failing") });
    expect(backoffMs(SWEEP_MS, 40)).toBe(MAX_BACKOFF_MS);
  });

  it("leaves a young marker of a sale still SOLD to its call and looks again next round", async () => {
    const store = new Markers();
    store.add("in-flight", saleOf("in-flight", "LEAD_SALE_STATE_SOLD"), T0);
    const sweep = sweeper(store);
    sweep.advance(1_000);
    await sweep.round();
    expect(store.markers.get("in-flight")).toMatchObject({ attempts: 0, nextAttemptTime: new Date(T0.getTime() + 1_000 + SWEEP_MS) });
  });

  it("drops a stale marker of a SOLD sale, but restores it when the sale was returned meanwhile, and finishes that return", async () => {
    const store = new Markers();
    store.add("raced", saleOf("raced", "LEAD_SALE_STATE_SOLD"), new Date(T0.getTime() - STALE_MARKER_MS - 1));
    store.add("abandoned", saleOf("abandoned", "LEAD_SALE_STATE_SOLD"), new Date(T0.getTime() - STALE_MARKER_MS - 1));
    // A retry of "raced" marks it RETURNED (and dies) between the sweeper's read of the sale and its drop of the marker.
    let reads = 0;
    store.onGet = (id) => {
      if (id === "raced" && ++reads === 2) store.sales.set("raced", returned("raced"));
    };
    const sweep = sweeper(store);
    await sweep.round();
    expect(store.markers.has("abandoned")).toBe(false);
    expect(store.markers.get("raced")).toMatchObject({ startTime: T0 });

    await sweep.round();
    expect(sweep.finished).toEqual(["raced"]);
    expect(store.sales.get("raced")).toMatchObject({ refunded: true, leadReleased: true });
  });

  it("drops only the stale attempt's marker: a newer attempt's stays", async () => {
    const store = new Markers();
    store.add("retried", saleOf("retried", "LEAD_SALE_STATE_SOLD"), new Date(T0.getTime() - STALE_MARKER_MS - 1));
    // The client's retry upserts the marker after the sweeper listed the stale one.
    store.onGet = (id) => {
      if (id === "retried") void store.markReturnStarted("acme", "retried", T0);
    };
    await sweeper(store).round();
    expect(store.markers.get("retried")).toMatchObject({ startTime: T0 });
  });

  it("drops the markers of finished returns and of sales that do not exist", async () => {
    const store = new Markers();
    store.add("done", saleOf("done", "LEAD_SALE_STATE_RETURNED", { refunded: true, leadReleased: true }), T0);
    store.add("gone", null, T0);
    await sweeper(store).round();
    expect(store.markers.size).toBe(0);
  });
});
