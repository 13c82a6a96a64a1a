import { readFileSync } from "node:fs";
import { type Contracts, contracts } from "@leadmesh/platform";
import { parseDocument } from "yaml";
import { buildMeshModel, implementedServices, loadMeshModel, type MeshModel, meshIdentities, peerAllowList, serviceOf, spiffeIdOf } from "./model";
import { serviceEnvironment } from "./model-environment";
import { schemaProblems } from "./schema";
import { parseTopology, TOPOLOGY_PATH, TopologyError } from "./topology";

const SOURCE = "mesh/variant.yaml";

/** The real topology with `edit` applied, as a model (or the error it raises). */
function variant(edit: (document: ReturnType<typeof parseDocument>) => void, source: Contracts = contracts()): MeshModel {
  const document = parseDocument(readFileSync(TOPOLOGY_PATH, "utf8"));
  edit(document);
  return buildMeshModel(parseTopology(document.toString(), SOURCE), source);
}

function problemsOf(edit: (document: ReturnType<typeof parseDocument>) => void, source?: Contracts): string[] {
  try {
    variant(edit, source);
  } catch (error) {
    if (error instanceof TopologyError) {
      expect(error.message).toContain(SOURCE);
      return error.problems;
    }
    throw error;
  }
  throw new Error("the variant was accepted");
}

const local = {
  bindHost: "127.0.0.1",
  ports: { grpc: 1, health: 2, metrics: 3 },
  mongoUrl: "mongodb://m/",
  redisUrl: "redis://r",
  tls: { certFile: "/tls/self.crt", keyFile: "/tls/self.key", caFile: "/tls/ca.crt" },
};
const peers = { auth: "a:1", users: "u:1", leads: "l:1", buyers: "b:1", notification: "n:1", audit: "au:1", analytics: "an:1" };

