import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertPortsFree, ephemeralPortRange, ephemeralRangeWarning, portHolder, portsAtRisk, reservedPorts } from "./ports";
import { freePort } from "./processes";

async function listenOnFreePort(): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, port };
}

describe("port holder", () => {
  it("names the process listening on a port, from /proc", async () => {
    const { server, port } = await listenOnFreePort();
    try {
      expect(portHolder(port)).toMatch(new RegExp(`^pid ${process.pid} \\(.*node.*\\)$`));
    } finally {
      server.close();
    }
  });

  it("fails one line per launch naming each taken port, its use and holder; free ports pass", async () => {
    const { server, port } = await listenOnFreePort();
    const free = await freePort();
    try {
      await expect(assertPortsFree([{ port: free, purpose: "a free one" }])).resolves.toBeUndefined();
      const message = await assertPortsFree([
        { port: free, purpose: "a free one" },
        { port, purpose: "leads replica 2 probe port" },
      ]).then(
        () => "no error",
        (error: Error) => error.message,
      );
      expect(message).toMatch(new RegExp(`^port ${port} \\(leads replica 2 probe port\\) is taken by pid ${process.pid} \\(.*node.*\\)\\. Stop that process`));
      expect(message).not.toContain("\n");
      expect(message).not.toContain(`${free}`);

      const second = await listenOnFreePort();
      try {
        const both = await assertPortsFree([
          { port, purpose: "Redis" },
          { port: second.port, purpose: "Envoy admin" },
        ]).catch((error: Error) => error.message);
        expect(both).toMatch(
          new RegExp(`^port ${port} \\(Redis\\) is taken by pid ${process.pid} \\(.*\\) \\(1 more taken: ${second.port}\\)\\. Stop that process`),
        );
      } finally {
        second.server.close();
      }
    } finally {
      server.close();
    }
  });
});

describe("ephemeral range", () => {
  const uses = [
    { port: 20300, purpose: "leads replica 1 gRPC port" },
    { port: 40000, purpose: "somewhere high" },
  ];

  it("reads the kernel's range and reserved ports", () => {
    const directory = mkdtempSync(join(tmpdir(), "leadmesh-ports-"));
    writeFileSync(join(directory, "range"), "32768\t60999\n");
    writeFileSync(join(directory, "reserved"), "20100-20109,27117\n");
    writeFileSync(join(directory, "empty"), "\n");
    expect(ephemeralPortRange(join(directory, "range"))).toEqual({ low: 32768, high: 60999 });
    expect(ephemeralPortRange(join(directory, "missing"))).toBeUndefined();
    expect(reservedPorts(join(directory, "reserved"))).toEqual([
      { low: 20100, high: 20109 },
      { low: 27117, high: 27117 },
    ]);
    expect(reservedPorts(join(directory, "empty"))).toEqual([]);
  });

  it("flags fixed ports inside the range unless reserved, and says what to do", () => {
    expect(portsAtRisk(uses, { low: 32768, high: 60999 }, [])).toEqual([uses[1]]);
    expect(portsAtRisk(uses, { low: 1024, high: 65535 }, [{ low: 40000, high: 40000 }])).toEqual([uses[0]]);
    expect(ephemeralRangeWarning(uses.slice(0, 1), { low: 32768, high: 60999 }, [])).toBeUndefined();
    expect(ephemeralRangeWarning(uses, { low: 1024, high: 65535 }, [])).toBe(
      "warning: 2 fixed port(s) lie in this machine's ephemeral port range 1024-65535 (/proc/sys/net/ipv4/ip_local_port_range), " +
        "so any outgoing connection may take them and the launch then fails at random: 20300 (leads replica 1 gRPC port), 40000 (somewhere high). " +
        "Reserve them (sysctl -w net.ipv4.ip_local_reserved_ports=...) or move them in mesh/topology.yaml.",
    );
  });
});
