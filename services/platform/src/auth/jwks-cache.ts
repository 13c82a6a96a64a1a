import type { KeyObject } from "node:crypto";
import { publicKeyFromJwk, TokenError, type PublicJwk } from "./jwt";

export type JwksFetcher = () => Promise<PublicJwk[]>;

/**
 * The verification keys, cached. An unknown `kid` triggers a refetch (the
 * auth service announces new keys before using them, so this is rare), but
 * at most once per `minRefetchMs` so garbage kids cannot hammer the auth
 * service. Keys also refresh every `maxAgeMs`.
 */
export class JwksCache {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly fetchKeys: JwksFetcher,
    private readonly maxAgeMs = 5 * 60_000,
    private readonly minRefetchMs = 2_000,
  ) {}

  async key(kid: string): Promise<KeyObject> {
    const stale = Date.now() - this.fetchedAt > this.maxAgeMs;
    if (stale || (!this.keys.has(kid) && Date.now() - this.fetchedAt > this.minRefetchMs)) await this.refresh();
    const key = this.keys.get(kid);
    if (!key) throw new TokenError(`unknown key id ${JSON.stringify(kid.slice(0, 64))}`);
    return key;
  }

  refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys()
      .then((jwks) => {
        const keys = new Map<string, KeyObject>();
        for (const jwk of jwks) keys.set(jwk.kid, publicKeyFromJwk(jwk));
        this.keys = keys;
        this.fetchedAt = Date.now();
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}
