import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { Status } from "nice-grpc-common";
import { DependencyUnavailableError } from "../errors";
import { JwksCache } from "./jwks-cache";
import { jwkFromPrivatePem, type PublicJwk, TokenError } from "./jwt";

const jwks = new Map<string, PublicJwk>();
/** The published key "a", "b", …: one fresh RSA key each. */
const jwk = (kid: string): PublicJwk => jwks.get(kid)!;

/**
 * The cache's clock, injected: JwksCache reads the time only through
 * Date.now, so intervals are crossed by moving this clock, never by racing
 * real time on a loaded machine.
 */
let now = 1_700_000_000_000;
const advance = (ms: number) => {
  now += ms;
};
beforeEach(() => {
  jest.spyOn(Date, "now").mockImplementation(() => now);
});
afterEach(() => {
  jest.restoreAllMocks();
});

/** The key the cache answered is the published key of that kid: same RSA modulus and exponent. */
function expectKeyOf(key: KeyObject, kid: string): void {
  const material = key.export({ format: "jwk" });
  expect({ kty: material.kty, n: material.n, e: material.e }).toEqual({ kty: "RSA", n: jwk(kid).n, e: jwk(kid).e });
}

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
      400,
    );
    expectKeyOf(await cache.key("a"), "a");
    expectKeyOf(await cache.key("a"), "a");
    expect(fetches).toBe(1);

    published = [jwk("a"), jwk("b")]; // rotation announced a new key
    advance(400); // the refetch interval has not passed yet: the new kid is refused without a fetch
    await expect(cache.key("b")).rejects.toThrow(/unknown key id "b"/);
    expect(fetches).toBe(1);
    advance(1);
    expectKeyOf(await cache.key("b"), "b");
    expectKeyOf(await cache.key("a"), "a");
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

    advance(301); // the keys are stale and a refetch is due: it fails, the cached key still serves
    expectKeyOf(await cache.key("a"), "a");
    expect(auth.fetches).toBe(2);
    advance(300);
    expectKeyOf(await cache.key("a"), "a");
    expect(auth.fetches).toBe(2); // the failed attempt counts for the interval: no retry on every call

    // An unknown kid during the outage may well be a real new key: UNAVAILABLE (retry later), not a bad token.
    const unknown = await cache.key("b").catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(DependencyUnavailableError);
    expect(unknown).toMatchObject({ code: Status.UNAVAILABLE, metadata: { dependency: "auth service (JWKS)" } });
    expect(auth.fetches).toBe(2);
    advance(1); // one interval after the failed attempt: the next attempt is due
    await expect(cache.key("b")).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(auth.fetches).toBe(3);

    auth.down = false; // back, with the new key announced
    auth.published = [a, b];
    advance(301);
    expectKeyOf(await cache.key("b"), "b");
    expectKeyOf(await cache.key("a"), "a");
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
    advance(1); // past the (zero) refetch interval, which counts whole milliseconds
    const keys = await Promise.all([cache.key("a"), cache.key("a")]);
    for (const key of keys) expectKeyOf(key, "a");
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
    advance(200);
    expect(cache.has("a")).toBe(true); // exactly the maximum age: still fresh, no fetch
    expect(auth.fetches).toBe(fetches);
    advance(1);
    expect(cache.has("a")).toBe(true); // stale: the answer is still the cached one, a refresh starts
    expect(auth.fetches).toBe(fetches + 1);
    await cache.refresh();
    expect(cache.has("a")).toBe(false);
    expect(cache.has("b")).toBe(true);
    expectKeyOf(await cache.key("b"), "b");
    expect(auth.fetches).toBe(fetches + 1);
  });
});
