/**
 * Operations on RevisionedWrites against the real FerretDB of the test mesh:
 * an opId lands at most once in the whole claims collection, whatever races
 * it (duplicates, other documents, seals), a claim's entry lands exactly with
 * its revision, and an operation another writer is still applying is waited
 * for, then reported pending, or released once abandoned.
 */
import { randomUUID } from "node:crypto";
import { type Collection, type Db, MongoClient } from "mongodb";
import { meshInfo } from "../../../test/harness/mesh-info";
import { ensureRevisionClaimIndexes, NotFoundError, OperationPendingError, type RevisionClaim, type RevisionedDocument, RevisionedWrites } from "../src";

interface Account extends RevisionedDocument {
  balance: number;
}

const TENANT = "acme";
let client: MongoClient;
let db: Db;
let accounts: Collection<Account>;
let claims: Collection<RevisionClaim>;
let writes: RevisionedWrites<Account>;

beforeAll(async () => {
  client = new MongoClient(meshInfo().mongoUrl);
  db = client.db(`operations_${randomUUID().slice(0, 8)}`);
  accounts = db.collection<Account>("accounts");
  claims = db.collection<RevisionClaim>("account_revisions");
  await ensureRevisionClaimIndexes(db, "account_revisions", { operations: true });
  writes = new RevisionedWrites("account", accounts, claims);
});

afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

async function newAccount(balance = 0): Promise<string> {
  const id = randomUUID();
  await accounts.insertOne({ _id: id, tenantId: TENANT, revision: 1, balance });
  return id;
}

async function read(id: string): Promise<Account> {
  const document = await accounts.findOne({ _id: id });
  if (!document) throw new NotFoundError("account", id);
  return document;
}

/** Adds `amount` as operation `opId`, recording a ledger-like entry on the claim. */
const credit = (id: string, amount: number, opId?: string, into = writes) =>
  into.write({
    id,
    actorId: "u1",
    clientEtag: "",
    opId,
    read: () => read(id),
    change: (current) => ({ balance: current.balance + amount }),
    entry: (current, changes) => ({ amount, balanceAfter: changes.balance, balanceBefore: current.balance }),
  });

/** The entries of an account's landed claims: what a ledger shows. */
async function landedEntries(id: string): Promise<Record<string, unknown>[]> {
  const account = await read(id);
  const all = await claims.find({ subjectId: id }).toArray();
  return all.filter((claim) => claim.entry && claim.revision <= account.revision).map((claim) => claim.entry as Record<string, unknown>);
}

describe("RevisionedWrites operations", () => {
  it("keep the write's entry on its claim, so the entries always sum to the document", async () => {
    const id = await newAccount();
    await Promise.all(Array.from({ length: 12 }, (_, index) => credit(id, index + 1)));
    const entries = await landedEntries(id);
    expect(entries).toHaveLength(12);
    expect(entries.reduce((sum, entry) => sum + Number(entry.amount), 0)).toBe((await read(id)).balance);
    expect((await read(id)).balance).toBe(78);
  });

  it("apply an operation once among concurrent duplicates; the others are answered with the winning claim", async () => {
    const id = await newAccount();
    const opId = `op-${randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 16 }, () => credit(id, 5, opId)));
    const applied = results.filter((result) => !result.replayed);
    expect(applied).toHaveLength(1);
    expect((await read(id)).balance).toBe(5);
    const winner = await claims.findOne({ opId });
    for (const result of results.filter((r) => r.replayed)) expect(result.replayed?._id).toBe(winner?._id);
    // A later retry is a replay too.
    expect((await credit(id, 5, opId)).replayed?.opId).toBe(opId);
    expect(await landedEntries(id)).toHaveLength(1);
  });

  it("apply an operation to at most one document of the collection", async () => {
    const [first, second] = [await newAccount(), await newAccount()];
    const opId = `op-${randomUUID()}`;
    const results = await Promise.all([credit(first, 7, opId), credit(second, 7, opId), credit(first, 7, opId), credit(second, 7, opId)]);
    const balances = [(await read(first)).balance, (await read(second)).balance];
    expect(balances.sort()).toEqual([0, 7]);
    expect(results.filter((result) => !result.replayed)).toHaveLength(1);
    const landedOn = (await read(first)).balance === 7 ? first : second;
    for (const result of results.filter((r) => r.replayed)) expect(result.replayed?.subjectId).toBe(landedOn);
  });

  it("let a seal and a write of the same operation exclude each other, whoever comes first (20 races)", async () => {
    for (let round = 0; round < 20; round++) {
      const id = await newAccount();
      const opId = `race-${round}-${randomUUID()}`;
      const [written, seal] = await Promise.all([credit(id, 3, opId), writes.sealOperation(opId, TENANT, "u1", { why: "gave up" })]);
      const balance = (await read(id)).balance;
      if (seal.sealed) {
        expect(balance).toBe(0);
        expect(written.replayed?.subjectId).toBe("");
      } else {
        expect(balance).toBe(3);
        expect(written.replayed).toBeUndefined();
        expect(seal.claim.subjectId).toBe(id);
      }
      expect((await writes.findOperation(opId))?.state).toBe(seal.sealed ? "sealed" : "landed");
    }
  });

  it("wait for an operation another writer is applying, then report it pending (UNAVAILABLE, retryable)", async () => {
    const id = await newAccount();
    const opId = `pending-${randomUUID()}`;
    // A writer that claimed revision 2 for the op and has not written the document yet.
    await claims.insertOne({ _id: `${id}:2`, tenantId: TENANT, subjectId: id, opId, revision: 2, actorId: "u0", fields: ["balance"], createTime: new Date() });
    const impatient = new RevisionedWrites("account", accounts, claims, { conflictBudgetMs: 300 });
    await expect(credit(id, 1, opId, impatient)).rejects.toBeInstanceOf(OperationPendingError);
    await expect(impatient.sealOperation(opId, TENANT, "u1")).rejects.toBeInstanceOf(OperationPendingError);
    expect((await writes.findOperation(opId))?.state).toBe("pending");
    // The writer lands: the retry is a replay of its claim.
    await accounts.updateOne({ _id: id }, { $set: { revision: 2, balance: 1 } });
    expect((await credit(id, 1, opId, impatient)).replayed?._id).toBe(`${id}:2`);
    expect((await read(id)).balance).toBe(1);
  });

  it("release an operation whose writer crashed before writing (abandoned claim), and apply it again", async () => {
    const id = await newAccount();
    const opId = `crashed-${randomUUID()}`;
    await claims.insertOne({
      _id: `${id}:2`,
      tenantId: TENANT,
      subjectId: id,
      opId,
      revision: 2,
      actorId: "u0",
      fields: ["balance"],
      createTime: new Date(Date.now() - 120_000),
    });
    const result = await credit(id, 4, opId);
    expect(result.replayed).toBeUndefined();
    expect((await read(id)).balance).toBe(4);
    expect(await landedEntries(id)).toEqual([{ amount: 4, balanceAfter: 4, balanceBefore: 0 }]);
  });
});
