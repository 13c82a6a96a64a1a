import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FileDescriptorSet } from "@leadmesh/contracts/google/protobuf/descriptor";
import { REPO_ROOT } from "./topology";

export const DESCRIPTOR_PATH = join(REPO_ROOT, "services", "contracts", "descriptor", "leadmesh.binpb");

/** Fully-qualified gRPC services declared in a proto package, from the buf descriptor set. */
export function servicesOfPackage(protoPackage: string, path = DESCRIPTOR_PATH): string[] {
  const set = FileDescriptorSet.decode(readFileSync(path));
  return set.file
    .filter((file) => file.package === protoPackage)
    .flatMap((file) => file.service.map((service) => `${protoPackage}.${service.name}`))
    .sort();
}
