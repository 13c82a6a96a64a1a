/**
 * Regressions at the edge, found by the REST fuzzer:
 * - Envoy passed a client's grpc-timeout header through to the service, and
 *   grpc-js answers one it cannot parse with INTERNAL, which the edge turned
 *   into a 500. The edge now enforces a well-formed client deadline itself
 *   and drops the header.
 * - An error whose google.rpc.ErrorInfo carried an empty metadata value
 *   (an empty id echoed back) crashed Envoy 1.40 with a segmentation fault
 *   while it converted the details to JSON. The kernel leaves such entries out
 *   (and now refuses the query parameter that overrode the path's id).
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

it("survives the request that made an error echo an empty id, and answers it as JSON", async () => {
  // The empty query parameter overrode the path's id, so RevokeSession answered NOT_FOUND for id "". The
  // path now names the resource (services/platform/src/path-identity.ts): the override itself is refused,
  // and no REST request reaches a handler with an empty path-bound id. Empty ErrorInfo entries stay left
  // out by the kernel (status-text.ts) for any other way in.
  const response = await rest("DELETE", "/api/v1/auth/sessions/x?id=", { token: admin.accessToken });
  expect(response.status).toBe(400);
  expect(response.json).toMatchObject({
    code: Status.INVALID_ARGUMENT,
    details: expect.arrayContaining([expect.objectContaining({ fieldViolations: [expect.objectContaining({ field: "id" })] })]),
  });
  expect((await fetch(`${meshInfo().adminUrl}/ready`)).status).toBe(200);
});
