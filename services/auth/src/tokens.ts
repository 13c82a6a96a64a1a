/**
 * Minting access tokens: user tokens at sign-in/refresh, and service tokens
 * the auth service uses itself when it calls the users service.
 */
import { randomUUID } from "node:crypto";
import { Role } from "@leadmesh/contracts/common/v1/access";
import { type Revocations, roleClaim, signJwt } from "@leadmesh/platform";
import type { SigningKeys } from "./signing-keys";

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
}

export class TokenIssuer {
  private readonly serviceTokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(
    private readonly keys: SigningKeys,
    private readonly revocations: Revocations,
    private readonly settings: TokenSettings,
  ) {}

  async userToken(tenantId: string, userId: string, roles: Role[], sessionId: string): Promise<{ token: string; expiresIn: number }> {
    // A user-wide revocation (role change, suspension) cuts at a whole second:
    // make sure this new token is issued after the cut.
    await this.revocations.waitForFreshSecond(tenantId, userId);
    const token = await this.mint(
      tenantId,
      userId,
      roles.filter((role) => role !== Role.ROLE_SERVICE).map(roleClaim),
      sessionId,
      this.settings.accessTokenTtlSeconds,
    );
    return { token, expiresIn: this.settings.accessTokenTtlSeconds };
  }

  /** A short-lived token identifying the auth service to another service, scoped to one tenant; cached. */
  async serviceToken(tenantId: string): Promise<string> {
    const cached = this.serviceTokens.get(tenantId);
    if (cached && cached.expiresAt - Date.now() > 60_000) return cached.token;
    const ttl = 300;
    const token = await this.mint(tenantId, "auth", [roleClaim(Role.ROLE_SERVICE)], "", ttl);
    if (this.serviceTokens.size > 10_000) this.serviceTokens.clear();
    this.serviceTokens.set(tenantId, { token, expiresAt: Date.now() + ttl * 1000 });
    return token;
  }

  private async mint(tenant: string, sub: string, roles: string[], sid: string, ttlSeconds: number): Promise<string> {
    const key = await this.keys.current();
    const now = Math.floor(Date.now() / 1000);
    return signJwt(
      { iss: this.settings.issuer, aud: this.settings.audience, sub, tenant, roles, jti: randomUUID(), sid, iat: now, nbf: now, exp: now + ttlSeconds },
      key.kid,
      key.privateKey,
    );
  }
}
