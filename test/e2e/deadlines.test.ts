/**
 * Deadline propagation through the kernel's one client factory, over mTLS:
 * an upstream service (identity auth) whose handler calls a slow downstream
 * (identity users, TenantService.CreateTenant) with
 * createServiceClient + callOptionsFrom(context). The downstream handler only
 * waits for its call to be cancelled and records when it was.
 *
 *  - The upstream caller's deadline bounds the downstream call: the upstream
 *    answers DEADLINE_EXCEEDED promptly and the downstream call is cancelled.
 *  - Without an upstream deadline, the downstream call still ends, at the
 *    default deadline (DEFAULT_DEADLINE_MS, or the handler's deadlineMs).
 *  - A client cannot set the deadline by sending leadmesh-deadline itself.
 *
 * Timing on a busy machine: each hop records the deadline it received
 * (leadmesh-deadline, from the call's grpc-timeout) and the upstream the one
 * it set on its downstream call; the tests compare those, and measured run
 * times only where the point is that something ended promptly.
 */

import { Client as GrpcClient } from "@grpc/grpc-js";
import { AuditServiceDefinition, ListAuditEntriesRequest, ListAuditEntriesResponse } from "@leadmesh/contracts/audit/v1/audit";
import { CreateTenantResponse, TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { apiService, callOptionsFrom, createServiceClient, DEADLINE_HEADER, DEFAULT_DEADLINE_MS, type ForwardOptions } from "@leadmesh/platform";
import { type Metadata, Status } from "nice-grpc";
import { uniqueTenant } from "../harness/clients";
import { createTestCertificates, type TestCertificates } from "../harness/mtls-certificates";
import { handmadeTlsCredentials, type MeshTestService, rawUnary, startMeshTestService, TENANT_PATHS } from "../harness/mtls-services";
import { mintToken } from "../harness/tokens";

const LIST_AUDIT_ENTRIES = "/audit.v1.AuditService/ListAuditEntries";
/** A downstream handler that is never cancelled gives up after this, so a broken propagation fails the test instead of hanging it. */
const DOWNSTREAM_GIVES_UP_MS = 15_000;

interface DownstreamCall {
  tenant: string;
  startedAt: number;
  /** The deadline the downstream call arrived with (leadmesh-deadline, epoch ms); undefined when none. */
  deadlineAt?: number;
  /** When its AbortSignal fired; undefined while it runs (or if it gave up). */
  cancelledAt?: number;
}

interface UpstreamCall {
  tenant: string;
  startedAt: number;
  /** The deadline the upstream call arrived with; undefined when none. */
  deadlineAt?: number;
  /** The deadline the upstream handler gave its downstream call (callOptionsFrom). */
  downstreamDeadlineAt: number;
}

/** The deadline a call arrived with, as the kernel hands it on (leadmesh-deadline, epoch ms). */
function receivedDeadline(metadata: Metadata): number | undefined {
  const value = Number(metadata.get(DEADLINE_HEADER));
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

let certificates: TestCertificates;
let upstream: MeshTestService;
let downstream: MeshTestService;
/** The operator's tool's connection to the upstream (grpc-js: its deadlines reach the server as grpc-timeout). */
let operator: GrpcClient;
let downstreamClient: ReturnType<typeof createServiceClient<typeof TenantServiceDefinition>> | undefined;
const downstreamCalls: DownstreamCall[] = [];
const upstreamCalls: UpstreamCall[] = [];
/** When false, the downstream handler answers at once (tests of the deadline it receives, not of its cancellation). */
let downstreamWaits = true;
/** How the upstream handler calls on (set per test). */
let forward: ForwardOptions = {};
/** When set, the upstream handler does not pass on its AbortSignal: only the propagated deadline can end the downstream call. */
let withoutSignal = false;

beforeAll(async () => {
  certificates = await createTestCertificates(["auth", "users", "operator"]);
  downstream = await startMeshTestService({
    name: "users",
    certificates,
    meshPeers: { auth: [TENANT_PATHS.create] },
    services: [
      apiService(TenantServiceDefinition, {
        createTenant: async (request, context) => {
          const call: DownstreamCall = { tenant: context.caller.tenantId, startedAt: Date.now(), deadlineAt: receivedDeadline(context.metadata) };
          downstreamCalls.push(call);
          if (!downstreamWaits) return CreateTenantResponse.fromPartial({ tenant: request.tenant });
          await new Promise<void>((resolve) => {
            const giveUp = setTimeout(resolve, DOWNSTREAM_GIVES_UP_MS);
            context.signal.addEventListener("abort", () => {
              call.cancelledAt = Date.now();
              clearTimeout(giveUp);
              resolve();
            });
          });
          return CreateTenantResponse.fromPartial({ tenant: request.tenant });
        },
        getTenant: async () => {
          throw new Error("not part of this test");
        },
        updateTenant: async () => {
          throw new Error("not part of this test");
        },
      }),
    ],
  });
  upstream = await startMeshTestService({
    name: "auth",
    certificates,
    meshPeers: { operator: [LIST_AUDIT_ENTRIES] },
    services: [
      apiService(AuditServiceDefinition, {
        listAuditEntries: async (_request, context) => {
          if (!downstreamClient) throw new Error("downstream client not ready");
          const tenant = context.caller.tenantId;
          const startedAt = Date.now();
          const options = callOptionsFrom(context, { tenant, ...forward });
          if (withoutSignal) delete options.signal;
          upstreamCalls.push({ tenant, startedAt, deadlineAt: receivedDeadline(context.metadata), downstreamDeadlineAt: (options.deadline as Date).getTime() });
          await downstreamClient.client.createTenant({ tenant: { id: tenant, displayName: "Slow" } }, options);
          return ListAuditEntriesResponse.fromPartial({});
        },
        getAuditEntry: async () => {
          throw new Error("not part of this test");
        },
      }),
    ],
  });
  downstreamClient = createServiceClient(TenantServiceDefinition, downstream.address, { transport: upstream.transport, peer: "users" });
  operator = new GrpcClient(upstream.address, handmadeTlsCredentials(certificates.caPem(), certificates.keyPair("operator")));
  // Both hops connected before anything is timed (2 cores, tests in parallel: a first TLS handshake can take a while).
  await new Promise<void>((resolve, reject) => operator.waitForReady(Date.now() + 5000, (error) => (error ? reject(error) : resolve())));
  const warmUp = await callUpstream(2000);
  if (warmUp.outcome.code !== Status.DEADLINE_EXCEEDED) throw new Error(`warm-up call: ${JSON.stringify(warmUp.outcome)}`);
});

afterAll(async () => {
  operator?.close();
  downstreamClient?.close();
  await upstream?.stop();
  await downstream?.stop();
  certificates?.remove();
});

/**
 * Calls the upstream as an operator's tool for a fresh tenant's admin, with
 * a real gRPC deadline (grpc-timeout) when `deadlineMs` is given; resolves
 * with the outcome and how long it took.
 */
async function callUpstream(deadlineMs: number | undefined, metadata: Record<string, string> = {}) {
  const tenant = uniqueTenant("deadline");
  const token = mintToken({ tenant, sub: `admin-of-${tenant}`, roles: ["admin"] });
  const startedAt = Date.now();
  const outcome = await rawUnary(operator, LIST_AUDIT_ENTRIES, ListAuditEntriesRequest.encode(ListAuditEntriesRequest.fromPartial({})).finish(), {
    metadata: { authorization: `Bearer ${token}`, ...metadata },
    deadlineMs,
  });
  return { tenant, startedAt, outcome, tookMs: Date.now() - startedAt };
}

/** The one downstream call for `tenant` of a call that has already answered (the downstream did not wait). */
function answeredDownstreamCallOf(tenant: string): DownstreamCall {
  const calls = downstreamCalls.filter((call) => call.tenant === tenant);
  expect(calls).toHaveLength(1);
  return calls[0];
}

function upstreamCallOf(tenant: string): UpstreamCall {
  const calls = upstreamCalls.filter((call) => call.tenant === tenant);
  expect(calls).toHaveLength(1);
  return calls[0];
}

/**
 * grpc-timeout is relative: a deadline handed on arrives later by the time
 * the call took to get there (and a millisecond of rounding). Generous for a
 * busy machine, and still far below the 5 s default it must not fall back to.
 */
const TRANSIT_SLACK_MS = 750;

/** The deadline the downstream received is the one the upstream set, give or take the transit. */
function expectDeadlineHandedOn(downstream: DownstreamCall, upstream: UpstreamCall): void {
  expect(downstream.deadlineAt).toBeDefined();
  expect(downstream.deadlineAt!).toBeGreaterThanOrEqual(upstream.downstreamDeadlineAt - 5);
  expect(downstream.deadlineAt!).toBeLessThanOrEqual(upstream.downstreamDeadlineAt + TRANSIT_SLACK_MS);
}

async function downstreamCallOf(tenant: string, withinMs: number): Promise<DownstreamCall> {
  const until = Date.now() + withinMs;
  for (;;) {
    const calls = downstreamCalls.filter((call) => call.tenant === tenant);
    if (calls.some((call) => call.cancelledAt !== undefined) || Date.now() > until) {
      expect(calls).toHaveLength(1);
      return calls[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The upstream caller's deadline: well under the downstream's 5 s default, and
 * long enough that the upstream reaches its downstream call even when the
 * machine is busy with the rest of the suite (a shorter one can expire first).
 */
const UPSTREAM_DEADLINE_MS = 1000;
/** "Promptly": the deadline plus scheduling slack, far below the 5 s default. */
const PROMPTLY_MS = UPSTREAM_DEADLINE_MS + 1500;

beforeEach(() => {
  forward = {};
  withoutSignal = false;
  downstreamWaits = true;
  downstreamCalls.length = 0;
  upstreamCalls.length = 0;
});

test("the upstream caller's 1 s deadline cancels the slow downstream call; the upstream answers DEADLINE_EXCEEDED promptly", async () => {
  const { tenant, startedAt, outcome, tookMs } = await callUpstream(UPSTREAM_DEADLINE_MS);
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(tookMs).toBeLessThan(PROMPTLY_MS);

  const call = await downstreamCallOf(tenant, 2000);
  expect(call.cancelledAt).toBeDefined();
  // The upstream's deadline (the caller's 1 s, give or take the transit) is the one it handed on, not its own 5 s default.
  const upstream = upstreamCallOf(tenant);
  expect(upstream.deadlineAt).toBeDefined();
  expect(upstream.deadlineAt!).toBeGreaterThanOrEqual(startedAt + UPSTREAM_DEADLINE_MS - 5);
  expect(upstream.deadlineAt!).toBeLessThanOrEqual(startedAt + UPSTREAM_DEADLINE_MS + TRANSIT_SLACK_MS);
  expect(upstream.downstreamDeadlineAt).toBe(upstream.deadlineAt);
  expectDeadlineHandedOn(call, upstream);
});

test("the propagated deadline alone bounds the downstream call (the upstream's cancellation signal not passed on)", async () => {
  withoutSignal = true;
  const { tenant, outcome, tookMs } = await callUpstream(UPSTREAM_DEADLINE_MS);
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(tookMs).toBeLessThan(PROMPTLY_MS);
  const call = await downstreamCallOf(tenant, 2000);
  expect(call.cancelledAt).toBeDefined();
  const upstream = upstreamCallOf(tenant);
  expect(upstream.downstreamDeadlineAt).toBe(upstream.deadlineAt);
  expectDeadlineHandedOn(call, upstream);
  // Ended by that deadline (not by the downstream's give-up timer).
  expect(call.cancelledAt!).toBeLessThan(call.deadlineAt! + TRANSIT_SLACK_MS);
});

test("without an upstream deadline the downstream call gets the default deadline", async () => {
  const { tenant, outcome } = await callUpstream(undefined);
  const call = await downstreamCallOf(tenant, DEFAULT_DEADLINE_MS + 3000);
  const upstream = upstreamCallOf(tenant);
  expect(upstream.deadlineAt).toBeUndefined();
  expect(upstream.downstreamDeadlineAt - upstream.startedAt).toBeGreaterThanOrEqual(DEFAULT_DEADLINE_MS);
  expect(upstream.downstreamDeadlineAt - upstream.startedAt).toBeLessThanOrEqual(DEFAULT_DEADLINE_MS + 50);
  expectDeadlineHandedOn(call, upstream);
  // And it ends there: not before the default deadline.
  expect(call.cancelledAt).toBeDefined();
  expect(call.cancelledAt!).toBeGreaterThanOrEqual(upstream.downstreamDeadlineAt - 50);
  // The upstream passes the downstream's DEADLINE_EXCEEDED on, instead of a defect code.
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
});

describe("a client cannot set the deadline with a leadmesh-deadline header of its own", () => {
  test.each([
    { name: "shorter than the default", forgedInMs: 300 },
    { name: "longer than the default", forgedInMs: 60_000 },
  ])("$name, without grpc-timeout: the downstream call gets the default deadline", async ({ forgedInMs }) => {
    downstreamWaits = false;
    const { tenant, outcome } = await callUpstream(undefined, { [DEADLINE_HEADER]: String(Date.now() + forgedInMs) });
    expect(outcome.code).toBe(Status.OK);
    const upstream = upstreamCallOf(tenant);
    expect(upstream.deadlineAt).toBeUndefined();
    expect(upstream.downstreamDeadlineAt - upstream.startedAt).toBeGreaterThanOrEqual(DEFAULT_DEADLINE_MS);
    expect(upstream.downstreamDeadlineAt - upstream.startedAt).toBeLessThanOrEqual(DEFAULT_DEADLINE_MS + 50);
    expectDeadlineHandedOn(answeredDownstreamCallOf(tenant), upstream);
  });

  test("with a real 1 s grpc-timeout, a forged later leadmesh-deadline does not extend it", async () => {
    downstreamWaits = false;
    const { tenant, startedAt, outcome } = await callUpstream(UPSTREAM_DEADLINE_MS, { [DEADLINE_HEADER]: String(Date.now() + 60_000) });
    expect(outcome.code).toBe(Status.OK);
    const upstream = upstreamCallOf(tenant);
    expect(upstream.deadlineAt!).toBeLessThanOrEqual(startedAt + UPSTREAM_DEADLINE_MS + TRANSIT_SLACK_MS);
    expect(upstream.downstreamDeadlineAt).toBe(upstream.deadlineAt);
    expectDeadlineHandedOn(answeredDownstreamCallOf(tenant), upstream);
  });
});

test("the earlier of the upstream deadline and the handler's own bound wins", async () => {
  // Upstream allows 5 s, the handler bounds its downstream call at 400 ms.
  forward = { deadlineMs: 400 };
  const { tenant, outcome, tookMs } = await callUpstream(5000);
  const call = await downstreamCallOf(tenant, 2000);
  const upstream = upstreamCallOf(tenant);
  expect(upstream.downstreamDeadlineAt - upstream.startedAt).toBeGreaterThanOrEqual(400);
  expect(upstream.downstreamDeadlineAt - upstream.startedAt).toBeLessThanOrEqual(450);
  expect(upstream.downstreamDeadlineAt).toBeLessThan(upstream.deadlineAt!);
  expectDeadlineHandedOn(call, upstream);
  expect(call.cancelledAt).toBeDefined();
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  // Well before the upstream caller's 5 s.
  expect(tookMs).toBeLessThan(3000);
});
