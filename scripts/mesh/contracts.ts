/**
 * The generated service definitions of a proto package, with each RPC's
 * access rule as declared in proto/ (decoded by the platform kernel, the
 * same code that enforces it).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { AccessRule } from "@leadmesh/contracts/common/v1/access";
import { accessRuleOf } from "@leadmesh/platform";
import { REPO_ROOT } from "./topology";

export interface RpcDeclaration {
  service: string;
  method: string;
  /** gRPC path, "/pkg.Service/Method". */
  path: string;
  rule: AccessRule | undefined;
  requestType: { fromPartial(value: object): unknown };
  /** google.api.http binding present (reachable through the REST edge). */
  rest: boolean;
}

interface GeneratedDefinition {
  fullName: string;
  methods: Record<string, { name: string; requestType: RpcDeclaration["requestType"]; options?: { _unknownFields?: Record<number, Uint8Array[]> } }>;
}

/** google.api.http is option 72295728 (length-delimited): tag 578365826. */
const HTTP_OPTION_TAG = (72295728 << 3) | 2;

export function definitionsOfPackage(protoPackage: string): GeneratedDefinition[] {
  const [name, version] = protoPackage.split(".");
  const directory = join(REPO_ROOT, "services", "contracts", "src", "gen", name, version);
  const definitions: GeneratedDefinition[] = [];
  for (const file of readdirSync(directory).filter((entry) => entry.endsWith(".ts"))) {
    // Resolved through the package exports, so the same module instances as the services use.
    const module = require(`@leadmesh/contracts/${name}/${version}/${file.replace(/\.ts$/, "")}`) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      const candidate = value as Partial<GeneratedDefinition>;
      if (candidate && typeof candidate === "object" && typeof candidate.fullName === "string" && candidate.methods) definitions.push(candidate as GeneratedDefinition);
    }
  }
  return definitions.sort((a, b) => a.fullName.localeCompare(b.fullName));
}

export function rpcsOfPackage(protoPackage: string): RpcDeclaration[] {
  return definitionsOfPackage(protoPackage).flatMap((definition) =>
    Object.values(definition.methods).map((method) => ({
      service: definition.fullName,
      method: method.name,
      path: `/${definition.fullName}/${method.name}`,
      rule: accessRuleOf(method),
      requestType: method.requestType,
      rest: (method.options?._unknownFields?.[HTTP_OPTION_TAG]?.length ?? 0) > 0,
    })),
  );
}
