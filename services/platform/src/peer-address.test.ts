import { ConfigError } from "./config";
import { loadServiceConfig, peerAddressProblem } from "./service-config";

const base = { AUTH_ISSUER: "iss", AUTH_AUDIENCE: "aud" };

describe("peer addresses (AUTH_ADDRESS, USERS_ADDRESS, …)", () => {
  it.each([
    "auth:50051",
    "127.0.0.1:20100",
    "[::1]:20100",
    "dns:///auth:50051",
    "dns:///auth.leadmesh.svc.cluster.local:50051",
    "ipv4:127.0.0.1:20100",
    "ipv4:127.0.0.1:20100,127.0.0.1:20101",
    "ipv4:10.0.0.7:50051,10.0.0.8:50051,10.0.0.9:50051",
    "ipv6:[::1]:20100,[::1]:20101",
  ])("accepts %s", (target) => {
    expect(peerAddressProblem(target)).toBeUndefined();
    expect(loadServiceConfig("leads", { ...base, AUTH_ADDRESS: target }, []).authAddress).toBe(target);
  });

  it.each([
    ["auth", '"auth" is not host:port'],
    ["auth:", '"auth:" is not host:port'],
    ["auth:0", 'port 0 of "auth:0" is not 1-65535'],
    ["auth:70000", 'port 70000 of "auth:70000" is not 1-65535'],
    ["au th:50051", '"au th" is not a host name or IP address'],
    ["-auth:50051", '"-auth" is not a host name or IP address'],
    ["http://auth:50051", 'unsupported scheme "http"'],
    ["unix:/tmp/grpc.sock", 'unsupported scheme "unix"'],
    ["dns://8.8.8.8/auth:50051", "a dns target is dns:///host:port (no authority between the slashes)"],
    ["dns:///auth", '"auth" is not host:port'],
    ["ipv4:127.0.0.1:20100,", 'ipv4 target: "" is not host:port'],
    ["ipv4:127.0.0.1:20100;127.0.0.1:20101", 'ipv4 target: "127.0.0.1:20100;127.0.0.1:20101" is not host:port'],
    ["ipv4:auth:50051", 'ipv4 target: "auth" is not an IPv4 address'],
    ["ipv4:256.0.0.1:50051", 'ipv4 target: "256.0.0.1" is not an IPv4 address'],
    ["ipv4:127.0.0.1:20100,127.0.0.1:20100", "ipv4 target lists an address twice"],
    ["ipv6:::1:20100", 'ipv6 target: "::1:20100" is not host:port'],
    ["ipv6:[::1]:20100,127.0.0.1:20101", 'ipv6 target: "127.0.0.1" is not a bracketed IPv6 address ([::1])'],
  ])("refuses %s with a clear reason", (target, reason) => {
    expect(peerAddressProblem(target)).toBe(reason);
    let problems: string[] = [];
    try {
      loadServiceConfig("leads", { ...base, AUTH_ADDRESS: target }, []);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    expect(problems).toEqual([
      `AUTH_ADDRESS=${JSON.stringify(target)} is invalid: ${reason} (the auth service's replicas (JWKS); expected host:port, dns:///host:port (every address the name resolves to) or ipv4:a.b.c.d:port,a.b.c.d:port,… (one per replica))`,
    ]);
  });

  it("defaults to the auth service's DNS name, every address of which is a replica", () => {
    expect(loadServiceConfig("leads", base, []).authAddress).toBe("dns:///auth:50051");
  });
});
