/**
 * users.v1.DepartmentService: one function per RPC, scoped to the caller's
 * tenant. Names are unique per tenant (case-insensitively); a department
 * head must be a user of the tenant; a department with users cannot be
 * deleted.
 */

import type { Department } from "@leadmesh/contracts/users/v1/department";
import { DepartmentServiceDefinition, type DepartmentServiceImplementation } from "@leadmesh/contracts/users/v1/departments";
import {
  type CallerContext,
  decodePageToken,
  FailedPreconditionError,
  NotFoundError,
  queryFingerprint,
  requireId,
  requireMessage,
  resolvePageSize,
  type SortOrder,
  Violations,
} from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { applyDepartmentUpdate, newDepartment } from "../domain/department-rules";
import { type DepartmentDocument, type DepartmentStore, toDepartment, type UserStore } from "../store";
import { requiringNamedTenant } from "./named-tenant";
import type { References } from "./references";

type Context = CallContext & CallerContext;

const BY_NAME: SortOrder = { path: "nameKey", kind: "string", descending: false };

export function departmentHandlers(
  store: DepartmentStore,
  users: UserStore,
  references: References,
  clock: () => Date = () => new Date(),
): DepartmentServiceImplementation<CallerContext> {
  async function existing(context: Context, id: string): Promise<DepartmentDocument> {
    const document = await store.get(context.caller.tenantId, id);
    if (!document) throw new NotFoundError("department", id);
    return document;
  }

  return requiringNamedTenant(DepartmentServiceDefinition, {
    async getDepartment(request, context) {
      return { department: toDepartment(await existing(context, requireId(request.id, "id"))) };
    },

    async listDepartments(request, context) {
      const violations = new Violations();
      const pageSize = resolvePageSize(request.pageSize, violations);
      violations.throwIfAny();
      const fingerprint = queryFingerprint(context.caller.tenantId, "departments");
      const cursor = decodePageToken(request.pageToken, fingerprint);
      const page = await store.list(context.caller.tenantId, BY_NAME, pageSize, cursor, fingerprint);
      return { departments: page.items.map(toDepartment), nextPageToken: page.nextPageToken };
    },

    async createDepartment(request, context) {
      const input = newDepartment(request.department);
      const violations = new Violations();
      await references.liveUser(context.caller.tenantId, input.headUserId, "department.head_user_id", violations);
      violations.throwIfAny();
      return { department: toDepartment(await store.insert(context.caller.tenantId, input, clock())) };
    },

    async updateDepartment(request, context) {
      const patch = requireMessage<Department>(request.department, "department");
      const id = requireId(patch.id, "department.id");
      const current = await existing(context, id);
      const { next, changed } = applyDepartmentUpdate({ displayName: current.displayName, headUserId: current.headUserId }, patch, request.updateMask);
      if (changed.length === 0) return { department: toDepartment(current) };
      const violations = new Violations();
      if (changed.includes("headUserId")) await references.liveUser(context.caller.tenantId, next.headUserId, "department.head_user_id", violations);
      violations.throwIfAny();
      const updated = await store.update(context.caller.tenantId, id, next, clock());
      if (!updated) throw new NotFoundError("department", id);
      return { department: toDepartment(updated) };
    },

    async deleteDepartment(request, context) {
      const id = requireId(request.id, "id");
      await existing(context, id);
      if (await users.departmentHasUsers(context.caller.tenantId, id)) {
        throw new FailedPreconditionError(`department "${id}" still has users; move them to another department first`, { resource_id: id });
      }
      if (!(await store.delete(context.caller.tenantId, id))) throw new NotFoundError("department", id);
      return {};
    },
  });
}
