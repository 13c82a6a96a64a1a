import { readFileSync } from "node:fs";
import { contracts } from "@leadmesh/platform";
import { parseDocument } from "yaml";
import { buildMeshModel, implementedServices, loadMeshModel, type MeshModel, serviceOf } from "./model";
import { serviceEnvironment } from "./model-environment";
import { schemaProblems } from "./schema";
import { parseTopology, TOPOLOGY_PATH, TopologyError } from "./topology";

const SOURCE = "mesh/variant.yaml";

/** The real topology with `edit` applied, as a model (or the error it raises). */
function variant(edit: (document: ReturnType<typeof parseDocument>) => void): MeshModel {
  const document = parseDocument(readFileSync(TOPOLOGY_PATH, "utf8"));
  edit(document);
  return buildMeshModel(parseTopology(document.toString(), SOURCE), contracts());
}

function problemsOf(edit: (document: ReturnType<typeof parseDocument>) => void): string[] {
  try {
    variant(edit);
  } catch (error) {
    if (error instanceof TopologyError) {
      expect(error.message).toContain(SOURCE);
      return error.problems;
    }
    throw error;
  }
  throw new Error("the variant was accepted");
}

const local = { bindHost: "127.0.0.1", ports: { grpc: 1, health: 2, metrics: 3 }, mongoUrl: "mongodb://m/", redisUrl: "redis://r" };
const peers = { auth: "a:1", users: "u:1", leads: "l:1", buyers: "b:1", notification: "n:1", audit: "au:1", analytics: "an:1" };

describe("the mesh model of mesh/topology.yaml", () => {
  const model = loadMeshModel();

  it("has every service with its proto package, RPCs with access rules and REST bindings", () => {
    expect(model.services.map((service) => service.name)).toEqual(["auth", "users", "leads", "buyers", "notification", "audit", "analytics"]);
    expect(implementedServices(model).map((service) => service.name)).toEqual(["auth", "users", "leads"]);
    const getLead = serviceOf(model, "leads").rpcs.find((rpc) => rpc.method === "GetLead");
    expect(getLead).toMatchObject({ path: "/leads.v1.LeadService/GetLead", edge: true, retryable: true, serviceCallers: [] });
    expect(getLead?.http[0]).toMatchObject({ verb: "get", pattern: "/api/v1/leads/{id}", pathFields: ["id"] });
    for (const service of implementedServices(model)) expect(service.rpcs.filter((rpc) => !rpc.access)).toEqual([]);
  });

  it("derives callers per service and per RPC from `calls` and the services flag of the rule", () => {
    expect(serviceOf(model, "users").callers).toEqual(["auth", "notification"]);
    const batchGet = serviceOf(model, "leads").rpcs.find((rpc) => rpc.method === "BatchGetLeads");
    expect(batchGet).toMatchObject({ serviceCallers: ["buyers"], edge: false });
    expect(serviceOf(model, "leads").rpcs.find((rpc) => rpc.method === "DeleteLead")?.serviceCallers).toEqual([]);
  });

  it("gives replica r the local ports + r", () => {
    expect(serviceOf(model, "leads").localReplicaPorts).toEqual([
      { grpc: 20300, health: 20330, metrics: 20360 },
      { grpc: 20301, health: 20331, metrics: 20361 },
    ]);
  });

  it("expands consumed package wildcards into the topics their publisher declares", () => {
    expect(serviceOf(model, "leads").consumes).toEqual(["buyers.v1.LeadSoldEvent", "buyers.v1.LeadSaleReturnedEvent"]);
    expect(serviceOf(model, "analytics").consumes).toEqual([...serviceOf(model, "leads").publishes, ...serviceOf(model, "buyers").publishes]);
  });
});

describe("environment contract", () => {
  const model = loadMeshModel();

  it("gives a service its ports, datastores, callers, identity and the addresses of what it calls", () => {
    expect(serviceEnvironment(model, "leads", { ...local, peers })).toEqual({
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: "1",
      HEALTH_PORT: "2",
      METRICS_PORT: "3",
      MONGO_URL: "mongodb://m/",
      REDIS_URL: "redis://r",
      MESH_CALLERS: "buyers",
      AUTH_ISSUER: "leadmesh-auth",
      AUTH_AUDIENCE: "leadmesh-api",
      AUTH_ADDRESS: "a:1",
    });
    // auth is the token issuer: it needs no AUTH_ADDRESS, but the users service it calls.
    const auth = serviceEnvironment(model, "auth", { ...local, peers });
    expect(auth.USERS_ADDRESS).toBe("u:1");
    expect(auth.AUTH_ADDRESS).toBeUndefined();
  });

  it("leaves out MONGO_URL and REDIS_URL for a service that does not declare them", () => {
    const redisOnly = variant((document) => document.setIn(["services", "audit", "datastores"], ["redis"]));
    const environment = serviceEnvironment(redisOnly, "audit", { ...local, peers });
    expect(environment.REDIS_URL).toBe("redis://r");
    expect(environment).not.toHaveProperty("MONGO_URL");
  });

  it("refuses to build an environment without an address the service needs", () => {
    expect(() => serviceEnvironment(model, "buyers", { ...local, peers: { auth: "a:1" } })).toThrow(/environment of buyers: no address of leads given/);
    expect(() => serviceEnvironment(model, "leads", { ...local, mongoUrl: undefined, peers })).toThrow(/no mongoUrl/);
    expect(() => serviceEnvironment(model, "nobody", { ...local, peers })).toThrow(/declares no service "nobody"/);
  });
});

