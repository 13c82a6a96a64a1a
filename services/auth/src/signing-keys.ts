/**
 * RS256 signing keys with rotation. Time is cut into epochs of
 * KEY_ROTATION_SECONDS; epoch E's key signs during E. The JWKS publishes the
 * keys of E-1 (its tokens may still be valid), E and E+1 (announced a whole
 * epoch before it signs, so every verifier's cache has it in time).
 *
 * Keys live in the `signing_keys` collection with _id = epoch: creating one
 * is a unique insert, so several replicas agree on the same key without
 * coordination. Private keys are stored as PEM; in production they belong in
 * a KMS or are encrypted at rest by the database.
 *
 * The private key is the source of truth; the stored public JWK is derived
 * from it. Documents written by earlier builds are checked when read: one
 * whose JWK is missing, empty or does not match its private key (a build of
 * the switch to jose stored an unawaited promise, i.e. `jwk: {}`) gets its
 * JWK derived again and repaired in place; one whose private key cannot sign
 * RS256 (not RSA, shorter than 2048 bits, unreadable) is never published and,
 * if it would sign now or next, is replaced by a fresh key. Each case is
 * logged with its reason, so the JWKS never carries an unusable key and
 * never lacks the key that signs.
 */
import { createPrivateKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { jwkFromPrivatePem, type Logger, type PublicJwk } from "@leadmesh/platform";
import type { Collection, Db } from "mongodb";

interface KeyDocument {
  _id: string;
  kid: string;
  privatePem: string;
  jwk: PublicJwk;
  createTime: Date;
}

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

const DUPLICATE_KEY = 11000;
/** What jwt.ts's publicKeyFromJwk accepts from the JWKS. */
const MIN_RSA_BITS = 2048;

/** Where SigningKeys reports keys it repaired or rotated out. */
export type KeyLog = Pick<Logger, "warn">;

export class SigningKeys {
  private readonly collection: Collection<KeyDocument>;
  private cachedEpoch = -1;
  private cached: KeyDocument[] = [];
  /** Parsed private key of the current epoch (parsing PEM on every token costs more than signing). */
  private currentKey: SigningKey | undefined;

  constructor(
    db: Db,
    private readonly rotationSeconds: number,
    private readonly now: () => number = Date.now,
    private readonly log?: KeyLog,
  ) {
    this.collection = db.collection<KeyDocument>("signing_keys");
  }

  private epoch(): number {
    return Math.floor(this.now() / 1000 / this.rotationSeconds);
  }

  /** Key that signs now. */
  async current(): Promise<SigningKey> {
    const epoch = this.epoch();
    const document = (await this.window(epoch)).find((key) => key._id === String(epoch));
    // window() creates, repairs or replaces this epoch's key; only a document deleted meanwhile is missing.
    if (!document) throw new Error(`no signing key for epoch ${epoch}`);
    if (this.currentKey?.kid !== document.kid) this.currentKey = { kid: document.kid, privateKey: createPrivateKey(document.privatePem) };
    return this.currentKey;
  }

  /** Public keys to publish (previous, current, next). */
  async published(): Promise<PublicJwk[]> {
    return (await this.window(this.epoch())).map((key) => key.jwk);
  }

  private async window(epoch: number): Promise<KeyDocument[]> {
    if (epoch !== this.cachedEpoch) {
      await Promise.all([this.ensure(epoch), this.ensure(epoch + 1)]);
      const found = await this.collection
        .find({ _id: { $in: [String(epoch - 1), String(epoch), String(epoch + 1)] } })
        .sort({ createTime: 1 })
        .toArray();
      const usable = await Promise.all(found.map((document) => this.checked(document, epoch)));
      this.cached = usable.filter((document): document is KeyDocument => document !== undefined);
      this.cachedEpoch = epoch;
    }
    return this.cached;
  }

  /**
   * The document as it may be published and used: its JWK re-derived from
   * the private key (and repaired in the database) if the stored one is not
   * that key's; undefined if the private key cannot sign RS256, after
   * replacing it when it is the current or next epoch's.
   */
  private async checked(document: KeyDocument, epoch: number): Promise<KeyDocument | undefined> {
    const problem = privateKeyProblem(document.privatePem);
    if (problem) {
      const replaced = Number(document._id) >= epoch;
      this.log?.warn(
        { kid: document.kid, epoch: document._id, reason: problem },
        replaced ? "signing key unusable: replaced by a new key, not published" : "signing key unusable: not published",
      );
      if (!replaced) return undefined;
      await this.replace(document);
      return (await this.collection.findOne({ _id: document._id })) ?? undefined;
    }
    const jwk = await jwkFromPrivatePem(document.privatePem, document.kid);
    const stored = describeJwk(document.jwk);
    if (stored === describeJwk(jwk)) return document;
    this.log?.warn(
      { kid: document.kid, epoch: document._id, reason: stored === "" ? "stored public JWK is empty" : "stored public JWK does not match its private key" },
      "signing key's public JWK derived again from its private key and repaired",
    );
    await this.collection.updateOne({ _id: document._id, kid: document.kid }, { $set: { jwk } });
    return { ...document, jwk };
  }

  /** Swaps an unusable key for a new one; only the first replica's swap lands (the filter names the old kid). */
  private async replace(document: KeyDocument): Promise<void> {
    const fresh = await newKey(Number(document._id));
    await this.collection.replaceOne({ _id: document._id, kid: document.kid }, fresh);
  }

  private async ensure(epoch: number): Promise<void> {
    if (await this.collection.findOne({ _id: String(epoch) }, { projection: { _id: 1 } })) return;
    try {
      await this.collection.insertOne(await newKey(epoch));
    } catch (error) {
      // Another replica created this epoch's key first: use theirs.
      if ((error as { code?: number }).code !== DUPLICATE_KEY) throw error;
    }
  }
}

async function newKey(epoch: number): Promise<KeyDocument> {
  const { privateKey } = await promisify(generateKeyPair)("rsa", { modulusLength: MIN_RSA_BITS });
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const kid = `k${epoch.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return { _id: String(epoch), kid, privatePem, jwk: await jwkFromPrivatePem(privatePem, kid), createTime: new Date() };
}

/** Why a stored private key cannot sign RS256 tokens that verifiers accept, or undefined if it can. */
function privateKeyProblem(privatePem: unknown): string | undefined {
  if (typeof privatePem !== "string" || privatePem === "") return "no private key stored";
  let key: KeyObject;
  try {
    key = createPrivateKey(privatePem);
  } catch {
    return "private key does not parse";
  }
  if (key.asymmetricKeyType !== "rsa") return `private key is ${key.asymmetricKeyType ?? "not asymmetric"}, not RSA`;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) return `RSA key of ${bits} bits, shorter than ${MIN_RSA_BITS}`;
  return undefined;
}

/** The fields of a JWK that verifiers read, as one comparable string ("" if it has none). */
function describeJwk(jwk: Partial<PublicJwk> | null | undefined): string {
  if (!jwk || typeof jwk !== "object") return "";
  const fields = [jwk.kty, jwk.kid, jwk.use, jwk.alg, jwk.n, jwk.e];
  return fields.every((field) => field === undefined || field === "") ? "" : JSON.stringify(fields);
}
