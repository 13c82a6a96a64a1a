import { generateKeyPairSync, sign as rsaSign } from "node:crypto";
import { type AccessTokenClaims, jwkFromPrivatePem, jwtKeyId, publicKeyFromJwk, signJwt, TokenError, verifyJwt } from "./jwt";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
const now = 1_800_000_000;
const claims: AccessTokenClaims = { iss: "iss", aud: "aud", sub: "u1", tenant: "acme", roles: ["agent"], jti: "j1", sid: "s1", iat: now, exp: now + 900 };
const options = { issuer: "iss", audience: "aud", now };

function reason(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TokenError);
    return (error as Error).message;
  }
  throw new Error("token accepted");
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("RS256 JWTs", () => {
  const token = signJwt(claims, "k1", privateKey);

  it("round-trips and exposes the key id", () => {
    expect(jwtKeyId(token)).toBe("k1");
    expect(verifyJwt(token, publicKey, options)).toEqual(claims);
  });

  it("carries the security version, and refuses one that is not a non-negative integer", () => {
    expect(verifyJwt(signJwt({ ...claims, sv: 12 }, "k1", privateKey), publicKey, options).sv).toBe(12);
    for (const sv of [-1, 1.5, "3"]) {
      const forged = signJwt({ ...claims, sv: sv as number }, "k1", privateKey);
      expect(reason(() => verifyJwt(forged, publicKey, options))).toBe("token has an invalid security version");
    }
  });

  it("verifies with a key rebuilt from its published JWK", async () => {
    const jwk = await jwkFromPrivatePem(privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "k1");
    expect(Object.keys(jwk).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]); // public parts only
    expect(jwk).toMatchObject({ kty: "RSA", kid: "k1", use: "sig", alg: "RS256", e: "AQAB" });
    expect(verifyJwt(token, await publicKeyFromJwk(jwk), options).sub).toBe("u1");
  });

  it("refuses published keys that are not RS256 keys of at least 2048 bits", async () => {
    const jwk = await jwkFromPrivatePem(privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "k1");
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await expect(publicKeyFromJwk(await jwkFromPrivatePem(weak, "weak"))).rejects.toThrow("key weak is shorter than 2048 bits");
    await expect(publicKeyFromJwk({ ...jwk, kty: "EC" })).rejects.toThrow("key k1 is not an RSA key");
    await expect(publicKeyFromJwk({ ...jwk, alg: "RS512" })).rejects.toThrow("key k1 is for RS512, not RS256");
    await expect(publicKeyFromJwk({ ...jwk, n: "!!not base64url!!" })).rejects.toThrow(TokenError);
  });

  it("rejects alg none, HS256 and a missing kid before looking at the signature", () => {
    const payload = b64(claims);
    expect(reason(() => jwtKeyId(`${b64({ alg: "none", kid: "k1" })}.${payload}.`))).toMatch(/algorithm "none" is not accepted/);
    expect(reason(() => verifyJwt(`${b64({ alg: "none", kid: "k1" })}.${payload}.`, publicKey, options))).toMatch(/not accepted/);
    expect(reason(() => jwtKeyId(`${b64({ alg: "HS256", kid: "k1" })}.${payload}.x`))).toMatch(/not accepted/);
    expect(reason(() => jwtKeyId(`${b64({ alg: "RS256" })}.${payload}.x`))).toMatch(/no key id/);
  });

  it("rejects a tampered payload, a foreign key and garbage", () => {
    const [header, , signature] = token.split(".");
    const forged = `${header}.${b64({ ...claims, roles: ["admin"] })}.${signature}`;
    expect(reason(() => verifyJwt(forged, publicKey, options))).toBe("signature does not verify");
    expect(reason(() => verifyJwt(token, other.publicKey, options))).toBe("signature does not verify");
    expect(reason(() => verifyJwt("a.b", publicKey, options))).toBe("malformed token");
    expect(reason(() => verifyJwt("!!.??.**", publicKey, options))).toMatch(/malformed/);
    expect(reason(() => jwtKeyId(`${Buffer.from("[1]").toString("base64url")}.e30.x`))).toBe("malformed token header");
  });

  it("refuses a correctly signed payload that is not a JSON object", () => {
    const input = `${b64({ alg: "RS256", typ: "JWT", kid: "k1" })}.${Buffer.from("not json").toString("base64url")}`;
    const signed = `${input}.${rsaSign("RSA-SHA256", Buffer.from(input), privateKey).toString("base64url")}`;
    expect(reason(() => verifyJwt(signed, publicKey, options))).toBe("malformed token payload");
  });

  it("checks issuer, audience, expiry, not-before and required claims", () => {
    const sign = (overrides: Partial<AccessTokenClaims>) => signJwt({ ...claims, ...overrides }, "k1", privateKey);
    expect(reason(() => verifyJwt(sign({ iss: "evil" }), publicKey, options))).toBe("wrong issuer");
    expect(reason(() => verifyJwt(sign({ aud: "other" }), publicKey, options))).toBe("wrong audience");
    expect(reason(() => verifyJwt(sign({ exp: now - 31 }), publicKey, options))).toBe("token expired");
    expect(verifyJwt(sign({ exp: now - 29 }), publicKey, options).sub).toBe("u1");
    expect(reason(() => verifyJwt(sign({ nbf: now + 60 }), publicKey, options))).toBe("token not yet valid");
    expect(reason(() => verifyJwt(sign({ tenant: "" }), publicKey, options))).toBe("token lacks tenant");
    expect(reason(() => verifyJwt(sign({ roles: "admin" as unknown as string[] }), publicKey, options))).toBe("token lacks roles");
  });
});
