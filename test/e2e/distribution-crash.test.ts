/**
 * kill -9 at each step of a distribution and of a sale return, under load,
 * on a private mesh (auth, users, leads, buyers; no Envoy: calls go straight
 * to the services over mTLS). For each step the service that runs it is
 * restarted with LEADMESH_CRASH_POINTS=<step>@4 (services/platform/src/crash-points.ts:
 * the 4th pass through the step kills, so a few calls complete before it);
 * 15 distributions (or returns) run concurrently, and the first one to reach
 * the step SIGKILLs the process, taking the other calls in flight with it.
 * The launcher's supervisor restarts it with the same environment, and the
 * shared once-dir keeps the step from firing again. Recovery (leads'
 * distribution sweeper, buyers' return sweeper; stale after 1.5 s, swept
 * every 0.5 s here) must then bring every lead and buyer to a state the
 * design allows: a lead SOLD with exactly one sale and one charge, or unsold
 * with none; balances equal to their ledgers; a returned sale refunded once
 * and its lead released. Half of the interrupted calls are retried by their
 * client at once with the same request id, racing recovery for the same
 * sale; the rest only after recovery settled. Every answer a client got must
 * agree with what is recorded in the end, and nothing is charged twice.
 *
 * Each step also proves that it fired (its once-dir marker, the crash line in
 * the process log, a supervisor restart), so the test cannot pass without a crash.
 * The steps crash one after the other; their recoveries are checked after
 * the last one fired, because a document the killed process left claimed
 * stays blocked for the platform's abandoned-claim timeout (60 s), and six
 * such waits in a row would take six minutes.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { MongoClient } from "mongodb";
import { Status } from "nice-grpc";
import { healthStatus } from "../../scripts/mesh/health-client";
import { type RunningMesh, startMesh } from "../../scripts/mesh/local-mesh";
import { spiffeIdOf } from "../../scripts/mesh/model";
import { ManagedProcess, type SupervisorEvent, waitUntil } from "../../scripts/mesh/processes";
import { mapBounded, pollUntil } from "../harness/bounded";
import { uniqueTenant } from "../harness/clients";
import { DistributionGrpc, type GrpcMesh, registerTenantGrpc } from "../harness/distribution-grpc";
import { distributionProblems } from "../harness/distribution-invariants";

jest.setTimeout(240_000);

type Flow = "distribute" | "return";
const STEPS: Array<{ step: string; service: "leads" | "buyers"; flow: Flow }> = [
  { step: "leads.distribute.after-claim", service: "leads", flow: "distribute" },
  { step: "buyers.sell.after-charge", service: "buyers", flow: "distribute" },
  { step: "leads.distribute.after-sell", service: "leads", flow: "distribute" },
  { step: "leads.distribute.after-record", service: "leads", flow: "distribute" },
  { step: "buyers.return.after-mark", service: "buyers", flow: "return" },
  { step: "buyers.return.after-refund", service: "buyers", flow: "return" },
];
const LEADS_PER_STEP = 30;
/** The pass through the step that kills: the calls before it complete, and their answers must hold after recovery too. */
const CRASH_ON_PASS = 4;
const IN_FLIGHT = 15;
/** Recovery may wait out the platform's abandoned-claim timeout (60 s, revisions.ts) on a document the crash left claimed. */
const SETTLE_MS = 90_000;

const runDir = mkdtempSync(join(tmpdir(), "leadmesh-distribution-crash-"));
const onceDir = join(runDir, "crash-once");
mkdirSync(onceDir);
const events: SupervisorEvent[] = [];
let mesh: RunningMesh;
let grpcMesh: GrpcMesh;
let mongo: MongoClient;

beforeAll(async () => {
  mesh = await startMesh({
    ports: "random",
    runDir,
    envoy: false,
    serviceEnv: {
      LEADMESH_CRASH_ONCE_DIR: onceDir,
      LEADS_DISTRIBUTION_STALE_MS: "1500",
      LEADS_DISTRIBUTION_SWEEP_MS: "500",
      BUYERS_SWEEP_MS: "500",
    },
    onSupervisorEvent: (event) => events.push(event),
  });
  grpcMesh = { grpcAddress: (service) => `127.0.0.1:${mesh.services[service].grpc}`, certificates: mesh.tls };
  mongo = new MongoClient(mesh.mongoUrl);
}, 120_000);

