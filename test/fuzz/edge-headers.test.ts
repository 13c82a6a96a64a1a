/**
 * Regression: Envoy passed a client's grpc-timeout header through to the
 * service, and grpc-js answers one it cannot parse with INTERNAL, which the
 * edge turned into a 500 for a REST request (found by the REST fuzzer). The
 * edge now enforces a well-formed client deadline itself and drops the header.
 */
import { Status } from "nice-grpc";
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";

let admin: RegisteredTenant;

beforeAll(async () => {
  admin = await registerTenant("edge-headers");
});

it.each(["", "soon", "-1m", "99999999999999999999S", "1.2.3.4"])("a REST request with grpc-timeout %j is answered normally", async (value) => {
  const response = await rest("GET", "/api/v1/leads?pageSize=1", { token: admin.accessToken, headers: { "grpc-timeout": value } });
  expect(response.status).toBe(200);
});

it("still enforces a well-formed client deadline at the edge", async () => {
  expect((await rest("GET", "/api/v1/leads?pageSize=1", { token: admin.accessToken, headers: { "grpc-timeout": "10S" } })).status).toBe(200);
  // 1 ns cannot be met: the edge gives up on the call as the client asked.
  const expired = await rest("GET", "/api/v1/leads?pageSize=1", { token: admin.accessToken, headers: { "grpc-timeout": "1n" } });
  expect(expired.status).toBe(504);
  expect(expired.json).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
});
