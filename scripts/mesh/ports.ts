/**
 * Fixed local ports: checked before anything starts, so a taken port fails
 * the launch with one line naming the port, what it was for and who holds
 * it, instead of one component dying with EADDRINUSE halfway through.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";

/** A port the mesh will listen on, and what for ("leads replica 2 probe port"). */
export interface PortUse {
  port: number;
  purpose: string;
}

export interface PortRange {
  low: number;
  high: number;
}

/** Whether a listener could bind 127.0.0.1:port right now. */
export function canListen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Throws one line when a port of `uses` cannot be listened on now: the first
 * taken one with its use and holder, then how many more are taken (usually
 * the same holder: another mesh still running).
 */
export async function assertPortsFree(uses: PortUse[]): Promise<void> {
  const taken: PortUse[] = [];
  for (const use of uses) {
    if (!(await canListen(use.port))) taken.push(use);
  }
  if (taken.length === 0) return;
  const [first, ...others] = taken;
  const more =
    others.length > 0
      ? ` (${others.length} more taken: ${others
          .slice(0, 6)
          .map((use) => use.port)
          .join(", ")}${others.length > 6 ? ", ..." : ""})`
      : "";
  throw new Error(
    `port ${first.port} (${first.purpose}) is taken by ${portHolder(first.port)}${more}. Stop that process (another 'npm start'?) or change the port in mesh/topology.yaml.`,
  );
}

const TCP_STATES: Record<string, string> = { "01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN" };

/**
 * Who holds a local TCP port: "pid 123 (node services/leads/dist/main.js)",
 * from /proc/net/tcp{,6} (socket inode) and /proc/<pid>/fd (who owns that
 * inode), else from `ss -ltnp`; "unknown holder" when neither can tell.
 */
export function portHolder(port: number): string {
  const sockets = socketsOnPort(port);
  const inodes = new Set(sockets.map((socket) => socket.inode).filter((inode) => inode !== "0"));
  if (inodes.size > 0) {
    const owner = processOwningSocket(inodes);
    if (owner) return owner;
  }
  const fromSs = holderFromSs(port);
  if (fromSs) return fromSs;
  // A socket with inode 0 belongs to no process any more, e.g. a closed connection in TIME_WAIT.
  if (sockets.length > 0) return `a ${TCP_STATES[sockets[0].state] ?? `state ${sockets[0].state}`} connection no process owns`;
  return "unknown holder";
}

function socketsOnPort(port: number): { state: string; inode: string }[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const sockets: { state: string; inode: string }[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !fields[1].endsWith(`:${hexPort}`)) continue;
      sockets.push({ state: fields[3], inode: fields[9] });
    }
  }
  // The listener is the one that blocks a bind; list it first.
  return sockets.sort((a, b) => Number(b.state === "0A") - Number(a.state === "0A"));
}

function processOwningSocket(inodes: Set<string>): string | undefined {
  const wanted = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    let descriptors: string[];
    try {
      descriptors = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's process
    }
    for (const descriptor of descriptors) {
      try {
        if (wanted.has(readlinkSync(`/proc/${pid}/fd/${descriptor}`))) return `pid ${pid} (${commandLine(pid)})`;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

function commandLine(pid: string): string {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return command.length > 120 ? `${command.slice(0, 117)}...` : command || "no command line";
  } catch {
    return "command unknown";
  }
}

function holderFromSs(port: number): string | undefined {
  try {
    const output = execFileSync("ss", ["-Htlnp", `sport = :${port}`], { encoding: "utf8", timeout: 2_000, stdio: ["ignore", "pipe", "ignore"] });
    const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(output);
    return match ? `pid ${match[2]} (${match[1]})` : undefined;
  } catch {
    return undefined;
  }
}

/** The range Linux picks local ports of outgoing connections from, if readable. */
export function ephemeralPortRange(path = "/proc/sys/net/ipv4/ip_local_port_range"): PortRange | undefined {
  try {
    const [low, high] = readFileSync(path, "utf8").trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && Number.isInteger(high) ? { low, high } : undefined;
  } catch {
    return undefined;
  }
}

/** Ports excluded from the ephemeral range (net.ipv4.ip_local_reserved_ports: "20100-20109,27117"). */
export function reservedPorts(path = "/proc/sys/net/ipv4/ip_local_reserved_ports"): PortRange[] {
  try {
    return readFileSync(path, "utf8")
      .trim()
      .split(",")
      .filter(Boolean)
      .map((part) => {
        const [low, high = low] = part.split("-").map(Number);
        return { low, high };
      });
  } catch {
    return [];
  }
}

/**
 * The fixed ports an outgoing connection could take from under us: inside
 * the ephemeral range and not reserved. Empty when the topology is safe here.
 */
export function portsAtRisk(uses: PortUse[], range: PortRange | undefined, reserved: PortRange[]): PortUse[] {
  if (!range) return [];
  const within = (port: number, { low, high }: PortRange) => port >= low && port <= high;
  return uses.filter((use) => within(use.port, range) && !reserved.some((block) => within(use.port, block)));
}

/** One warning line when fixed ports lie in this machine's ephemeral range, else undefined. */
export function ephemeralRangeWarning(uses: PortUse[], range = ephemeralPortRange(), reserved = reservedPorts()): string | undefined {
  const atRisk = portsAtRisk(uses, range, reserved);
  if (atRisk.length === 0 || !range) return undefined;
  const listed = atRisk.map((use) => `${use.port} (${use.purpose})`);
  return (
    `warning: ${atRisk.length} fixed port(s) lie in this machine's ephemeral port range ${range.low}-${range.high} ` +
    `(/proc/sys/net/ipv4/ip_local_port_range), so any outgoing connection may take them and the launch then fails at random: ` +
    `${listed.slice(0, 5).join(", ")}${listed.length > 5 ? ", ..." : ""}. ` +
    `Reserve them (sysctl -w net.ipv4.ip_local_reserved_ports=...) or move them in mesh/topology.yaml.`
  );
}
