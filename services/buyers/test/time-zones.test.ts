/**
 * Sale counters are read in the tenant's time zone, which the buyers service
 * asks of the mesh's real users service (TenantService.GetTenant as the
 * buyers identity).
 */

import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import type { RunningService } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { grpcClient, uniqueTenant } from "../../../test/harness/clients";
import { meshInfo } from "../../../test/harness/mesh-info";
import { counterKeys } from "../src/domain/calendar";
import { buyerClient, sampleBuyer, startBuyersForTest } from "./harness";

let service: RunningService;
let address: string;
let database: string;
let mongo: MongoClient;

beforeAll(async () => {
  ({ service, address, database } = await startBuyersForTest());
  mongo = new MongoClient(meshInfo().mongoUrl);
});

afterAll(async () => {
  await mongo?.close();
  await service?.shutdown();
});

/**
 * A zone whose date differs from UTC's right now: UTC+14 from 10:00 UTC on
 * (already tomorrow there), UTC-12 before 12:00 UTC (still yesterday).
 */
function zoneAwayFromUtcDate(now: Date): string {
  return now.getUTCHours() >= 10 ? "Pacific/Kiritimati" : "Etc/GMT+12";
}

it("counts sales_today and sales_this_month on the tenant's calendar, not UTC's", async () => {
  const tenant = uniqueTenant("buyers-zone");
  const now = new Date();
  const zone = zoneAwayFromUtcDate(now);
  const local = counterKeys(now, zone);
  expect(local.day).not.toBe(counterKeys(now, "UTC").day);

  const users = grpcClient(TenantServiceDefinition, `127.0.0.1:${meshInfo().services.users.grpc}`, undefined, { identity: "auth", tenant });
  const { client, close } = buyerClient(address, tenant, ["admin"], "admin-1");
  try {
    const { tenant: created } = await users.client.createTenant({ tenant: { id: tenant, displayName: "Zone Inc", timeZone: zone } });
    expect(created?.timeZone).toBe(zone);
    const { buyer } = await client.createBuyer({ buyer: sampleBuyer() });
    const id = buyer!.id;
    // Sales as the sale side records them: counters keyed by the tenant's local day and month.
    await mongo
      .db(database)
      .collection("buyers")
      .updateOne({ _id: id as never }, { $set: { counters: { day: local.day, dayCount: 3, month: local.month, monthCount: 7 } } });
    // A write through the service reads the seeded document and puts it into GetBuyer's cache.
    const { buyer: paused } = await client.pauseBuyer({ id });
    expect(paused).toMatchObject({ salesToday: "3", salesThisMonth: "7" });
    expect((await client.getBuyer({ id })).buyer).toMatchObject({ salesToday: "3", salesThisMonth: "7" });
    expect((await client.listBuyers({})).buyers[0]).toMatchObject({ salesToday: "3", salesThisMonth: "7" });

    // Counters of another day than the tenant's today count 0.
    const utc = counterKeys(now, "UTC");
    await mongo
      .db(database)
      .collection("buyers")
      .updateOne({ _id: id as never }, { $set: { counters: { day: utc.day, dayCount: 5, month: local.month, monthCount: 9 } } });
    const { buyer: resumed } = await client.resumeBuyer({ id });
    expect(resumed).toMatchObject({ salesToday: "0", salesThisMonth: "9" });
  } finally {
    users.close();
    close();
  }
});
