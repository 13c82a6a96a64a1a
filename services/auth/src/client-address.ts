/**
 * The client address that throttling keys on. x-forwarded-for is only
 * believed when the TCP peer is a trusted proxy (the edge Envoy, which
 * appends the address it saw as the last entry); anyone else gets their own
 * peer address. IPv6 clients are grouped by /64, the block one subscriber
 * typically controls, so rotating addresses inside it gains nothing.
 */
import { BlockList, isIP, isIPv6 } from "node:net";
import type { CallContext } from "nice-grpc-common";

export function trustedProxies(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split("/");
    list.addSubnet(address, Number(bits), isIPv6(address) ? "ipv6" : "ipv4");
  }
  return list;
}

function peerAddress(peer: string): string {
  return peer
    .replace(/^ipv[46]:/, "")
    .replace(/^\[(.*)\](:\d+)?$/, "$1")
    .replace(/^([\d.]+):\d+$/, "$1");
}

function throttleKey(address: string): string {
  if (!isIPv6(address)) return address;
  const expanded = expandIPv6(address);
  return expanded ? `${expanded.slice(0, 4).join(":")}::/64` : address;
}

function expandIPv6(address: string): string[] | undefined {
  const [head, tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  if (address.includes("::")) return [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return left.length === 8 ? left : undefined;
}

/**
 * Never "" and never a non-address from a proxy: a forwarded hop that is not
 * an IP address falls back to the TCP peer, and a peer that is not one (a
 * Unix socket, an unknown transport) keys on its raw description, so such
 * callers never share one bucket with every other unparseable caller.
 */
export function clientAddress(context: Pick<CallContext, "metadata" | "peer">, proxies: BlockList): string {
  const peer = peerAddress(context.peer);
  if (isIP(peer) === 0) return `peer:${context.peer.slice(0, 100) || "unknown"}`;
  const family = isIPv6(peer) ? "ipv6" : "ipv4";
  const forwarded = context.metadata.get("x-forwarded-for");
  const lastHop = forwarded?.split(",").pop()?.trim() ?? "";
  const viaProxy = isIP(lastHop) !== 0 && proxies.check(peer, family);
  return throttleKey(viaProxy ? lastHop : peer);
}
