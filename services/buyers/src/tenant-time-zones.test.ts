import { DomainError } from "@leadmesh/platform";
import { Status } from "nice-grpc-common";
import pino from "pino";
import { CACHE_MS, TenantTimeZones, type TenantZoneLookup } from "./tenant-time-zones";

const silent = pino({ level: "silent" });

function zonesWith(answers: Record<string, string | undefined | Error>) {
  let now = 1_000_000;
  const calls: string[] = [];
  const lookup: TenantZoneLookup = async (tenantId) => {
    calls.push(tenantId);
    const answer = answers[tenantId];
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const zones = new TenantTimeZones(lookup, silent, () => now);
  return { zones, calls, advance: (ms: number) => (now += ms) };
}

describe("TenantTimeZones", () => {
  it("answers the tenant's zone, UTC without one or for an unknown tenant or zone", async () => {
    const { zones } = zonesWith({ berlin: "Europe/Berlin", blank: "", bogus: "Mars/Base", missing: undefined });
    expect(await zones.zoneOf("berlin")).toBe("Europe/Berlin");
    expect(await zones.zoneOf("blank")).toBe("UTC");
    expect(await zones.zoneOf("bogus")).toBe("UTC");
    expect(await zones.zoneOf("missing")).toBe("UTC");
  });

  it("asks the users service once per tenant per 60 s, concurrent callers sharing one lookup", async () => {
    const answers: Record<string, string> = { a: "Asia/Tokyo" };
    const { zones, calls, advance } = zonesWith(answers);
    await Promise.all([zones.zoneOf("a"), zones.zoneOf("a"), zones.zoneOf("a")]);
    expect(calls).toEqual(["a"]);
    advance(CACHE_MS - 1);
    expect(await zones.zoneOf("a")).toBe("Asia/Tokyo");
    expect(calls).toEqual(["a"]);
    answers.a = "Europe/Paris";
    advance(1);
    expect(await zones.zoneOf("a")).toBe("Europe/Paris");
    expect(calls).toEqual(["a", "a"]);
  });

  it("keeps the last known zone while users is down, and fails UNAVAILABLE without one", async () => {
    const answers: Record<string, string | Error> = { a: "Asia/Tokyo", b: new Error("connect ECONNREFUSED") };
    const { zones, advance } = zonesWith(answers);
    expect(await zones.zoneOf("a")).toBe("Asia/Tokyo");
    answers.a = new Error("connect ECONNREFUSED");
    advance(CACHE_MS * 5);
    expect(await zones.zoneOf("a")).toBe("Asia/Tokyo");
    const failure = await zones.zoneOf("b").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DomainError);
    expect((failure as DomainError).code).toBe(Status.UNAVAILABLE);
  });
});
