/**
 * Reads mesh/topology.yaml, the single declaration of services, ports and
 * call permissions, and checks it so a typo fails with a clear message.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

export const REPO_ROOT = join(__dirname, "..", "..");

export interface ServicePorts {
  grpc: number;
  health: number;
  metrics: number;
}

export interface ServiceDeclaration {
  name: string;
  package: string;
  implemented: boolean;
  ingress: boolean;
  datastores: ("mongodb" | "redis")[];
  calls: string[];
  /** Processes under `npm start`; replica r listens on each `local` port + r. */
  replicas: number;
  local: ServicePorts;
}

/** Linux's default ephemeral range starts here; fixed local ports stay below it. */
export const EPHEMERAL_PORT_FLOOR = 32768;
export const MAX_LOCAL_REPLICAS = 10;

export interface Topology {
  identity: { issuer: string; audience: string };
  ingress: { local: { listen: number; admin: number } };
  datastores: { mongodb: { local: number }; redis: { local: number } };
  services: ServiceDeclaration[];
}

export function loadTopology(path = join(REPO_ROOT, "mesh", "topology.yaml")): Topology {
  const raw = parse(readFileSync(path, "utf8")) as Record<string, any>;
  const problems: string[] = [];
  const services: ServiceDeclaration[] = Object.entries<Record<string, any>>(raw.services ?? {}).map(([name, value]) => {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) problems.push(`service name "${name}" must be lower-case (it is also the k8s name)`);
    if (value.package !== `${name}.v1`) problems.push(`${name}.package must be "${name}.v1" (one name everywhere)`);
    for (const port of ["grpc", "health", "metrics"]) {
      if (!Number.isInteger(value.local?.[port])) problems.push(`${name}.local.${port} must be a port number`);
    }
    const replicas = value.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_LOCAL_REPLICAS) problems.push(`${name}.replicas must be an integer from 1 to ${MAX_LOCAL_REPLICAS}`);
    for (const store of value.datastores ?? []) {
      if (store !== "mongodb" && store !== "redis") problems.push(`${name}.datastores: unknown "${store}"`);
    }
    return {
      name,
      package: value.package,
      implemented: value.implemented === true,
      ingress: value.ingress === true,
      datastores: value.datastores ?? [],
      calls: value.calls ?? [],
      replicas,
      local: value.local,
    };
  });
  const names = new Set(services.map((service) => service.name));
  for (const service of services) {
    for (const callee of service.calls) if (!names.has(callee)) problems.push(`${service.name}.calls: unknown service "${callee}"`);
  }
  const ports = services.flatMap((service) =>
    Object.values(service.local).flatMap((first) => Array.from({ length: MAX_LOCAL_REPLICAS }, (_, replica) => first + replica)),
  );
  const inEphemeralRange = ports.filter((port) => port >= EPHEMERAL_PORT_FLOOR);
  if (inEphemeralRange.length > 0) problems.push(`local ports must be below ${EPHEMERAL_PORT_FLOOR} (ephemeral range): ${[...new Set(inEphemeralRange)].join(", ")}`);
  const duplicates = ports.filter((port, index) => ports.indexOf(port) !== index);
  if (duplicates.length > 0) problems.push(`local port ranges (port .. port+${MAX_LOCAL_REPLICAS - 1}) overlap at: ${[...new Set(duplicates)].join(", ")}`);
  if (typeof raw.identity?.issuer !== "string" || typeof raw.identity?.audience !== "string") problems.push("identity.issuer and identity.audience are required");
  if (problems.length > 0) throw new Error(`mesh/topology.yaml is invalid:\n  - ${problems.join("\n  - ")}`);
  return { identity: raw.identity, ingress: raw.ingress, datastores: raw.datastores, services };
}
