import { isIP } from "node:net";
import { Metadata } from "nice-grpc-common";
import { clientAddress, trustedProxies } from "./client-address";

const proxies = trustedProxies(["127.0.0.0/8", "10.0.0.0/8", "::1/128"]);

/** A throttle key names one client: an IP address or an IPv6 /64, never an empty string (one bucket shared by everyone). */
function expectClientKey(key: string, expected: string): void {
  expect(key).toBe(expected);
  const address = key.replace(/::\/64$/, "::");
  expect({ key, isAddress: isIP(address) !== 0 }).toEqual({ key: expected, isAddress: true });
}

describe("clientAddress", () => {
  it("believes the last x-forwarded-for hop only from a trusted proxy", () => {
    const forwarded = Metadata({ "x-forwarded-for": "6.6.6.6, 203.0.113.9" });
    expect(clientAddress({ metadata: forwarded, peer: "ipv4:127.0.0.1:5000" }, proxies)).toBe("203.0.113.9");
    expect(clientAddress({ metadata: forwarded, peer: "ipv4:10.1.2.3:5000" }, proxies)).toBe("203.0.113.9");
    expect(clientAddress({ metadata: forwarded, peer: "ipv4:198.51.100.20:5000" }, proxies)).toBe("198.51.100.20");
  });

  it("falls back to the TCP peer for a forwarded hop that is not an address, and never keys an unparseable peer as empty", () => {
    const garbage = Metadata({ "x-forwarded-for": "6.6.6.6, garbage" });
    expectClientKey(clientAddress({ metadata: garbage, peer: "ipv4:127.0.0.1:5000" }, proxies), "127.0.0.1");
    expect(clientAddress({ metadata: Metadata(), peer: "" }, proxies)).toBe("peer:unknown");
    expect(clientAddress({ metadata: Metadata(), peer: "unix:/tmp/socket" }, proxies)).toBe("peer:unix:/tmp/socket");
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

  it("never keys on an empty address: an empty or blank x-forwarded-for hop falls back to the TCP peer", () => {
    const cases: { forwarded: string; peer: string; expected: string }[] = [
      { forwarded: "", peer: "ipv4:127.0.0.1:5000", expected: "127.0.0.1" },
      { forwarded: " ", peer: "ipv4:127.0.0.1:5000", expected: "127.0.0.1" },
      { forwarded: ",", peer: "ipv4:10.1.2.3:5000", expected: "10.1.2.3" },
      { forwarded: "6.6.6.6, ", peer: "ipv4:127.0.0.1:5000", expected: "127.0.0.1" },
      { forwarded: "6.6.6.6,", peer: "ipv4:127.0.0.1:5000", expected: "127.0.0.1" },
      { forwarded: " , ", peer: "ipv6:[::1]:1", expected: "0:0:0:0::/64" },
    ];
    for (const { forwarded, peer, expected } of cases) {
      expectClientKey(clientAddress({ metadata: Metadata({ "x-forwarded-for": forwarded }), peer }, proxies), expected);
    }
  });
});
