/**
 * Authentication and authorization, once for every service: a step of the
 * kernel middleware (kernel-middleware.ts) that verifies the caller's access token locally (JWKS cached),
 * checks the revocation list, applies the RPC's declared access rule and
 * hands handlers a verified `context.caller`. Handlers never read tokens or
 * metadata themselves; every store query is scoped by `caller.tenantId`.
 *
 * It runs inside the mesh peer check (mtls/peer-access.ts), so the transport
 * peer is already verified and allowed for this RPC. A call with a user's
 * token acts for that user (the token's access rule applies on top of the
 * peer allow-list). A call without one from a mesh service acts as that
 * service, by its certificate identity: no service tokens.
 *
 * Refusals of a mesh peer made here (the operator without a user's token, a
 * service token, a service on an RPC that admits none or naming no tenant)
 * are logged and counted like the allow-list's (recordPeerRefusal): they are
 * deployments calling wrongly. A user's token that fails (expired, revoked,
 * roles too low) is an ordinary 401/403 of that user and is not.
 */

import { type AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import type { CallContext } from "nice-grpc-common";
import type { JwksCache } from "./auth/jwks-cache";
import { type AccessTokenClaims, jwtKeyId, TokenError, verifyJwt } from "./auth/jwt";
import type { Revocations } from "./auth/revocation";
import { type DomainError, InvalidArgumentError, PermissionDeniedError, UnauthenticatedError } from "./errors";
import type { Logger } from "./logger";
import { type MeshPeer, type RejectionReason, recordPeerRefusal } from "./mtls/peer-access";
import { checkTenantId } from "./validation";

/** Metadata a service caller sends to act within one tenant (clients.ts callOptionsFrom). */
export const TENANT_HEADER = "leadmesh-tenant";

export type CallerKind = "user" | "service" | "anonymous";

/** Who is calling, verified. */
export interface Caller {
  kind: CallerKind;
  /** Tenant whose data the call may see; "" for anonymous callers of public RPCs. */
  tenantId: string;
  /** User id, service name, or "anonymous". */
  actorId: string;
  roles: Role[];
  /** Session of a user token; "" otherwise. */
  sessionId: string;
  /** jti of the token; "" for anonymous callers. */
  tokenId: string;
  /** Expiry of the token (unix seconds); 0 for anonymous and service callers. */
  tokenExpiresAt: number;
  /** Identity name of the mesh peer that made the call (the edge, a service, the operator); "" outside the mesh. */
  peer: string;
}

export interface CallerContext {
  caller: Caller;
}

export interface AuthSettings {
  issuer: string;
  audience: string;
  jwks: JwksCache;
  revocations: Revocations;
}

export const ANONYMOUS: Caller = Object.freeze({
  kind: "anonymous",
  tenantId: "",
  actorId: "anonymous",
  roles: [],
  sessionId: "",
  tokenId: "",
  tokenExpiresAt: 0,
  peer: "",
});

const ROLE_BY_NAME: Record<string, Role> = { agent: Role.ROLE_AGENT, manager: Role.ROLE_MANAGER, admin: Role.ROLE_ADMIN, service: Role.ROLE_SERVICE };

/** Claim spelling of a role: ROLE_MANAGER → "manager". */
export function roleClaim(role: Role): string {
  return Role[role].replace(/^ROLE_/, "").toLowerCase();
}

export function hasAnyRole(caller: Caller, ...roles: Role[]): boolean {
  return caller.roles.some((role) => roles.includes(role));
}

/** A refusal of a mesh peer that is logged and counted (recordPeerRefusal) before it is thrown. */
class PeerRefused extends Error {
  constructor(
    readonly reason: RejectionReason,
    readonly error: DomainError,
  ) {
    super(error.message);
  }
}

/** Who is calling `path` (verified and allowed by the RPC's access rule), or the refusal thrown. */
export type CallAuthenticator = (path: string, request: unknown, context: CallContext, peer: MeshPeer) => Caller | Promise<Caller>;

/**
 * The authentication and access-rule step, called by the kernel middleware
 * (kernel-middleware.ts) for every API RPC. Public RPCs answer at
 * once, without a promise: their anonymous caller is made once per peer.
 */
export function callAuthenticator(rules: ReadonlyMap<string, AccessRule>, settings: AuthSettings, logger: Logger): CallAuthenticator {
  const verifiedTokens = new VerifiedTokenCache();
  const anonymousByPeer = new Map<string, Caller>();
  const anonymousFrom = (peer: MeshPeer): Caller => {
    let caller = anonymousByPeer.get(peer.name);
    if (!caller) {
      caller = Object.freeze({ ...ANONYMOUS, peer: peer.name });
      anonymousByPeer.set(peer.name, caller);
    }
    return caller;
  };
  return (path, request, context, peer) => {
    const rule = rules.get(path);
    if (!rule) throw new PermissionDeniedError(`${path} declares no access rule`);
    if (rule.public) return anonymousFrom(peer);
    return authenticated(rule, path, request, context, peer);
  };

  async function authenticated(rule: AccessRule, path: string, request: unknown, context: CallContext, peer: MeshPeer): Promise<Caller> {
    try {
      const caller = context.metadata.get("authorization")
        ? await verifiedUser(context, settings, verifiedTokens, peer)
        : serviceCaller(context, peer, rule, path);
      authorize(rule, caller, request, path);
      return caller;
    } catch (error) {
      if (!(error instanceof PeerRefused)) throw error;
      recordPeerRefusal(logger, { peer: peer.spiffeId, rpc: path, reason: error.reason, detail: error.message, address: context.peer });
      throw error.error;
    }
  }
}

/** A mesh service calling as itself (no user token): its certificate identity, and the tenant it says it acts in. */
function serviceCaller(context: CallContext, peer: MeshPeer, rule: AccessRule, path: string): Caller {
  if (!peer.isService) {
    const error = new UnauthenticatedError("an access token is required (Authorization: Bearer <token>); only mesh services may call without one");
    // Through the edge, a call without a token is a browser's without one: the user's 401, not a deployment's mistake.
    if (peer.isEdge) throw error;
    throw new PeerRefused("no_token", error);
  }
  if (!rule.services) {
    throw new PeerRefused(
      "service_not_allowed_by_rule",
      new PermissionDeniedError(`service "${peer.name}" may not call ${path} without a user's token (its access rule admits no service callers)`),
    );
  }
  const tenantId = context.metadata.get(TENANT_HEADER) ?? "";
  if (tenantId === "") {
    // Every store query is scoped by the caller's tenant: without one a service would see an empty tenant instead of learning it called wrongly.
    throw new PeerRefused(
      "no_tenant",
      new PermissionDeniedError(`service "${peer.name}" named no tenant for ${path}: send the tenant id in metadata ${TENANT_HEADER}`),
    );
  }
  const problem = checkTenantId(tenantId);
  if (problem) {
    throw new PeerRefused(
      "malformed_tenant",
      new InvalidArgumentError([{ field: TENANT_HEADER, description: problem }], `metadata ${TENANT_HEADER} ${problem}`),
    );
  }
  return {
    kind: "service",
    tenantId,
    actorId: peer.name,
    roles: [Role.ROLE_SERVICE],
    sessionId: "",
    tokenId: "",
    tokenExpiresAt: 0,
    peer: peer.name,
  };
}

/** A token's verified claims, and the key that verified them. */
interface VerifiedToken {
  claims: AccessTokenClaims;
  kid: string;
}

/**
 * Tokens whose signature and claims were verified, until they expire: a
 * client sends the same token for minutes, and RSA verification is the
 * largest part of authenticating a call. Revocation is still checked on
 * every call, and so is the signing key: each entry remembers its kid, and
 * a key the auth service has withdrawn (compromised, retired) sends the
 * token through full verification again, which rejects it. Bounded: the
 * oldest entries go first.
 */
class VerifiedTokenCache {
  private readonly entries = new Map<string, VerifiedToken>();
  constructor(private readonly capacity = 10_000) {}
  get(token: string): VerifiedToken | undefined {
    return this.entries.get(token);
  }
  set(token: string, verified: VerifiedToken): void {
    const oldest = this.entries.keys().next();
    if (this.entries.size >= this.capacity && !oldest.done) this.entries.delete(oldest.value);
    this.entries.set(token, verified);
  }
}

/** The claims of a bearer token: from the cache while its key is still published and it has not expired, else verified now. */
async function verifiedClaims(token: string, settings: AuthSettings, verifiedTokens: VerifiedTokenCache): Promise<AccessTokenClaims> {
  const cached = verifiedTokens.get(token);
  if (cached && cached.claims.exp >= Math.floor(Date.now() / 1000) && settings.jwks.has(cached.kid)) return cached.claims;
  try {
    const kid = jwtKeyId(token);
    const key = await settings.jwks.key(kid);
    const claims = verifyJwt(token, key, { issuer: settings.issuer, audience: settings.audience });
    verifiedTokens.set(token, { claims, kid });
    return claims;
  } catch (error) {
    if (error instanceof TokenError) throw new UnauthenticatedError(`access token rejected: ${error.message}`);
    // e.g. the auth service is unreachable and the key unknown: UNAVAILABLE (a DomainError), which clients retry.
    throw error;
  }
}

async function verifiedUser(context: CallContext, settings: AuthSettings, verifiedTokens: VerifiedTokenCache, peer: MeshPeer): Promise<Caller> {
  const header = context.metadata.get("authorization");
  if (!header) throw new UnauthenticatedError("an access token is required (Authorization: Bearer <token>)");
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new UnauthenticatedError("the Authorization header must be 'Bearer <token>'");
  const claims = await verifiedClaims(match[1], settings, verifiedTokens);
  const rejection = await settings.revocations.rejection(claims);
  if (rejection !== undefined) throw new UnauthenticatedError(`access token rejected: ${rejection}`);
  const roles = claims.roles.map((name) => ROLE_BY_NAME[name]).filter((role): role is Role => role !== undefined);
  if (roles.includes(Role.ROLE_SERVICE)) {
    throw new PeerRefused("service_token", new UnauthenticatedError("service tokens are no longer accepted; services call with their mesh identity"));
  }
  return {
    kind: "user",
    tenantId: claims.tenant,
    actorId: claims.sub,
    roles,
    sessionId: claims.sid,
    tokenId: claims.jti,
    tokenExpiresAt: claims.exp,
    peer: peer.name,
  };
}

function authorize(rule: AccessRule, caller: Caller, request: unknown, path: string): void {
  // Which services may call this RPC at all is the peer allow-list's business; serviceCaller checked the RPC admits service callers.
  if (caller.kind === "service") return;
  if (hasAnyRole(caller, ...rule.roles)) return;
  if (rule.selfField !== "") {
    const target = readField(request, rule.selfField);
    if (target === caller.actorId || target === "me") return;
  }
  throw new PermissionDeniedError(`your roles (${caller.roles.map(roleClaim).join(", ") || "none"}) do not allow ${path}`);
}

/** Reads a proto field path ("user.id") from a ts-proto message (camelCase properties). */
function readField(message: unknown, path: string): unknown {
  return path
    .split(".")
    .map((segment) => segment.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()))
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], message);
}
