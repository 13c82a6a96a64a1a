/**
 * Which processes the local mesh runs and on which ports: datastores, the
 * ingress, and `replicas` processes per implemented service. With topology
 * ports, replica r (1-based here) gets the model's localReplicaPorts[r - 1];
 * with random ports every one gets a free port.
 */

import { implementedServices, type MeshModel, type ServiceModel } from "./model";
import type { PortUse } from "./ports";
import { freePort } from "./processes";
import { MAX_LOCAL_REPLICAS, type ServicePorts } from "./topology";

/**
 * Processes per implemented service: "topology" takes each service's
 * `replicas`, a number applies to every service, a record names some
 * services (the others run one).
 */
export type ReplicaOption = "topology" | number | Record<string, number>;

export interface ReplicaPlan {
  service: string;
  /** 1-based. */
  index: number;
  /** Process and log file name: "leads-2". */
  name: string;
  ports: ServicePorts;
}

export interface PortPlan {
  mongodb: number;
  redis: number;
  ingress: number;
  admin: number;
  replicas: ReplicaPlan[];
}

export function replicaCount(service: ServiceModel, option: ReplicaOption): number {
  const count = option === "topology" ? service.replicas : typeof option === "number" ? option : (option[service.name] ?? 1);
  if (!Number.isInteger(count) || count < 1) throw new Error(`replicas of ${service.name} must be a positive integer, got ${count}`);
  return count;
}

/** With random ports, `allocate` hands out each (default: the kernel's choice; meshes pass their claimed port block). */
export async function planPorts(
  topology: MeshModel,
  mode: "topology" | "random",
  replicas: ReplicaOption,
  allocate: () => Promise<number> = freePort,
): Promise<PortPlan> {
  const pick = async (fixed: number) => (mode === "topology" ? fixed : allocate());
  const plan: PortPlan = {
    mongodb: await pick(topology.datastores.mongodb.local),
    redis: await pick(topology.datastores.redis.local),
    ingress: await pick(topology.ingress.local.listen),
    admin: await pick(topology.ingress.local.admin),
    replicas: [],
  };
  for (const service of implementedServices(topology)) {
    const count = replicaCount(service, replicas);
    if (count > (mode === "topology" ? service.replicas : MAX_LOCAL_REPLICAS)) {
      // Fixed ports exist for the topology's replicas only; more would run into the next service's ports.
      throw new Error(
        `${service.name}: ${count} replicas asked, but mesh/topology.yaml plans ports for ${mode === "topology" ? service.replicas : MAX_LOCAL_REPLICAS}`,
      );
    }
    for (let index = 1; index <= count; index += 1) {
      const fixed = service.localReplicaPorts[index - 1];
      plan.replicas.push({
        service: service.name,
        index,
        name: `${service.name}-${index}`,
        ports: mode === "topology" ? fixed : { grpc: await allocate(), health: await allocate(), metrics: await allocate() },
      });
    }
  }
  return plan;
}

/** Every port of the plan with what it is for, as the port check reports it. */
export function portUses(plan: PortPlan, withIngress: boolean): PortUse[] {
  return [
    { port: plan.mongodb, purpose: "FerretDB (MongoDB wire protocol)" },
    { port: plan.redis, purpose: "Redis" },
    ...(withIngress
      ? [
          { port: plan.ingress, purpose: "Envoy ingress" },
          { port: plan.admin, purpose: "Envoy admin" },
        ]
      : []),
    ...plan.replicas.flatMap((replica) => [
      { port: replica.ports.grpc, purpose: `${replica.service} replica ${replica.index} gRPC port` },
      { port: replica.ports.health, purpose: `${replica.service} replica ${replica.index} probe port` },
      { port: replica.ports.metrics, purpose: `${replica.service} replica ${replica.index} metrics port` },
    ]),
  ];
}
