/**
 * RS256 JSON Web Tokens with node:crypto only. Verification is strict: the
 * header must say RS256 (so `alg: none` and HS256-with-the-public-key tricks
 * fail), the key id must be known, and iss, aud, exp, nbf are checked.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

export interface AccessTokenClaims {
  iss: string;
  aud: string;
  /** User id, or service name for service tokens. */
  sub: string;
  tenant: string;
  /** common.v1.Role names without the prefix, lower-case: "agent", "manager", "admin", "service". */
  roles: string[];
  jti: string;
  /** Session id; empty for service tokens. */
  sid: string;
  iat: number;
  exp: number;
  nbf?: number;
}

export class TokenError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "TokenError";
  }
}

const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

export function signJwt(claims: AccessTokenClaims, kid: string, privateKey: KeyObject): string {
  const signingInput = `${encode({ alg: "RS256", typ: "JWT", kid })}.${encode(claims)}`;
  return `${signingInput}.${sign("RSA-SHA256", Buffer.from(signingInput), privateKey).toString("base64url")}`;
}

export interface VerifyOptions {
  issuer: string;
  audience: string;
  /** Seconds of clock skew tolerated on exp/nbf/iat. */
  leewaySeconds?: number;
  now?: number;
}

/** Parses the header only, to find the key id before the key is known. */
export function jwtKeyId(token: string): string {
  const [header] = token.split(".");
  const parsed = parseSegment(header, "header") as { alg?: unknown; kid?: unknown };
  if (parsed.alg !== "RS256") throw new TokenError(`algorithm ${JSON.stringify(parsed.alg)} is not accepted (RS256 only)`);
  if (typeof parsed.kid !== "string" || parsed.kid === "") throw new TokenError("token has no key id");
  return parsed.kid;
}

export function verifyJwt(token: string, publicKey: KeyObject, options: VerifyOptions): AccessTokenClaims {
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenError("malformed token");
  jwtKeyId(token);
  const valid = verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], "base64url"));
  if (!valid) throw new TokenError("signature does not verify");
  const claims = parseSegment(parts[1], "payload") as Partial<AccessTokenClaims>;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const leeway = options.leewaySeconds ?? 30;
  if (claims.iss !== options.issuer) throw new TokenError("wrong issuer");
  if (claims.aud !== options.audience) throw new TokenError("wrong audience");
  if (typeof claims.exp !== "number" || claims.exp + leeway < now) throw new TokenError("token expired");
  if (typeof claims.nbf === "number" && claims.nbf - leeway > now) throw new TokenError("token not yet valid");
  if (typeof claims.iat !== "number" || claims.iat - leeway > now) throw new TokenError("token issued in the future");
  for (const field of ["sub", "tenant", "jti"] as const) {
    if (typeof claims[field] !== "string" || claims[field] === "") throw new TokenError(`token lacks ${field}`);
  }
  if (!Array.isArray(claims.roles) || !claims.roles.every((role) => typeof role === "string")) throw new TokenError("token lacks roles");
  return { sid: "", ...claims } as AccessTokenClaims;
}

function parseSegment(segment: string | undefined, what: string): unknown {
  if (!segment || !/^[A-Za-z0-9_-]+$/.test(segment)) throw new TokenError(`malformed token ${what}`);
  try {
    const value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    if (typeof value !== "object" || value === null) throw new Error("not an object");
    return value;
  } catch {
    throw new TokenError(`malformed token ${what}`);
  }
}

export interface PublicJwk {
  kty: string;
  kid: string;
  use: string;
  alg: string;
  n: string;
  e: string;
}

export function publicKeyFromJwk(jwk: PublicJwk): KeyObject {
  if (jwk.kty !== "RSA" || !jwk.n || !jwk.e) throw new TokenError(`key ${jwk.kid} is not an RSA key`);
  return createPublicKey({ key: { kty: "RSA", n: jwk.n, e: jwk.e }, format: "jwk" });
}

export function jwkFromPrivatePem(privatePem: string, kid: string): PublicJwk {
  const exported = createPublicKey(createPrivateKey(privatePem)).export({ format: "jwk" }) as { n: string; e: string };
  return { kty: "RSA", kid, use: "sig", alg: "RS256", n: exported.n, e: exported.e };
}
