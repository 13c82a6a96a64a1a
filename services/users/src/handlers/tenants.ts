/**
 * users.v1.TenantService: one function per RPC. Callers only ever see their
 * own tenant: any other id is NOT_FOUND, exactly like a missing one.
 */

import type { Tenant } from "@leadmesh/contracts/users/v1/tenant";
import { TenantServiceDefinition, type TenantServiceImplementation } from "@leadmesh/contracts/users/v1/tenants";
import { type CallerContext, NotFoundError, requireMessage, Violations } from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { checkServiceTenant, resolveTenantId } from "../domain/permissions";
import { applyTenantUpdate, newTenant } from "../domain/tenant-rules";
import { type TenantDocument, type TenantStore, toTenant } from "../store";
import { requiringNamedTenant } from "./named-tenant";

type Context = CallContext & CallerContext;

export function tenantHandlers(store: TenantStore, clock: () => Date = () => new Date()): TenantServiceImplementation<CallerContext> {
  /** The caller's tenant when `id` names it ("me" does); NOT_FOUND otherwise. */
  async function ownTenant(context: Context, id: string, field: string): Promise<TenantDocument> {
    if (id.trim() === "") {
      const violations = new Violations();
      violations.add(field, 'is required (or "me")');
      violations.throwIfAny();
    }
    const tenantId = resolveTenantId(context.caller, id);
    const document = tenantId === context.caller.tenantId ? await store.get(tenantId) : null;
    if (!document) throw new NotFoundError("tenant", id);
    return document;
  }

  return requiringNamedTenant(TenantServiceDefinition, {
    async getTenant(request, context) {
      return { tenant: toTenant(await ownTenant(context, request.id, "id")) };
    },

    async createTenant(request, context) {
      const input = newTenant(request.tenant);
      const violations = new Violations();
      checkServiceTenant(context.caller, input.id, "tenant.id", violations);
      violations.throwIfAny();
      return { tenant: toTenant(await store.insert(input, clock())) };
    },

    async updateTenant(request, context) {
      const patch = requireMessage<Tenant>(request.tenant, "tenant");
      const current = await ownTenant(context, patch.id, "tenant.id");
      const changes = applyTenantUpdate(current, patch, request.updateMask);
      if (!changes) return { tenant: toTenant(current) };
      const updated = await store.update(current._id, changes, clock());
      if (!updated) throw new NotFoundError("tenant", current._id);
      return { tenant: toTenant(updated) };
    },
  });
}
