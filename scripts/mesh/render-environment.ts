/**
 * Renders the environment contract of every service as `npm start` gives it
 * to replica 0 (topology ports, certificates in .run/local/tls/ under the
 * repository): what each process receives and nothing else.
 * Committed as test/golden/environment.txt, so a change to a service's
 * environment shows up in review as a diff.
 */
import { join } from "node:path";
import { meshCertificatePaths } from "./certificates";
import type { MeshModel } from "./model";
import { peersOf, serviceEnvironment } from "./model-environment";

export function renderEnvironmentContract(model: MeshModel): string {
  const lines = [`# GENERATED from ${model.source} by scripts/mesh/render-environment.ts (npm run generate); do not edit.`];
  // Every replica of a peer under npm start (topology ports), one target for all.
  const certificates = meshCertificatePaths(join(".run", "local", "tls"));
  const localPeers = Object.fromEntries(model.services.map((service) => [service.name, service.localReplicaPorts.map((ports) => `127.0.0.1:${ports.grpc}`)]));
  for (const service of model.services) {
    const state = service.implemented ? `${service.replicas} replica(s) under npm start` : "not implemented: not started";
    lines.push("", `${service.name}  (${state}; addresses of: ${peersOf(model, service).join(", ") || "none"})`);
    const environment = serviceEnvironment(model, service.name, {
      bindHost: "127.0.0.1",
      ports: service.localReplicaPorts[0],
      mongoUrl: `mongodb://127.0.0.1:${model.datastores.mongodb.local}/`,
      redisUrl: `redis://127.0.0.1:${model.datastores.redis.local}`,
      peers: localPeers,
      tls: { certFile: certificates.certFile(service.name), keyFile: certificates.keyFile(service.name), caFile: certificates.caFile },
    });
    for (const [name, value] of Object.entries(environment)) lines.push(`  ${name}=${value}`);
  }
  return `${lines.join("\n")}\n`;
}
