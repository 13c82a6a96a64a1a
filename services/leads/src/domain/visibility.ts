/**
 * Which leads a caller may see and how they may assign them. Agents work
 * their own leads and the unassigned pool; managers and admins see every
 * lead of the tenant (managers dispatch work across teams, so a team-only
 * view would hide the unassigned and misrouted leads they must reassign).
 * Services (buyers' distribution) see the tenant named in their token.
 */
import { Role } from "@leadmesh/contracts/common/v1/access";
import { type Caller, hasAnyRole, PermissionDeniedError } from "@leadmesh/platform";

export function seesAllLeads(caller: Caller): boolean {
  return caller.kind === "service" || hasAnyRole(caller, Role.ROLE_MANAGER, Role.ROLE_ADMIN);
}

/** Extra store condition for the caller's visible leads ({} = the whole tenant). */
export function visibleLeads(caller: Caller): Record<string, unknown> {
  return seesAllLeads(caller) ? {} : { assigneeId: { $in: [caller.actorId, ""] } };
}

/** The same rule as visibleLeads, for a lead already read (from the read cache): the cache stores leads, never who may see them. */
export function mayView(caller: Caller, assigneeId: string): boolean {
  return seesAllLeads(caller) || assigneeId === caller.actorId || assigneeId === "";
}

/** Agents may leave a lead unassigned or take it themselves, not hand it to others. */
export function checkAssignment(caller: Caller, assigneeId: string): void {
  if (!seesAllLeads(caller) && assigneeId !== "" && assigneeId !== caller.actorId) {
    throw new PermissionDeniedError("agents can only assign leads to themselves; ask a manager to reassign");
  }
}
