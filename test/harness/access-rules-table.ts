/**
 * The reviewed table of access rules: RPC → rule (public, roles, self field,
 * service callers) for every RPC of every service in the topology, rendered
 * from the contracts by the platform's own reader (what the services
 * enforce) and committed as test/golden/access-rules.txt.
 *
 * The authorization matrix takes its expectations from the committed file,
 * not from the live rules: a rule loosened in proto/ (a role added,
 * `public: true`) then fails both the table comparison and the matrix cases
 * it affects, instead of moving the expectation along with the server.
 *
 * Deliberately not part of `npm run generate`: the file changes only when
 * someone rewrites it on purpose (`npx tsx test/harness/access-rules-table.ts`)
 * and commits the diff for review.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import { accessRuleOf } from "@leadmesh/platform";
import { loadMeshModel, type MeshModel } from "../../scripts/mesh/model";
import { REPO_ROOT } from "../../scripts/mesh/topology";

export const ACCESS_RULES_GOLDEN = join(REPO_ROOT, "test", "golden", "access-rules.txt");
export const UPDATE_ACCESS_RULES_COMMAND = "npx tsx test/harness/access-rules-table.ts";

const HEADER = [
  "# Reviewed access rules: RPC -> public | roles | self field | service callers.",
  "# The authorization matrix expects exactly these; a change here is a change of who may call what.",
  `# Rewrite on purpose with '${UPDATE_ACCESS_RULES_COMMAND}' and review the diff; never from npm run generate.`,
];

const roleName = (role: Role) => Role[role].replace("ROLE_", "").toLowerCase();
const ROLE_BY_NAME = new Map(
  Object.values(Role)
    .filter((value): value is Role => typeof value === "number")
    .map((role) => [roleName(role), role]),
);

/** One line's rule, e.g. "public=no roles=manager,admin self=user.id services=yes". */
export function formatRule(rule: AccessRule): string {
  const roles = rule.roles.map(roleName).join(",") || "-";
  return `public=${rule.public ? "yes" : "no"} roles=${roles} self=${rule.selfField || "-"} services=${rule.services ? "yes" : "no"}`;
}

/** The table as the contracts declare it now, one service block per topology service. */
export function renderAccessRules(model: MeshModel = loadMeshModel()): string {
  const lines = [...HEADER];
  for (const service of model.services) {
    lines.push("", `[${service.name}] ${service.implemented ? "implemented" : "not implemented"}`);
    for (const rpc of service.rpcs) {
      const rule = accessRuleOf(rpc.path);
      lines.push(`${rpc.path} ${rule ? formatRule(rule) : "undeclared"}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function parseRule(path: string, text: string): AccessRule {
  const fields = Object.fromEntries(text.split(" ").map((pair) => pair.split("=") as [string, string]));
  const flag = (name: string) => {
    if (fields[name] !== "yes" && fields[name] !== "no") throw new Error(`${ACCESS_RULES_GOLDEN}: ${path}: ${name} must be yes or no, got "${fields[name]}"`);
    return fields[name] === "yes";
  };
  const roles =
    fields.roles === "-"
      ? []
      : (fields.roles ?? "").split(",").map((name) => {
          const role = ROLE_BY_NAME.get(name);
          if (role === undefined) throw new Error(`${ACCESS_RULES_GOLDEN}: ${path}: unknown role "${name}"`);
          return role;
        });
  return { public: flag("public"), roles, selfField: fields.self === "-" ? "" : (fields.self ?? ""), services: flag("services") };
}

/** The committed table: gRPC path → reviewed rule. */
export function committedAccessRules(text = readFileSync(ACCESS_RULES_GOLDEN, "utf8")): Map<string, AccessRule> {
  const rules = new Map<string, AccessRule>();
  for (const line of text.split("\n")) {
    if (!line.startsWith("/")) continue;
    const space = line.indexOf(" ");
    const path = line.slice(0, space);
    rules.set(path, parseRule(path, line.slice(space + 1)));
  }
  return rules;
}

if (require.main === module) {
  writeFileSync(ACCESS_RULES_GOLDEN, renderAccessRules());
  console.log(`wrote ${ACCESS_RULES_GOLDEN}: review 'git diff test/golden/access-rules.txt' before committing`);
}