afterAll(async () => {
  await mongo?.close();
  await mesh?.stop();
  if (!process.env.KEEP_TEST_RUN_DIR) rmSync(runDir, { recursive: true, force: true });
});

/**
 * Restarts the service's process (gracefully) with only `step` armed; steps
 * armed before stay harmless, their once-dir markers exist. Returns the new process.
 */
async function arm(service: "leads" | "buyers", step: string): Promise<ManagedProcess> {
  const replica = mesh.replicas[service][0];
  await replica.process.stop();
  const armed = new ManagedProcess({ ...replica.process.spec, env: { ...replica.process.spec.env, LEADMESH_CRASH_POINTS: `${step}@${CRASH_ON_PASS}` } });
  armed.on("supervisor", (event) => events.push(event));
  armed.start();
  replica.process = armed;
  mesh.processes[service] = armed;
  await waitServing(service, armed);
  return armed;
}

function waitServing(service: string, managed: ManagedProcess): Promise<void> {
  const tls = { certificates: mesh.tls, server: spiffeIdOf(mesh.topology, service) };
  return waitUntil(`${service} to report SERVING`, async () => (await healthStatus(mesh.services[service].grpc, { tls })) === "SERVING", 60_000, managed);
}

/**
 * Retries `call` while it answers UNAVAILABLE (a distribution pending, a
 * service restarting) or ABORTED (another distribution in progress, or a
 * write claim left by the killed process, released after the platform's
 * abandoned-claim timeout of 60 s), as a client with a request id does.
 */
