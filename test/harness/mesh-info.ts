import { readFileSync } from "node:fs";
import { type MeshCertificatePaths, meshCertificatePaths } from "../../scripts/mesh/certificates";
import type { ServicePorts } from "../../scripts/mesh/topology";

export const MESH_INFO_ENV = "LEADMESH_TEST_MESH";

/** Addresses of the mesh the global setup started. */
export interface MeshInfo {
  runDir: string;
  mongoUrl: string;
  redisUrl: string;
  ingressUrl: string;
  adminUrl: string;
  envoyConfigPath: string;
  services: Record<string, ServicePorts>;
  /** The mesh's certificate directory: CA, and certificate and key per identity (certificates.ts). */
  certDir: string;
}

export function meshInfo(): MeshInfo {
  const path = process.env[MESH_INFO_ENV];
  if (!path) throw new Error(`${MESH_INFO_ENV} is not set: run the tests through jest (global setup starts the mesh)`);
  return JSON.parse(readFileSync(path, "utf8")) as MeshInfo;
}

/** Whether the tests run under jest's global setup (meshInfo() would throw otherwise). */
export function hasMeshInfo(): boolean {
  return Boolean(process.env[MESH_INFO_ENV]);
}

/** Paths of the test mesh's certificates: `caFile`, `certFile(identity)`, `keyFile(identity)`. */
export function meshCertificates(): MeshCertificatePaths {
  return meshCertificatePaths(meshInfo().certDir);
}
