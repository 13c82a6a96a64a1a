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
 */
import { createPrivateKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import type { Collection, Db } from "mongodb";
import { jwkFromPrivatePem, type PublicJwk } from "@leadmesh/platform";

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
  ) {
    this.collection = db.collection<KeyDocument>("signing_keys");
  }

  private epoch(): number {
    return Math.floor(this.now() / 1000 / this.rotationSeconds);
  }

  /** Key that signs now. */
  async current(): Promise<SigningKey> {
    const epoch = this.epoch();
    const document = (await this.window(epoch)).find((key) => key._id === String(epoch))!;
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
      this.cached = await this.collection
        .find({ _id: { $in: [String(epoch - 1), String(epoch), String(epoch + 1)] } })
        .sort({ createTime: 1 })
        .toArray();
      this.cachedEpoch = epoch;
    }
    return this.cached;
  }

  private async ensure(epoch: number): Promise<void> {
    if (await this.collection.findOne({ _id: String(epoch) }, { projection: { _id: 1 } })) return;
    const { privateKey } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
    const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const kid = `k${epoch.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      await this.collection.insertOne({ _id: String(epoch), kid, privatePem, jwk: await jwkFromPrivatePem(privatePem, kid), createTime: new Date() });
    } catch (error) {
      // Another replica created this epoch's key first: use theirs.
      if ((error as { code?: number }).code !== DUPLICATE_KEY) throw error;
    }
  }
}
