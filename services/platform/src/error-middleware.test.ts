/**
 * Error statuses over a real grpc-js channel, through the kernel middleware
 * as startService runs it (test/harness/kernel-server.ts): whichever step of
 * the kernel or the handler throws whatever, the client gets a status with
 * well-formed, bounded text, and the process survives grpc-js writing it.
 */

import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { type Channel, createChannel, createClientFactory, Metadata, ServerError, Status } from "nice-grpc";
import { ClientError } from "nice-grpc-common";
import { type BadRequest, ErrorInfo, errorDetailsClientMiddleware, RichClientError, RichServerError } from "nice-grpc-error-details";
import { callerHeaders, KERNEL_TEST_STRANGER, type KernelServer, startKernelServer } from "../../../test/harness/kernel-server";
import { mintToken } from "../../../test/harness/tokens";
import { InvalidArgumentError, NotFoundError } from "./errors";
import { DETAIL_TEXT_MAX_BYTES, STATUS_MESSAGE_MAX_BYTES } from "./status-text";

const LONE = "\uD83D";
const HUGE_ID = "\u{1F600}".repeat(300_000);
const isWellFormed = (text: string) => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** What the handler throws, by request id. */
const handlerFailures: Record<string, () => unknown> = {
  "handler-server-error": () => new ServerError(Status.INVALID_ARGUMENT, `bad value "${LONE}"`),
  "handler-rich": () =>
    new RichServerError(Status.FAILED_PRECONDITION, `${LONE}x`.repeat(100_000), [
      ErrorInfo.fromPartial({ reason: "FAILED_PRECONDITION", domain: "leadmesh.io", metadata: { value: HUGE_ID + LONE } }),
    ]),
  "handler-domain-huge": () => new NotFoundError("lead", HUGE_ID),
  "handler-violations": () =>
    new InvalidArgumentError(Array.from({ length: 5000 }, (_, i) => ({ field: `attributes.k${i}${LONE}`, description: `key "${LONE}" is invalid` }))),
  "handler-plain": () => new Error(`driver said ${LONE}`),
  // A downstream call of the handler that failed (nice-grpc's client error).
  "downstream-deadline": () => new ClientError("/users.v1.UserService/GetUser", Status.DEADLINE_EXCEEDED, "Deadline exceeded"),
  "downstream-unavailable": () => new ClientError("/users.v1.UserService/GetUser", Status.UNAVAILABLE, "No connection established"),
  "downstream-refused": () => new ClientError("/users.v1.UserService/GetUser", Status.PERMISSION_DENIED, "may not call"),
};

/** Calls refused by a step of the kernel before the handler, by the metadata they are sent with. */
const stepFailures: Record<string, () => Record<string, string>> = {
  // The mesh allow-list: a service that may not call GetLead.
  "step-peer-refused": () => callerHeaders(KERNEL_TEST_STRANGER),
  // Authentication: a service naming a malformed tenant (a domain error with field violations).
  "step-malformed-tenant": () => ({ ...callerHeaders(), "leadmesh-tenant": "not a tenant id!" }),
  // Authentication: a user's token, whose revocation check cannot reach Redis (a driver error).
  "step-revocations-unreachable": () => ({ ...callerHeaders(), authorization: `Bearer ${mintToken({ tenant: "acme", sub: "u1", roles: ["manager"] })}` }),
};

let server: KernelServer;
let channel: Channel;
let client: ReturnType<typeof createClient>;
let handled = 0;

function createClient(clientChannel: Channel) {
  return createClientFactory().use(errorDetailsClientMiddleware).create(LeadServiceDefinition, clientChannel);
}

beforeAll(async () => {
  // Every method fails as its request id says; only GetLead is called.
  const failAsAsked = async (request: { id?: string }) => {
    handled++;
    throw handlerFailures[request.id ?? ""]();
  };
  server = await startKernelServer({
    definition: LeadServiceDefinition,
    implementation: Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, failAsAsked])),
  });
  channel = createChannel(server.address);
  client = createClient(channel);
});

afterAll(async () => {
  channel.close();
  await server.shutdown();
});

async function failureOf(id: string): Promise<RichClientError | { code: Status; details: string; extra: unknown[] }> {
  const headers = stepFailures[id]?.() ?? callerHeaders();
  try {
    await client.getLead({ id }, { metadata: Metadata(headers) });
  } catch (error) {
    return error as RichClientError;
  }
  throw new Error(`${id} did not fail`);
}

function expectSafeText(text: string, maxBytes: number) {
  expect(isWellFormed(text)).toBe(true);
  expect(Buffer.byteLength(text)).toBeLessThanOrEqual(maxBytes);
}

