import { loadServiceConfig } from "../service-config";
import { decidePeerAccess, peerAccessSettings } from "./peer-access";

const GET_LEAD = "/leads.v1.LeadService/GetLead";
const DELETE_LEAD = "/leads.v1.LeadService/DeleteLead";
const id = (name: string) => `spiffe://cluster.local/ns/leadmesh/sa/${name}`;

const config = loadServiceConfig(
  "leads",
  {
    AUTH_ISSUER: "iss",
    AUTH_AUDIENCE: "aud",
    MESH_PEERS: JSON.stringify({ ingress: [GET_LEAD, DELETE_LEAD], operator: [GET_LEAD], auth: [GET_LEAD] }),
  },
  [],
);
const settings = peerAccessSettings(config);

describe("the peer allow-list", () => {
  it("admits a peer listed for that exact path, and says whether it is a service", () => {
    expect(decidePeerAccess(settings, GET_LEAD, id("auth"))).toEqual({
      allowed: true,
      peer: { spiffeId: id("auth"), name: "auth", isService: true, isEdge: false },
    });
    expect(decidePeerAccess(settings, DELETE_LEAD, id("ingress"))).toMatchObject({ allowed: true, peer: { name: "ingress", isService: false, isEdge: true } });
    expect(decidePeerAccess(settings, GET_LEAD, id("operator"))).toMatchObject({ allowed: true, peer: { name: "operator", isService: false, isEdge: false } });
  });

  it("refuses a peer not listed for the path, naming it and the RPC", () => {
    expect(decidePeerAccess(settings, DELETE_LEAD, id("auth"))).toEqual({
      allowed: false,
      reason: "not_allowed",
      caller: id("auth"),
      message: `auth may not call ${DELETE_LEAD} (see mesh/topology.yaml)`,
    });
    expect(decidePeerAccess(settings, "/grpc.health.v1.Health/Check", id("auth"))).toMatchObject({ allowed: false, reason: "not_allowed" });
  });

  it("refuses the same name from another trust domain or namespace", () => {
    for (const stranger of ["spiffe://evil.example/ns/leadmesh/sa/auth", "spiffe://cluster.local/ns/other/sa/auth"]) {
      expect(decidePeerAccess(settings, GET_LEAD, stranger)).toMatchObject({ allowed: false, reason: "not_allowed", caller: stranger });
    }
  });

  it("refuses a call without a verified identity with the transport's reason", () => {
    expect(decidePeerAccess(settings, GET_LEAD, undefined, "no client certificate")).toEqual({
      allowed: false,
      reason: "no_identity",
      caller: "unknown",
      message: `${GET_LEAD} requires a verified mesh identity: no client certificate`,
    });
  });
});
