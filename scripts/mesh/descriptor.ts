/**
 * Where the descriptor set is, and which gRPC services a proto package
 * declares, both from the platform's contracts reader (one reading of
 * proto/ for the kernel, the mesh model and the Envoy renderer).
 */
import { contracts, descriptorSetPath } from "@leadmesh/platform";

export const DESCRIPTOR_PATH = descriptorSetPath();

/** Fully-qualified gRPC services declared in a proto package, sorted. */
export function servicesOfPackage(protoPackage: string): string[] {
  return contracts().servicesOfPackage(protoPackage);
}
