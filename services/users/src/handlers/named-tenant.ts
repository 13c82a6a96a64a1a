/**
 * Applies checkServiceNamedTenant to every RPC of a users.v1 service before
 * its handler runs: each handler scopes its store queries by
 * `caller.tenantId`, which a calling service sets only through metadata
 * leadmesh-tenant.
 */
import type { CallerContext } from "@leadmesh/platform";
import type { CallContext } from "nice-grpc-common";
import { checkServiceNamedTenant } from "../domain/permissions";

type UnaryHandler = (request: unknown, context: CallContext & CallerContext) => Promise<unknown>;

/** The parts of a generated (ts-proto) service definition that name its RPCs. */
interface NamedDefinition {
  fullName: string;
  methods: Record<string, { name: string }>;
}

export function requiringNamedTenant<Handlers extends object>(definition: NamedDefinition, handlers: Handlers): Handlers {
  const guarded = Object.entries(handlers as Record<string, UnaryHandler>).map(([method, handler]) => {
    const path = `/${definition.fullName}/${definition.methods[method]?.name ?? method}`;
    const guard: UnaryHandler = async (request, context) => {
      checkServiceNamedTenant(context.caller, path);
      return handler(request, context);
    };
    return [method, guard] as const;
  });
  return Object.fromEntries(guarded) as Handlers;
}
