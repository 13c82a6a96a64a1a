/**
 * Key rotation against the real FerretDB: the next key is published a whole
 * period before it signs, a retired key stays published for one more period,
 * and two replicas agree on each epoch's key. Key documents written by
 * earlier builds keep working or are rotated out with a logged reason.
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { JwksCache, publicKeyFromJwk, signJwt, verifyJwt } from "@leadmesh/platform";
import { type Db, MongoClient } from "mongodb";
import { meshInfo } from "../../../test/harness/mesh-info";
import { type KeyLog, SigningKeys } from "../src/signing-keys";

let client: MongoClient;
let db: Db;

beforeAll(async () => {
  client = new MongoClient(meshInfo().mongoUrl);
  db = client.db(`auth_keys_${Date.now().toString(36)}`);
});
afterAll(() => client.close());

describe("SigningKeys", () => {
  it("announces the next key before it signs and keeps the retired one published", async () => {
    const period = 3600;
    let now = 1000 * period * 1000 + 10_000;
    const keys = new SigningKeys(db, period, () => now);
    const first = await keys.current();
    const publishedThen = (await keys.published()).map((key) => key.kid);
    expect(publishedThen).toContain(first.kid);
    expect(publishedThen).toHaveLength(2); // current and next (no previous yet)

    now += period * 1000; // next epoch
    const second = await keys.current();
    expect(second.kid).not.toBe(first.kid);
    expect(publishedThen).toContain(second.kid); // it was announced a period ago
    const publishedNow = (await keys.published()).map((key) => key.kid);
    expect(publishedNow).toEqual(expect.arrayContaining([first.kid, second.kid]));
    expect(publishedNow).toHaveLength(3);

    now += 2 * period * 1000; // two epochs on: the first key is gone
    expect((await keys.published()).map((key) => key.kid)).not.toContain(first.kid);
  });

  it("lets concurrent replicas agree on one key per epoch", async () => {
    const now = () => 7777 * 600 * 1000;
    const replicas = [new SigningKeys(db, 600, now), new SigningKeys(db, 600, now), new SigningKeys(db, 600, now)];
    const kids = await Promise.all(replicas.map(async (replica) => (await replica.current()).kid));
    expect(new Set(kids).size).toBe(1);
  });
});

describe("SigningKeys with documents written by earlier builds", () => {
  const period = 600;
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const log = { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) } as unknown as KeyLog;
  beforeEach(() => {
    warnings.length = 0;
  });

  function rsaPem(bits: number): string {
    return generateKeyPairSync("rsa", { modulusLength: bits }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  }

  /** The public JWK exactly as release 17dd9b4 stored it (node:crypto export, before jose). */
  function jwkOf17dd9b4(privatePem: string, kid: string) {
    const exported = createPublicKey(privatePem).export({ format: "jwk" }) as { n: string; e: string };
    return { kty: "RSA", kid, use: "sig", alg: "RS256", n: exported.n, e: exported.e };
  }

  async function keysInFreshDatabase(documents: (epoch: number) => object[]) {
    const database = client.db(`auth_keys_old_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
    const epoch = 4_000_000;
    await database.collection("signing_keys").insertMany(documents(epoch) as never[]);
    return { database, epoch, keys: new SigningKeys(database, period, () => epoch * period * 1000 + 1000, log) };
  }

  /** What every verifier does with the JWKS: the key that signs now verifies its tokens. */
  async function expectUsableForSignIn(keys: SigningKeys, database: Db) {
    const published = await keys.published();
    expect(published.length).toBeGreaterThanOrEqual(2);
    // Each published JWK is the public half of the private key stored under its kid: same modulus and exponent.
    const stored = await database
      .collection<{ kid: string; privatePem: string }>("signing_keys")
      .find({ kid: { $in: published.map((jwk) => jwk.kid) } })
      .toArray();
    for (const jwk of published) {
      const document = stored.find((candidate) => candidate.kid === jwk.kid);
      if (!document) throw new Error(`published kid ${jwk.kid} has no stored key`);
      const { n, e } = createPublicKey(document.privatePem).export({ format: "jwk" });
      const { n: publishedN, e: publishedE } = (await publicKeyFromJwk(jwk)).export({ format: "jwk" });
      expect({ kid: jwk.kid, n: publishedN, e: publishedE }).toEqual({ kid: jwk.kid, n, e });
    }
    const signing = await keys.current();
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: "i", aud: "a", sub: "u1", tenant: "t", roles: ["admin"], jti: "j", sid: "s", iat: now, exp: now + 60 };
    const token = signJwt(claims, signing.kid, signing.privateKey);
    const cache = new JwksCache(() => keys.published());
    expect(verifyJwt(token, await cache.key(signing.kid), { issuer: "i", audience: "a" }).sub).toBe("u1");
  }

  it("keeps serving keys stored with an empty public JWK (as .run/local holds them) and repairs the documents", async () => {
    const { database, epoch, keys } = await keysInFreshDatabase((epoch) =>
      [epoch - 1, epoch, epoch + 1].map((e) => ({ _id: String(e), kid: `old-${e}`, privatePem: rsaPem(2048), jwk: {}, createTime: new Date() })),
    );
    await expectUsableForSignIn(keys, database);
    expect((await keys.published()).map((jwk) => jwk.kid).sort()).toEqual([`old-${epoch - 1}`, `old-${epoch}`, `old-${epoch + 1}`]);
    expect((await keys.current()).kid).toBe(`old-${epoch}`);
    expect(warnings.map((warning) => warning.fields.reason)).toEqual([
      "stored public JWK is empty",
      "stored public JWK is empty",
      "stored public JWK is empty",
    ]);
    // Repaired in place: a replica reading later finds whole JWKs and has nothing to log.
    const stored = await database.collection("signing_keys").find({}).toArray();
    for (const document of stored) expect(document.jwk).toMatchObject({ kty: "RSA", alg: "RS256", kid: document.kid, n: expect.any(String) });
    warnings.length = 0;
    await expectUsableForSignIn(new SigningKeys(database, period, () => epoch * period * 1000 + 1000, log), database);
    expect(warnings).toEqual([]);
  });

  it("reads the documents of release 17dd9b4 as they are", async () => {
    const { database, epoch, keys } = await keysInFreshDatabase((epoch) =>
      [epoch - 1, epoch, epoch + 1].map((e) => {
        const privatePem = rsaPem(2048);
        return { _id: String(e), kid: `r-${e}`, privatePem, jwk: jwkOf17dd9b4(privatePem, `r-${e}`), createTime: new Date() };
      }),
    );
    await expectUsableForSignIn(keys, database);
    expect((await keys.current()).kid).toBe(`r-${epoch}`);
    expect(warnings).toEqual([]);
    expect(await database.collection("signing_keys").countDocuments()).toBe(3);
  });

  it("rotates out keys shorter than 2048 bits with a logged reason instead of publishing an unusable JWKS", async () => {
    const { database, epoch, keys } = await keysInFreshDatabase((epoch) =>
      [epoch - 1, epoch].map((e) => {
        const privatePem = rsaPem(1024);
        return { _id: String(e), kid: `weak-${e}`, privatePem, jwk: jwkOf17dd9b4(privatePem, `weak-${e}`), createTime: new Date() };
      }),
    );
    await expectUsableForSignIn(keys, database);
    const kids = (await keys.published()).map((jwk) => jwk.kid);
    expect(kids).toHaveLength(2); // a new current key and the next one; the weak previous one is withdrawn
    expect(kids).not.toContain(`weak-${epoch - 1}`);
    expect(kids).not.toContain(`weak-${epoch}`);
    expect(warnings).toEqual(
      expect.arrayContaining([
        {
          fields: { kid: `weak-${epoch - 1}`, epoch: String(epoch - 1), reason: "RSA key of 1024 bits, shorter than 2048" },
          message: "signing key unusable: not published",
        },
        {
          fields: { kid: `weak-${epoch}`, epoch: String(epoch), reason: "RSA key of 1024 bits, shorter than 2048" },
          message: "signing key unusable: replaced by a new key, not published",
        },
      ]),
    );
    expect(await database.collection("signing_keys").findOne({ _id: String(epoch) } as never)).toMatchObject({ kid: (await keys.current()).kid });
  });
});