it.each([
  ["handler-server-error", Status.INVALID_ARGUMENT],
  ["handler-rich", Status.FAILED_PRECONDITION],
  ["handler-domain-huge", Status.NOT_FOUND],
  ["handler-violations", Status.INVALID_ARGUMENT],
  ["handler-plain", Status.INTERNAL],
  ["step-peer-refused", Status.PERMISSION_DENIED],
  ["step-malformed-tenant", Status.INVALID_ARGUMENT],
  ["step-revocations-unreachable", Status.UNAVAILABLE],
  ["downstream-deadline", Status.DEADLINE_EXCEEDED],
  ["downstream-unavailable", Status.UNAVAILABLE],
  ["downstream-refused", Status.INTERNAL],
])("%s → %s with well-formed, bounded text", async (id, code) => {
  const failure = await failureOf(id);
  expect(failure.code).toBe(code);
  expectSafeText(failure.details, STATUS_MESSAGE_MAX_BYTES);
  for (const detail of (failure.extra ?? []) as (ErrorInfo | BadRequest)[]) {
    const strings =
      detail.$type === "google.rpc.ErrorInfo"
        ? Object.values(detail.metadata)
        : detail.$type === "google.rpc.BadRequest"
          ? detail.fieldViolations.flatMap((v) => [v.field, v.description])
          : [];
    for (const text of strings) expectSafeText(text, DETAIL_TEXT_MAX_BYTES);
  }
});

it("refuses in its steps without running the handler", async () => {
  const before = handled;
  for (const id of Object.keys(stepFailures)) await failureOf(id);
  expect(handled).toBe(before);
});

/** The google.rpc details of a failure: its ErrorInfo reasons and its field violations. */
function detailsOf(failure: RichClientError) {
  expect(failure).toBeInstanceOf(RichClientError);
  const reasons = failure.extra.map((detail) => (detail as ErrorInfo).reason).filter(Boolean);
  const badRequest = failure.extra.find((detail): detail is BadRequest => detail.$type === "google.rpc.BadRequest");
  return { reasons, violations: badRequest?.fieldViolations ?? [] };
}

it("keeps the details of a domain error, whichever raised it", async () => {
  const fromHandler = detailsOf((await failureOf("handler-violations")) as RichClientError);
  expect(fromHandler.reasons).toEqual(["INVALID_FIELDS"]);
  expect(fromHandler.violations.length).toBeGreaterThan(0);
  expect(fromHandler.violations[0].description).toContain("\uFFFD");

  const fromStep = detailsOf((await failureOf("step-malformed-tenant")) as RichClientError);
  expect(fromStep.reasons).toEqual(["INVALID_FIELDS"]);
  expect(fromStep.violations).toEqual([expect.objectContaining({ field: "leadmesh-tenant" })]);

  const fromAllowList = (await failureOf("step-peer-refused")) as RichClientError;
  expect(detailsOf(fromAllowList).reasons).toEqual(["PERMISSION_DENIED"]);
  expect(fromAllowList.extra).toEqual([expect.objectContaining({ metadata: { refused_by: "mesh_allow_list" } })]);
});

it("tells the caller how many violations there were even when the details list only some", async () => {
  const failure = await failureOf("handler-violations");
  expect(failure.details).toContain("(and 4997 more)");
});

it("hides what an unexpected error said, naming only the trace the caller was given", async () => {
  let traceId: string | undefined;
  try {
    await client.getLead({ id: "handler-plain" }, { metadata: Metadata(callerHeaders()), onHeader: (header) => (traceId = header.get("x-trace-id")) });
  } catch (error) {
    expect((error as ClientError).details).toMatch(/^internal error \(trace [0-9a-f]{32}\)$/);
    expect((error as ClientError).details).toBe(`internal error (trace ${traceId})`);
    return;
  }
  throw new Error("handler-plain did not fail");
});

it("names the downstream RPC when a downstream call ran out of time or could not be made", async () => {
  expect((await failureOf("downstream-deadline")).details).toBe("the deadline ran out while calling /users.v1.UserService/GetUser");
  expect((await failureOf("downstream-unavailable")).details).toBe("/users.v1.UserService/GetUser is unavailable; retry later");
});

it("names the unreachable dependency when a step's driver call fails", async () => {
  expect((await failureOf("step-revocations-unreachable")).details).toBe("redis is unavailable; retry later");
});

it("still answers after all of the above", async () => {
  expect((await failureOf("handler-domain-huge")).code).toBe(Status.NOT_FOUND);
});
