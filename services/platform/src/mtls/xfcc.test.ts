import { parseXfcc, xfccPeerUri } from "./xfcc";

describe("x-forwarded-client-cert", () => {
  it("reads Istio's header (By, Hash, Subject, URI)", () => {
    const header = 'By=spiffe://cluster.local/ns/leadmesh/sa/leads;Hash=4b2b1d5a0f2a6b3c;Subject="";URI=spiffe://cluster.local/ns/leadmesh/sa/auth';
    expect(parseXfcc(header)).toEqual([
      { By: "spiffe://cluster.local/ns/leadmesh/sa/leads", Hash: "4b2b1d5a0f2a6b3c", Subject: "", URI: "spiffe://cluster.local/ns/leadmesh/sa/auth" },
    ]);
    expect(xfccPeerUri(header)).toBe("spiffe://cluster.local/ns/leadmesh/sa/auth");
  });

  it("takes the URI of the last element when proxies appended several (Envoy's documented example)", () => {
    const header =
      'By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com,' +
      "By=spiffe://cluster.local/ns/leadmesh/sa/leads;Hash=abc;URI=spiffe://cluster.local/ns/leadmesh/sa/ingress";
    const elements = parseXfcc(header) ?? [];
    expect(elements).toHaveLength(2);
    expect(elements[0].Subject).toBe("/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client");
    expect(xfccPeerUri(header)).toBe("spiffe://cluster.local/ns/leadmesh/sa/ingress");
  });

  it('keeps commas, semicolons and equals signs inside quoted values, and unescapes \\"', () => {
    const header = 'Subject="CN=a,O=b;c=\\"d\\"";URI=spiffe://cluster.local/ns/leadmesh/sa/auth';
    expect(parseXfcc(header)).toEqual([{ Subject: 'CN=a,O=b;c="d"', URI: "spiffe://cluster.local/ns/leadmesh/sa/auth" }]);
    expect(xfccPeerUri(header)).toBe("spiffe://cluster.local/ns/leadmesh/sa/auth");
  });

  it("has no peer when the last element carries no URI, even if an earlier one does", () => {
    expect(xfccPeerUri("URI=spiffe://cluster.local/ns/leadmesh/sa/auth,By=spiffe://cluster.local/ns/leadmesh/sa/leads;Hash=abc")).toBeUndefined();
    expect(xfccPeerUri("")).toBeUndefined();
    expect(xfccPeerUri("URI=")).toBeUndefined();
  });

  it("names nobody when the caller's part could swallow or shadow the sidecar's element", () => {
    const sidecar = "By=spiffe://cluster.local/ns/leadmesh/sa/leads;Hash=abc;URI=spiffe://cluster.local/ns/leadmesh/sa/buyers";
    // A quote left open would swallow the element the sidecar appends after the caller's forged one.
    expect(parseXfcc(`URI=spiffe://cluster.local/ns/leadmesh/sa/auth;X="unterminated,${sidecar}`)).toBeUndefined();
    expect(xfccPeerUri(`URI=spiffe://cluster.local/ns/leadmesh/sa/auth;X="unterminated,${sidecar}`)).toBeUndefined();
    // A quote in the middle of a value, text after a closing quote, or a key twice in one element.
    expect(parseXfcc(`X=ab"c,d";${sidecar}`)).toBeUndefined();
    expect(parseXfcc(`Subject="a"b;${sidecar}`)).toBeUndefined();
    expect(xfccPeerUri(`${sidecar};uri=spiffe://cluster.local/ns/leadmesh/sa/auth`)).toBeUndefined();
    // Well-formed forged elements before the sidecar's do not matter: the last element is the sidecar's.
    expect(xfccPeerUri(`URI=spiffe://cluster.local/ns/leadmesh/sa/auth;Subject="x,y",${sidecar}`)).toBe("spiffe://cluster.local/ns/leadmesh/sa/buyers");
  });
});
