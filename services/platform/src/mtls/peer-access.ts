/**
 * Per-RPC allow-lists by caller identity, from mesh/topology.yaml (rendered
 * into MESH_PEERS): the first thing every call on the main port meets after
 * the error status guard, health and reflection included. A call without a
 * verified peer identity is UNAUTHENTICATED; a peer not listed for that exact
 * path is PERMISSION_DENIED. Each refusal is logged (warn) with the caller and
 * the RPC, and counted in leadmesh_peer_rejections_total{rpc,reason}.
 */
import type { ServerMiddleware } from "nice-grpc-common";
import { Counter } from "prom-client";
import { PermissionDeniedError, UnauthenticatedError } from "../errors";
import type { Logger } from "../logger";
import { kernelRegistry } from "../metrics";
import type { MeshConfig, MeshPeers } from "../service-config";
import { PEER_HEADER, PEER_PROBLEM_HEADER } from "./peer-identity";
import { identityName, type SpiffeScope, spiffeId } from "./spiffe";

/** The caller as the transport proved it. */
export interface MeshPeer {
  spiffeId: string;
  /** Its identity name (the `sa` part) when it is in our trust domain and namespace, else its whole SPIFFE id. */
  name: string;
  /** A service of the mesh (listed in MESH_PEERS, neither the edge nor the operator): may call as itself. */
  isService: boolean;
}

/** Named meshPeer: nice-grpc's CallContext.peer is already the TCP address. */
export interface PeerContext {
  meshPeer: MeshPeer;
}

export type RejectionReason = "no_identity" | "not_allowed";

export type AccessDecision = { allowed: true; peer: MeshPeer } | { allowed: false; reason: RejectionReason; caller: string; message: string };

/** gRPC path → SPIFFE ids allowed to call it. */
export type PeerAllowList = ReadonlyMap<string, ReadonlySet<string>>;

export function peerAllowList(peers: MeshPeers, scope: SpiffeScope): PeerAllowList {
  const allowList = new Map<string, Set<string>>();
  for (const [name, paths] of Object.entries(peers)) {
    for (const path of paths) {
      const ids = allowList.get(path) ?? new Set<string>();
      ids.add(spiffeId(scope, name));
      allowList.set(path, ids);
    }
  }
  return allowList;
}

export interface PeerAccessSettings {
  allowList: PeerAllowList;
  scope: SpiffeScope;
  /** Identity names that call as themselves (service callers). */
  services: ReadonlySet<string>;
}

export function peerAccessSettings(config: MeshConfig): PeerAccessSettings {
  const scope = { trustDomain: config.meshTrustDomain, namespace: config.meshNamespace };
  const services = Object.keys(config.meshPeers).filter((name) => name !== config.meshEdgeIdentity && name !== config.meshOperatorIdentity);
  return { allowList: peerAllowList(config.meshPeers, scope), scope, services: new Set(services) };
}

/** Whether the peer (a verified SPIFFE id, or undefined with the transport's reason) may call `path`. */
export function decidePeerAccess(settings: PeerAccessSettings, path: string, id: string | undefined, problem = "no verified peer identity"): AccessDecision {
  if (id === undefined) {
    return { allowed: false, reason: "no_identity", caller: "unknown", message: `${path} requires a verified mesh identity: ${problem}` };
  }
  const name = identityName(id, settings.scope);
  if (!settings.allowList.get(path)?.has(id)) {
    return { allowed: false, reason: "not_allowed", caller: id, message: `${name} may not call ${path} (see mesh/topology.yaml)` };
  }
  // A service name outside our scope would be a whole SPIFFE id, never in `services`.
  return { allowed: true, peer: { spiffeId: id, name, isService: settings.services.has(name) } };
}

let rejections: Counter<"rpc" | "reason"> | undefined;

/** One counter per process, however many servers (tests start several). */
function rejectionCounter(): Counter<"rpc" | "reason"> {
  rejections ??= new Counter({
    name: "leadmesh_peer_rejections_total",
    help: "Calls refused by the mesh identity allow-lists, by RPC and reason (no_identity, not_allowed)",
    labelNames: ["rpc", "reason"],
    registers: [kernelRegistry],
  });
  return rejections;
}

export function peerAccessMiddleware(settings: PeerAccessSettings, logger: Logger): ServerMiddleware<PeerContext> {
  const counter = rejectionCounter();
  return async function* checkPeer(call, context) {
    const path = call.method.path;
    const decision = decidePeerAccess(settings, path, context.metadata.get(PEER_HEADER), context.metadata.get(PEER_PROBLEM_HEADER));
    if (!decision.allowed) {
      counter.inc({ rpc: path, reason: decision.reason });
      logger.warn({ peer: decision.caller, rpc: path, reason: decision.reason, detail: decision.message, address: context.peer }, "mesh peer refused");
      throw decision.reason === "no_identity" ? new UnauthenticatedError(decision.message) : new PermissionDeniedError(decision.message);
    }
    return yield* call.next(call.request, { ...context, meshPeer: decision.peer });
  };
}
