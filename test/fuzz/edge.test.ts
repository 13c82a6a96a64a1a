/**
 * Regressions at the edge, found by the REST fuzzer:
 * - Envoy passed a client's grpc-timeout header through to the service, and
 *   grpc-js answers one it cannot parse with INTERNAL, which the edge turned
 *   into a 500. The edge now enforces a well-formed client deadline itself
 *   and drops the header.
 * - An error whose google.rpc.ErrorInfo carried an empty metadata value
 *   (an empty id echoed back) crashed Envoy 1.40 with a segmentation fault
 *   while it converted the details to JSON. The kernel leaves such entries out.
 */
import { Status } from "nice-grpc";
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";

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

it("survives an error that echoes an empty id, and answers it as JSON", async () => {
  // The empty query parameter overrides the path's id: RevokeSession gets id "" and answers NOT_FOUND.
  const response = await rest("DELETE", "/api/v1/auth/sessions/x?id=", { token: admin.accessToken });
  expect(response.status).toBe(404);
  expect(response.json).toMatchObject({ code: Status.NOT_FOUND, message: 'session "" not found' });
  expect((await fetch(`${meshInfo().adminUrl}/ready`)).status).toBe(200);
});
