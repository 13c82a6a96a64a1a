import { config, loadConfig, type ConfigSpec, type EnvSource } from "./config";

/** Settings every service shares; a service extends this with its own. */
export interface ServiceConfig {
  bindHost: string;
  grpcPort: number;
  healthPort: number;
  metricsPort: number;
  mongoUrl: string;
  mongoDatabase: string;
  redisUrl: string;
  defaultTenantId: string;
  shutdownGraceMs: number;
}

/**
 * Defaults are the in-container ports (every pod has its own network); the
 * local mesh launcher overrides them from mesh/topology.yaml.
 */
export function serviceConfigSpec(serviceName: string): ConfigSpec<ServiceConfig> {
  return {
    bindHost: config.string({ env: "BIND_HOST", description: "address the servers listen on", default: "0.0.0.0" }),
    grpcPort: config.port({ env: "GRPC_PORT", description: "main gRPC port (API, health, reflection)", default: 50051 }),
    healthPort: config.port({ env: "HEALTH_PORT", description: "plaintext grpc.health.v1 probe port", default: 8081 }),
    metricsPort: config.port({ env: "METRICS_PORT", description: "Prometheus /metrics HTTP port", default: 9464 }),
    mongoUrl: config.url({ env: "MONGO_URL", description: "MongoDB connection string", protocols: ["mongodb", "mongodb+srv"] }),
    mongoDatabase: config.string({
      env: "MONGO_DATABASE",
      description: "database owned by this service",
      default: serviceName,
      pattern: /^[A-Za-z0-9_-]{1,63}$/,
    }),
    redisUrl: config.url({ env: "REDIS_URL", description: "Redis connection URL", protocols: ["redis", "rediss"] }),
    defaultTenantId: config.string({
      env: "DEFAULT_TENANT_ID",
      description: "tenant used when a call names none",
      default: "default",
      pattern: /^[a-z0-9][a-z0-9-]{0,62}$/,
    }),
    shutdownGraceMs: config.integer({
      env: "SHUTDOWN_GRACE_MS",
      description: "how long in-flight calls may take to finish on SIGTERM",
      default: 10000,
      min: 0,
      max: 600000,
    }),
  };
}

export function loadServiceConfig(serviceName: string, env: EnvSource = process.env): ServiceConfig {
  return loadConfig(serviceConfigSpec(serviceName), env);
}
