/**
 * Access rules come from the contracts: every RPC carries a
 * `(common.v1.access)` method option. ts-proto keeps custom options as raw
 * bytes in the generated definition (`options._unknownFields`, keyed by the
 * option's wire tag), so the kernel decodes them from there: the rule that
 * is enforced is exactly the one in proto/, with no second copy.
 */
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import type { CompatServiceDefinition } from "nice-grpc";

/** Field 50100 of MethodOptions, length-delimited: (50100 << 3) | 2. */
const ACCESS_OPTION_TAG = (50100 << 3) | 2;

interface GeneratedMethod {
  path?: string;
  name: string;
  options?: { _unknownFields?: Record<number, Uint8Array[]> };
}

export function accessRuleOf(method: GeneratedMethod): AccessRule | undefined {
  const raw = method.options?._unknownFields?.[ACCESS_OPTION_TAG];
  if (!raw || raw.length === 0) return undefined;
  // Repeated occurrences of a message field merge; the generated code keeps each one.
  return raw.map((chunk) => AccessRule.decode(new BinaryReader(chunk).bytes())).reduce((merged, next) => AccessRule.fromPartial({ ...merged, ...next, roles: [...merged.roles, ...next.roles] }));
}

/** Rules of every method of the given services, keyed by gRPC path; throws naming every undeclared RPC. */
export function accessRulesOf(definitions: CompatServiceDefinition[]): Map<string, AccessRule> {
  const rules = new Map<string, AccessRule>();
  const undeclared: string[] = [];
  for (const definition of definitions) {
    const { fullName, methods } = definition as unknown as { fullName: string; methods: Record<string, GeneratedMethod> };
    for (const method of Object.values(methods)) {
      const path = `/${fullName}/${method.name}`;
      const rule = accessRuleOf(method);
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
