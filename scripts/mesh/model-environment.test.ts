/**
 * Peer addresses in the environment contract resolve to every replica, and
 * every form the contract writes (addresses, identities, the allow-list,
 * certificate files) is one the services' config accepts as the model meant it.
 */
import { loadAuthConfig } from "../../services/auth/src/settings";
import { loadServiceConfig } from "../../services/platform/src/service-config";
import { loadMeshModel, peerAllowList, serviceOf } from "./model";
import { replicasTarget, serviceEnvironment } from "./model-environment";

const local = {
  bindHost: "127.0.0.1",
  ports: { grpc: 1, health: 2, metrics: 3 },
  mongoUrl: "mongodb://m/",
  redisUrl: "redis://r",
  tls: { certFile: "/tls/self.crt", keyFile: "/tls/self.key", caFile: "/tls/ca.crt" },
};

describe("replicasTarget", () => {
  it("lists IPv4 replicas in one grpc-js target and leaves a single replica as it is", () => {
    expect(replicasTarget(["127.0.0.1:20200", "127.0.0.1:20201"])).toBe("ipv4:127.0.0.1:20200,127.0.0.1:20201");
    expect(replicasTarget(["[::1]:20200", "[::1]:20201"])).toBe("ipv6:[::1]:20200,[::1]:20201");
    expect(replicasTarget(["127.0.0.1:20200"])).toBe("127.0.0.1:20200");
  });

  it("refuses host names (their DNS name is the target) and an empty list", () => {
    expect(() => replicasTarget(["users-0:50051", "users-1:50051"])).toThrow(/not all IPv4 or all bracketed IPv6/);
    expect(() => replicasTarget(["127.0.0.1:1", "[::1]:2"])).toThrow(/not all IPv4/);
    expect(() => replicasTarget([])).toThrow(/no endpoints/);
  });
});

describe("peer addresses of the environment contract", () => {
  const model = loadMeshModel();
  const everyPeer = (where: string | string[]) => Object.fromEntries(model.services.map((service) => [service.name, where]));

  it("name every replica of a peer given as a list, and pass a DNS target through", () => {
    const listed = serviceEnvironment(model, "auth", { ...local, peers: everyPeer(["127.0.0.1:20200", "127.0.0.1:20201"]) });
    expect(listed.USERS_ADDRESS).toBe("ipv4:127.0.0.1:20200,127.0.0.1:20201");
    const kubernetes = serviceEnvironment(model, "leads", { ...local, peers: everyPeer("dns:///auth.leadmesh.svc.cluster.local:50051") });
    expect(kubernetes.AUTH_ADDRESS).toBe("dns:///auth.leadmesh.svc.cluster.local:50051");
  });

  it.each([
    ["a replica list", ["127.0.0.1:20100", "127.0.0.1:20101"]],
    ["a headless Service", "dns:///auth.leadmesh.svc.cluster.local:50051"],
    ["one host:port", "auth:50051"],
  ])("are accepted by the services' config: %s", (_, where) => {
    for (const name of ["users", "leads"]) {
      const environment = serviceEnvironment(model, name, { ...local, peers: everyPeer(where) });
      expect(loadServiceConfig(name, environment).authAddress).toBe(environment.AUTH_ADDRESS);
    }
    const auth = serviceEnvironment(model, "auth", { ...local, peers: everyPeer(where) });
    expect(loadAuthConfig(auth).auth.usersAddress).toBe(auth.USERS_ADDRESS);
  });
});

describe("mesh identity settings of the environment contract", () => {
  const model = loadMeshModel();
  const peers = Object.fromEntries(model.services.map((service) => [service.name, "127.0.0.1:1"]));

  it.each(["users", "leads"])("are read by the %s service's config as the model declares them", (name) => {
    const config = loadServiceConfig(name, serviceEnvironment(model, name, { ...local, peers }));
    expect(config).toMatchObject({
      meshSecurity: "mtls",
      meshTrustDomain: model.mesh.trustDomain,
      meshNamespace: model.mesh.namespace,
      meshEdgeIdentity: model.mesh.edge,
      meshOperatorIdentity: model.mesh.operator,
      meshIdentityService: model.identity.service,
      tlsCertFile: "/tls/self.crt",
      tlsKeyFile: "/tls/self.key",
      tlsCaFile: "/tls/ca.crt",
    });
    expect(config.meshPeers).toEqual(peerAllowList(model, serviceOf(model, name)));
  });
});
