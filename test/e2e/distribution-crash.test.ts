/**
 * kill -9 at each step of a distribution and of a sale return, under load,
 * on a private mesh (auth, users, leads, buyers; no Envoy: calls go straight
 * to the services over mTLS). For each step the service that runs it is
 * restarted with LEADMESH_CRASH_POINTS=<step> (services/platform/src/crash-points.ts);
 * 15 distributions (or returns) run concurrently, and the first one to reach
 * the step SIGKILLs the process, taking the other calls in flight with it.
 * The launcher's supervisor restarts it with the same environment, and the
 * shared once-dir keeps the step from firing again. Recovery (leads'
 * distribution sweeper, buyers' return sweeper; stale after 1.5 s, swept
 * every 0.5 s here) must then bring every lead and buyer to a state the
 * design allows: a lead SOLD with exactly one sale and one charge, or unsold
 * with none; balances equal to their ledgers; a returned sale refunded once
 * and its lead released. A client retrying with the same request id must
 * then get the same sale, never a second charge.
 *
 * Each step also proves that it fired (its once-dir marker, the crash line in
 * the process log, a supervisor restart), so the test cannot pass without a crash.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

jest.setTimeout(120_000);

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
const IN_FLIGHT = 15;
const SETTLE_MS = 30_000;

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
  const armed = new ManagedProcess({ ...replica.process.spec, env: { ...replica.process.spec.env, LEADMESH_CRASH_POINTS: step } });
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
 * abandoned-claim timeout of 20 s), as a client with a request id does.
 */
async function untilDecided<T>(call: () => Promise<T>, budgetMs = 40_000): Promise<T> {
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

/** The gRPC status code of a call's failure, or OK. */
async function codeOf(call: Promise<unknown>): Promise<Status> {
  try {
    await call;
    return Status.OK;
  } catch (error) {
    return (error as { code?: Status }).code ?? Status.UNKNOWN;
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

describe.each(STEPS)("kill -9 at $step under load", ({ step, service, flow }) => {
  let tenantId: string;
  let client: DistributionGrpc;

  beforeAll(async () => {
    tenantId = uniqueTenant("crash");
    client = new DistributionGrpc(grpcMesh, await registerTenantGrpc(grpcMesh, tenantId));
  });

  afterAll(() => client?.close());

  it("recovers every lead to one sale with one charge, or none", async () => {
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
    const codes =
      flow === "distribute"
        ? await mapBounded(leads, IN_FLIGHT, (lead) => codeOf(client.distribute(lead.id, requestIds.get(lead.id)!)))
        : await mapBounded(saleIds, IN_FLIGHT, (id) => codeOf(client.returnSale(id)));
    // Calls caught by the crash fail as UNAVAILABLE (or are refused while a distribution they raced is in progress); none succeeds wrongly.
    expect(
      codes.filter((code) => ![Status.OK, Status.UNAVAILABLE, Status.ABORTED, Status.DEADLINE_EXCEEDED].includes(code)).map((code) => Status[code]),
    ).toEqual([]);
    expect(codes.filter((code) => code !== Status.OK).length).toBeGreaterThan(0);
    await expectCrashed(service, step, armed, eventsBefore);

    const crashedAt = Date.now();
    await settled(tenantId, client);
    const counts = new Map<string, number>();
    for (const code of codes) counts.set(Status[code], (counts.get(Status[code]) ?? 0) + 1);
    const tally = [...counts].map(([name, count]) => `${count} ${name}`);
    console.log(`${step}: ${flow} calls answered ${tally.join(", ")}; recovery settled ${Date.now() - crashedAt} ms after the restart`);

    // A client retrying every call with its request id gets the one sale, and nothing is charged twice.
    const before = await client.readState();
    if (flow === "distribute") {
      const recorded = new Map(before.leads.filter((lead) => lead.sale).map((lead) => [lead.id, lead.sale.leadSaleId]));
      const retried = await mapBounded(
        leads,
        IN_FLIGHT,
        async (lead) => (await untilDecided(() => client.distribute(lead.id, requestIds.get(lead.id)!))).sale?.leadSaleId,
      );
      leads.forEach((lead, index) => {
        if (recorded.has(lead.id)) expect({ lead: lead.id, sale: retried[index] }).toEqual({ lead: lead.id, sale: recorded.get(lead.id) });
      });
    } else {
      const retried = await mapBounded(saleIds, IN_FLIGHT, async (id) => (await untilDecided(() => client.returnSale(id))).leadSale?.state);
      expect(new Set(retried)).toEqual(new Set([4 /* LEAD_SALE_STATE_RETURNED */]));
    }
    await settled(tenantId, client);
    const after = await client.readState();
    const ours = new Set(leads.map((lead) => lead.id));
    expect(after.leads.filter((lead) => ours.has(lead.id)).map((lead) => lead.status)).toEqual(
      leads.map(() => (flow === "distribute" ? "LEAD_STATUS_SOLD" : "LEAD_STATUS_QUALIFIED")),
    );
    const charges = [...after.ledgers.values()].flat().filter((entry) => entry.type === "BUYER_LEDGER_ENTRY_TYPE_CHARGE");
    const refunds = [...after.ledgers.values()].flat().filter((entry) => entry.type === "BUYER_LEDGER_ENTRY_TYPE_REFUND");
    expect({ charges: charges.length, refunds: refunds.length }).toEqual({ charges: LEADS_PER_STEP, refunds: flow === "return" ? LEADS_PER_STEP : 0 });
    const spent =
      charges.reduce((total, entry) => total + BigInt(entry.amount.amountMinor), 0n) +
      refunds.reduce((total, entry) => total + BigInt(entry.amount.amountMinor), 0n);
    const balances = after.buyers.reduce((total, buyer) => total + BigInt(buyer.balance?.amountMinor ?? "0"), 0n);
    expect(balances).toBe(BigInt(buyers.length * 100_000) + spent);
  });
});

it("fired every step exactly once", () => {
  expect(STEPS.filter(({ step }) => !existsSync(join(onceDir, step))).map(({ step }) => step)).toEqual([]);
  const gaveUp = events.filter((event) => event.kind === "gave-up");
  expect(gaveUp).toEqual([]);
});
