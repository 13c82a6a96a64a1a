/**
 * The harness's signing-key lookup across midnight UTC, against the test
 * mesh's FerretDB: on either side of the epoch change it returns exactly the
 * key the auth service's own SigningKeys signs with at that instant, and the
 * JWKS auth publishes after midnight still verifies tokens signed before it.
 * A scratch database stands in for auth's, so the mesh's keys are untouched.
 */
import { createPrivateKey } from "node:crypto";
import { publicKeyFromJwk, signJwt, verifyJwt } from "@leadmesh/platform";
import { type Db, MongoClient } from "mongodb";
import { SigningKeys } from "../../services/auth/src/signing-keys";
import { authSigningKey } from "./identity";
import { meshInfo } from "./mesh-info";

const DAY_SECONDS = 86400;
let client: MongoClient;
let database: string;
let db: Db;

beforeAll(() => {
  client = new MongoClient(meshInfo().mongoUrl);
  database = `auth_midnight_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  db = client.db(database);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

function tokenAt(atMs: number, key: { kid: string; pem: string }): string {
  const iat = Math.floor(atMs / 1000);
  const claims = { iss: "i", aud: "a", sub: "u1", tenant: "t", roles: ["agent"], jti: `j${atMs}`, sid: "s", iat, exp: iat + 2 * DAY_SECONDS };
  return signJwt(claims, key.kid, createPrivateKey(key.pem));
}

it("signs with auth's current key on both sides of midnight UTC, and tokens from before midnight keep verifying", async () => {
  // The last midnight UTC (keys are named by day number), so the tokens below are neither from the future nor expired.
  const midnight = Math.floor(Date.now() / (DAY_SECONDS * 1000)) * DAY_SECONDS * 1000;
  let clock = midnight - 1;
  const auth = new SigningKeys(db, DAY_SECONDS, () => clock);
  const lookup = (at: number) => authSigningKey(DAY_SECONDS, meshInfo().mongoUrl, { now: at, database });

  const before = await auth.current(); // also creates the next day's key, a day ahead
  const beforeKey = await lookup(clock);
  expect(beforeKey.kid).toBe(before.kid);
  const signedBefore = tokenAt(clock, beforeKey);

  clock = midnight;
  const after = await auth.current();
  expect(after.kid).not.toBe(before.kid);
  const afterKey = await lookup(clock);
  expect(afterKey.kid).toBe(after.kid);
  // The same key material auth signs with, not only the same name.
  expect(createPrivateKey(afterKey.pem).export({ format: "jwk" }).n).toBe(after.privateKey.export({ format: "jwk" }).n);
  expect((await lookup(midnight - 1)).kid).toBe(before.kid);

  // What every verifier does after midnight: both tokens verify against the published JWKS.
  const published = await auth.published();
  for (const token of [signedBefore, tokenAt(clock, afterKey)]) {
    const kid = JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString()).kid;
    const jwk = published.find((key) => key.kid === kid);
    if (!jwk) throw new Error(`token signed with ${kid}, which auth does not publish after midnight (${published.map((key) => key.kid)})`);
    expect(verifyJwt(token, await publicKeyFromJwk(jwk), { issuer: "i", audience: "a" }).sub).toBe("u1");
  }
});
