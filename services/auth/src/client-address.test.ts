import { Metadata } from "nice-grpc-common";
import { clientAddress, trustedProxies } from "./client-address";

const proxies = trustedProxies(["127.0.0.0/8", "10.0.0.0/8", "::1/128"]);

describe("clientAddress", () => {
  it("believes the last x-forwarded-for hop only from a trusted proxy", () => {
    const forwarded = Metadata({ "x-forwarded-for": "6.6.6.6, 203.0.113.9" });
    expect(clientAddress({ metadata: forwarded, peer: "ipv4:127.0.0.1:5000" }, proxies)).toBe("203.0.113.9");
    expect(clientAddress({ metadata: forwarded, peer: "ipv4:10.1.2.3:5000" }, proxies)).toBe("203.0.113.9");
    expect(clientAddress({ metadata: forwarded, peer: "ipv4:198.51.100.20:5000" }, proxies)).toBe("198.51.100.20");
  });

  it("uses the TCP peer for direct calls", () => {
    expect(clientAddress({ metadata: Metadata(), peer: "ipv4:10.1.2.3:41234" }, proxies)).toBe("10.1.2.3");
  });

  it("groups IPv6 clients by /64", () => {
    const a = clientAddress({ metadata: Metadata(), peer: "ipv6:[2001:db8:1:2:aaaa::1]:41234" }, proxies);
    const b = clientAddress({ metadata: Metadata(), peer: "ipv6:[2001:db8:1:2:bbbb::9]:41234" }, proxies);
    expect(a).toBe("2001:db8:1:2::/64");
    expect(b).toBe(a);
    expect(clientAddress({ metadata: Metadata({ "x-forwarded-for": "2001:db8:9:9::5" }), peer: "ipv6:[::1]:1" }, proxies)).toBe("2001:db8:9:9::/64");
  });
});
