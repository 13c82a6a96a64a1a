/**
 * Per-RPC allow-lists by caller identity, from mesh/topology.yaml (rendered
 * into MESH_PEERS): the first thing every call on the main port meets after
 * its span is started, health and reflection included. A call without a
 * verified peer identity is UNAUTHENTICATED; a peer not listed for that exact
 * path is PERMISSION_DENIED. Each refusal is logged (warn) with the caller and
 * the RPC, and counted in leadmesh_peer_rejections_total{rpc,reason}; so are
 * the refusals of mesh peers that authentication makes after this check
 * (caller.ts: a service its RPC's access rule does not admit, a service token,
 * …), through recordPeerRefusal.
 */
import { type CallContext, Status } from "nice-grpc-common";
import { Counter } from "prom-client";
import { DomainError } from "../errors";
import type { Logger } from "../logger";
import { kernelRegistry } from "../metrics";
import type { MeshConfig, MeshPeers } from "../service-config";
import { PEER_CLAIMED_HEADER, PEER_HEADER, PEER_PROBLEM_HEADER } from "./peer-identity";
import { identityName, type SpiffeScope, spiffeId } from "./spiffe";

/** The caller as the transport proved it. */
export interface MeshPeer {
  spiffeId: string;
  /** Its identity name (the `sa` part) when it is in our trust domain and namespace, else its whole SPIFFE id. */
  name: string;
  /** A service of the mesh (listed in MESH_PEERS, neither the edge nor the operator): may call as itself. */
  isService: boolean;
  /** The edge (Envoy): its calls without a token are browsers' calls without one, ordinary 401s rather than mesh refusals. */
  isEdge: boolean;
}

/** Named meshPeer: nice-grpc's CallContext.peer is already the TCP address. */
export interface PeerContext {
  meshPeer: MeshPeer;
}

/**
 * Why a mesh peer was refused. The allow-list: no_identity, not_allowed.
 * Authentication, after it (caller.ts): no_token (the operator calling
 * without a user's token where one is needed), service_token (a JWT with the
 * retired role "service"), service_not_allowed_by_rule (a service on an RPC
 * whose access rule admits no services), no_tenant and malformed_tenant (a
 * service naming no tenant, or a malformed one, in leadmesh-tenant).
 */
export type RejectionReason = "no_identity" | "not_allowed" | "no_token" | "service_token" | "service_not_allowed_by_rule" | "no_tenant" | "malformed_tenant";

export type AccessDecision = { allowed: true; peer: MeshPeer } | { allowed: false; reason: "no_identity" | "not_allowed"; caller: string; message: string };

/**
 * ErrorInfo metadata of a refusal by the allow-list: a caller relaying a
 * callee's refusal (error-middleware.ts) tells the deployment's refusal of
 * itself, which is no user's fault, from a refusal of the user it acted for.
 */
export const REFUSED_BY_KEY = "refused_by";
export const REFUSED_BY_ALLOW_LIST = "mesh_allow_list";

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
  /** Identity name of the edge. */
  edge: string;
}

export function peerAccessSettings(config: MeshConfig): PeerAccessSettings {
  const scope = { trustDomain: config.meshTrustDomain, namespace: config.meshNamespace };
  const services = Object.keys(config.meshPeers).filter((name) => name !== config.meshEdgeIdentity && name !== config.meshOperatorIdentity);
  return { allowList: peerAllowList(config.meshPeers, scope), scope, services: new Set(services), edge: config.meshEdgeIdentity };
}

/** Whether the peer (a verified SPIFFE id, or undefined with the transport's reason) may call `path`. */
export function decidePeerAccess(settings: PeerAccessSettings, path: string, id: string | undefined, problem = "no verified peer identity"): AccessDecision {
  if (id === undefined) {
    return { allowed: false, reason: "no_identity", caller: "unknown", message: `${path} requires a verified mesh identity: ${problem}` };
  }
  if (!settings.allowList.get(path)?.has(id)) {
    return { allowed: false, reason: "not_allowed", caller: id, message: `${identityName(id, settings.scope)} may not call ${path} (see mesh/topology.yaml)` };
  }
  return { allowed: true, peer: admittedPeerOf(settings, id) };
}

/** Admitted peers by SPIFFE id, made once: ids on the allow-list, a handful per service. */
const admittedPeers = new WeakMap<PeerAccessSettings, Map<string, MeshPeer>>();

function admittedPeerOf(settings: PeerAccessSettings, id: string): MeshPeer {
  let peers = admittedPeers.get(settings);
  if (!peers) {
    peers = new Map();
    admittedPeers.set(settings, peers);
  }
  let peer = peers.get(id);
  if (!peer) {
    const name = identityName(id, settings.scope);
    // A service name outside our scope would be a whole SPIFFE id, never in `services`.
    peer = Object.freeze({ spiffeId: id, name, isService: settings.services.has(name), isEdge: name === settings.edge });
    peers.set(id, peer);
  }
  return peer;
}

let rejections: Counter<"rpc" | "reason"> | undefined;

/**
 * One counter per process, however many servers (tests start several).
 * Made before the metrics server starts: it serves the metrics that exist
 * when it merges the registries.
 */
export function rejectionCounter(): Counter<"rpc" | "reason"> {
  rejections ??= new Counter({
    name: "leadmesh_peer_rejections_total",
    help: "Calls of mesh peers refused, by RPC and reason: by the identity allow-lists (no_identity, not_allowed) or by the auth middleware after them (no_token, service_token, service_not_allowed_by_rule, no_tenant, malformed_tenant)",
    labelNames: ["rpc", "reason"],
    registers: [kernelRegistry],
  });
  return rejections;
}

export interface PeerRefusal {
  /** The caller's verified SPIFFE id, or "unknown". */
  peer: string;
  rpc: string;
  reason: RejectionReason;
  detail: string;
  /** TCP address of the caller. */
  address?: string;
  /** The SPIFFE id an untrusted certificate claimed (not verified). */
  claimed?: string;
}

/** Logs (warn) and counts a refused mesh peer: one log line and one metric for every refusal, whichever layer made it. */
export function recordPeerRefusal(logger: Logger, refusal: PeerRefusal): void {
  rejectionCounter().inc({ rpc: refusal.rpc, reason: refusal.reason });
  logger.warn(refusal, "mesh peer refused");
}

/** The verified caller of `path` if the allow-list admits it; otherwise the refusal, logged and counted, is thrown. */
export function admittedPeer(settings: PeerAccessSettings, logger: Logger, path: string, context: CallContext): MeshPeer {
  const decision = decidePeerAccess(settings, path, context.metadata.get(PEER_HEADER), context.metadata.get(PEER_PROBLEM_HEADER));
  if (decision.allowed) return decision.peer;
  const claimed = context.metadata.get(PEER_CLAIMED_HEADER);
  recordPeerRefusal(logger, {
    peer: decision.caller,
    rpc: path,
    reason: decision.reason,
    detail: decision.message,
    address: context.peer,
    ...(claimed ? { claimed } : {}),
  });
  const code = decision.reason === "no_identity" ? Status.UNAUTHENTICATED : Status.PERMISSION_DENIED;
  throw new DomainError(code, decision.reason === "no_identity" ? "UNAUTHENTICATED" : "PERMISSION_DENIED", decision.message, {
    [REFUSED_BY_KEY]: REFUSED_BY_ALLOW_LIST,
  });
}
