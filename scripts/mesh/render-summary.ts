/**
 * Renders the mesh model as a reviewer reads it: per service its ports,
 * datastores, which RPCs it calls and who calls it, its topics, and each RPC
 * with its access rule, REST binding, idempotency and the identities (mTLS
 * peers) that may call it. Committed as test/golden/mesh-model.txt: a change to proto/ or to the
 * topology that changes who may do what shows up in review as a diff.
 */
import { type AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import type { Idempotency } from "@leadmesh/platform";
import { HEALTH_RPC_PATHS, type MeshModel, peerAllowList, REFLECTION_RPC_PATHS, type RpcModel, type ServiceModel } from "./model";

const IDEMPOTENCY_TEXT: Record<Idempotency, string> = { UNKNOWN: "has side effects", NO_SIDE_EFFECTS: "no side effects", IDEMPOTENT: "idempotent" };

function accessText(rule: AccessRule | undefined): string {
  if (!rule) return "NO ACCESS RULE";
  if (rule.public) return "public";
  const parts = [
    rule.roles.length > 0 && `roles ${rule.roles.map((role) => Role[role].replace("ROLE_", "").toLowerCase()).join("/")}`,
    rule.selfField && `self ${rule.selfField}`,
    rule.services && "services",
  ].filter(Boolean);
  return parts.join(" + ") || "nobody";
}

function rpcLine(rpc: RpcModel): string {
  const http = rpc.http.map((binding) => `${binding.verb.toUpperCase()} ${binding.pattern}`).join(", ") || "no REST";
  const edge = rpc.edge ? "" : "; not routed at the edge";
  return `    ${rpc.path}\n      ${accessText(rpc.access)}; ${http}; ${IDEMPOTENCY_TEXT[rpc.idempotency]}${edge}\n      peers: ${rpc.peers.join(", ")}`;
}

function callsText(service: ServiceModel): string {
  const entries = Object.entries(service.calls).map(([callee, rpcs]) => `${callee} (${rpcs.join(", ") || "nothing"})`);
  return entries.join(", ") || "none";
}

/** Peers of the platform RPCs on the main port, read back from the allow-list MESH_PEERS renders. */
function platformRpcLines(model: MeshModel, service: ServiceModel): string[] {
  const allowList = peerAllowList(model, service);
  return [...HEALTH_RPC_PATHS, ...REFLECTION_RPC_PATHS].map((path) => {
    const peers = Object.keys(allowList).filter((peer) => allowList[peer].includes(path));
    return `    ${path}\n      peers: ${peers.join(", ")}`;
  });
}

export function renderMeshSummary(model: MeshModel): string {
  const lines = [
    `# GENERATED from ${model.source} and the descriptor set by scripts/mesh/render-summary.ts (npm run generate); do not edit.`,
    `mesh: mTLS identities spiffe://${model.mesh.trustDomain}/ns/${model.mesh.namespace}/sa/<name>; edge ${model.mesh.edge}, operator ${model.mesh.operator}`,
    `identity: tokens from ${model.identity.service} (iss ${model.identity.issuer}, aud ${model.identity.audience}), JWKS ${model.identity.jwks}`,
  ];
  for (const service of model.services) {
    const ports = service.localReplicaPorts.map((replica) => `${replica.grpc}/${replica.health}/${replica.metrics}`).join(", ");
    lines.push(
      "",
      `${service.name} (${service.package}): ${service.implemented ? "implemented" : "contract only"}${service.ingress ? ", behind the ingress" : ""}`,
      `  replicas ${service.replicas}, local grpc/health/metrics ${ports}`,
      `  datastores: ${service.datastores.join(", ") || "none"}`,
      `  calls: ${callsText(service)}`,
      `  called by: ${service.callers.join(", ") || "none"}`,
      `  publishes: ${service.publishes.join(", ") || "none"}`,
      `  consumes: ${service.consumes.join(", ") || "none"}`,
      `  rpcs:`,
      ...service.rpcs.map(rpcLine),
      `  platform rpcs (main port):`,
      ...platformRpcLines(model, service),
    );
  }
  return `${lines.join("\n")}\n`;
}