describe("topology checks name the file and the key", () => {
  it.each([
    ["an unknown key", (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "replica"], 2), /^services\.leads\.replica: unknown key/],
    ["a missing key", (d: ReturnType<typeof parseDocument>) => d.deleteIn(["services", "leads", "package"]), /^services\.leads\.package: is required/],
    [
      "a wrong type",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "replicas"], "two"),
      /^services\.leads\.replicas: must be an integer, got string "two"/,
    ],
    [
      "too many replicas",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "replicas"], 11),
      /^services\.leads\.replicas: must be at most 10/,
    ],
    [
      "an unknown datastore",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "datastores"], ["postgres"]),
      /^services\.leads\.datastores\[0\]: must be one of "mongodb", "redis"/,
    ],
    [
      "a bad service name",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "Leads2"], d.getIn(["services", "leads"])),
      /^services\.Leads2: "Leads2" does not match .* \(key name\)/,
    ],
    [
      "a port in the ephemeral range",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "local", "grpc"], 40000),
      /^services\.leads\.local\.grpc: must be at most 32767/,
    ],
    [
      "a package that is not <name>.v1",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "package"], "users.v1"),
      /^services\.leads\.package: must be "leads\.v1"/,
    ],
    [
      "a call to an unknown service",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "calls"], ["billing"]),
      /^services\.leads\.calls: unknown service "billing"/,
    ],
    [
      "overlapping port ranges",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "local", "grpc"], 20205),
      /^services\.leads\.local\.grpc: overlaps services\.users\.local\.grpc at port 2020[5-9]/,
    ],
    ["an unknown token issuer", (d: ReturnType<typeof parseDocument>) => d.setIn(["identity", "service"], "sso"), /^identity\.service: unknown service "sso"/],
    [
      "an event that is not in events.proto",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "publishes"], ["LeadEatenEvent"]),
      /^services\.leads\.publishes: "LeadEatenEvent" is not a message of proto\/leads\/v1\/events\.proto/,
    ],
    [
      "a consumed topic nobody publishes",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "buyers", "publishes"], []),
      /^services\.leads\.consumes: "buyers\.v1\.LeadSoldEvent" is published by no service/,
    ],
    [
      "a wildcard over a package without events",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "consumes"], ["audit.v1.*"]),
      /^services\.leads\.consumes: "audit\.v1\.\*": no service of package audit\.v1 publishes anything/,
    ],
    [
      "a call to a service that is not implemented",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "calls"], ["buyers"]),
      /^services\.leads\.calls: "buyers" is not implemented/,
    ],
    [
      "authenticated RPCs without Redis",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "datastores"], ["mongodb"]),
      /^services\.leads\.datastores: must include redis/,
    ],
  ])("%s", (_what, edit, expected) => {
    expect(problemsOf(edit)).toEqual(expect.arrayContaining([expect.stringMatching(expected)]));
  });

  it("reports every problem at once", () => {
    const problems = problemsOf((document) => {
      document.setIn(["services", "leads", "replicas"], 0);
      document.setIn(["services", "users", "ingress"], "yes");
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^services\.users\.ingress: must be a boolean/),
        expect.stringMatching(/^services\.leads\.replicas: must be at least 1/),
      ]),
    );
    expect(problems).toHaveLength(2);
  });

  it("names the file when it is not YAML", () => {
    expect(() => parseTopology("services: [", SOURCE)).toThrow(/mesh\/variant\.yaml is invalid:\n {2}- not valid YAML/);
  });
});

describe("schema checker", () => {
  it("refuses a schema keyword it does not enforce, rather than ignoring it", () => {
    expect(() => schemaProblems("x", { type: "string", maxLength: 3 })).toThrow(/schema keyword "maxLength" at \(top level\) is not supported/);
  });

  it("checks patterns, enums and unique items", () => {
    const schema = { type: "array", uniqueItems: true, items: { type: "string", pattern: "^[a-z]+$", enum: ["a", "b"] } };
    expect(schemaProblems(["a", "a", "C"], schema)).toEqual([
      '[2]: must be one of "a", "b", got string "C"',
      '[2]: "C" does not match ^[a-z]+$',
      '(top level): lists "a" more than once',
    ]);
  });
});
