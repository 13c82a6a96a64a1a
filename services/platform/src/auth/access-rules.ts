/**
 * Access rules come from the contracts: every RPC carries a
 * `(common.v1.access)` method option, read from the descriptor set (see
 * contract/contracts.ts), so the rule that is enforced is exactly the one in
 * proto/, with no second copy.
 */
import { type AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import type { CompatServiceDefinition } from "nice-grpc";
import { type Contracts, contracts } from "../contract/contracts";

/** The declared rule of the RPC at a gRPC path ("/pkg.Service/Method"). */
export function accessRuleOf(path: string, source: Contracts = contracts()): AccessRule | undefined {
  return source.method(path)?.access;
}

/**
 * Rules of every method of the given services, keyed by gRPC path; throws
 * naming every RPC that declares nothing (or is missing from the contracts).
 * `overrides` replaces declared rules by path: for side-by-side benchmarks
 * only (an unauthenticated baseline), never in a service's main.
 */
export function accessRulesOf(
  definitions: CompatServiceDefinition[],
  overrides: Record<string, AccessRule> = {},
  source: Contracts = contracts(),
): Map<string, AccessRule> {
  const rules = new Map<string, AccessRule>();
  const undeclared: string[] = [];
  for (const definition of definitions) {
    const { fullName, methods } = definition as unknown as { fullName: string; methods: Record<string, { name: string }> };
    for (const method of Object.values(methods)) {
      const path = `/${fullName}/${method.name}`;
      const rule = overrides[path] ?? accessRuleOf(path, source);
      if (!rule || !grantsAnything(rule)) undeclared.push(path);
      else rules.set(path, rule);
    }
  }
  if (undeclared.length > 0) {
    throw new Error(`RPCs without an access rule (declare option (common.v1.access) in proto/): ${undeclared.join(", ")}`);
  }
  return rules;
}

export function grantsAnything(rule: AccessRule): boolean {
  return rule.public || rule.services || rule.selfField !== "" || rule.roles.some((role) => role !== Role.ROLE_UNSPECIFIED);
}
