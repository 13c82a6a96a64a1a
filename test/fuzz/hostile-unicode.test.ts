/**
 * Regression: an error message that echoes user input used to carry a lone
 * UTF-16 surrogate (the filter tokenizer reported one code unit of an emoji),
 * and grpc-js's encodeURI(status.details) threw URIError outside any handler,
 * killing the process. Through the real edge, every service must answer 400
 * and stay the same SERVING process.
 */
import { type RegisteredTenant, registerTenant, rest } from "../harness/identity";
import { livenessProblem, type ProcessIdentity, processIdentity } from "../harness/liveness";

let admin: RegisteredTenant;
let before: ProcessIdentity[];

beforeAll(async () => {
  admin = await registerTenant("unicode");
  before = await Promise.all(["auth", "users", "leads", "buyers"].map(processIdentity));
});

afterEach(async () => {
  expect(await livenessProblem(before)).toBeUndefined();
});

it.each([
  ["leads", "/api/v1/leads"],
  ["users", "/api/v1/users"],
  ["buyers", "/api/v1/buyers"],
  ["buyers", "/api/v1/buyers/-/sales"],
])("%s answers a filter with an astral character with 400 JSON", async (_service, path) => {
  const response = await rest("GET", `${path}?filter=${encodeURIComponent("\u{1F600}")}`, { token: admin.accessToken });
  expect(response.status).toBe(400);
  expect(response.json).toMatchObject({ code: 3, message: expect.stringContaining("unexpected character") });
  // The half of the emoji the tokenizer saw is replaced, never sent as a lone surrogate.
  expect(response.json.message).toContain("\uFFFD");
});
