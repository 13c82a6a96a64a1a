/**
 * The environment contract: what a service process receives, derived from the
 * mesh model. The platform's service config (services/platform/src/
 * service-config.ts) reads these variables; the local launcher, the in-process
 * test harness and the bench all build a service's environment here, so a
 * service without Redis gets no REDIS_URL anywhere, a peer address exists
 * exactly for the services it calls, and MESH_PEERS (which identity may call
 * which of its RPCs) is the model's allow-list.
 *
 * A peer address resolves to every replica of the peer, never to one of
 * them: locally a grpc-js target listing each replica
 * (`ipv4:127.0.0.1:20200,127.0.0.1:20201`), in Kubernetes the DNS name of a
 * headless Service (`dns:///users.<ns>.svc.cluster.local:50051`). The
 * platform's client balances round-robin over what it resolves to.
 */
import { isIPv4, isIPv6 } from "node:net";
import { type MeshModel, peerAllowList, type ServiceModel, serviceOf } from "./model";
import type { ServicePorts } from "./topology";

/**
 * How a service secures its connections: `mtls`, its own TLS with the
 * certificate files below; `sidecar`, plaintext behind a mesh sidecar (Istio)
 * that terminates mTLS and forwards the caller's identity.
 */
export type MeshSecurity = "mtls" | "sidecar";

/** Certificate files of one identity (scripts/mesh/certificates.ts meshCertificatePaths). */
export interface TlsFiles {
  /** PEM certificate carrying the service's SPIFFE id. */
  certFile: string;
  /** PEM private key of certFile. */
  keyFile: string;
  /** PEM CA bundle that peers' certificates must chain to. */
  caFile: string;
}

export interface ServiceAddresses {
  bindHost: string;
  /** Ports of this process (one replica). */
  ports: ServicePorts;
  /** Required when the service declares mongodb. */
  mongoUrl?: string;
  /** Required when the service declares redis. */
  redisUrl?: string;
  /**
   * By service name, where its replicas are: a list of the replicas'
   * "ip:port" (rendered as one target, see replicasTarget), or a gRPC target
   * that resolves to all of them ("dns:///users.ns.svc.cluster.local:50051").
   * The service's callees and the identity service are taken from it.
   */
  peers: Record<string, string | readonly string[]>;
  /** Default "mtls". */
  security?: MeshSecurity;
  /** Required when security is "mtls": this service's certificate, key and the mesh CA. */
  tls?: TlsFiles;
}

/**
 * One gRPC target for the replicas at `endpoints` ("ip:port" each):
 * "ipv4:127.0.0.1:20200,127.0.0.1:20201" (grpc-js's static address list),
 * or the endpoint itself when there is one. Host names cannot be listed in
 * one target: give their DNS name as the peer's target instead.
 */
export function replicasTarget(endpoints: readonly string[]): string {
  if (endpoints.length === 0) throw new Error("replicasTarget: no endpoints");
  if (endpoints.length === 1) return endpoints[0];
  const hostOf = (endpoint: string) => endpoint.slice(0, endpoint.lastIndexOf(":"));
  if (endpoints.every((endpoint) => isIPv4(hostOf(endpoint)))) return `ipv4:${endpoints.join(",")}`;
  if (endpoints.every((endpoint) => /^\[.*\]$/.test(hostOf(endpoint)) && isIPv6(hostOf(endpoint).slice(1, -1)))) return `ipv6:${endpoints.join(",")}`;
  throw new Error(`replicasTarget: ${endpoints.join(",")} are not all IPv4 or all bracketed IPv6 "ip:port" (a DNS name resolves to its replicas itself)`);
}

/** "users" → "USERS_ADDRESS", "lead-scoring" → "LEAD_SCORING_ADDRESS". */
export function addressVariable(service: string): string {
  return `${service.toUpperCase().replace(/-/g, "_")}_ADDRESS`;
}

/** Services whose address a service needs: those it calls, and the token issuer for its JWKS. */
export function peersOf(model: MeshModel, service: ServiceModel): string[] {
  const peers = new Set(Object.keys(service.calls));
  if (service.verifiesTokens && service.name !== model.identity.service) peers.add(model.identity.service);
  return [...peers].sort();
}

export function serviceEnvironment(model: MeshModel, name: string, addresses: ServiceAddresses): Record<string, string> {
  const service = serviceOf(model, name);
  const missing = (what: string) => new Error(`environment of ${name}: no ${what} given, but ${model.source} needs it`);
  const environment: Record<string, string> = {
    BIND_HOST: addresses.bindHost,
    GRPC_PORT: String(addresses.ports.grpc),
    HEALTH_PORT: String(addresses.ports.health),
    METRICS_PORT: String(addresses.ports.metrics),
  };
  if (service.datastores.includes("mongodb")) environment.MONGO_URL = addresses.mongoUrl ?? throwError(missing("mongoUrl (datastores: mongodb)"));
  if (service.datastores.includes("redis")) environment.REDIS_URL = addresses.redisUrl ?? throwError(missing("redisUrl (datastores: redis)"));
  const security = addresses.security ?? "mtls";
  environment.MESH_SECURITY = security;
  environment.MESH_TRUST_DOMAIN = model.mesh.trustDomain;
  environment.MESH_NAMESPACE = model.mesh.namespace;
  environment.MESH_EDGE_IDENTITY = model.mesh.edge;
  environment.MESH_OPERATOR_IDENTITY = model.mesh.operator;
  environment.MESH_IDENTITY_SERVICE = model.identity.service;
  environment.MESH_PEERS = JSON.stringify(peerAllowList(model, service));
  if (security === "mtls") {
    const tls = addresses.tls ?? throwError(missing("tls (certificate files; MESH_SECURITY=mtls)"));
    environment.TLS_CERT_FILE = tls.certFile;
    environment.TLS_KEY_FILE = tls.keyFile;
    environment.TLS_CA_FILE = tls.caFile;
  }
  environment.AUTH_ISSUER = model.identity.issuer;
  environment.AUTH_AUDIENCE = model.identity.audience;
  for (const peer of peersOf(model, service)) {
    const where = addresses.peers[peer] ?? throwError(missing(`address of ${peer}`));
    environment[addressVariable(peer)] = typeof where === "string" ? where : replicasTarget(where);
  }
  return environment;
}

function throwError(error: Error): never {
  throw error;
}
