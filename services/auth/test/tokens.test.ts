/**
 * Minting against the real Redis and FerretDB (issue 10): a role change that
 * lands between reading the user and signing never yields a token that
 * verifies with the old roles. The change is injected at exactly that point
 * (inside readUser), so every interleaving the e2e race may or may not hit
 * is covered here deterministically.
 */
import { randomUUID } from "node:crypto";
import { Role } from "@leadmesh/contracts/common/v1/access";
import { User } from "@leadmesh/contracts/users/v1/user";
import {
  type AccessTokenClaims,
  ConcurrentCallError,
  jwtKeyId,
  publicKeyFromJwk,
  Revocations,
  STALE_TOKEN_MESSAGE,
  UnauthenticatedError,
  verifyJwt,
} from "@leadmesh/platform";
import { Redis } from "ioredis";
import { type Db, MongoClient } from "mongodb";
import { meshInfo } from "../../../test/harness/mesh-info";
import { SigningKeys } from "../src/signing-keys";
import { TokenIssuer, type TokenRequest } from "../src/tokens";

const ISSUER = "https://issuer.test";
const AUDIENCE = "leadmesh.test";

let redis: Redis;
let client: MongoClient;
let db: Db;
let keys: SigningKeys;
let revocations: Revocations;
let issuer: TokenIssuer;

beforeAll(async () => {
  redis = new Redis(meshInfo().redisUrl);
  client = new MongoClient(meshInfo().mongoUrl);
  db = client.db(`auth_tokens_${Date.now().toString(36)}`);
  keys = new SigningKeys(db, 86400);
  revocations = new Revocations(redis);
  issuer = new TokenIssuer(keys, revocations, { issuer: ISSUER, audience: AUDIENCE, accessTokenTtlSeconds: 900 });
});
afterAll(async () => {
  await redis.quit();
  await client.close();
});

/** A user of a fresh tenant, and a token request whose user reads come from `read` (called once per mint). */
function subject(read: (attempt: number) => Promise<Role[]>): { request: TokenRequest; tenantId: string; userId: string; reads: () => number } {
  const tenantId = `t-${randomUUID().slice(0, 8)}`;
  const userId = randomUUID();
  let reads = 0;
  const request: TokenRequest = {
    tenantId,
    userId,
    sessionId: randomUUID(),
    sessionCreateTime: Date.now(),
    readUser: async () => User.fromPartial({ id: userId, tenantId, roles: await read(++reads) }),
  };
  return { request, tenantId, userId, reads: () => reads };
}

/** The token's claims, its signature checked with the published key it names. */
async function verified(token: string): Promise<AccessTokenClaims> {
  const jwk = (await keys.published()).find((key) => key.kid === jwtKeyId(token));
  if (!jwk) throw new Error(`token signed with unpublished key ${jwtKeyId(token)}`);
  return verifyJwt(token, await publicKeyFromJwk(jwk), { issuer: ISSUER, audience: AUDIENCE });
}

describe("TokenIssuer", () => {
  it("mints again when a role change lands between reading the user and signing, and the token read before is refused", async () => {
    const s = subject(async (attempt) => {
      if (attempt === 1) {
        // The demotion commits (revision 7) and publishes right after this read of the old roles.
        await revocations.publishUserChange(s.tenantId, s.userId, 7, { endSessions: false });
        return [Role.ROLE_MANAGER];
      }
      return [Role.ROLE_AGENT];
    });
    const { token, user } = await issuer.userToken(s.request);
    expect(s.reads()).toBe(2);
    expect(user.roles).toEqual([Role.ROLE_AGENT]);
    const claims = await verified(token);
    expect(claims).toMatchObject({ sub: s.userId, tenant: s.tenantId, roles: ["agent"], sv: 7 });
    expect(await revocations.rejection(claims)).toBeUndefined();
    // What the first attempt signed (roles read before the change, version read before it) is refused everywhere.
    const staleToken: AccessTokenClaims = { ...claims, roles: ["manager"], sv: 0, jti: randomUUID() };
    expect(await revocations.rejection(staleToken)).toBe(STALE_TOKEN_MESSAGE);
    // A token minted before versions existed counts as version 0.
    expect(await revocations.rejection({ ...staleToken, sv: undefined })).toBe(STALE_TOKEN_MESSAGE);
  });

  it("answers ABORTED instead of a token that is dead on arrival when the account keeps changing", async () => {
    const s = subject(async (attempt) => {
      await revocations.publishUserChange(s.tenantId, s.userId, 10 + attempt, { endSessions: false });
      return [Role.ROLE_MANAGER];
    });
    await expect(issuer.userToken(s.request)).rejects.toBeInstanceOf(ConcurrentCallError);
    expect(s.reads()).toBe(4);
  });

  it("refuses a session created before the user's session cut (suspension, deletion) without reading the user", async () => {
    const s = subject(async () => [Role.ROLE_AGENT]);
    await revocations.publishUserChange(s.tenantId, s.userId, 3, { endSessions: true });
    const cut = (await revocations.userSecurityState(s.tenantId, s.userId)).sessionsRevokedBefore;
    expect(cut).toBeGreaterThan(0);
    await expect(issuer.userToken({ ...s.request, sessionCreateTime: cut - 1 })).rejects.toBeInstanceOf(UnauthenticatedError);
    expect(s.reads()).toBe(0);
    const { token } = await issuer.userToken({ ...s.request, sessionCreateTime: cut });
    expect((await verified(token)).sv).toBe(3);
  });
});

describe("Revocations.publishUserChange", () => {
  it("never lowers the version: publications of concurrent changes may arrive in any order", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const userId = randomUUID();
    expect(await revocations.publishUserChange(tenantId, userId, 9, { endSessions: false })).toBe(9);
    expect(await revocations.publishUserChange(tenantId, userId, 8, { endSessions: false })).toBe(9);
    expect(await revocations.userSecurityState(tenantId, userId)).toEqual({ version: 9, sessionsRevokedBefore: 0 });
    await expect(revocations.publishUserChange(tenantId, userId, -1, { endSessions: false })).rejects.toThrow(/must be a revision/);
  });
});
