/**
 * Forged page tokens for every list RPC (a request with page_token): a page
 * token is a protobuf PageCursor bound to its query by a fingerprint that is
 * a plain hash, so a client can take a real token and change the cursor it
 * carries while keeping the fingerprint. The sort value and last id then
 * reach the store's query: no defect status may follow, and every service
 * must stay the same SERVING process.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { PageCursor } from "@leadmesh/contracts/common/v1/pagination";
import fc from "fast-check";
import { Status } from "nice-grpc";
import { hostileText, idText } from "../harness/hostile-values";
import { livenessProblem, type ProcessIdentity, processIdentity } from "../harness/liveness";
import { plausibleRequest } from "../harness/proto-arbitraries";
import { callerFor, DEFECT_CODES, FUZZ_CASES, FUZZED_SERVICES, type FuzzCase, FuzzClients, type FuzzTenant, fuzzTenant, runs, seedFor } from "./fuzz-setup";

const RUNS_PER_RPC = 30;
const LIST_CASES = FUZZ_CASES.filter((c) => c.contract.input.fields.some((field) => field.name === "page_token"));

let fixtures: FuzzTenant;
let before: ProcessIdentity[];
const clients = new FuzzClients();

beforeAll(async () => {
  fixtures = await fuzzTenant("fuzz-pages");
  before = await Promise.all(FUZZED_SERVICES.map(processIdentity));
});

afterAll(() => {
  clients.close();
});

/** The next_page_token of the first one-item page, as the service issued it. */
async function realPageToken({ service, rpc, contract }: FuzzCase): Promise<string> {
  const outcome = await clients.call(
    service,
    rpc.path,
    plausibleRequest(contract.input, fixtures, { ...fixtures.listOverrides[rpc.path], pageSize: 1 }),
    await callerFor(rpc, fixtures.tenant.tenantId),
  );
  if (outcome.code !== Status.OK || !outcome.response) throw new Error(`${rpc.path} failed: ${Status[outcome.code]} ${outcome.details}`);
  const token = (fromBinary(contract.output, outcome.response) as unknown as { nextPageToken?: string }).nextPageToken;
  if (!token) throw new Error(`${rpc.path} returned no next_page_token for a one-item page: the fixtures need a second item`);
  return token;
}

/** Sort values of every kind the services page by (dates, numbers, strings), at and past their limits. */
const sortValue = fc.oneof(
  fc.constantFrom(
    "",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "9007199254740993",
    "-1",
    "+275760-09-13T00:00:00.000Z",
    "-271821-04-20T00:00:00.000Z",
    "0000-01-01T00:00:00Z",
    "2026-02-30T25:61:00Z",
  ),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  hostileText(),
);

it("covers every list RPC", () => {
  expect(LIST_CASES.map((c) => c.rpc.path)).toEqual(
    expect.arrayContaining([
      "/leads.v1.LeadService/ListLeads",
      "/leads.v1.LeadService/ListLeadActivities",
      "/users.v1.UserService/ListUsers",
      "/buyers.v1.BuyerService/ListBuyers",
      "/buyers.v1.BuyerService/ListBuyerLedgerEntries",
      "/buyers.v1.BuyerService/ListLeadSales",
    ]),
  );
});

describe.each(LIST_CASES.map((c) => [c.rpc.path, c] as const))("%s", (path, listCase) => {
  it("answers a real page token with a forged cursor without a defect status", async () => {
    const cursor = PageCursor.decode(Buffer.from(await realPageToken(listCase), "base64url"));
    const forged = fc
      .record({ lastSortValue: sortValue, lastId: idText(fixtures.knownIds) }, { requiredKeys: [] })
      .map((change) => Buffer.from(PageCursor.encode({ ...cursor, ...change }).finish()).toString("base64url"));
    await fc.assert(
      fc.asyncProperty(forged, async (pageToken) => {
        const request = plausibleRequest(listCase.contract.input, fixtures, { ...fixtures.listOverrides[path], pageSize: 1, pageToken });
        const outcome = await clients.call(listCase.service, path, request, await callerFor(listCase.rpc, fixtures.tenant.tenantId));
        if (DEFECT_CODES.has(outcome.code)) throw new Error(`${path} answered ${Status[outcome.code]}: ${outcome.details}`);
      }),
      { seed: seedFor(`page token ${path}`), numRuns: runs(RUNS_PER_RPC), endOnFailure: true },
    );
    expect(await livenessProblem(before)).toBeUndefined();
  });
});
