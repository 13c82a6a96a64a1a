/** Pure tenant rules: ids chosen at registration, and the updatable fields (display name, time zone). */
import type { Tenant } from "@leadmesh/contracts/users/v1/tenant";
import { checkTenantId, requireMessage, text, Violations } from "@leadmesh/platform";
import { type MaskSpec, maskedFields } from "./update-mask";

const checkDisplayName = text({ max: 200, required: true });

/** A tenant without a time zone of its own works in UTC (tenants registered before time zones existed, or that never chose one). */
export const DEFAULT_TIME_ZONE = "UTC";

/**
 * An IANA time zone the runtime's Intl knows ("Europe/Berlin"; names are
 * matched case-insensitively, as Intl does). Buyers compute their cap
 * counters' day and month keys with Intl in this zone, so a zone Intl refuses
 * here would break every sale of the tenant there.
 */
export function checkTimeZone(timeZone: string): string | undefined {
  if (timeZone === "") return "is required";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return undefined;
  } catch (error) {
    if (error instanceof RangeError) return `must be an IANA time zone such as "Europe/Berlin" (got "${timeZone}")`;
    throw error;
  }
}

export interface TenantInput {
  id: string;
  displayName: string;
  timeZone: string;
}

export type TenantChanges = Partial<Pick<TenantInput, "displayName" | "timeZone">>;

type TenantField = "displayName" | "timeZone";

const TENANT_MASK: MaskSpec<TenantField> = {
  resource: "Tenant",
  fields: {
    displayName: { protoName: "display_name", isSet: (value) => value !== "" },
    timeZone: { protoName: "time_zone", isSet: (value) => value !== "" },
  },
  notUpdatable: { id: "a tenant id never changes", create_time: "output only", update_time: "output only" },
};

/** Validates a CreateTenant request's tenant (time zone optional: UTC). Throws INVALID_ARGUMENT with every violation. */
export function newTenant(tenant: Tenant | undefined): TenantInput {
  const { id, displayName, timeZone } = requireMessage(tenant, "tenant");
  const input = { id: id.trim(), displayName: displayName.trim(), timeZone: timeZone.trim() || DEFAULT_TIME_ZONE };
  const violations = new Violations();
  violations.check("tenant.id", input.id, checkTenantId);
  violations.check("tenant.display_name", input.displayName, checkDisplayName);
  violations.check("tenant.time_zone", input.timeZone, checkTimeZone);
  violations.throwIfAny();
  return input;
}

/**
 * Applies an UpdateTenant; returns the fields that change, or undefined when
 * nothing does. A time_zone in the mask left empty goes back to UTC (AIP-134:
 * a masked field at its default is cleared, and a cleared zone is UTC).
 */
export function applyTenantUpdate(
  current: { displayName: string; timeZone?: string },
  patch: Tenant,
  updateMask: string[] | undefined,
): TenantChanges | undefined {
  const violations = new Violations();
  const requested = { displayName: patch.displayName.trim(), timeZone: patch.timeZone.trim() };
  const fields = maskedFields(TENANT_MASK, requested, updateMask, violations);
  violations.throwIfAny();
  const changes: TenantChanges = {};
  if (fields.includes("displayName")) {
    violations.check("tenant.display_name", requested.displayName, checkDisplayName);
    if (requested.displayName !== current.displayName) changes.displayName = requested.displayName;
  }
  if (fields.includes("timeZone")) {
    const timeZone = requested.timeZone || DEFAULT_TIME_ZONE;
    violations.check("tenant.time_zone", timeZone, checkTimeZone);
    if (timeZone !== (current.timeZone || DEFAULT_TIME_ZONE)) changes.timeZone = timeZone;
  }
  violations.throwIfAny();
  return Object.keys(changes).length === 0 ? undefined : changes;
}
