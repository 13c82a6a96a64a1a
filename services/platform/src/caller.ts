import type { CallContext, ServerMiddleware } from "nice-grpc-common";
import { InvalidArgumentError } from "./errors";

/** Who is calling, resolved once per call by the caller middleware. */
export interface Caller {
  /** Tenant whose data the call may see; every store query is scoped to it. */
  tenantId: string;
  /** User id (or service name) recorded as author of changes. */
  actorId: string;
}

export interface CallerContext {
  caller: Caller;
}

export type CallerResolver = (context: CallContext, methodPath: string) => Caller | Promise<Caller>;

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Resolves the caller from request metadata: `x-tenant-id` and `x-user-id`,
 * falling back to the configured default tenant. This is the pre-identity
 * resolver; the identity work swaps it for one that reads verified JWT claims
 * without touching any handler, because handlers only see `context.caller`.
 */
export function metadataCallerResolver(defaultTenantId: string): CallerResolver {
  return (context) => {
    const tenantId = context.metadata.get("x-tenant-id") ?? defaultTenantId;
    if (!TENANT_ID.test(tenantId)) {
      throw new InvalidArgumentError([{ field: "x-tenant-id", description: "must match [a-z0-9][a-z0-9-]{0,62}" }]);
    }
    return { tenantId, actorId: context.metadata.get("x-user-id") ?? "anonymous" };
  };
}

/** Adds `caller` to the call context of every RPC except the infrastructure ones. */
export function callerMiddleware(resolve: CallerResolver): ServerMiddleware<CallerContext> {
  return async function* withCaller(call, context) {
    const caller = await resolve(context, call.method.path);
    return yield* call.next(call.request, { ...context, caller });
  };
}
