/**
 * Requests that do not decode, through the kernel middleware as startService
 * runs it (test/harness/kernel-server.ts): INVALID_ARGUMENT, and the handler
 * never sees them.
 */

import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { CreateLeadRequest, GetLeadRequest, LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { Status } from "nice-grpc";
import { callerHeaders, type KernelServer, startKernelServer } from "../../../test/harness/kernel-server";

let server: KernelServer;
let client: Client;
const seen: string[] = [];

beforeAll(async () => {
  const getLead = async (request: GetLeadRequest) => {
    seen.push(request.id);
    return { lead: { id: request.id } };
  };
  server = await startKernelServer({
    definition: LeadServiceDefinition,
    implementation: Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, getLead])),
  });
  // Plaintext from loopback, the kernel's trusted sidecar address, naming the caller in x-forwarded-client-cert.
  client = new Client(server.address, credentials.createInsecure());
});

afterAll(async () => {
  client.close();
  await server.shutdown();
});

const identity = (bytes: Buffer) => bytes;

/** Calls `path` with `request` as raw bytes; resolves with the status, never rejects. */
function rawCall(path: string, request: Uint8Array): Promise<{ code: Status; details: string }> {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(callerHeaders())) metadata.set(key, value);
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, Buffer.from(request), metadata, { deadline: Date.now() + 10_000 }, (error: ServiceError | null) =>
      resolve(error ? { code: error.code as number as Status, details: error.details } : { code: Status.OK, details: "" }),
    );
  });
}

it.each([
  ["a field cut short", Uint8Array.from([0x0a, 0x05, 0x61])],
  ["a wire type that does not exist", Uint8Array.from([0x0e, 0x01])],
  ["a varint that never ends", Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
])("answers %s with INVALID_ARGUMENT, without reaching the handler", async (_case, bytes) => {
  const outcome = await rawCall("/leads.v1.LeadService/GetLead", bytes);
  expect(outcome.code).toBe(Status.INVALID_ARGUMENT);
  expect(outcome.details).toMatch(/^the request is not a valid \/leads.v1.LeadService\/GetLead request message: /);
  expect(seen).toEqual([]);
});

it("answers a Timestamp outside years 0001 to 9999 with INVALID_ARGUMENT naming the field", async () => {
  const valid = CreateLeadRequest.encode(CreateLeadRequest.fromPartial({ lead: { firstName: "A" } })).finish();
  // lead (1) { delete_time (22) { seconds (1): 2^60 } }: decodes to an Invalid Date.
  const timestamp = [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
  const lead = [0xb2, 0x01, timestamp.length, ...timestamp];
  const bytes = Uint8Array.from([...valid, 0x0a, lead.length, ...lead]);
  const outcome = await rawCall("/leads.v1.LeadService/CreateLead", bytes);
  expect(outcome.code).toBe(Status.INVALID_ARGUMENT);
  expect(outcome.details).toMatch(/lead\.delete_time is not a valid google\.protobuf\.Timestamp/);
  expect(seen).toEqual([]);
});

it("passes valid requests on, unknown fields included", async () => {
  const valid = GetLeadRequest.encode({ id: "L1" }).finish();
  const withUnknownField = Uint8Array.from([...valid, 0xf8, 0x01, 0x01]);
  expect(await rawCall("/leads.v1.LeadService/GetLead", withUnknownField)).toMatchObject({ code: Status.OK });
  expect(seen).toEqual(["L1"]);
});
