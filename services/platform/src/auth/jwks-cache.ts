import type { KeyObject } from "node:crypto";
import { DependencyUnavailableError } from "../errors";
import { type PublicJwk, publicKeyFromJwk, TokenError } from "./jwt";

export type JwksFetcher = () => Promise<PublicJwk[]>;

/**
 * The verification keys, cached. An unknown `kid` triggers a refetch (the
 * auth service announces new keys before using them, so this is rare), but
 * at most once per `minRefetchMs` so garbage kids cannot hammer the auth
 * service. Keys also refresh every `maxAgeMs`.
 *
 * An auth service outage must not take every other service down with it:
 * a failed fetch keeps the cached keys, and only a token whose kid is not
 * among them fails, as UNAVAILABLE (the key may exist; we cannot ask). The
 * refetch interval counts from the last attempt, so an outage is not
 * hammered either.
 */
export class JwksCache {
  private keys = new Map<string, KeyObject>();
  /** Last successful fetch: the keys' age counts from here. */
  private fetchedAt = 0;
  /** Last fetch attempt, successful or not: the refetch interval counts from here. */
  private attemptedAt = 0;
  private lastFetchFailed = false;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly fetchKeys: JwksFetcher,
    private readonly maxAgeMs = 5 * 60_000,
    private readonly minRefetchMs = 2_000,
  ) {}

  async key(kid: string): Promise<KeyObject> {
    // A caller with an unknown kid joins a fetch in flight: at startup the first fetch may not have landed yet.
    if (this.dueForFetch(kid) || (this.inFlight && !this.keys.has(kid))) await this.refreshKeepingCache();
    const key = this.keys.get(kid);
    if (key) return key;
    if (this.lastFetchFailed) throw new DependencyUnavailableError("auth service (JWKS)");
    throw new TokenError(`unknown key id ${JSON.stringify(kid.slice(0, 64))}`);
  }

  /**
   * Whether `kid` is among the cached keys, without waiting: lets callers
   * that cached a verification notice a withdrawn key. Such callers may
   * never call key() again, so a due refresh starts here, in the background.
   */
  has(kid: string): boolean {
    if (this.dueForFetch(kid)) void this.refreshKeepingCache();
    return this.keys.has(kid);
  }

  refresh(): Promise<void> {
    this.inFlight ??= this.fetchAndReplace().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private dueForFetch(kid: string): boolean {
    const now = Date.now();
    if (now - this.attemptedAt <= this.minRefetchMs) return false;
    return !this.keys.has(kid) || now - this.fetchedAt > this.maxAgeMs;
  }

  /** A failed fetch leaves the cached keys in place; key() decides whether that matters. */
  private async refreshKeepingCache(): Promise<void> {
    await this.refresh().catch(() => undefined);
  }

  private async fetchAndReplace(): Promise<void> {
    this.attemptedAt = Date.now();
    try {
      const jwks = await this.fetchKeys();
      const keys = new Map<string, KeyObject>();
      for (const jwk of jwks) keys.set(jwk.kid, await publicKeyFromJwk(jwk));
      this.keys = keys;
      this.fetchedAt = Date.now();
      this.lastFetchFailed = false;
    } catch (error) {
      this.lastFetchFailed = true;
      throw error;
    }
  }
}
