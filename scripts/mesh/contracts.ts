/**
 * The RPCs of a proto package with what proto/ declares about them (access
 * rule, REST binding, idempotency), read by the platform kernel's contract
 * reader (the same code that enforces the rules), plus the generated
 * ts-proto request type for building requests in tests.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { contracts, type MethodContract } from "@leadmesh/platform";
import { REPO_ROOT } from "./topology";

export interface RpcDeclaration extends MethodContract {
  requestType: { fromPartial(value: object): unknown };
  /** google.api.http binding present (reachable through the REST edge). */
  rest: boolean;
}

interface GeneratedDefinition {
  fullName: string;
  methods: Record<string, { name: string; requestType: RpcDeclaration["requestType"] }>;
}

export function definitionsOfPackage(protoPackage: string): GeneratedDefinition[] {
  const [name, version] = protoPackage.split(".");
  const directory = join(REPO_ROOT, "services", "contracts", "src", "gen", name, version);
  const definitions: GeneratedDefinition[] = [];
  for (const file of readdirSync(directory).filter((entry) => entry.endsWith(".ts"))) {
    // Resolved through the package exports, so the same module instances as the services use.
    const module = require(`@leadmesh/contracts/${name}/${version}/${file.replace(/\.ts$/, "")}`) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      const candidate = value as Partial<GeneratedDefinition>;
      if (candidate && typeof candidate === "object" && typeof candidate.fullName === "string" && candidate.methods)
        definitions.push(candidate as GeneratedDefinition);
    }
  }
  return definitions.sort((a, b) => a.fullName.localeCompare(b.fullName));
}

export function rpcsOfPackage(protoPackage: string): RpcDeclaration[] {
  return definitionsOfPackage(protoPackage).flatMap((definition) =>
    Object.values(definition.methods).map((method) => {
      const contract = contracts().method(`/${definition.fullName}/${method.name}`);
      if (!contract) throw new Error(`/${definition.fullName}/${method.name} is generated but missing from the descriptor set: run 'npm run generate'`);
      return { ...contract, requestType: method.requestType, rest: contract.http.length > 0 };
    }),
  );
}
