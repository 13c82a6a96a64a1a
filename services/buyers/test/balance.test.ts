/**
 * TopUpBuyer and the ledger (the buyer's revision claims that carry an
 * entry) over real gRPC against the test mesh's FerretDB and Redis.
 */
import { type BuyerLedgerEntry, BuyerLedgerEntryType } from "@leadmesh/contracts/buyers/v1/buyer";
import type { RevisionClaim, RunningService } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { Status } from "nice-grpc";
import { uniqueTenant } from "../../../test/harness/clients";
import { meshInfo } from "../../../test/harness/mesh-info";
import { topUpOperationId } from "../src/handlers/balance";
import { buyerClient, details, rpcError, sampleBuyer, startBuyersForTest } from "./harness";

let service: RunningService;
let address: string;
let database: string;
const opened: Array<{ close(): void }> = [];

beforeAll(async () => {
  ({ service, address, database } = await startBuyersForTest());
});

afterAll(async () => {
  for (const client of opened) client.close();
  await service?.shutdown();
});

function clientFor(tenant: string) {
  const connection = buyerClient(address, tenant, ["admin"], "admin-1");
  opened.push(connection);
  return connection.client;
}

async function newBuyer(label: string) {
  const client = clientFor(uniqueTenant(label));
  const { buyer } = await client.createBuyer({ buyer: sampleBuyer() });
  return { client, id: buyer!.id };
}

type Client = ReturnType<typeof clientFor>;

