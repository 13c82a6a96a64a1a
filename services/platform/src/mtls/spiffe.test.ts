import { identityName, parseSpiffeId, spiffeId, spiffeIdOfCertificate, subjectAltNames } from "./spiffe";

const scope = { trustDomain: "cluster.local", namespace: "leadmesh" };

describe("SPIFFE ids", () => {
  it("builds and parses the Istio form", () => {
    expect(spiffeId(scope, "users")).toBe("spiffe://cluster.local/ns/leadmesh/sa/users");
    expect(parseSpiffeId("spiffe://cluster.local/ns/leadmesh/sa/users")).toEqual({ ...scope, name: "users" });
    for (const other of [
      "spiffe://cluster.local/users",
      "spiffe://cluster.local/ns/leadmesh/sa/",
      "https://cluster.local/ns/leadmesh/sa/users",
      "spiffe://cluster.local/ns/leadmesh/sa/users/x",
    ]) {
      expect(parseSpiffeId(other)).toBeUndefined();
    }
  });

  it("names a peer by its service account only inside our trust domain and namespace", () => {
    expect(identityName("spiffe://cluster.local/ns/leadmesh/sa/auth", scope)).toBe("auth");
    expect(identityName("spiffe://cluster.local/ns/other/sa/auth", scope)).toBe("spiffe://cluster.local/ns/other/sa/auth");
    expect(identityName("spiffe://evil.example/ns/leadmesh/sa/auth", scope)).toBe("spiffe://evil.example/ns/leadmesh/sa/auth");
  });

  it("reads the one spiffe:// URI SAN of a certificate as Node prints subjectAltName", () => {
    const san = "URI:spiffe://cluster.local/ns/leadmesh/sa/auth, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1";
    expect(subjectAltNames(san).map((entry) => entry.type)).toEqual(["URI", "DNS", "IP Address", "IP Address"]);
    expect(spiffeIdOfCertificate(san)).toBe("spiffe://cluster.local/ns/leadmesh/sa/auth");
    expect(spiffeIdOfCertificate('DNS:"a,b", URI:spiffe://cluster.local/ns/leadmesh/sa/auth')).toBe("spiffe://cluster.local/ns/leadmesh/sa/auth");
    expect(spiffeIdOfCertificate("DNS:localhost, URI:https://example.com/x")).toBeUndefined();
    expect(spiffeIdOfCertificate(undefined)).toBeUndefined();
    // Two SPIFFE ids: the certificate names no single workload.
    expect(spiffeIdOfCertificate("URI:spiffe://cluster.local/ns/leadmesh/sa/a, URI:spiffe://cluster.local/ns/leadmesh/sa/b")).toBeUndefined();
  });
});
