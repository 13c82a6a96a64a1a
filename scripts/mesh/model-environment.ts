/**
 * The environment contract: what a service process receives, derived from the
 * mesh model. The platform's service config (services/platform/src/
 * service-config.ts) reads these variables; the local launcher, the in-process
 * test harness and the bench all build a service's environment here, so a
 * service without Redis gets no REDIS_URL anywhere, and a peer address exists
 * exactly for the services it calls.
 */
import { type MeshModel, type ServiceModel, serviceOf } from "./model";
import type { ServicePorts } from "./topology";

export interface ServiceAddresses {
  bindHost: string;
  /** Ports of this process (one replica). */
  ports: ServicePorts;
  /** Required when the service declares mongodb. */
  mongoUrl?: string;
  /** Required when the service declares redis. */
  redisUrl?: string;
  /** gRPC "host:port" by service name; the service's callees and the identity service are taken from it. */
  peers: Record<string, string>;
}

/** "users" → "USERS_ADDRESS", "lead-scoring" → "LEAD_SCORING_ADDRESS". */
export function addressVariable(service: string): string {
  return `${service.toUpperCase().replace(/-/g, "_")}_ADDRESS`;
}

/** Services whose address a service needs: those it calls, and the token issuer for its JWKS. */
export function peersOf(model: MeshModel, service: ServiceModel): string[] {
  const peers = new Set(service.calls);
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
  environment.MESH_CALLERS = service.callers.join(",");
  environment.AUTH_ISSUER = model.identity.issuer;
  environment.AUTH_AUDIENCE = model.identity.audience;
  for (const peer of peersOf(model, service)) {
    environment[addressVariable(peer)] = addresses.peers[peer] ?? throwError(missing(`address of ${peer}`));
  }
  return environment;
}

function throwError(error: Error): never {
  throw error;
}
