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
 */

import { Client as GrpcClient } from "@grpc/grpc-js";
import { AuditServiceDefinition, ListAuditEntriesRequest, ListAuditEntriesResponse } from "@leadmesh/contracts/audit/v1/audit";
import { CreateTenantResponse, TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { apiService, callOptionsFrom, createServiceClient, DEFAULT_DEADLINE_MS, type ForwardOptions } from "@leadmesh/platform";
import { Status } from "nice-grpc";
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
  /** When its AbortSignal fired; undefined while it runs (or if it gave up). */
  cancelledAt?: number;
}

let certificates: TestCertificates;
let upstream: MeshTestService;
let downstream: MeshTestService;
/** The operator's tool's connection to the upstream (grpc-js: its deadlines reach the server as grpc-timeout). */
let operator: GrpcClient;
let downstreamClient: ReturnType<typeof createServiceClient<typeof TenantServiceDefinition>> | undefined;
const downstreamCalls: DownstreamCall[] = [];
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
          const call: DownstreamCall = { tenant: context.caller.tenantId, startedAt: Date.now() };
          downstreamCalls.push(call);
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
          const options = callOptionsFrom(context, { tenant, ...forward });
          if (withoutSignal) delete options.signal;
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
async function callUpstream(deadlineMs: number | undefined) {
  const tenant = uniqueTenant("deadline");
  const token = mintToken({ tenant, sub: `admin-of-${tenant}`, roles: ["admin"] });
  const startedAt = Date.now();
  const outcome = await rawUnary(operator, LIST_AUDIT_ENTRIES, ListAuditEntriesRequest.encode(ListAuditEntriesRequest.fromPartial({})).finish(), {
    metadata: { authorization: `Bearer ${token}` },
    deadlineMs,
  });
  return { tenant, startedAt, outcome, tookMs: Date.now() - startedAt };
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

test("the upstream caller's 1 s deadline cancels the slow downstream call; the upstream answers DEADLINE_EXCEEDED promptly", async () => {
  forward = {};
  withoutSignal = false;
  downstreamCalls.length = 0;
  const { tenant, startedAt, outcome, tookMs } = await callUpstream(UPSTREAM_DEADLINE_MS);
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(tookMs).toBeLessThan(PROMPTLY_MS);

  const call = await downstreamCallOf(tenant, 2000);
  expect(call.cancelledAt).toBeDefined();
  // Cancelled around the upstream deadline, not at the downstream's own 5 s default.
  expect(call.cancelledAt! - startedAt).toBeLessThan(PROMPTLY_MS);
});

test("the propagated deadline alone bounds the downstream call (the upstream's cancellation signal not passed on)", async () => {
  forward = {};
  withoutSignal = true;
  downstreamCalls.length = 0;
  const { tenant, startedAt, outcome, tookMs } = await callUpstream(UPSTREAM_DEADLINE_MS);
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(tookMs).toBeLessThan(PROMPTLY_MS);
  const call = await downstreamCallOf(tenant, 2000);
  expect(call.cancelledAt).toBeDefined();
  expect(call.cancelledAt! - startedAt).toBeLessThan(PROMPTLY_MS);
});

test("without an upstream deadline the downstream call gets the default deadline", async () => {
  forward = {};
  withoutSignal = false;
  downstreamCalls.length = 0;
  const { tenant, outcome, tookMs } = await callUpstream(undefined);
  const call = await downstreamCallOf(tenant, 2000);
  expect(call.cancelledAt).toBeDefined();
  const ranMs = call.cancelledAt! - call.startedAt;
  expect(ranMs).toBeGreaterThanOrEqual(DEFAULT_DEADLINE_MS - 300);
  expect(ranMs).toBeLessThan(DEFAULT_DEADLINE_MS + 1500);
  // The upstream passes the downstream's DEADLINE_EXCEEDED on, instead of a defect code.
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(tookMs).toBeLessThan(DEFAULT_DEADLINE_MS + 1500);
});

test("the earlier of the upstream deadline and the handler's own bound wins", async () => {
  // Upstream allows 5 s, the handler bounds its downstream call at 400 ms.
  forward = { deadlineMs: 400 };
  withoutSignal = false;
  downstreamCalls.length = 0;
  const { tenant, outcome, tookMs } = await callUpstream(5000);
  const call = await downstreamCallOf(tenant, 2000);
  expect(call.cancelledAt).toBeDefined();
  const ranMs = call.cancelledAt! - call.startedAt;
  expect(ranMs).toBeGreaterThanOrEqual(300);
  expect(ranMs).toBeLessThan(1400);
  expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(tookMs).toBeLessThan(2000);
});
