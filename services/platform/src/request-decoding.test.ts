import { CreateLeadRequest, GetLeadRequest, LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { createServer, type Server, Status } from "nice-grpc";
import { pino } from "pino";
import { RawGrpcClient } from "../../../test/harness/raw-grpc";
import { errorStatusMiddleware } from "./error-middleware";
import { rejectUndecodableRequests, withLenientRequestDecoding } from "./request-decoding";

let server: Server;
let client: RawGrpcClient;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer().use(errorStatusMiddleware(pino({ level: "silent" })));
  const getLead = async (request: GetLeadRequest) => {
    seen.push(request.id);
    return { lead: { id: request.id } };
  };
  const implementation = Object.fromEntries(Object.keys(LeadServiceDefinition.methods).map((name) => [name, getLead]));
  server.with(rejectUndecodableRequests).add(withLenientRequestDecoding(LeadServiceDefinition), implementation as never);
  // A bare server of its own: plaintext, no mesh identity involved.
  client = new RawGrpcClient(`127.0.0.1:${await server.listen("127.0.0.1:0")}`, { plaintext: true });
});

afterAll(async () => {
  client.close();
  await server.shutdown();
});

it.each([
  ["a field cut short", Uint8Array.from([0x0a, 0x05, 0x61])],
  ["a wire type that does not exist", Uint8Array.from([0x0e, 0x01])],
  ["a varint that never ends", Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
])("answers %s with INVALID_ARGUMENT, without reaching the handler", async (_case, bytes) => {
  const outcome = await client.call("/leads.v1.LeadService/GetLead", bytes, undefined);
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
  const outcome = await client.call("/leads.v1.LeadService/CreateLead", bytes, undefined);
  expect(outcome.code).toBe(Status.INVALID_ARGUMENT);
  expect(outcome.details).toMatch(/lead\.delete_time is not a valid google\.protobuf\.Timestamp/);
  expect(seen).toEqual([]);
});

it("passes valid requests on, unknown fields included", async () => {
  const valid = GetLeadRequest.encode({ id: "L1" }).finish();
  const withUnknownField = Uint8Array.from([...valid, 0xf8, 0x01, 0x01]);
  expect(await client.call("/leads.v1.LeadService/GetLead", withUnknownField, undefined)).toMatchObject({ code: Status.OK });
  expect(seen).toEqual(["L1"]);
});
