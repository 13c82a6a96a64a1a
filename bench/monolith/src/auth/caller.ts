import { createParamDecorator, type ExecutionContext, SetMetadata } from "@nestjs/common";

/** Who is calling, from the verified access token. */
export interface Caller {
  tenant: string;
  sub: string;
  roles: string[];
}

/** The part of an express request the guard reads and writes. */
export interface AuthenticatedRequest {
  headers: Record<string, string | string[] | undefined>;
  caller?: Caller;
}

export const ROLES_KEY = "roles";
/** Roles of which the caller needs one (on a controller or a handler). */
export const Roles = (...roles: string[]) => SetMetadata(ROLES_KEY, roles);

export const PUBLIC_KEY = "public";
/** Served without a token (the health check). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

/** The caller the guard put on the request. */
export const CurrentCaller = createParamDecorator((_data: unknown, context: ExecutionContext): Caller => {
  const caller = context.switchToHttp().getRequest<AuthenticatedRequest>().caller;
  // The guard runs before every non-public handler; a handler without a caller is a wiring bug.
  if (!caller) throw new Error("CurrentCaller used on a route the JWT guard did not authenticate");
  return caller;
});
