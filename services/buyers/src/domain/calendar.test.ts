import { counterKeys, isKnownTimeZone } from "./calendar";

const at = (iso: string) => new Date(iso);

describe("counterKeys", () => {
  it("names the day and month in UTC", () => {
    expect(counterKeys(at("2026-03-14T12:00:00Z"), "UTC")).toEqual({ day: "2026-03-14", month: "2026-03" });
  });

  it("follows the zone's midnight, not UTC's", () => {
    // 23:30 UTC on the 31st is already the 1st of the next month in Berlin (UTC+1 in winter)...
    expect(counterKeys(at("2026-01-31T23:30:00Z"), "Europe/Berlin")).toEqual({ day: "2026-02-01", month: "2026-02" });
    // ...and still the 31st in New York (UTC-5).
    expect(counterKeys(at("2026-01-31T23:30:00Z"), "America/New_York")).toEqual({ day: "2026-01-31", month: "2026-01" });
    expect(counterKeys(at("2026-02-01T04:59:59Z"), "America/New_York")).toEqual({ day: "2026-01-31", month: "2026-01" });
    expect(counterKeys(at("2026-02-01T05:00:00Z"), "America/New_York")).toEqual({ day: "2026-02-01", month: "2026-02" });
  });

  it("turns the year at the zone's midnight of 31 December", () => {
    expect(counterKeys(at("2026-12-31T14:59:59Z"), "Asia/Tokyo")).toEqual({ day: "2026-12-31", month: "2026-12" });
    expect(counterKeys(at("2026-12-31T15:00:00Z"), "Asia/Tokyo")).toEqual({ day: "2027-01-01", month: "2027-01" });
  });

  it("keeps whole days across daylight-saving changes", () => {
    // Berlin springs forward on 2026-03-29 at 01:00 UTC (UTC+1 -> UTC+2): midnight of the 30th is 22:00 UTC on the 29th.
    expect(counterKeys(at("2026-03-29T21:59:59Z"), "Europe/Berlin").day).toBe("2026-03-29");
    expect(counterKeys(at("2026-03-29T22:00:00Z"), "Europe/Berlin").day).toBe("2026-03-30");
    // Falls back on 2026-10-25 at 01:00 UTC (UTC+2 -> UTC+1): that day is 25 hours long, midnight of the 26th is 23:00 UTC.
    expect(counterKeys(at("2026-10-24T22:00:00Z"), "Europe/Berlin").day).toBe("2026-10-25");
    expect(counterKeys(at("2026-10-25T22:59:59Z"), "Europe/Berlin").day).toBe("2026-10-25");
    expect(counterKeys(at("2026-10-25T23:00:00Z"), "Europe/Berlin").day).toBe("2026-10-26");
    // New York's spring-forward day (2026-03-08) ends at 04:00 UTC on the 9th (UTC-4 by then).
    expect(counterKeys(at("2026-03-09T03:59:59Z"), "America/New_York").day).toBe("2026-03-08");
    expect(counterKeys(at("2026-03-09T04:00:00Z"), "America/New_York").day).toBe("2026-03-09");
  });

  it("handles leap days, month ends and zones with a non-hour offset", () => {
    expect(counterKeys(at("2028-02-29T12:00:00Z"), "UTC")).toEqual({ day: "2028-02-29", month: "2028-02" });
    expect(counterKeys(at("2026-04-30T18:29:59Z"), "Asia/Kolkata")).toEqual({ day: "2026-04-30", month: "2026-04" });
    expect(counterKeys(at("2026-04-30T18:30:00Z"), "Asia/Kolkata")).toEqual({ day: "2026-05-01", month: "2026-05" });
  });

  it("refuses unknown zones", () => {
    expect(isKnownTimeZone("Europe/Berlin")).toBe(true);
    expect(isKnownTimeZone("UTC")).toBe(true);
    expect(isKnownTimeZone("Mars/Olympus_Mons")).toBe(false);
    expect(isKnownTimeZone("")).toBe(false);
    expect(() => counterKeys(new Date(), "Mars/Olympus_Mons")).toThrow(RangeError);
  });
});
