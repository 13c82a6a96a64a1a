import { generateKeyPairSync } from "node:crypto";
import { JwksCache } from "./jwks-cache";
import { jwkFromPrivatePem, type PublicJwk } from "./jwt";

const jwk = (kid: string): PublicJwk =>
  jwkFromPrivatePem(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(), kid);

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
      50,
    );
    await cache.key("a");
    await cache.key("a");
    expect(fetches).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, 60));
    published = [jwk("a"), jwk("b")]; // rotation announced a new key
    await expect(cache.key("b")).resolves.toBeDefined();
    expect(fetches).toBe(2);

    await expect(cache.key("nope")).rejects.toThrow(/unknown key id "nope"/);
    await expect(cache.key("nope-again")).rejects.toThrow(/unknown key id/);
    expect(fetches).toBe(2); // garbage kids within the refetch interval do not hit the auth service
  });
});
