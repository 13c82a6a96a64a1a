import { readFileSync } from "node:fs";
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
}

export function meshInfo(): MeshInfo {
  const path = process.env[MESH_INFO_ENV];
  if (!path) throw new Error(`${MESH_INFO_ENV} is not set: run the tests through jest (global setup starts the mesh)`);
  return JSON.parse(readFileSync(path, "utf8")) as MeshInfo;
}
