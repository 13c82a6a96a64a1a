/**
 * The manager hierarchy must stay a forest: a user's manager is another live
 * user of the same tenant, and following manager_id upwards never comes back
 * to the user (analytics rolls KPIs up along this chain).
 */

/** One step of a manager chain as stored: the user and who they report to. */
export interface ChainLink {
  id: string;
  managerId: string;
  /** Deleted users cannot manage anyone. */
  deleted: boolean;
}

/** Longest chain followed; deeper hierarchies are refused rather than walked forever. */
export const MAX_CHAIN_DEPTH = 100;

/**
 * Checks `managerId` as the manager of `userId` (undefined for a user not
 * created yet). `chain` is the manager's chain as loaded upwards from
 * `managerId` (chain[0] is the manager, if it exists), stopping at the top,
 * at a missing user, at `userId` or after MAX_CHAIN_DEPTH links. Returns
 * what is wrong, or undefined when the manager is acceptable.
 */
export function managerProblem(userId: string | undefined, managerId: string, chain: readonly ChainLink[]): string | undefined {
  if (managerId === userId) return "a user cannot be their own manager";
  const manager = chain[0];
  if (!manager || manager.id !== managerId || manager.deleted) return `"${managerId}" is not a user of this tenant`;
  if (userId !== undefined) {
    const loop = chain.findIndex((link) => link.managerId === userId);
    if (loop >= 0) {
      const path = [userId, ...chain.slice(0, loop + 1).map((link) => link.id), userId].join(" → ");
      return `would make a cycle in the manager chain: ${path}`;
    }
  }
  if (chain.length >= MAX_CHAIN_DEPTH && chain[chain.length - 1].managerId !== "") {
    return `the manager chain above "${managerId}" is deeper than ${MAX_CHAIN_DEPTH} levels`;
  }
  return undefined;
}
