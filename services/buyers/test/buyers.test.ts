/**
 * buyers.v1.BuyerService (the buyer side) over real gRPC against the test
 * mesh's FerretDB, Redis and users service.
 */
import { BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import { LeadSource } from "@leadmesh/contracts/leads/v1/lead";
import type { RunningService } from "@leadmesh/platform";
import { Status } from "nice-grpc";
import { uniqueTenant } from "../../../test/harness/clients";
import { buyerClient, details, rpcError, sampleBuyer, startBuyersForTest } from "./harness";

let service: RunningService;
let address: string;
const opened: Array<{ close(): void }> = [];

beforeAll(async () => {
  ({ service, address } = await startBuyersForTest());
});

afterAll(async () => {
  for (const client of opened) client.close();
  await service?.shutdown();
});

function clientFor(tenant: string, roles: Array<"agent" | "manager" | "admin"> = ["manager"]) {
  const connection = buyerClient(address, tenant, roles);
  opened.push(connection);
  return connection.client;
}

describe("CreateBuyer / GetBuyer", () => {
  it("creates an ACTIVE buyer with a zero balance in the price's currency and server-set fields", async () => {
    const tenant = uniqueTenant("buyers-crud");
    const client = clientFor(tenant);
    const { buyer } = await client.createBuyer({
      buyer: sampleBuyer({ id: "chosen", tenantId: "other", etag: "99", balance: { currencyCode: "USD", amountMinor: "5000" }, salesToday: "3" }),
    });
    expect(buyer).toMatchObject({
      tenantId: tenant,
      displayName: "Acme Leads",
      state: BuyerState.BUYER_STATE_ACTIVE,
      pricePerLead: { currencyCode: "USD", amountMinor: "1250" },
      balance: { currencyCode: "USD", amountMinor: "0" },
      salesToday: "0",
      salesThisMonth: "0",
      dailyCap: "0",
      returnWindow: { seconds: String(7 * 86400), nanos: 0 },
      etag: "1",
    });
    expect(buyer?.id).toMatch(/^[0-9a-f]{24}$/);
    expect(buyer?.createTime).toBeInstanceOf(Date);
    expect((await client.getBuyer({ id: buyer!.id })).buyer).toEqual(buyer);
  });

  it("answers INVALID_ARGUMENT with a violation for every bad field", async () => {
    const client = clientFor(uniqueTenant("buyers-invalid"));
    const error = await rpcError(
      client.createBuyer({
        buyer: sampleBuyer({
          displayName: "",
          contactEmail: "nope",
          contactPhone: "12",
          pricePerLead: { currencyCode: "usd", amountMinor: "-1" },
          dailyCap: "-3",
          returnWindow: { seconds: String(100 * 86400) },
          criteria: { sources: [LeadSource.LEAD_SOURCE_UNSPECIFIED], countryCodes: ["de"], minScore: 80, maxScore: 20, tags: ["Bad Tag"] },
        }),
      }),
    );
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELDS" });
    expect(details(error).fields.sort()).toEqual(
      [
        "buyer.display_name",
        "buyer.contact_email",
        "buyer.contact_phone",
        "buyer.price_per_lead.currency_code",
        "buyer.price_per_lead.amount_minor",
        "buyer.daily_cap",
        "buyer.return_window",
        "buyer.criteria.sources",
        "buyer.criteria.country_codes",
        "buyer.criteria.tags",
        "buyer.criteria.max_score",
      ].sort(),
    );
  });

  it("creates once per request_id; a reused request_id with another buyer is INVALID_ARGUMENT", async () => {
    const client = clientFor(uniqueTenant("buyers-idem"));
    const first = await client.createBuyer({ buyer: sampleBuyer(), requestId: "create-1" });
    const again = await client.createBuyer({ buyer: sampleBuyer(), requestId: "create-1" });
    expect(again.buyer?.id).toBe(first.buyer?.id);
    expect((await client.listBuyers({})).buyers).toHaveLength(1);
    const reused = await rpcError(client.createBuyer({ buyer: sampleBuyer({ displayName: "Other" }), requestId: "create-1" }));
    expect(details(reused)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["request_id"] });
  });

  it("lets agents read buyers but not manage them", async () => {
    const tenant = uniqueTenant("buyers-roles");
    const { buyer } = await clientFor(tenant).createBuyer({ buyer: sampleBuyer() });
    const agent = clientFor(tenant, ["agent"]);
    expect((await agent.getBuyer({ id: buyer!.id })).buyer?.id).toBe(buyer!.id);
    expect((await rpcError(agent.createBuyer({ buyer: sampleBuyer() }))).code).toBe(Status.PERMISSION_DENIED);
    expect((await rpcError(agent.pauseBuyer({ id: buyer!.id }))).code).toBe(Status.PERMISSION_DENIED);
  });
});

