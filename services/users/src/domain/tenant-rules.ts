/** Pure tenant rules: ids chosen at registration, and the one updatable field. */
import type { Tenant } from "@leadmesh/contracts/users/v1/tenant";
import { checkTenantId, requireMessage, text, Violations } from "@leadmesh/platform";
import { type MaskSpec, maskedFields } from "./update-mask";

const checkDisplayName = text({ max: 200, required: true });

export interface TenantInput {
  id: string;
  displayName: string;
}

type TenantField = "displayName";

const TENANT_MASK: MaskSpec<TenantField> = {
  resource: "Tenant",
  fields: { displayName: { protoName: "display_name", isSet: (value) => value !== "" } },
  notUpdatable: { id: "a tenant id never changes", create_time: "output only", update_time: "output only" },
};

/** Validates a CreateTenant request's tenant. Throws INVALID_ARGUMENT with every violation. */
export function newTenant(tenant: Tenant | undefined): TenantInput {
  const { id, displayName } = requireMessage(tenant, "tenant");
  const input = { id: id.trim(), displayName: displayName.trim() };
  const violations = new Violations();
  violations.check("tenant.id", input.id, checkTenantId);
  violations.check("tenant.display_name", input.displayName, checkDisplayName);
  violations.throwIfAny();
  return input;
}

/** Applies an UpdateTenant; returns the new display name, or undefined when nothing changes. */
export function applyTenantUpdate(current: { displayName: string }, patch: Tenant, updateMask: string[] | undefined): { displayName: string } | undefined {
  const violations = new Violations();
  const requested = { displayName: patch.displayName.trim() };
  const fields = maskedFields(TENANT_MASK, requested, updateMask, violations);
  violations.throwIfAny();
  if (!fields.includes("displayName")) return undefined;
  violations.check("tenant.display_name", requested.displayName, checkDisplayName);
  violations.throwIfAny();
  return requested.displayName === current.displayName ? undefined : requested;
}
