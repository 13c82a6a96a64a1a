/**
 * Generated input over REST through the real Envoy ingress, for every
 * google.api.http binding of every implemented service (from the mesh model
 * and the descriptor set): hostile path variables and query parameters,
 * JSON bodies with hostile values, wrong types, huge numbers and deep
 * nesting, and raw bodies that are not JSON at all.
 *
 * What counts as a defect: any 5xx. The dependencies are up for this whole
 * test, so not even a 503 is expected (a service answers UNAVAILABLE only
 * for a known-down dependency); 500/502/504 would be a bug, a crashed
 * process or a hang. Every error body must be a google.rpc.Status in JSON,
 * whether Envoy or a service produced it, with a code that names a client
 * error (a 431 from Envoy used to say UNKNOWN). After each binding's property
 * every service must still be the same SERVING process.
 */
import { contracts } from "@leadmesh/platform";
import fc from "fast-check";
import { Status } from "nice-grpc";
import { ingressServices, loadMeshModel, reachableFromOutside } from "../../scripts/mesh/model";
import { livenessProblem, type ProcessIdentity, processIdentity } from "../harness/liveness";
import { meshInfo } from "../harness/mesh-info";
import { describeRestRequest, type RestRequest, restRequest } from "../harness/rest-arbitraries";
import { DEFECT_CODES, FUZZ_CASES, FUZZED_SERVICES, type FuzzTenant, fuzzTenant, runs, seedFor, tokenFor } from "./fuzz-setup";

const RUNS_PER_BINDING = 25;

const INGRESS = new Set(ingressServices(loadMeshModel()).map((service) => service.name));
const BINDINGS = FUZZ_CASES.filter((c) => c.rpc.edge && INGRESS.has(c.service)).flatMap((c) => c.rpc.http.map((binding) => ({ ...c, binding })));

let fixtures: FuzzTenant;
let before: ProcessIdentity[];

beforeAll(async () => {
  fixtures = await fuzzTenant("fuzz-rest");
  before = await Promise.all(FUZZED_SERVICES.map(processIdentity));
});

async function send(request: RestRequest, token: string | undefined): Promise<{ status: number; text: string }> {
  const response = await fetch(`${meshInfo().ingressUrl}${request.path}`, {
    method: request.method,
    headers: {
      ...request.headers,
      ...(request.contentType ? { "content-type": request.contentType } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: request.body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

/** Why the reply is a defect; undefined when it is an answer. */
function defectOf(status: number, text: string): string | undefined {
  if (status >= 500) return `answered ${status}`;
  if (status < 400) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `answered ${status} without a JSON body`;
  }
  const { code, message } = (body ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code !== "number" || code <= 0 || typeof message !== "string") return `answered ${status} with a body that is not a google.rpc.Status`;
  // A client error must not be described as a server failure (e.g. UNKNOWN), or clients retry or alert on it.
  if (DEFECT_CODES.has(code)) return `answered ${status} with the server-failure code ${Status[code]}`;
  return undefined;
}

it("covers every REST binding of every implemented service", () => {
  expect(new Set(BINDINGS.map((b) => b.service))).toEqual(new Set(FUZZED_SERVICES));
  // Every binding of every RPC the edge routes, counted from the descriptor set.
  const routed = ingressServices(loadMeshModel()).flatMap((service) =>
    contracts()
      .methodsOfPackage(service.package)
      .filter((method) => reachableFromOutside(method.access))
      .flatMap((method) => method.http.map((binding) => `${binding.verb} ${binding.pattern}`)),
  );
  expect(BINDINGS.map((b) => `${b.binding.verb} ${b.binding.pattern}`).sort()).toEqual(routed.sort());
});

describe.each(BINDINGS.map((b) => [`${b.binding.verb.toUpperCase()} ${b.binding.pattern}`, b] as const))("%s", (label, { rpc, contract, binding }) => {
  it("answers generated requests with a 2xx or a 4xx google.rpc.Status and stays up", async () => {
    const seed = seedFor(`rest ${label}`);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(restRequest(binding, contract.input, fixtures), async (request) => {
        const { status, text } = await send(request, await tokenFor(rpc, fixtures.tenant.tenantId));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const defect = defectOf(status, text);
        if (defect) throw new Error(`${defect}: ${text.slice(0, 500)}\n  request: ${describeRestRequest(request)}`);
      }),
      { seed, numRuns: runs(RUNS_PER_BINDING), endOnFailure: true },
    );
    if (process.env.FUZZ_VERBOSE) console.log(label, Object.fromEntries(statuses));
    expect(await livenessProblem(before)).toBeUndefined();
  });
});