describe("tenant isolation", () => {
  it("answers NOT_FOUND for another tenant's buyer on every RPC and never lists it", async () => {
    const owner = clientFor(uniqueTenant("buyers-owner"));
    const { buyer } = await owner.createBuyer({ buyer: sampleBuyer() });
    const id = buyer!.id;
    const stranger = clientFor(uniqueTenant("buyers-stranger"));
    const calls: Array<[string, Promise<unknown>]> = [
      ["get", stranger.getBuyer({ id })],
      ["update", stranger.updateBuyer({ buyer: { id, displayName: "Mine" }, updateMask: ["display_name"] })],
      ["delete", stranger.deleteBuyer({ id })],
      ["undelete", stranger.undeleteBuyer({ id })],
      ["pause", stranger.pauseBuyer({ id })],
      ["resume", stranger.resumeBuyer({ id })],
      ["topUp", stranger.topUpBuyer({ id, amount: { currencyCode: "USD", amountMinor: "100" } })],
      ["ledger", stranger.listBuyerLedgerEntries({ buyerId: id })],
    ];
    for (const [name, call] of calls) expect([name, (await rpcError(call)).code]).toEqual([name, Status.NOT_FOUND]);
    expect((await stranger.listBuyers({ showDeleted: true })).buyers).toEqual([]);
    const unchanged = await owner.getBuyer({ id });
    expect(unchanged.buyer).toMatchObject({ displayName: "Acme Leads", etag: "1", balance: { amountMinor: "0" } });
  });
});

describe("UpdateBuyer", () => {
  it("updates masked fields and single criteria, refusing balance, counters and a new currency", async () => {
    const client = clientFor(uniqueTenant("buyers-update"));
    const { buyer } = await client.createBuyer({ buyer: sampleBuyer({ criteria: { countryCodes: ["US"], tags: ["solar"] } }) });
    const id = buyer!.id;
    const { buyer: updated } = await client.updateBuyer({
      buyer: { id, displayName: "Renamed", criteria: { minScore: 40 }, pricePerLead: { currencyCode: "USD", amountMinor: "999" } },
      updateMask: ["display_name", "criteria.min_score", "price_per_lead"],
    });
    expect(updated).toMatchObject({
      displayName: "Renamed",
      etag: "2",
      pricePerLead: { amountMinor: "999" },
      criteria: { countryCodes: ["US"], tags: ["solar"], minScore: 40 },
    });
    const refused = await rpcError(
      client.updateBuyer({ buyer: { id, balance: { currencyCode: "USD", amountMinor: "1" } }, updateMask: ["balance", "sales_today"] }),
    );
    expect(details(refused)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["update_mask", "update_mask"] });
    const currency = await rpcError(
      client.updateBuyer({ buyer: { id, pricePerLead: { currencyCode: "EUR", amountMinor: "100" } }, updateMask: ["price_per_lead"] }),
    );
    expect(details(currency).fields).toEqual(["buyer.price_per_lead.currency_code"]);
    expect((await client.getBuyer({ id })).buyer?.etag).toBe("2");
  });

  it("applies with the current etag and answers ABORTED with a stale one", async () => {
    const client = clientFor(uniqueTenant("buyers-etag"));
    const { buyer } = await client.createBuyer({ buyer: sampleBuyer() });
    const id = buyer!.id;
    await client.updateBuyer({ buyer: { id, company: "First", etag: "1" }, updateMask: ["company"] });
    const stale = await rpcError(client.updateBuyer({ buyer: { id, company: "Second", etag: "1" }, updateMask: ["company"] }));
    expect(details(stale)).toMatchObject({ code: Status.ABORTED, reason: "ETAG_MISMATCH", metadata: { current_etag: "2" } });
    expect((await rpcError(client.pauseBuyer({ id, etag: "1" }))).code).toBe(Status.ABORTED);
    expect((await rpcError(client.deleteBuyer({ id, etag: "1" }))).code).toBe(Status.ABORTED);
    expect((await client.getBuyer({ id })).buyer).toMatchObject({ company: "First", state: BuyerState.BUYER_STATE_ACTIVE, etag: "2" });
  });
});