describe("the mesh model of mesh/topology.yaml", () => {
  const model = loadMeshModel();

  it("has every service with its proto package, RPCs with access rules and REST bindings", () => {
    expect(model.services.map((service) => service.name)).toEqual(["auth", "users", "leads", "buyers", "notification", "audit", "analytics"]);
    expect(implementedServices(model).map((service) => service.name)).toEqual(["auth", "users", "leads", "buyers"]);
    const getLead = serviceOf(model, "leads").rpcs.find((rpc) => rpc.method === "GetLead");
    expect(getLead).toMatchObject({ path: "/leads.v1.LeadService/GetLead", edge: true, retryable: true });
    expect(getLead?.http[0]).toMatchObject({ verb: "get", pattern: "/api/v1/leads/{id}", pathFields: ["id"] });
    for (const service of implementedServices(model)) expect(service.rpcs.filter((rpc) => !rpc.access)).toEqual([]);
  });

  it("allows each RPC to the edge (if routed), the operator and the services whose `calls` list it", () => {
    const leads = serviceOf(model, "leads");
    const rpc = (method: string) => leads.rpcs.find((candidate) => candidate.method === method);
    expect(rpc("GetLead")).toMatchObject({ peers: ["ingress", "operator"], servicePeers: [] });
    expect(rpc("DeleteLead")).toMatchObject({ peers: ["ingress", "operator"], servicePeers: [] });
    // Internal (services only): no edge route, so the edge's certificate cannot call it either.
    expect(rpc("ReleaseLeadSale")).toMatchObject({ edge: false, peers: ["buyers", "operator"], servicePeers: ["buyers"] });
    expect(rpc("BatchGetLeads")).toMatchObject({ edge: false, peers: ["operator"], servicePeers: [] });
    // Routed and also called by a service: the edge for users, buyers' certificate for nothing else.
    const sellLead = serviceOf(model, "buyers").rpcs.find((candidate) => candidate.method === "SellLead");
    expect(sellLead).toMatchObject({ edge: false, peers: ["leads", "operator"], servicePeers: ["leads"] });
    expect(leads.callers).toEqual(["buyers"]);
  });

  it("allows the users RPCs the auth service calls, exactly those, to auth", () => {
    const users = serviceOf(model, "users");
    const calledByAuth = users.rpcs.filter((rpc) => rpc.servicePeers.includes("auth")).map((rpc) => rpc.path);
    expect(calledByAuth.sort()).toEqual([
      "/users.v1.TenantService/CreateTenant",
      "/users.v1.UserService/ActivateUser",
      "/users.v1.UserService/CreateUser",
      "/users.v1.UserService/GetUser",
      "/users.v1.UserService/ListUsers",
      "/users.v1.UserService/LookupUser",
    ]);
    expect(users.rpcs.find((rpc) => rpc.method === "CreateTenant")?.peers).toEqual(["auth", "operator"]);
    expect(users.callers).toEqual(["auth", "buyers", "notification"]);
  });

  it("lets every other service that verifies tokens fetch the JWKS from the identity service", () => {
    const getJwks = serviceOf(model, "auth").rpcs.find((rpc) => rpc.method === "GetJwks");
    const verifiers = model.services.filter((service) => service.verifiesTokens && service.name !== "auth").map((service) => service.name);
    expect(verifiers).toEqual(expect.arrayContaining(["users", "leads"]));
    expect(getJwks?.servicePeers).toEqual([...verifiers].sort());
    expect(getJwks?.peers).toEqual([...verifiers, "ingress", "operator"].sort());
    // Only the JWKS: the other auth RPCs are for users through the edge.
    const login = serviceOf(model, "auth").rpcs.find((rpc) => rpc.method === "Login");
    expect(login?.peers).toEqual(["ingress", "operator"]);
  });

  it("names each identity by its SPIFFE id, and certifies every declared service, the edge and the operator", () => {
    expect(model.mesh).toEqual({ trustDomain: "cluster.local", namespace: "leadmesh", edge: "ingress", operator: "operator" });
    expect(spiffeIdOf(model, "users")).toBe("spiffe://cluster.local/ns/leadmesh/sa/users");
    expect(spiffeIdOf(model, "ingress")).toBe("spiffe://cluster.local/ns/leadmesh/sa/ingress");
    expect(() => spiffeIdOf(model, "billing")).toThrow(/declares no identity "billing"/);
    expect(meshIdentities(model)).toEqual(
      ["auth", "users", "leads", "buyers", "notification", "audit", "analytics", "ingress", "operator"].map((name) => ({
        name,
        spiffeId: `spiffe://cluster.local/ns/leadmesh/sa/${name}`,
      })),
    );
  });

  it("adds health (edge, operator, implemented services) and reflection (operator) to each allow-list", () => {
    const allowList = peerAllowList(model, serviceOf(model, "leads"));
    expect(Object.keys(allowList)).toEqual(["auth", "buyers", "ingress", "leads", "operator", "users"]);
    const health = ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"];
    for (const peer of ["auth", "users", "leads", "buyers", "ingress", "operator"]) expect(allowList[peer]).toEqual(expect.arrayContaining(health));
    expect(allowList.buyers).toEqual([...health, "/leads.v1.LeadService/ReleaseLeadSale"].sort());
    expect(allowList.auth).toEqual(health);
    expect(allowList.operator).toEqual(
      expect.arrayContaining(["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]),
    );
    expect(allowList.ingress.some((path) => path.includes("reflection"))).toBe(false);
    expect(allowList.ingress).not.toContain("/leads.v1.LeadService/BatchGetLeads");
    expect(allowList.ingress).not.toContain("/leads.v1.LeadService/ReleaseLeadSale");
    expect(allowList.ingress).toContain("/leads.v1.LeadService/DistributeLead");
    for (const paths of Object.values(allowList)) expect(paths).toEqual([...paths].sort());
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

  it("gives a service its ports, datastores, identity settings, allow-list, certificates and the addresses of what it calls", () => {
    const environment = serviceEnvironment(model, "leads", { ...local, peers });
    expect(JSON.parse(environment.MESH_PEERS)).toEqual(peerAllowList(model, serviceOf(model, "leads")));
    expect(environment).toEqual({
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: "1",
      HEALTH_PORT: "2",
      METRICS_PORT: "3",
      MONGO_URL: "mongodb://m/",
      REDIS_URL: "redis://r",
      MESH_SECURITY: "mtls",
      MESH_TRUST_DOMAIN: "cluster.local",
      MESH_NAMESPACE: "leadmesh",
      MESH_EDGE_IDENTITY: "ingress",
      MESH_OPERATOR_IDENTITY: "operator",
      MESH_IDENTITY_SERVICE: "auth",
      MESH_PEERS: expect.stringMatching(/^\{"auth":\["\/grpc\.health\.v1\.Health\/Check"/),
      TLS_CERT_FILE: "/tls/self.crt",
      TLS_KEY_FILE: "/tls/self.key",
      TLS_CA_FILE: "/tls/ca.crt",
      AUTH_ISSUER: "leadmesh-auth",
      AUTH_AUDIENCE: "leadmesh-api",
      AUTH_ADDRESS: "a:1",
      BUYERS_ADDRESS: "b:1",
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

  it("gives no certificate files in sidecar mode, and requires them in mtls mode", () => {
    const sidecar = serviceEnvironment(model, "leads", { ...local, tls: undefined, security: "sidecar", peers });
    expect(sidecar.MESH_SECURITY).toBe("sidecar");
    expect(Object.keys(sidecar).filter((name) => name.startsWith("TLS_"))).toEqual([]);
    expect(() => serviceEnvironment(model, "leads", { ...local, tls: undefined, peers })).toThrow(/environment of leads: no tls \(certificate files/);
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
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "calls"], { billing: ["BillService.Charge"] }),
      /^services\.leads\.calls\.billing: unknown service "billing"/,
    ],
    [
      "calls as a list of services (the format before per-RPC calls)",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "calls"], ["users"]),
      /^services\.leads\.calls: must be an object, got a list/,
    ],
    [
      'a called RPC that is not "Service.Method"',
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "auth", "calls", "users"], ["GetUser"]),
      /^services\.auth\.calls\.users\[0\]: "GetUser" does not match/,
    ],
    [
      "a called RPC the callee does not have",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "auth", "calls", "users"], ["UserService.GetUsr"]),
      /^services\.auth\.calls\.users: "UserService\.GetUsr" is not an RPC of users\.v1\.UserService \(its RPCs: GetUser, ListUsers, /,
    ],
    [
      "a called RPC of a gRPC service of another package",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "auth", "calls", "users"], ["LeadService.GetLead"]),
      /^services\.auth\.calls\.users: "LeadService\.GetLead": users\.v1 has no gRPC service LeadService \(it has: DepartmentService, TenantService, UserService\)/,
    ],
    [
      "an edge identity named like a service",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["mesh", "edge"], "users"),
      /^mesh\.edge: "users" is also a service name/,
    ],
    [
      "an operator identity named like a service",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["mesh", "operator"], "auth"),
      /^mesh\.operator: "auth" is also a service name/,
    ],
    [
      "one identity for the edge and the operator",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["mesh", "operator"], "ingress"),
      /^mesh\.operator: "ingress" is also the edge's identity/,
    ],
    [
      "a trust domain that is not a DNS-like name",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["mesh", "trustDomain"], "Cluster Local"),
      /^mesh\.trustDomain: "Cluster Local" does not match/,
    ],
    ["no mesh identities", (d: ReturnType<typeof parseDocument>) => d.delete("mesh"), /^mesh: is required/],
    [
      "a JWKS RPC the identity service does not have",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["identity", "jwks"], "AuthService.GetKeys"),
      /^identity\.jwks: "AuthService\.GetKeys" is not an RPC of auth\.v1\.AuthService/,
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
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "calls"], { notification: ["NotificationService.ListNotifications"] }),
      /^services\.leads\.calls\.notification: "notification" is not implemented/,
    ],
    [
      "authenticated RPCs without Redis",
      (d: ReturnType<typeof parseDocument>) => d.setIn(["services", "leads", "datastores"], ["mongodb"]),
      /^services\.leads\.datastores: must include redis/,
    ],
  ])("%s", (_what, edit, expected) => {
    expect(problemsOf(edit)).toEqual(expect.arrayContaining([expect.stringMatching(expected)]));
  });

  it("refuses a called RPC without an access rule, which no call could pass", () => {
    const real = contracts();
    const withoutRule: Contracts = Object.create(real, {
      method: { value: (path: string) => (path === "/users.v1.UserService/GetUser" ? { ...real.method(path), access: undefined } : real.method(path)) },
    });
    expect(problemsOf(() => {}, withoutRule)).toEqual([
      'services.auth.calls.users: "UserService.GetUser" declares no (common.v1.access) rule, so no call to it could pass',
      'services.notification.calls.users: "UserService.GetUser" declares no (common.v1.access) rule, so no call to it could pass',
    ]);
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
