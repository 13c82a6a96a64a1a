import { generateKeyPairSync } from "node:crypto";
import { Status } from "nice-grpc-common";
import { DependencyUnavailableError } from "../errors";
import { JwksCache } from "./jwks-cache";
import { jwkFromPrivatePem, type PublicJwk, TokenError } from "./jwt";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const jwks = new Map<string, PublicJwk>();
/** The published key "a", "b", …: one fresh RSA key each. */
const jwk = (kid: string): PublicJwk => jwks.get(kid)!;

beforeAll(async () => {
  for (const kid of ["a", "b"]) {
    jwks.set(
      kid,
      await jwkFromPrivatePem(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(), kid),
    );
  }
});

describe("JwksCache", () => {
  it("fetches once, refetches on an unknown kid (rate limited), and rejects kids the JWKS lacks", async () => {
    let published = [jwk("a")];
    let fetches = 0;
    const cache = new JwksCache(
      async () => {
        fetches++;
        return published;
      },
      60_000,
      // Long enough that a loaded machine still finishes the checks below within one interval.
      400,
    );
    await cache.key("a");
    await cache.key("a");
    expect(fetches).toBe(1);

    await sleep(450);
    published = [jwk("a"), jwk("b")]; // rotation announced a new key
    await expect(cache.key("b")).resolves.toBeDefined();
    expect(fetches).toBe(2);

    await expect(cache.key("nope")).rejects.toThrow(/unknown key id "nope"/);
    await expect(cache.key("nope-again")).rejects.toThrow(/unknown key id/);
    expect(fetches).toBe(2); // garbage kids within the refetch interval do not hit the auth service
  });

  /** A JWKS endpoint that can go down: counts every fetch, failed ones included. */
  function flakyAuth(published: PublicJwk[]) {
    const auth = { published, down: false, fetches: 0 };
    const fetcher = async () => {
      auth.fetches++;
      if (auth.down) throw new Error("14 UNAVAILABLE: No connection established");
      return auth.published;
    };
    return { auth, fetcher };
  }

  it("keeps serving cached keys while the auth service is down, and retries at most once per interval", async () => {
    const [a, b] = [jwk("a"), jwk("b")];
    const { auth, fetcher } = flakyAuth([a]);
    const cache = new JwksCache(fetcher, 100, 300);
    await cache.key("a");
    auth.down = true;

    await sleep(350); // the keys are stale and a refetch is due: it fails, the cached key still serves
    await expect(cache.key("a")).resolves.toBeDefined();
    expect(auth.fetches).toBe(2);
    await expect(cache.key("a")).resolves.toBeDefined();
    expect(auth.fetches).toBe(2); // the failed attempt counts for the interval: no retry on every call

    // An unknown kid during the outage may well be a real new key: UNAVAILABLE (retry later), not a bad token.
    const unknown = await cache.key("b").catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(DependencyUnavailableError);
    expect(unknown).toMatchObject({ code: Status.UNAVAILABLE, metadata: { dependency: "auth service (JWKS)" } });
    expect(auth.fetches).toBe(2);
    await sleep(350);
    await expect(cache.key("b")).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(auth.fetches).toBe(3);

    auth.down = false; // back, with the new key announced
    auth.published = [a, b];
    await sleep(350);
    await expect(cache.key("b")).resolves.toBeDefined();
    expect(auth.fetches).toBe(4);
    await expect(cache.key("nope")).rejects.toBeInstanceOf(TokenError); // reachable again: an unknown kid is a bad token
  });

  it("answers UNAVAILABLE when the auth service was never reachable, and shares one fetch between concurrent callers", async () => {
    const { auth, fetcher } = flakyAuth([jwk("a")]);
    auth.down = true;
    const cache = new JwksCache(fetcher, 60_000, 0);
    const results = await Promise.all([cache.key("a").catch((error: unknown) => error), cache.key("a").catch((error: unknown) => error)]);
    expect(results.map((result) => result instanceof DependencyUnavailableError)).toEqual([true, true]);
    expect(auth.fetches).toBe(1);

    auth.down = false;
    await sleep(5); // past the (zero) refetch interval, which counts whole milliseconds
    await Promise.all([cache.key("a"), cache.key("a")]);
    expect(auth.fetches).toBe(2);
  });

  it("answers has(kid) from the cache without waiting, refreshing in the background once the keys are stale", async () => {
    const [a, b] = [jwk("a"), jwk("b")];
    const { auth, fetcher } = flakyAuth([a]);
    const cache = new JwksCache(fetcher, 200, 0);
    expect(cache.has("a")).toBe(false); // nothing fetched yet; the background fetch starts now
    await cache.refresh();
    expect(cache.has("a")).toBe(true);
    const fetches = auth.fetches;

    auth.published = [b]; // "a" withdrawn
    expect(cache.has("a")).toBe(true); // fresh keys: no fetch
    expect(auth.fetches).toBe(fetches);
    await sleep(250);
    expect(cache.has("a")).toBe(true); // stale: the answer is still the cached one, a refresh starts
    await cache.refresh();
    expect(cache.has("a")).toBe(false);
    expect(auth.fetches).toBeGreaterThan(fetches);
  });
});
