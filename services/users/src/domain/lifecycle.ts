/**
 * The user lifecycle: INVITED → ACTIVE ⇄ SUSPENDED, and any state → DELETED.
 *
 *   activate    INVITED → ACTIVE (already ACTIVE: no change, so the auth
 *               service may retry it)
 *   suspend     ACTIVE → SUSPENDED
 *   reactivate  SUSPENDED → ACTIVE
 *   delete      any → DELETED (already DELETED: no change; DeleteUser is idempotent)
 */
import { UserStatus } from "@leadmesh/contracts/users/v1/user";
import { FailedPreconditionError } from "@leadmesh/platform";

export type LifecycleAction = "activate" | "suspend" | "reactivate" | "delete";

const TRANSITIONS: Record<LifecycleAction, { from: readonly UserStatus[]; to: UserStatus }> = {
  activate: { from: [UserStatus.USER_STATUS_INVITED], to: UserStatus.USER_STATUS_ACTIVE },
  suspend: { from: [UserStatus.USER_STATUS_ACTIVE], to: UserStatus.USER_STATUS_SUSPENDED },
  reactivate: { from: [UserStatus.USER_STATUS_SUSPENDED], to: UserStatus.USER_STATUS_ACTIVE },
  delete: { from: [UserStatus.USER_STATUS_INVITED, UserStatus.USER_STATUS_ACTIVE, UserStatus.USER_STATUS_SUSPENDED], to: UserStatus.USER_STATUS_DELETED },
};

/** Actions that are a no-op when the user is already in the target state. */
const IDEMPOTENT: ReadonlySet<LifecycleAction> = new Set(["activate", "delete"]);

const statusName = (status: UserStatus) => UserStatus[status]?.replace(/^USER_STATUS_/, "") ?? String(status);

/**
 * The status after `action`, or undefined when nothing changes. Throws
 * FAILED_PRECONDITION when the action is not allowed from `current`.
 */
export function nextStatus(userId: string, current: UserStatus, action: LifecycleAction): UserStatus | undefined {
  const transition = TRANSITIONS[action];
  if (transition.from.includes(current)) return transition.to;
  if (current === transition.to && IDEMPOTENT.has(action)) return undefined;
  const allowed = transition.from.map(statusName).join(" or ");
  throw new FailedPreconditionError(`cannot ${action} user "${userId}": it is ${statusName(current)}, and only a user that is ${allowed} can be`, {
    resource_id: userId,
    status: UserStatus[current] ?? String(current),
  });
}

/** Profile and role changes are refused on deleted users: they are kept for history only. */
export function checkNotDeleted(userId: string, status: UserStatus): void {
  if (status === UserStatus.USER_STATUS_DELETED) {
    throw new FailedPreconditionError(`user "${userId}" is deleted and can no longer be changed`, { resource_id: userId, status: UserStatus[status] });
  }
}
