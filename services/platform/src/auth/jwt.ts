/**
 * RS256 JSON Web Tokens. Verification is strict: the header must say RS256
 * (so `alg: none` and HS256-with-the-public-key tricks fail), the key id must
 * be known, and iss, aud, exp, nbf are checked.
 *
 * jose parses tokens and converts keys to and from JWK. The RSA signature
 * itself is made and checked with node:crypto: jose goes through WebCrypto,
 * which costs 4-5x the CPU per verification and 1.5x per signature
 * (bench/jwt-micro.ts on the shared 2-core machine: ~185-230 vs ~45 µs to
 * verify, ~710 vs ~460 µs to sign), and verification runs on every call
 * whose token the kernel has not seen yet. node:crypto also keeps both
 * synchronous for their callers.
 */
import { createPublicKey, KeyObject, sign, verify, type webcrypto } from "node:crypto";
import { decodeJwt, decodeProtectedHeader, exportJWK, importJWK } from "jose";

export interface AccessTokenClaims {
  iss: string;
  aud: string;
  /** User id. */
  sub: string;
  tenant: string;
  /** common.v1.Role names without the prefix, lower-case: "agent", "manager", "admin", "service". */
  roles: string[];
  jti: string;
  /** Session id. */
  sid: string;
  /** The user's security version at mint (auth/revocation.ts); absent on tokens minted before versions existed (version 0). */
  sv?: number;
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
  const parsed = decoded(() => decodeProtectedHeader(token), "header");
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
  const claims = decoded(() => decodeJwt(token), "payload") as Partial<AccessTokenClaims>;
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
  if (claims.sv !== undefined && !(Number.isSafeInteger(claims.sv) && claims.sv >= 0)) throw new TokenError("token has an invalid security version");
  if (!Array.isArray(claims.roles) || !claims.roles.every((role) => typeof role === "string")) throw new TokenError("token lacks roles");
  return { sid: "", ...claims } as AccessTokenClaims;
}

/** A token part decoded by jose; whatever is wrong with it is the caller's malformed token. */
function decoded<T>(decode: () => T, what: string): T {
  try {
    return decode();
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

/** NIST SP 800-131A: shorter RSA keys no longer protect a signature. */
const MIN_RSA_BITS = 2048;

/** A published verification key, refused unless it is an RSA key of at least 2048 bits for RS256. */
export async function publicKeyFromJwk(jwk: PublicJwk): Promise<KeyObject> {
  if (jwk.kty !== "RSA" || !jwk.n || !jwk.e) throw new TokenError(`key ${jwk.kid} is not an RSA key`);
  if (jwk.alg !== undefined && jwk.alg !== "RS256") throw new TokenError(`key ${jwk.kid} is for ${jwk.alg}, not RS256`);
  let key: KeyObject;
  try {
    // An RSA JWK always imports as a CryptoKey (only symmetric "oct" keys come back as bytes).
    key = KeyObject.from((await importJWK({ kty: "RSA", n: jwk.n, e: jwk.e }, "RS256")) as webcrypto.CryptoKey);
  } catch {
    throw new TokenError(`key ${jwk.kid} is not a valid RSA public key`);
  }
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) throw new TokenError(`key ${jwk.kid} is shorter than ${MIN_RSA_BITS} bits`);
  return key;
}

/** The public JWK of a signing key, as the JWKS publishes it. */
export async function jwkFromPrivatePem(privatePem: string, kid: string): Promise<PublicJwk> {
  const { n, e } = await exportJWK(createPublicKey(privatePem));
  if (!n || !e) throw new Error(`signing key ${kid} is not an RSA key`);
  return { kty: "RSA", kid, use: "sig", alg: "RS256", n, e };
}
