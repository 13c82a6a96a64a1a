import { type ConfigSpec, config, type EnvSource, loadConfig } from "./config";

/** Datastores a service may declare (mesh/topology.yaml `datastores`). */
export type Datastore = "mongodb" | "redis";
export const ALL_DATASTORES: readonly Datastore[] = ["mongodb", "redis"];

/** Settings every service has, whatever its datastores; a service extends this with its own. */
export interface ServiceConfig {
  bindHost: string;
  grpcPort: number;
  healthPort: number;
  metricsPort: number;
  shutdownGraceMs: number;
  authIssuer: string;
  authAudience: string;
  /** gRPC address of the auth service, where the JWKS comes from. */
  authAddress: string;
  /** Services allowed to call this one with service tokens (from mesh/topology.yaml). */
  meshCallers: string[];
}

export interface MongoConfig {
  mongoUrl: string;
  mongoDatabase: string;
}

export interface RedisConfig {
  redisUrl: string;
}

/** The config of a service that uses datastores D: MONGO_URL and REDIS_URL exist only where declared. */
export type ServiceConfigWith<D extends Datastore> = ServiceConfig &
  ("mongodb" extends D ? MongoConfig : unknown) &
  ("redis" extends D ? RedisConfig : unknown);

/**
 * Defaults are the in-container ports (every pod has its own network); the
 * local mesh launcher overrides them from mesh/topology.yaml.
 */
export function serviceConfigSpec<D extends Datastore>(serviceName: string, datastores: readonly D[]): ConfigSpec<ServiceConfigWith<D>> {
  const spec = {
    ...sharedSpec(),
    ...(datastores.includes("mongodb" as D) ? mongoSpec(serviceName) : {}),
    ...(datastores.includes("redis" as D) ? redisSpec() : {}),
  };
  return spec as ConfigSpec<ServiceConfigWith<D>>;
}

function mongoSpec(serviceName: string): ConfigSpec<MongoConfig> {
  return {
    mongoUrl: config.url({ env: "MONGO_URL", description: "MongoDB connection string", protocols: ["mongodb", "mongodb+srv"] }),
    mongoDatabase: config.string({
      env: "MONGO_DATABASE",
      description: "database owned by this service",
      default: serviceName,
      pattern: /^[A-Za-z0-9_-]{1,63}$/,
    }),
  };
}

function redisSpec(): ConfigSpec<RedisConfig> {
  return { redisUrl: config.url({ env: "REDIS_URL", description: "Redis connection URL", protocols: ["redis", "rediss"] }) };
}

function sharedSpec(): ConfigSpec<ServiceConfig> {
  return {
    bindHost: config.string({ env: "BIND_HOST", description: "address the servers listen on", default: "0.0.0.0" }),
    grpcPort: config.port({ env: "GRPC_PORT", description: "main gRPC port (API, health, reflection)", default: 50051 }),
    healthPort: config.port({ env: "HEALTH_PORT", description: "plaintext grpc.health.v1 probe port", default: 8081 }),
    metricsPort: config.port({ env: "METRICS_PORT", description: "Prometheus /metrics HTTP port", default: 9464 }),
    shutdownGraceMs: config.integer({
      env: "SHUTDOWN_GRACE_MS",
      description: "how long in-flight calls may take to finish on SIGTERM",
      default: 10000,
      min: 0,
      max: 600000,
    }),
    authIssuer: config.string({ env: "AUTH_ISSUER", description: "iss claim of valid access tokens (mesh/topology.yaml identity.issuer)" }),
    authAudience: config.string({ env: "AUTH_AUDIENCE", description: "aud claim of valid access tokens (mesh/topology.yaml identity.audience)" }),
    authAddress: config.string({
      env: "AUTH_ADDRESS",
      description: "host:port of the auth service (JWKS)",
      default: "auth:50051",
      pattern: /^[A-Za-z0-9.-]+:\d{1,5}$/,
    }),
    meshCallers: config.list({
      env: "MESH_CALLERS",
      description: "services that may call this one (generated from mesh/topology.yaml)",
      default: [],
      pattern: /^[a-z][a-z0-9-]*$/,
    }),
  };
}

/**
 * The service's config from its environment. `datastores` is what its main
 * connects to, the same list as its `datastores` in mesh/topology.yaml (from
 * which the launcher renders its environment): a service without Redis
 * neither needs nor reads REDIS_URL.
 */
export function loadServiceConfig<D extends Datastore = Datastore>(
  serviceName: string,
  env: EnvSource = process.env,
  datastores: readonly D[] = ALL_DATASTORES as readonly D[],
): ServiceConfigWith<D> {
  return loadConfig(serviceConfigSpec(serviceName, datastores), env);
}
