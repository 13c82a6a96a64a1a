import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from "@nestjs/common";
import { Reflector } from "@nestjs/core";
import { JwtService } from "@nestjs/jwt";
import { type AuthenticatedRequest, type Caller, PUBLIC_KEY, ROLES_KEY } from "./caller";

interface AccessTokenClaims {
  sub?: unknown;
  tenant?: unknown;
  roles?: unknown;
}

function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== "string") return undefined;
  const [scheme, token] = header.split(" ");
  return scheme === "Bearer" && token ? token : undefined;
}

function callerOf(claims: AccessTokenClaims): Caller | undefined {
  const { sub, tenant, roles } = claims;
  if (typeof sub !== "string" || sub === "" || typeof tenant !== "string" || tenant === "") return undefined;
  if (!Array.isArray(roles) || !roles.every((role) => typeof role === "string")) return undefined;
  return { sub, tenant, roles };
}

/**
 * The guard of the NestJS docs' authentication chapter, applied globally:
 * every request must carry a bearer token whose RS256 signature, issuer,
 * audience and expiry verify against the configured public key (JwtModule's
 * verifyOptions), naming a tenant, a subject and roles; handlers may require
 * one of several roles (@Roles).
 */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(
    private readonly jwt: JwtService,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new UnauthorizedException("a bearer token is required");
    let claims: AccessTokenClaims;
    try {
      claims = await this.jwt.verifyAsync<AccessTokenClaims & object>(token);
    } catch {
      throw new UnauthorizedException("invalid or expired token");
    }
    const caller = callerOf(claims);
    if (!caller) throw new UnauthorizedException("the token names no tenant, subject or roles");
    const required = this.reflector.getAllAndOverride<string[] | undefined>(ROLES_KEY, targets);
    if (required && !caller.roles.some((role) => required.includes(role))) throw new ForbiddenException(`one of the roles ${required.join(", ")} is required`);
    request.caller = caller;
    return true;
  }
}
