/**
 * The mesh model: one typed, pure value built from mesh/topology.yaml and the
 * descriptor set (proto/ as compiled by buf, read through the platform's
 * contracts reader). The launcher, the test harnesses, the authorization
 * matrix, the Envoy renderer and the bench all read it, so a fact about a
 * service (its ports, environment, datastores, identity, callers, topics,
 * RPCs with their access rules, REST bindings and the identities allowed to
 * call each) is written down once.
 *
 * buildMeshModel is pure (topology + contracts in, model out); loadMeshModel
 * does the reading.
 */
import type { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { type Contracts, contracts, type HttpBinding, type Idempotency, type MethodContract } from "@leadmesh/platform";
import { resolveCalls } from "./model-peers";
import { eventTopics, topicProblems } from "./model-topics";
import { loadTopology, type ServiceDeclaration, type ServicePorts, type Topology, TopologyError } from "./topology";

export { HEALTH_RPC_PATHS, meshIdentities, peerAllowList, REFLECTION_RPC_PATHS, rpcPathOf, spiffeIdOf } from "./model-peers";

export interface RpcModel {
  /** gRPC path, "/leads.v1.LeadService/GetLead". */
  path: string;
  /** Fully-qualified gRPC service, "leads.v1.LeadService". */
  grpcService: string;
  method: string;
  access: AccessRule | undefined;
  /** Primary binding first; empty when the RPC has no REST path. */
  http: HttpBinding[];
  idempotency: Idempotency;
  retryable: boolean;
  /** Routed by the edge: public, or some user (a role or the self field) may call it. */
  edge: boolean;
  /**
   * Identity names allowed to call this exact RPC over mTLS, sorted: the edge
   * (if `edge` and the service is behind the ingress), the operator, every
   * service whose `calls` lists it, and for identity.jwks every other service
   * that verifies tokens.
   */
  peers: string[];
  /** The services among `peers` (neither the edge nor the operator). */
  servicePeers: string[];
}

export interface ServiceModel extends Omit<ServiceDeclaration, "publishes" | "consumes"> {
  /** Fully-qualified gRPC services of its proto package. */
  grpcServices: string[];
  rpcs: RpcModel[];
  /** Services allowed to call some RPC of it (its RPCs' servicePeers), sorted. */
  callers: string[];
  /** Ports of each replica on a developer machine (replica r: local + r). */
  localReplicaPorts: ServicePorts[];
  /** Topics (fully-qualified event messages, the DomainEvent.type) it emits. */
  publishes: string[];
  /** Topics it reads, with "<package>.*" expanded. */
  consumes: string[];
  /** Any RPC needs a verified caller: the revocation list in Redis is then required. */
  verifiesTokens: boolean;
}

export interface MeshModel extends Omit<Topology, "services"> {
  services: ServiceModel[];
}

/**
 * Whether callers outside the mesh may reach an RPC: it is public, or some
 * user can call it (a role or a self field). RPCs only services may call (and
 * RPCs without a rule, which no service would start with) get no edge route,
 * so no token from outside can ever reach them.
 */
export function reachableFromOutside(rule: AccessRule | undefined): boolean {
  if (!rule) return false;
  return rule.public || rule.roles.length > 0 || rule.selfField !== "";
}

/** Services whose `calls` name `name` (identity.jwks callers aside: see ServiceModel.callers). */
export function callersOf(topology: Pick<Topology, "services">, name: string): string[] {
  return topology.services.filter((service) => Object.hasOwn(service.calls, name)).map((service) => service.name);
}

/** Any RPC of the package needs a verified caller: the service verifies access tokens (JWKS, revocation list). */
function verifiesTokensIn(source: Contracts, protoPackage: string): boolean {
  return source.methodsOfPackage(protoPackage).some((method) => !method.access?.public);
}

export function loadMeshModel(topologyPath?: string, source: Contracts = contracts()): MeshModel {
  return buildMeshModel(loadTopology(topologyPath), source);
}

export function buildMeshModel(topology: Topology, source: Contracts): MeshModel {
  const problems: string[] = [];
  const serviceNames = new Set(topology.services.map((service) => service.name));
  const calls = resolveCalls(topology, source, (service) => verifiesTokensIn(source, service.package));
  problems.push(...calls.problems);
  const services = topology.services.map((declaration): ServiceModel => {
    const at = `services.${declaration.name}`;
    const grpcServices = source.servicesOfPackage(declaration.package);
    if (grpcServices.length === 0) problems.push(`${at}.package: "${declaration.package}" declares no gRPC service in proto/ (or run 'npm run generate')`);
    const rpcs = source.methodsOfPackage(declaration.package).map((method) => {
      const edge = reachableFromOutside(method.access);
      const servicePeers = [...(calls.servicePeersByPath.get(method.path) ?? [])].sort();
      const peers = [...servicePeers, topology.mesh.operator, ...(edge && declaration.ingress ? [topology.mesh.edge] : [])].sort();
      return rpcModel(method, edge, peers, servicePeers);
    });
    for (const rpc of rpcs) {
      if (declaration.implemented && !rpc.access) problems.push(`${at}: ${rpc.path} declares no (common.v1.access) rule; the service would refuse to start`);
    }
    const verifiesTokens = verifiesTokensIn(source, declaration.package);
    if (verifiesTokens && !declaration.datastores.includes("redis")) {
      problems.push(`${at}.datastores: must include redis: its RPCs verify access tokens, whose revocation list is in Redis`);
    }
    if (declaration.implemented) {
      const unimplemented = Object.keys(declaration.calls).filter(
        (callee) => serviceNames.has(callee) && !topology.services.some((service) => service.name === callee && service.implemented),
      );
      for (const callee of unimplemented) problems.push(`${at}.calls.${callee}: "${callee}" is not implemented, so nothing would answer its calls`);
    }
    return {
      ...declaration,
      grpcServices,
      rpcs,
      callers: [...new Set(rpcs.flatMap((rpc) => rpc.servicePeers))].sort(),
      localReplicaPorts: Array.from({ length: declaration.replicas }, (_, replica) => ({
        grpc: declaration.local.grpc + replica,
        health: declaration.local.health + replica,
        metrics: declaration.local.metrics + replica,
      })),
      ...eventTopics(declaration, topology.services),
      verifiesTokens,
    };
  });
  problems.push(...topicProblems(topology.services, source));
  if (problems.length > 0) throw new TopologyError(topology.source, problems);
  return { ...topology, services };
}

function rpcModel(method: MethodContract, edge: boolean, peers: string[], servicePeers: string[]): RpcModel {
  return {
    path: method.path,
    grpcService: method.service,
    method: method.method,
    access: method.access,
    http: method.http,
    idempotency: method.idempotency,
    retryable: method.retryable,
    edge,
    peers,
    servicePeers,
  };
}

/** The service called `name`; an unknown name is a programming error worth a clear message. */
export function serviceOf(model: MeshModel, name: string): ServiceModel {
  const service = model.services.find((candidate) => candidate.name === name);
  if (!service) throw new Error(`${model.source} declares no service "${name}" (known: ${model.services.map((s) => s.name).join(", ")})`);
  return service;
}

/** Services the launcher starts: those with an implementation. */
export function implementedServices(model: MeshModel): ServiceModel[] {
  return model.services.filter((service) => service.implemented);
}

/** Services Envoy routes to: implemented and declared `ingress`. */
export function ingressServices(model: MeshModel): ServiceModel[] {
  return implementedServices(model).filter((service) => service.ingress);
}
