/**
 * Checks that ids a request refers to (department, manager, department head)
 * resolve within the caller's tenant. A reference to another tenant's record
 * is reported exactly like a missing one.
 */
import { UserStatus } from "@leadmesh/contracts/users/v1/user";
import type { Violations } from "@leadmesh/platform";
import { managerProblem } from "../domain/hierarchy";
import { type DepartmentStore, statusOf, type UserStore } from "../store";

export class References {
  constructor(
    private readonly users: UserStore,
    private readonly departments: DepartmentStore,
  ) {}

  async department(tenantId: string, departmentId: string, field: string, violations: Violations): Promise<void> {
    if (departmentId !== "" && !(await this.departments.get(tenantId, departmentId))) {
      violations.add(field, `"${departmentId}" is not a department of this tenant`);
    }
  }

  /** `userId` is the user whose manager this becomes (undefined for a user not created yet). */
  async manager(tenantId: string, userId: string | undefined, managerId: string, field: string, violations: Violations): Promise<void> {
    if (managerId === "") return;
    const chain = managerId === userId ? [] : await this.users.managerChain(tenantId, managerId, userId);
    const problem = managerProblem(userId, managerId, chain);
    if (problem) violations.add(field, problem);
  }

  /** A user that is not deleted. */
  async liveUser(tenantId: string, userId: string, field: string, violations: Violations): Promise<void> {
    if (userId === "") return;
    const user = await this.users.get(tenantId, userId);
    if (!user || statusOf(user) === UserStatus.USER_STATUS_DELETED) violations.add(field, `"${userId}" is not a user of this tenant`);
  }
}
