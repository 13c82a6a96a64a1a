/**
 * Minting access tokens for users at sign-in and refresh. Services never get
 * tokens: inside the mesh a service is known by its certificate identity
 * (mTLS), so no token with role "service" is minted here, and the platform
 * refuses one if it ever arrives.
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
