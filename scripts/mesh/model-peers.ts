/**
 * Workload identities and per-RPC allow-lists of the mesh model. Every
 * connection in the mesh is mutual TLS; the verified certificate's SPIFFE id
 * names the caller (a service, the edge or the operator), and each service
 * accepts a call only from the identities allowed for that exact RPC. The
 * allow-lists are derived here from mesh/topology.yaml (`calls`,
 * identity.jwks, mesh.edge / mesh.operator) and the access rules in proto/,
 * and rendered into each service's MESH_PEERS.
 */
import type { Contracts } from "@leadmesh/platform";
import type { MeshIdentity } from "./certificates";
import type { MeshModel, ServiceModel } from "./model";
import type { ServiceDeclaration, Topology } from "./topology";

/** grpc.health.v1 on every service's main port: the edge's health checks, operators' probes, and services checking their peers. */
export const HEALTH_RPC_PATHS = ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"] as const;
/** Server reflection (both versions grpcurl may ask for): operators only, it lists every RPC. */
export const REFLECTION_RPC_PATHS = [
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
] as const;

/** "users.v1" + "UserService.GetUser" → "/users.v1.UserService/GetUser". */
export function rpcPathOf(protoPackage: string, rpcName: string): string {
  const dot = rpcName.indexOf(".");
  return `/${protoPackage}.${rpcName.slice(0, dot)}/${rpcName.slice(dot + 1)}`;
}

export interface ResolvedCalls {
  /** gRPC path → the services allowed to call it (from `calls` and identity.jwks). */
  servicePeersByPath: Map<string, Set<string>>;
  problems: string[];
}

/**
 * Resolves every `calls` entry and identity.jwks to gRPC paths, checking that
 * each names an RPC of the callee's package that declares an access rule.
 * `verifiesTokens` tells which services fetch the JWKS.
 */
export function resolveCalls(topology: Topology, source: Contracts, verifiesTokens: (service: ServiceDeclaration) => boolean): ResolvedCalls {
  const servicePeersByPath = new Map<string, Set<string>>();
  const problems: string[] = [];
  const allow = (path: string, caller: string) => {
    const peers = servicePeersByPath.get(path) ?? new Set<string>();
    peers.add(caller);
    servicePeersByPath.set(path, peers);
  };
  const byName = new Map(topology.services.map((service) => [service.name, service]));
  for (const caller of topology.services) {
    for (const [calleeName, rpcNames] of Object.entries(caller.calls)) {
      const callee = byName.get(calleeName);
      if (!callee) continue; // topology.ts reports unknown callees
      for (const rpcName of rpcNames) {
        const problem = rpcProblem(source, callee.package, rpcName);
        if (problem) problems.push(`services.${caller.name}.calls.${calleeName}: ${problem}`);
        else allow(rpcPathOf(callee.package, rpcName), caller.name);
      }
    }
  }
  const issuer = byName.get(topology.identity.service);
  if (issuer) {
    const problem = rpcProblem(source, issuer.package, topology.identity.jwks);
    if (problem) problems.push(`identity.jwks: ${problem}`);
    else {
      const jwksPath = rpcPathOf(issuer.package, topology.identity.jwks);
      for (const service of topology.services) if (service !== issuer && verifiesTokens(service)) allow(jwksPath, service.name);
    }
  }
  return { servicePeersByPath, problems };
}

/** Why `rpcName` cannot be allowed on `protoPackage`, or undefined when it can. */
function rpcProblem(source: Contracts, protoPackage: string, rpcName: string): string | undefined {
  const [serviceName] = rpcName.split(".");
  const grpcServices = source.servicesOfPackage(protoPackage);
  if (!grpcServices.includes(`${protoPackage}.${serviceName}`)) {
    const known = grpcServices.map((name) => name.slice(protoPackage.length + 1)).join(", ") || "none";
    return `"${rpcName}": ${protoPackage} has no gRPC service ${serviceName} (it has: ${known})`;
  }
  const method = source.method(rpcPathOf(protoPackage, rpcName));
  if (!method) {
    const known = source
      .methodsOfPackage(protoPackage)
      .filter((candidate) => candidate.service === `${protoPackage}.${serviceName}`)
      .map((candidate) => candidate.method)
      .join(", ");
    return `"${rpcName}" is not an RPC of ${protoPackage}.${serviceName} (its RPCs: ${known})`;
  }
  if (!method.access) return `"${rpcName}" declares no (common.v1.access) rule, so no call to it could pass`;
  return undefined;
}

/** The SPIFFE id of an identity of the mesh: spiffe://<trustDomain>/ns/<namespace>/sa/<name>. */
export function spiffeIdOf(model: Pick<MeshModel, "mesh" | "services" | "source">, name: string): string {
  const known = [...model.services.map((service) => service.name), model.mesh.edge, model.mesh.operator];
  if (!known.includes(name)) throw new Error(`${model.source} declares no identity "${name}" (known: ${known.join(", ")})`);
  return `spiffe://${model.mesh.trustDomain}/ns/${model.mesh.namespace}/sa/${name}`;
}

/**
 * Identities that get a certificate: every declared service (one not yet
 * implemented included, so that tests can play a declared caller such as
 * buyers calling leads), the edge and the operator.
 */
export function meshIdentities(model: MeshModel): MeshIdentity[] {
  const names = [...model.services.map((service) => service.name), model.mesh.edge, model.mesh.operator];
  return names.map((name) => ({ name, spiffeId: spiffeIdOf(model, name) }));
}

/**
 * What each identity may call on `service`'s main port: its RPCs' peers, plus
 * health (edge, operator, every implemented service) and reflection
 * (operator). Keys and paths sorted, so the rendered MESH_PEERS is stable.
 */
export function peerAllowList(model: MeshModel, service: ServiceModel): Record<string, string[]> {
  const allowed = new Map<string, Set<string>>();
  const allow = (peer: string, path: string) => {
    const paths = allowed.get(peer) ?? new Set<string>();
    paths.add(path);
    allowed.set(peer, paths);
  };
  for (const rpc of service.rpcs) for (const peer of rpc.peers) allow(peer, rpc.path);
  const healthPeers = [model.mesh.edge, model.mesh.operator, ...model.services.filter((candidate) => candidate.implemented).map((candidate) => candidate.name)];
  for (const peer of healthPeers) for (const path of HEALTH_RPC_PATHS) allow(peer, path);
  for (const path of REFLECTION_RPC_PATHS) allow(model.mesh.operator, path);
  return Object.fromEntries([...allowed.keys()].sort().map((peer) => [peer, [...(allowed.get(peer) ?? [])].sort()]));
}
