/**
 * The error status middleware over a real grpc-js channel, composed as the
 * server composes it (outermost guard, another middleware, inner mapping,
 * handler): whichever layer throws whatever, the client gets a status with
 * well-formed, bounded text, and the process survives grpc-js writing it.
 */

import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { type Channel, createChannel, createClientFactory, createServer, type Server, ServerError, Status } from "nice-grpc";
import { ClientError, type ServerMiddleware } from "nice-grpc-common";
import { type BadRequest, ErrorInfo, errorDetailsClientMiddleware, RichClientError, RichServerError } from "nice-grpc-error-details";
import { pino } from "pino";
import { errorStatusMiddleware } from "./error-middleware";
import { InvalidArgumentError, NotFoundError } from "./errors";
import { DETAIL_TEXT_MAX_BYTES, STATUS_MESSAGE_MAX_BYTES } from "./status-text";

const silent = pino({ level: "silent" });
const LONE = "\uD83D";
const HUGE_ID = "\u{1F600}".repeat(300_000);
const isWellFormed = (text: string) => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** What the handler (or the middleware between the two error layers) throws, by request id. */
const failures: Record<string, () => unknown> = {
  "handler-server-error": () => new ServerError(Status.INVALID_ARGUMENT, `bad value "${LONE}"`),
  "handler-rich": () =>
    new RichServerError(Status.FAILED_PRECONDITION, `${LONE}x`.repeat(100_000), [
      ErrorInfo.fromPartial({ reason: "FAILED_PRECONDITION", domain: "leadmesh.io", metadata: { value: HUGE_ID + LONE } }),
    ]),
  "handler-domain-huge": () => new NotFoundError("lead", HUGE_ID),
  "handler-violations": () =>
    new InvalidArgumentError(Array.from({ length: 5000 }, (_, i) => ({ field: `attributes.k${i}${LONE}`, description: `key "${LONE}" is invalid` }))),
  "handler-plain": () => new Error(`driver said ${LONE}`),
  "middleware-server-error": () => new ServerError(Status.PERMISSION_DENIED, `no ${LONE}`),
  "middleware-domain": () => new InvalidArgumentError([{ field: "id", description: `has ${LONE}` }]),
  "middleware-plain": () => new TypeError(`cannot read ${LONE}`),
  // A downstream call of the handler that failed (nice-grpc's client error).
  "downstream-deadline": () => new ClientError("/users.v1.UserService/GetUser", Status.DEADLINE_EXCEEDED, "Deadline exceeded"),
  "downstream-unavailable": () => new ClientError("/users.v1.UserService/GetUser", Status.UNAVAILABLE, "No connection established"),
  "downstream-refused": () => new ClientError("/users.v1.UserService/GetUser", Status.PERMISSION_DENIED, "may not call"),
};

/** Stands for any middleware between the outermost guard and the inner mapping (tracing, metrics, fail-fast…). */
const throwingMiddleware: ServerMiddleware = async function* between(call, context) {
  const id = (call.request as { id?: string }).id ?? "";
  if (id.startsWith("middleware-")) throw failures[id]();
  return yield* call.next(call.request, context);
};

let server: Server;
let channel: Channel;
let client: ReturnType<typeof createClient>;

function createClient(clientChannel: Channel) {
  return createClientFactory().use(errorDetailsClientMiddleware).create(LeadServiceDefinition, clientChannel);
}

beforeAll(async () => {
  server = createServer().use(errorStatusMiddleware(silent)).use(throwingMiddleware).use(errorStatusMiddleware(silent));
  // Every method fails as its request id says; only GetLead is called.
  const failAsAsked = async (request: { id?: string }) => {
    throw failures[request.id ?? ""]();
  };
  server.add(LeadServiceDefinition, Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, failAsAsked])) as never);
  const port = await server.listen("127.0.0.1:0");
  channel = createChannel(`127.0.0.1:${port}`);
  client = createClient(channel);
});

afterAll(async () => {
  channel.close();
  await server.shutdown();
});

async function failureOf(id: string): Promise<RichClientError | { code: Status; details: string; extra: unknown[] }> {
  try {
    await client.getLead({ id });
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
  ["middleware-server-error", Status.PERMISSION_DENIED],
  ["middleware-domain", Status.INVALID_ARGUMENT],
  ["middleware-plain", Status.INTERNAL],
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

it("keeps the details of a domain error, whichever layer raised it", async () => {
  for (const id of ["handler-violations", "middleware-domain"]) {
    const failure = (await failureOf(id)) as RichClientError;
    expect(failure).toBeInstanceOf(RichClientError);
    const reasons = failure.extra.map((detail) => (detail as ErrorInfo).reason).filter(Boolean);
    expect(reasons).toEqual(["INVALID_FIELDS"]);
    const badRequest = failure.extra.find((detail): detail is BadRequest => detail.$type === "google.rpc.BadRequest")!;
    expect(badRequest.fieldViolations.length).toBeGreaterThan(0);
    expect(badRequest.fieldViolations[0].description).toContain("\uFFFD");
  }
});

it("tells the caller how many violations there were even when the details list only some", async () => {
  const failure = await failureOf("handler-violations");
  expect(failure.details).toContain("(and 4997 more)");
});

it("hides what an unexpected error said", async () => {
  for (const id of ["handler-plain", "middleware-plain"]) {
    expect((await failureOf(id)).details).toMatch(/^internal error \(trace ([0-9a-f]{32}|none)\)$/);
  }
});

it("names the downstream RPC when a downstream call ran out of time or could not be made", async () => {
  expect((await failureOf("downstream-deadline")).details).toBe("the deadline ran out while calling /users.v1.UserService/GetUser");
  expect((await failureOf("downstream-unavailable")).details).toBe("/users.v1.UserService/GetUser is unavailable; retry later");
});

it("still answers after all of the above", async () => {
  expect((await failureOf("handler-domain-huge")).code).toBe(Status.NOT_FOUND);
});
