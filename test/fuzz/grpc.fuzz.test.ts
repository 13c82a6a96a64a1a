/**
 * Generated input over gRPC, straight to each service's port, for every RPC
 * of every implemented service: requests built from the RPC's request
 * descriptor with hostile values (test/harness/proto-arbitraries.ts), sent by
 * a caller whose token passes the RPC's access rule so that they reach the
 * handler. No call may end in a defect status (DEFECT_CODES), and after each
 * RPC's property every service must still be the same SERVING process.
 * Bytes that are no valid protobuf at all must be refused as INVALID_ARGUMENT
 * (grpc-js alone would blame the server: INTERNAL). Fixed seeds; a failure
 * prints the seed and the request that caused it.
 */

import { contracts } from "@leadmesh/platform";
import fc from "fast-check";
import { Status } from "nice-grpc";
import { implementedServices, loadMeshModel } from "../../scripts/mesh/model";
import { livenessProblem, type ProcessIdentity, processIdentity } from "../harness/liveness";
import { binaryRequest, undecodableRequest } from "../harness/proto-arbitraries";
import { callerFor, DEFECT_CODES, FUZZ_CASES, FUZZED_SERVICES, FuzzClients, type FuzzTenant, fuzzTenant, runs, seedFor, unreachable } from "./fuzz-setup";

const RUNS_PER_RPC = 25;
const UNDECODABLE_RUNS_PER_RPC = 5;
/** Messages of the kernel's access middleware (platform/src/caller.ts), as opposed to a handler's UNAUTHENTICATED. */
const ACCESS_REFUSAL = /access token|Authorization header|may not call|do not allow/;

let fixtures: FuzzTenant;
let before: ProcessIdentity[];
const clients = new FuzzClients();

beforeAll(async () => {
  fixtures = await fuzzTenant("fuzz-grpc");
  before = await Promise.all(FUZZED_SERVICES.map(processIdentity));
});

afterAll(() => {
  clients.close();
});

it("covers every RPC of every implemented service", () => {
  expect(FUZZED_SERVICES).toEqual(expect.arrayContaining(["auth", "users", "leads", "buyers"]));
  // Checked against the descriptor set itself, not the model the cases come from.
  const declared = implementedServices(loadMeshModel()).flatMap((service) =>
    contracts()
      .methodsOfPackage(service.package)
      .map((method) => method.path),
  );
  expect(FUZZ_CASES.map((c) => c.rpc.path).sort()).toEqual(declared.sort());
});

describe.each(FUZZ_CASES.map((c) => [c.rpc.path, c] as const))("%s", (path, { service, rpc, contract }) => {
  it(`${unreachable(rpc) ? "refuses every generated request before its handler (no declared caller)" : "answers generated requests without a defect status"} and stays up`, async () => {
    const seed = seedFor(`grpc ${path}`);
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(binaryRequest(contract.input, fixtures), async (request) => {
        const outcome = await clients.call(service, path, request.bytes, await callerFor(rpc, fixtures.tenant.tenantId));
        const name = ACCESS_REFUSAL.test(outcome.details) ? "refused by the access layer" : Status[outcome.code];
        codes.set(name, (codes.get(name) ?? 0) + 1);
        if (DEFECT_CODES.has(outcome.code)) throw new Error(`${path} answered ${name}: ${outcome.details}`);
      }),
      { seed, numRuns: runs(RUNS_PER_RPC), endOnFailure: true },
    );
    if (process.env.FUZZ_VERBOSE) console.log(path, Object.fromEntries(codes));
    if (unreachable(rpc)) {
      expect([...codes.keys()]).toEqual(["refused by the access layer"]);
    } else {
      // The requests reached the handler: the caller's token never stopped them.
      expect(codes.has("refused by the access layer")).toBe(false);
    }
    expect(await livenessProblem(before)).toBeUndefined();
  });

  it("answers bytes that are not a valid request message with INVALID_ARGUMENT", async () => {
    const seed = seedFor(`grpc undecodable ${path}`);
    await fc.assert(
      fc.asyncProperty(undecodableRequest(contract.input, fixtures), async (bytes) => {
        const outcome = await clients.call(service, path, bytes, await callerFor(rpc, fixtures.tenant.tenantId));
        const refusedBeforeHandler = unreachable(rpc) && ACCESS_REFUSAL.test(outcome.details);
        if (outcome.code !== Status.INVALID_ARGUMENT && !refusedBeforeHandler) throw new Error(`${path} answered ${Status[outcome.code]}: ${outcome.details}`);
      }),
      { seed, numRuns: runs(UNDECODABLE_RUNS_PER_RPC), endOnFailure: true },
    );
    expect(await livenessProblem(before)).toBeUndefined();
  });
});
