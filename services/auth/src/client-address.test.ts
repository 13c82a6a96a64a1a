import { Metadata } from "nice-grpc-common";
import { clientAddress } from "./handlers";

describe("clientAddress", () => {
  it("trusts only the hop the edge Envoy appended to x-forwarded-for", () => {
    expect(clientAddress({ metadata: Metadata({ "x-forwarded-for": "6.6.6.6, 203.0.113.9" }), peer: "ipv4:127.0.0.1:5000" })).toBe("203.0.113.9");
    expect(clientAddress({ metadata: Metadata({ "x-forwarded-for": "198.51.100.7" }), peer: "ipv4:127.0.0.1:5000" })).toBe("198.51.100.7");
  });

  it("falls back to the TCP peer for direct calls", () => {
    expect(clientAddress({ metadata: Metadata(), peer: "ipv4:10.1.2.3:41234" })).toBe("10.1.2.3");
    expect(clientAddress({ metadata: Metadata(), peer: "ipv6:[::1]:41234" })).toBe("::1");
  });
});