async function untilDecided<T>(call: () => Promise<T>, budgetMs = 100_000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const code = (error as { code?: Status }).code;
      if ((code !== Status.UNAVAILABLE && code !== Status.ABORTED) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

/** Distributions of the tenant still marked in progress, and leads still claimed (leads' own records; recovery must empty both). */
async function unfinishedDistributions(tenantId: string): Promise<number> {
  const db = mongo.db("leads");
  const markers = await db.collection("lead_distributions").countDocuments({ tenantId });
  const claimed = await db.collection("leads").countDocuments({ tenantId, distribution: { $type: "object" } });
  return markers + claimed;
}

/** Waits until recovery has finished everything of the tenant and every invariant holds; the problems left when it times out. */
async function settled(tenantId: string, client: DistributionGrpc): Promise<void> {
  let lastProblems: string[] = [];
  try {
    await pollUntil(
      "recovery to settle",
      async () => {
        if ((await unfinishedDistributions(tenantId)) > 0) return undefined;
        lastProblems = distributionProblems(await client.readState());
        return lastProblems.length === 0 ? true : undefined;
      },
      SETTLE_MS,
      250,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; unfinished distributions: ${await unfinishedDistributions(tenantId)}; problems:\n${lastProblems.join("\n")}`);
  }
}

/** The step fired exactly once: its once-dir marker, the crash line in the log, and a restart by the supervisor. */
async function expectCrashed(service: "leads" | "buyers", step: string, armed: ManagedProcess, eventsBefore: number): Promise<void> {
  // The step may fire in a call of the load or in recovery's pass over the calls the load left pending.
  await pollUntil(`the crash point ${step} to fire`, async () => (existsSync(join(onceDir, step)) ? true : undefined), 15_000);
  const name = mesh.replicas[service][0].name;
  await pollUntil(
    `${name} to be restarted after the crash at ${step}`,
    async () => (events.slice(eventsBefore).some((event) => event.kind === "restarted" && event.process === name) ? true : undefined),
    15_000,
  );
  expect(readFileSync(armed.spec.logFile, "utf8")).toContain(`leadmesh crash point "${step}": SIGKILL`);
  expect(armed.restartCount).toBe(1);
  await waitServing(service, armed);
}

/** What the crash phase of a step leaves for its recovery phase. */
interface CrashedStep {
  tenantId: string;
  client: DistributionGrpc;
  flow: Flow;
  buyerCount: number;
  leadIds: string[];
  /** Lead ids (distribute) or sale ids (return): the items the calls were about. */
  items: string[];
  callOf: (item: string) => Promise<string>;
  /** Every answer a client got per item; all must agree with what is recorded in the end. */
  answers: Map<string, string[]>;
  /** Retries racing recovery, started as soon as a call failed. */
  racing: Array<Promise<void>>;
  crashedAt: number;
  tally: string;
}

const crashed = new Map<string, CrashedStep>();
const clients: DistributionGrpc[] = [];
afterAll(() => {
  for (const client of clients) client.close();
});

/**
 * Phase 1, step by step: fixtures, arm the step, run the load, prove the crash.
 * Recovery of each step (phase 2) is awaited only after every step fired: a
 * claim the killed process left between claim and update blocks its document
 * for the platform's abandoned-claim timeout (60 s, revisions.ts), and these
 * waits overlap instead of adding up.
 */
describe.each(STEPS)("kill -9 at $step under load", ({ step, service, flow }) => {
  it("fires once while 15 calls are in flight, and the supervisor restarts the process", async () => {
    const tenantId = uniqueTenant("crash");
    const client = new DistributionGrpc(grpcMesh, await registerTenantGrpc(grpcMesh, tenantId));
    clients.push(client);
    const buyers = [await client.fundedBuyer(100_000, 1_000), await client.fundedBuyer(100_000, 900), await client.fundedBuyer(100_000, 800)];
    const leads = await mapBounded(
      Array.from({ length: LEADS_PER_STEP }, (_, index) => index),
      10,
      (index) => client.qualifiedLead(`${step} ${index}`),
    );
    const requestIds = new Map(leads.map((lead) => [lead.id, randomUUID()]));
    // Returns need sales first, made before the step is armed.
    let saleIds: string[] = [];
    if (flow === "return") {
      saleIds = await mapBounded(
        leads,
        IN_FLIGHT,
        async (lead) => (await untilDecided(() => client.distribute(lead.id, requestIds.get(lead.id)!))).sale?.leadSaleId ?? "",
      );
      expect(saleIds.filter((id) => id === "")).toEqual([]);
    }

    const eventsBefore = events.length;
    const armed = await arm(service, step);
    // The path through the restarted service works before the load starts (a caller's channel may still be in reconnect backoff);
    // validate_only picks a buyer but writes nothing, so it passes no crash point.
    const probe = await client.qualifiedLead(`${step} probe`);
    await untilDecided(() => client.leads.distributeLead({ leadId: probe.id, validateOnly: true }));

    // What one call of the flow answers: the sale id of a distribution, the state of a returned sale.
    const items = flow === "distribute" ? leads.map((lead) => lead.id) : saleIds;
    const callOf = async (item: string): Promise<string> =>
      flow === "distribute"
        ? ((await client.distribute(item, requestIds.get(item)!)).sale?.leadSaleId ?? "")
        : LeadSaleState[(await client.returnSale(item)).leadSale?.state ?? LeadSaleState.LEAD_SALE_STATE_UNSPECIFIED];
    const answers = new Map<string, string[]>(items.map((item) => [item, []]));
    // Half of the calls that fail are retried by their client at once, racing recovery for the same sale;
    // the other half are left to recovery alone and retried only once it has settled.
    const racing: Array<Promise<void>> = [];
    const codes = await mapBounded(items, IN_FLIGHT, async (item, index) => {
      try {
        answers.get(item)!.push(await callOf(item));
        return Status.OK;
      } catch (error) {
        if (index % 2 === 0) racing.push(untilDecided(() => callOf(item)).then((answer) => void answers.get(item)!.push(answer)));
        return (error as { code?: Status }).code ?? Status.UNKNOWN;
      }
    });
    // Each racing retry settles in phase 2; an early failure must not go unhandled meanwhile.
    for (const retry of racing) retry.catch(() => undefined);
    // Calls caught by the crash fail as UNAVAILABLE (or are refused while a distribution they raced is in progress); none succeeds wrongly.
    expect(
      codes.filter((code) => ![Status.OK, Status.UNAVAILABLE, Status.ABORTED, Status.DEADLINE_EXCEEDED].includes(code)).map((code) => Status[code]),
    ).toEqual([]);
    // Every call may still succeed: leads retries the idempotent SellLead, and a restarted buyers can answer the retry
    // within the call's deadline (the sale id is the same, so the retry finds the charge the dead process made).
    // That the process did die at the step is proven by expectCrashed, and phase 2 checks the charges.
    await expectCrashed(service, step, armed, eventsBefore);
    const counts = new Map<string, number>();
    for (const code of codes) counts.set(Status[code], (counts.get(Status[code]) ?? 0) + 1);
    const tally = [...counts].map(([name, count]) => `${count} ${name}`).join(", ");
    crashed.set(step, {
      tenantId,
      client,
      flow,
      buyerCount: buyers.length,
      leadIds: leads.map((lead) => lead.id),
      items,
      callOf,
      answers,
      racing,
      crashedAt: Date.now(),
      tally,
    });
  });
});

/** Phase 2, step by step: recovery settles, every answer agrees with the record, and the money adds up. */
describe.each(STEPS)("after kill -9 at $step", ({ step }) => {
  it("recovers every lead to one sale with one charge, or none", async () => {
    const crash = crashed.get(step);
    if (!crash) throw new Error(`the crash phase of ${step} failed; nothing to recover`);
    const { tenantId, client, flow, items, callOf, answers } = crash;
    await Promise.all(crash.racing);
    await settled(tenantId, client);
    console.log(
      `${step}: ${flow} calls answered ${crash.tally}; ${crash.racing.length} retried at once, racing recovery; settled ${Date.now() - crash.crashedAt} ms after the restart`,
    );

    // Every call retried now with its request id answers what is recorded, and nothing is charged twice.
    await mapBounded(items, IN_FLIGHT, async (item) => void answers.get(item)!.push(await untilDecided(() => callOf(item))));
    const recorded = await client.readState();
    const saleOfLead = new Map(recorded.leads.map((lead) => [lead.id, lead.sale?.leadSaleId ?? ""]));
    const stateOfSale = new Map(recorded.sales.map((sale) => [sale.id, sale.state]));
    const disagreements = items.flatMap((item) => {
      const expected = flow === "distribute" ? saleOfLead.get(item) : stateOfSale.get(item);
      return answers.get(item)!.some((answer) => answer !== expected) ? [{ item, expected, answers: answers.get(item) }] : [];
    });
    expect(disagreements).toEqual([]);
    await settled(tenantId, client);
    const after = await client.readState();
    const ours = new Set(crash.leadIds);
    expect(after.leads.filter((lead) => ours.has(lead.id)).map((lead) => lead.status)).toEqual(
      crash.leadIds.map(() => (flow === "distribute" ? "LEAD_STATUS_SOLD" : "LEAD_STATUS_QUALIFIED")),
    );
    const charges = [...after.ledgers.values()].flat().filter((entry) => entry.type === "BUYER_LEDGER_ENTRY_TYPE_CHARGE");
    const refunds = [...after.ledgers.values()].flat().filter((entry) => entry.type === "BUYER_LEDGER_ENTRY_TYPE_REFUND");
    expect({ charges: charges.length, refunds: refunds.length }).toEqual({ charges: LEADS_PER_STEP, refunds: flow === "return" ? LEADS_PER_STEP : 0 });
    const spent =
      charges.reduce((total, entry) => total + BigInt(entry.amount.amountMinor), 0n) +
      refunds.reduce((total, entry) => total + BigInt(entry.amount.amountMinor), 0n);
    const balances = after.buyers.reduce((total, buyer) => total + BigInt(buyer.balance?.amountMinor ?? "0"), 0n);
    expect(balances).toBe(BigInt(crash.buyerCount * 100_000) + spent);
  });
});

it("fired every step exactly once", () => {
  expect(STEPS.filter(({ step }) => !existsSync(join(onceDir, step))).map(({ step }) => step)).toEqual([]);
  const gaveUp = events.filter((event) => event.kind === "gave-up");
  expect(gaveUp).toEqual([]);
});
