/**
 * Key rotation against the real FerretDB: the next key is published a whole
 * period before it signs, a retired key stays published for one more period,
 * and two replicas agree on each epoch's key.
 */
import { MongoClient, type Db } from "mongodb";
import { meshInfo } from "../../../test/harness/mesh-info";
import { SigningKeys } from "../src/signing-keys";

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
