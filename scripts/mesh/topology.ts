/**
 * Reads mesh/topology.yaml, the single declaration of services, ports,
 * workload identities, call permissions and event topics. The file is checked against
 * mesh/topology.schema.json, then against the rules that span keys, and every
 * problem is reported at once, naming the file and the key.
 * The descriptor-dependent checks (called RPCs and topics exist in proto/)
 * live in model.ts.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import type { Datastore } from "@leadmesh/platform";
import { parse } from "yaml";
import { type JsonSchema, schemaProblems } from "./schema";

export const REPO_ROOT = join(__dirname, "..", "..");
export const TOPOLOGY_PATH = join(REPO_ROOT, "mesh", "topology.yaml");
export const TOPOLOGY_SCHEMA_PATH = join(REPO_ROOT, "mesh", "topology.schema.json");

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
  datastores: Datastore[];
  /** Callee service → the RPCs of it this service may call, as "Service.Method" of the callee's package. */
  calls: Record<string, string[]>;
  /** Processes under `npm start`; replica r listens on each `local` port + r. */
  replicas: number;
  local: ServicePorts;
  /** Event message names of its own events.proto, e.g. "LeadCreatedEvent". */
  publishes: string[];
  /** Fully-qualified event messages, or "<package>.*". */
  consumes: string[];
}

/** Linux's default ephemeral range starts here; fixed local ports stay below it. */
export const EPHEMERAL_PORT_FLOOR = 32768;
export const MAX_LOCAL_REPLICAS = 10;

/** Workload identities: each is spiffe://<trustDomain>/ns/<namespace>/sa/<name>. */
export interface MeshIdentitySettings {
  trustDomain: string;
  namespace: string;
  /** Identity name of the Envoy edge. */
  edge: string;
  /** Identity name of operators' tools (grpcurl, probes, test clients). */
  operator: string;
}

export interface TokenIdentity {
  /** The service that issues access tokens. */
  service: string;
  issuer: string;
  audience: string;
  /** The RPC of `service` serving the JWKS, "AuthService.GetJwks". */
  jwks: string;
}

export interface Topology {
  /** The file it was read from (for messages). */
  source: string;
  mesh: MeshIdentitySettings;
  identity: TokenIdentity;
  ingress: { local: { listen: number; admin: number } };
  datastores: Record<Datastore, { local: number }>;
  services: ServiceDeclaration[];
}

export class TopologyError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source} is invalid:\n  - ${problems.join("\n  - ")}`);
    this.name = "TopologyError";
  }
}

export function loadTopology(path = TOPOLOGY_PATH): Topology {
  const inRepo = relative(REPO_ROOT, path);
  return parseTopology(readFileSync(path, "utf8"), inRepo.startsWith("..") || isAbsolute(inRepo) ? path : inRepo);
}

let schema: JsonSchema | undefined;

/** Parses and checks topology YAML; `source` names the file in error messages. */
export function parseTopology(text: string, source: string): Topology {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new TopologyError(source, [`not valid YAML: ${(error as Error).message}`]);
  }
  schema ??= JSON.parse(readFileSync(TOPOLOGY_SCHEMA_PATH, "utf8")) as JsonSchema;
  const shapeProblems = schemaProblems(raw, schema);
  if (shapeProblems.length > 0) throw new TopologyError(source, shapeProblems);
  const checked = raw as Omit<Topology, "source" | "services"> & { services: Record<string, Omit<ServiceDeclaration, "name">> };
  const topology: Topology = {
    source,
    mesh: checked.mesh,
    identity: checked.identity,
    ingress: checked.ingress,
    datastores: checked.datastores,
    services: Object.entries(checked.services).map(([name, declaration]) => ({ name, ...declaration })),
  };
  const problems = crossKeyProblems(topology);
  if (problems.length > 0) throw new TopologyError(source, problems);
  return topology;
}

function crossKeyProblems(topology: Topology): string[] {
  const problems: string[] = [];
  const names = new Set(topology.services.map((service) => service.name));
  for (const service of topology.services) {
    const at = `services.${service.name}`;
    if (service.package !== `${service.name}.v1`) problems.push(`${at}.package: must be "${service.name}.v1" (one name everywhere), got "${service.package}"`);
    for (const callee of Object.keys(service.calls)) {
      if (!names.has(callee)) problems.push(`${at}.calls.${callee}: unknown service "${callee}"`);
      if (callee === service.name) problems.push(`${at}.calls.${callee}: a service does not call itself through the mesh`);
    }
  }
  if (!names.has(topology.identity.service)) problems.push(`identity.service: unknown service "${topology.identity.service}"`);
  // One name, one certificate: the edge or the operator named like a service would carry its identity.
  for (const role of ["edge", "operator"] as const) {
    const name = topology.mesh[role];
    if (names.has(name)) problems.push(`mesh.${role}: "${name}" is also a service name; identities must be distinct`);
  }
  if (topology.mesh.edge === topology.mesh.operator) problems.push(`mesh.operator: "${topology.mesh.operator}" is also the edge's identity; they must differ`);
  problems.push(...portProblems(topology));
  return problems;
}

/** Each service reserves MAX_LOCAL_REPLICAS ports per kind, so raising replicas never collides. */
function portProblems(topology: Topology): string[] {
  const owners = new Map<number, string>();
  const problems = new Set<string>();
  const claim = (port: number, owner: string) => {
    if (port >= EPHEMERAL_PORT_FLOOR) problems.add(`${owner}: reaches the ephemeral range (${EPHEMERAL_PORT_FLOOR} and up, port + replica); pick a lower port`);
    const previous = owners.get(port);
    if (previous && previous !== owner)
      problems.add(`${owner}: overlaps ${previous} at port ${port} (each reserves ${MAX_LOCAL_REPLICAS} ports, one per replica)`);
    else owners.set(port, owner);
  };
  claim(topology.ingress.local.listen, "ingress.local.listen");
  claim(topology.ingress.local.admin, "ingress.local.admin");
  for (const [name, store] of Object.entries(topology.datastores)) claim(store.local, `datastores.${name}.local`);
  for (const service of topology.services) {
    for (const [kind, first] of Object.entries(service.local)) {
      for (let replica = 0; replica < MAX_LOCAL_REPLICAS; replica++) claim(first + replica, `services.${service.name}.local.${kind}`);
    }
  }
  return [...problems];
}
