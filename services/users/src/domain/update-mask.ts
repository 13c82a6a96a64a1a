/**
 * Update masks (AIP-134), one implementation for users, tenants and
 * departments: with a mask, exactly the named fields (a field left at its
 * default is cleared); "*" means every updatable field; without a mask,
 * every updatable field the request sets to a non-default value.
 */
import type { Violations } from "@leadmesh/platform";

export interface UpdatableField {
  /** proto field name, used in update masks and field violations. */
  protoName: string;
  isSet(value: unknown): boolean;
}

export interface MaskSpec<N extends string> {
  /** Message name for error messages ("User"). */
  resource: string;
  fields: Readonly<Record<N, UpdatableField>>;
  /** Fields of the message that an update cannot change, with the reason (snake_case name → reason). */
  notUpdatable: Readonly<Record<string, string>>;
}

export function maskedFields<N extends string>(
  spec: MaskSpec<N>,
  requested: Readonly<Record<N, unknown>>,
  updateMask: string[] | undefined,
  violations: Violations,
): N[] {
  const names = Object.keys(spec.fields) as N[];
  const paths = (updateMask ?? []).map((path) => path.trim()).filter((path) => path !== "");
  if (paths.length === 0) {
    const set = names.filter((name) => spec.fields[name].isSet(requested[name]));
    if (set.length === 0) violations.add("update_mask", `names no field to update, and the ${spec.resource.toLowerCase()} sets none`);
    return set;
  }
  if (paths.includes("*")) {
    if (paths.length > 1) violations.add("update_mask", '"*" cannot be combined with other paths');
    return names;
  }
  const byProtoName = new Map(names.map((name) => [spec.fields[name].protoName, name]));
  const fields: N[] = [];
  for (const path of paths) {
    const snake = path.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
    const name = byProtoName.get(snake);
    if (name !== undefined) {
      if (!fields.includes(name)) fields.push(name);
    } else if (snake in spec.notUpdatable) {
      violations.add("update_mask", `"${path}" cannot be updated: ${spec.notUpdatable[snake]}`);
    } else {
      violations.add("update_mask", `"${path}" is not a field of ${spec.resource}; updatable: ${names.map((n) => spec.fields[n].protoName).join(", ")}`);
    }
  }
  return fields;
}
