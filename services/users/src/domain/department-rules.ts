/** Pure department rules: a name unique within the tenant and an optional head. */
import type { Department } from "@leadmesh/contracts/users/v1/department";
import { type Check, checkOptionalId, requireMessage, text, Violations } from "@leadmesh/platform";
import { type MaskSpec, maskedFields } from "./update-mask";

export type DepartmentInput = Pick<Department, "displayName" | "headUserId">;
type DepartmentField = keyof DepartmentInput;

const CHECKS: { [K in DepartmentField]: Check<string> } = {
  displayName: text({ max: 100, required: true }),
  headUserId: checkOptionalId,
};

const DEPARTMENT_MASK: MaskSpec<DepartmentField> = {
  resource: "Department",
  fields: {
    displayName: { protoName: "display_name", isSet: (value) => value !== "" },
    headUserId: { protoName: "head_user_id", isSet: (value) => value !== "" },
  },
  notUpdatable: { id: "output only", tenant_id: "output only", create_time: "output only", update_time: "output only" },
};

/** Names are unique per tenant regardless of case and surrounding blanks: this is the form indexed. */
export function departmentNameKey(displayName: string): string {
  return displayName.trim().toLowerCase();
}

function inputOf(department: Department): DepartmentInput {
  return { displayName: department.displayName.trim(), headUserId: department.headUserId.trim() };
}

function check(input: DepartmentInput, fields: readonly DepartmentField[], violations: Violations): void {
  for (const field of fields) violations.check(`department.${DEPARTMENT_MASK.fields[field].protoName}`, input[field], CHECKS[field]);
}

/** Validates a CreateDepartment request's department. Throws INVALID_ARGUMENT with every violation. */
export function newDepartment(department: Department | undefined): DepartmentInput {
  const input = inputOf(requireMessage(department, "department"));
  const violations = new Violations();
  check(input, ["displayName", "headUserId"], violations);
  violations.throwIfAny();
  return input;
}

/** Applies an UpdateDepartment to the current values and validates the result. */
export function applyDepartmentUpdate(
  current: DepartmentInput,
  patch: Department,
  updateMask: string[] | undefined,
): { next: DepartmentInput; changed: DepartmentField[] } {
  const violations = new Violations();
  const requested = inputOf(patch);
  const fields = maskedFields(DEPARTMENT_MASK, requested, updateMask, violations);
  violations.throwIfAny();
  const next = { ...current };
  for (const field of fields) next[field] = requested[field];
  check(next, fields, violations);
  violations.throwIfAny();
  return { next, changed: fields.filter((field) => next[field] !== current[field]) };
}