async function wholeLedger(client: Client, buyerId: string, pageSize = 1000): Promise<BuyerLedgerEntry[]> {
  const entries: BuyerLedgerEntry[] = [];
  let pageToken = "";
  do {
    const page = await client.listBuyerLedgerEntries({ buyerId, pageSize, pageToken });
    entries.push(...page.ledgerEntries);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return entries;
}

const usd = (amountMinor: string) => ({ currencyCode: "USD", amountMinor });

describe("TopUpBuyer", () => {
  it("adds the amount and answers the ledger entry it made, as the ledger lists it", async () => {
    const { client, id } = await newBuyer("topup");
    const first = await client.topUpBuyer({ id, amount: usd("5000"), note: "wire 123" });
    expect(first.buyer).toMatchObject({ balance: usd("5000"), etag: "2" });
    expect(first.ledgerEntry).toMatchObject({
      buyerId: id,
      type: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_TOP_UP,
      amount: usd("5000"),
      balanceAfter: usd("5000"),
      note: "wire 123",
      actorId: "admin-1",
      leadSaleId: "",
    });
    const credit = await client.topUpBuyer({ id, amount: usd("250"), type: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CREDIT });
    expect(credit.buyer?.balance).toEqual(usd("5250"));
    expect(credit.ledgerEntry).toMatchObject({ type: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CREDIT, balanceAfter: usd("5250") });
    // Pausing moves no money: no entry.
    await client.pauseBuyer({ id });
    expect(await wholeLedger(client, id)).toEqual([credit.ledgerEntry, first.ledgerEntry]);
  });

  it("refuses bad amounts, types, notes and another currency with field violations", async () => {
    const { client, id } = await newBuyer("topup-invalid");
    const cases: Array<[Parameters<Client["topUpBuyer"]>[0], string[]]> = [
      [{ id, amount: usd("0") }, ["amount.amount_minor"]],
      [{ id, amount: usd("1000000000001") }, ["amount.amount_minor"]],
      [{ id }, ["amount"]],
      [{ id, amount: { currencyCode: "usd", amountMinor: "1" } }, ["amount.currency_code"]],
      [{ id, amount: usd("1"), type: BuyerLedgerEntryType.BUYER_LEDGER_ENTRY_TYPE_CHARGE }, ["type"]],
      [{ id, amount: usd("1"), note: "x".repeat(501) }, ["note"]],
      [{ id, amount: usd("1"), requestId: "has spaces" }, ["request_id"]],
      [{ id, amount: { currencyCode: "EUR", amountMinor: "1" } }, ["amount.currency_code"]],
    ];
    for (const [request, fields] of cases) {
      const error = await rpcError(client.topUpBuyer(request));
      expect([request, details(error).code, details(error).fields]).toEqual([request, Status.INVALID_ARGUMENT, fields]);
    }
    expect((await client.getBuyer({ id })).buyer).toMatchObject({ balance: usd("0"), etag: "1" });
    expect(await wholeLedger(client, id)).toEqual([]);
  });

  it("applies a request_id once: a retry answers the same entry, a reuse for another amount is INVALID_ARGUMENT", async () => {
    const { client, id } = await newBuyer("topup-idem");
    const first = await client.topUpBuyer({ id, amount: usd("700"), requestId: "pay-1" });
    const retry = await client.topUpBuyer({ id, amount: usd("700"), requestId: "pay-1" });
    expect(retry.ledgerEntry).toEqual(first.ledgerEntry);
    expect(retry.buyer?.balance).toEqual(usd("700"));
    const concurrentRetries = await Promise.all(Array.from({ length: 5 }, () => client.topUpBuyer({ id, amount: usd("700"), requestId: "pay-1" })));
    for (const answer of concurrentRetries) expect(answer.ledgerEntry).toEqual(first.ledgerEntry);
    const reused = await rpcError(client.topUpBuyer({ id, amount: usd("701"), requestId: "pay-1" }));
    expect(details(reused)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["request_id"] });
    // The same request_id on another buyer is another operation.
    const { buyer: other } = await client.createBuyer({ buyer: sampleBuyer() });
    expect((await client.topUpBuyer({ id: other!.id, amount: usd("5"), requestId: "pay-1" })).buyer?.balance).toEqual(usd("5"));
    expect((await client.getBuyer({ id })).buyer?.balance).toEqual(usd("700"));
    expect(await wholeLedger(client, id)).toEqual([first.ledgerEntry]);
  });

  it("answers a retry with its landed entry even when the buyer refuses top-ups by now", async () => {
    const { client, id } = await newBuyer("topup-retry-deleted");
    const first = await client.topUpBuyer({ id, amount: usd("300"), requestId: "before-delete" });
    await client.deleteBuyer({ id });
    const retry = await client.topUpBuyer({ id, amount: usd("300"), requestId: "before-delete" });
    expect(retry.ledgerEntry).toEqual(first.ledgerEntry);
    expect(retry.buyer?.deleteTime).toBeInstanceOf(Date);
    expect((await rpcError(client.topUpBuyer({ id, amount: usd("300"), requestId: "after-delete" }))).code).toBe(Status.FAILED_PRECONDITION);
    expect(details(await rpcError(client.topUpBuyer({ id, amount: usd("301"), requestId: "before-delete" }))).fields).toEqual(["request_id"]);
    expect((await client.getBuyer({ id })).buyer?.balance).toEqual(usd("300"));
  });

  it("answers a retry refused by now UNAVAILABLE while its first attempt is still pending, FAILED_PRECONDITION once it never landed", async () => {
    const tenant = uniqueTenant("topup-pending");
    const client = clientFor(tenant);
    const { buyer } = await client.createBuyer({ buyer: sampleBuyer() });
    const id = buyer!.id;
    await client.deleteBuyer({ id });
    // The first attempt claimed its operation and is still writing (or died, until its claim is released): a claim above the buyer's revision.
    const mongo = new MongoClient(meshInfo().mongoUrl);
    const claims = mongo.db(database).collection<RevisionClaim>("buyer_revisions");
    try {
      await claims.insertOne({
        _id: `${id}:999`,
        tenantId: tenant,
        subjectId: id,
        opId: topUpOperationId(tenant, id, "in-flight"),
        revision: 999,
        actorId: "admin-1",
        fields: ["balanceMinor"],
        createTime: new Date(),
        entry: { type: "TOP_UP", amountMinor: 300, currencyCode: "USD", balanceAfterMinor: 300 },
      });
      const pending = await rpcError(client.topUpBuyer({ id, amount: usd("300"), requestId: "in-flight" }));
      expect(details(pending)).toMatchObject({ code: Status.UNAVAILABLE, reason: "OPERATION_PENDING", metadata: { resource_id: id } });
      // The claim released (its writer gone): the operation never landed, and the deleted buyer's refusal is final.
      await claims.deleteOne({ _id: `${id}:999` });
      expect(details(await rpcError(client.topUpBuyer({ id, amount: usd("300"), requestId: "in-flight" })))).toMatchObject({
        code: Status.FAILED_PRECONDITION,
      });
    } finally {
      await mongo.close();
    }
    expect((await client.getBuyer({ id })).buyer?.balance).toEqual(usd("0"));
  });

  it("keeps the ledger sum equal to the balance under 30 concurrent top-ups, each applied once however often retried", async () => {
    const { client, id } = await newBuyer("topup-concurrent");
    const amounts = Array.from({ length: 30 }, (_, index) => 100 + index);
    const topUp = (index: number) => client.topUpBuyer({ id, amount: usd(String(amounts[index])), requestId: `c-${index}` });
    const startedAt = Date.now();
    const settled = await Promise.allSettled(amounts.map((_, index) => topUp(index)));
    // Writers without etag re-apply for up to 10 s (platform RevisionedWrites); one that runs out answers ABORTED having written nothing.
    const refused = settled.flatMap((outcome, index) => (outcome.status === "rejected" ? [index] : []));
    for (const index of refused) expect((settled[index] as PromiseRejectedResult).reason).toMatchObject({ code: Status.ABORTED });
    const landed = amounts.filter((_, index) => !refused.includes(index)).reduce((sum, amount) => sum + amount, 0);
    expect((await client.getBuyer({ id })).buyer?.balance).toEqual(usd(String(landed)));
    expect((await wholeLedger(client, id)).reduce((sum, entry) => sum + Number(entry.amount?.amountMinor), 0)).toBe(landed);
    process.stderr.write(`30 concurrent top-ups of one buyer: ${30 - refused.length} landed, ${refused.length} ABORTED, ${Date.now() - startedAt} ms\n`);

    // Retrying every request (landed or not) with its request_id applies each exactly once.
    const answers = [];
    for (let index = 0; index < amounts.length; index++) answers.push(await topUp(index));
    const total = amounts.reduce((sum, amount) => sum + amount, 0);
    const { buyer } = await client.getBuyer({ id });
    expect(buyer?.balance).toEqual(usd(String(total)));
    expect(buyer?.etag).toBe("31");
    const ledger = await wholeLedger(client, id, 7);
    expect(ledger).toHaveLength(30);
    expect(ledger.reduce((sum, entry) => sum + Number(entry.amount?.amountMinor), 0)).toBe(total);
    const byId = (a: BuyerLedgerEntry, b: BuyerLedgerEntry) => a.id.localeCompare(b.id);
    expect([...ledger].sort(byId)).toEqual(answers.map((answer) => answer.ledgerEntry as BuyerLedgerEntry).sort(byId));
    // Newest first, and each entry's balance_after is the previous one's plus its amount.
    let running = 0;
    for (const entry of [...ledger].reverse()) {
      running += Number(entry.amount?.amountMinor);
      expect(Number(entry.balanceAfter?.amountMinor)).toBe(running);
    }
  });
});

describe("ListBuyerLedgerEntries", () => {
  it("pages newest first with a cursor bound to the buyer", async () => {
    const { client, id } = await newBuyer("ledger-pages");
    for (const amount of ["1", "2", "3", "4", "5"]) await client.topUpBuyer({ id, amount: usd(amount) });
    const first = await client.listBuyerLedgerEntries({ buyerId: id, pageSize: 2 });
    expect(first.ledgerEntries.map((entry) => entry.amount?.amountMinor)).toEqual(["5", "4"]);
    const rest = await wholeLedger(client, id, 2);
    expect(rest.map((entry) => entry.amount?.amountMinor)).toEqual(["5", "4", "3", "2", "1"]);
    const { buyer: other } = await client.createBuyer({ buyer: sampleBuyer() });
    const wrongBuyer = await rpcError(client.listBuyerLedgerEntries({ buyerId: other!.id, pageToken: first.nextPageToken }));
    expect(details(wrongBuyer).fields).toEqual(["page_token"]);
    expect((await rpcError(client.listBuyerLedgerEntries({ buyerId: "aaaaaaaaaaaaaaaaaaaaaaaa" }))).code).toBe(Status.NOT_FOUND);
  });
});