describe("PauseBuyer / ResumeBuyer / DeleteBuyer / UndeleteBuyer", () => {
  it("pauses and resumes idempotently", async () => {
    const client = clientFor(uniqueTenant("buyers-pause"));
    const { buyer } = await client.createBuyer({ buyer: sampleBuyer() });
    const id = buyer!.id;
    const paused = await client.pauseBuyer({ id, etag: "1" });
    expect(paused.buyer).toMatchObject({ state: BuyerState.BUYER_STATE_PAUSED, etag: "2" });
    expect((await client.pauseBuyer({ id })).buyer).toMatchObject({ state: BuyerState.BUYER_STATE_PAUSED, etag: "2" });
    const resumed = await client.resumeBuyer({ id });
    expect(resumed.buyer).toMatchObject({ state: BuyerState.BUYER_STATE_ACTIVE, etag: "3" });
    expect((await client.resumeBuyer({ id, etag: "3" })).buyer?.etag).toBe("3");
  });

  it("soft-deletes: hidden from ListBuyers unless show_deleted, still readable, refuses changes until undeleted", async () => {
    const client = clientFor(uniqueTenant("buyers-delete"));
    const { buyer } = await client.createBuyer({ buyer: sampleBuyer() });
    const id = buyer!.id;
    const { buyer: deleted } = await client.deleteBuyer({ id });
    expect(deleted?.deleteTime).toBeInstanceOf(Date);
    expect((await client.deleteBuyer({ id })).buyer?.etag).toBe(deleted?.etag);
    expect((await client.getBuyer({ id })).buyer?.deleteTime).toEqual(deleted?.deleteTime);
    expect((await client.listBuyers({})).buyers).toEqual([]);
    expect((await client.listBuyers({ showDeleted: true })).buyers.map((listed) => listed.id)).toEqual([id]);
    for (const call of [
      client.updateBuyer({ buyer: { id, company: "X" }, updateMask: ["company"] }),
      client.pauseBuyer({ id }),
      client.topUpBuyer({ id, amount: { currencyCode: "USD", amountMinor: "100" } }),
    ]) {
      expect((await rpcError(call)).code).toBe(Status.FAILED_PRECONDITION);
    }
    const { buyer: restored } = await client.undeleteBuyer({ id });
    expect(restored?.deleteTime).toBeUndefined();
    expect((await rpcError(client.undeleteBuyer({ id }))).code).toBe(Status.FAILED_PRECONDITION);
  });
});

describe("ListBuyers", () => {
  it("filters, orders by display_name by default and pages with a cursor", async () => {
    const client = clientFor(uniqueTenant("buyers-list"));
    const names = ["Delta", "alpha", "Charlie", "Bravo", "Echo"];
    const ids = new Map<string, string>();
    for (const displayName of names) ids.set(displayName, (await client.createBuyer({ buyer: sampleBuyer({ displayName }) })).buyer!.id);
    await client.pauseBuyer({ id: ids.get("Charlie")! });
    await client.pauseBuyer({ id: ids.get("Echo")! });

    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listBuyers({ pageSize: 2, pageToken });
      expect(page.buyers.length).toBeLessThanOrEqual(2);
      seen.push(...page.buyers.map((buyer) => buyer.displayName));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual([...names].sort());

    const paused = await client.listBuyers({ filter: "state = PAUSED", orderBy: "display_name desc" });
    expect(paused.buyers.map((buyer) => buyer.displayName)).toEqual(["Echo", "Charlie"]);
    const newest = await client.listBuyers({ orderBy: "create_time desc", pageSize: 1 });
    expect(newest.buyers.map((buyer) => buyer.displayName)).toEqual(["Echo"]);
    const named = await client.listBuyers({ filter: 'display_name = "Bravo" AND state = BUYER_STATE_ACTIVE' });
    expect(named.buyers.map((buyer) => buyer.id)).toEqual([ids.get("Bravo")]);

    expect(details(await rpcError(client.listBuyers({ filter: "balance > 0" }))).fields).toEqual(["filter"]);
    expect(details(await rpcError(client.listBuyers({ orderBy: "balance" }))).fields).toEqual(["order_by"]);
    const token = (await client.listBuyers({ pageSize: 1 })).nextPageToken;
    expect(details(await rpcError(client.listBuyers({ pageSize: 1, pageToken: token, filter: "state = ACTIVE" }))).fields).toEqual(["page_token"]);
  });
});
