/**
 * Access tokens for in-process service tests: a throwaway RSA key pair whose
 * JWKS the service under test is given instead of the auth service's. The
 * verification path (signature, claims, revocation, access rules) is the
 * real one; only the issuer is local. End-to-end tests use the real auth.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { type JwksFetcher, jwkFromPrivatePem, signJwt } from "@leadmesh/platform";
import { loadTopology } from "../../scripts/mesh/topology";

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const KID = "test-key";
const jwk = jwkFromPrivatePem(privateKey.export({ type: "pkcs8", format: "pem" }).toString(), KID);

export const { issuer: TEST_ISSUER, audience: TEST_AUDIENCE } = loadTopology().identity;

export const testJwks: JwksFetcher = async () => [await jwk];

export interface TokenSubject {
  tenant: string;
  sub: string;
  /** "agent" | "manager" | "admin" | "service" */
  roles: string[];
  sid?: string;
  /** Security version (claim sv); omitted: a token minted before any role or status change of the user. */
  sv?: number;
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
}

export function mintToken(subject: TokenSubject): string {
  const now = Math.floor(Date.now() / 1000);
  return signJwt(
    {
      iss: subject.issuer ?? TEST_ISSUER,
      aud: subject.audience ?? TEST_AUDIENCE,
      sub: subject.sub,
      tenant: subject.tenant,
      roles: subject.roles,
      jti: randomUUID(),
      sid: subject.sid ?? (subject.roles.includes("service") ? "" : randomUUID()),
      ...(subject.sv === undefined ? {} : { sv: subject.sv }),
      iat: now,
      exp: now + (subject.ttlSeconds ?? 300),
    },
    KID,
    privateKey,
  );
}
