/**
 * GetBuyer's read cache across two replicas sharing the database and Redis:
 * every write is visible to the other replica's next GetBuyer.
 */
import { BuyerState } from "@leadmesh/contracts/buyers/v1/buyer";
import type { RunningService } from "@leadmesh/platform";
import { uniqueTenant } from "../../../test/harness/clients";
import { buyerClient, sampleBuyer, startBuyersForTest } from "./harness";

const services: RunningService[] = [];
const addresses: string[] = [];
const opened: Array<{ close(): void }> = [];

beforeAll(async () => {
  const first = await startBuyersForTest();
  const second = await startBuyersForTest(first.database);
  services.push(first.service, second.service);
  addresses.push(first.address, second.address);
});

afterAll(async () => {
  for (const client of opened) client.close();
  await Promise.all(services.map((service) => service.shutdown()));
});

it("answers every write's result from the other replica's next GetBuyer", async () => {
  const tenant = uniqueTenant("buyers-cache");
  const [writer, reader] = addresses.map((address) => {
    const connection = buyerClient(address, tenant, ["admin"], "admin-1");
    opened.push(connection);
    return connection.client;
  });
  const { buyer } = await writer.createBuyer({ buyer: sampleBuyer() });
  const id = buyer!.id;
  expect((await reader.getBuyer({ id })).buyer).toEqual(buyer);

  const writes: Array<[string, () => Promise<{ buyer?: { etag: string } }>]> = [
    ["update", () => writer.updateBuyer({ buyer: { id, displayName: "Renamed" }, updateMask: ["display_name"] })],
    ["topUp", () => writer.topUpBuyer({ id, amount: { currencyCode: "USD", amountMinor: "900" } })],
    ["pause", () => writer.pauseBuyer({ id })],
    ["resume", () => writer.resumeBuyer({ id })],
    ["delete", () => writer.deleteBuyer({ id })],
    ["undelete", () => writer.undeleteBuyer({ id })],
  ];
  for (const [name, write] of writes) {
    // Read first so the reader's entry is warm, then the write must replace it before its answer.
    await reader.getBuyer({ id });
    const written = await write();
    const read = (await reader.getBuyer({ id })).buyer;
    expect([name, read]).toEqual([name, written.buyer]);
  }
  const final = (await reader.getBuyer({ id })).buyer;
  expect(final).toMatchObject({ displayName: "Renamed", state: BuyerState.BUYER_STATE_ACTIVE, balance: { amountMinor: "900" }, etag: "7" });
  expect(final?.deleteTime).toBeUndefined();
});
