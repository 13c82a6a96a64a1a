/**
 * The calendar of a tenant: buyers' daily and monthly caps count sales per
 * day and month in the tenant's IANA time zone (users.v1.Tenant.time_zone).
 * A buyer document keeps the day and month its counters belong to; a counter
 * whose key is not the current one counts 0 (it reset at midnight / on the
 * first of the month in that zone, without any write).
 */

export interface CounterKeys {
  /** "YYYY-MM-DD" in the zone. */
  day: string;
  /** "YYYY-MM" in the zone. */
  month: string;
}

export const DEFAULT_TIME_ZONE = "UTC";

/** One formatter per zone: building an Intl.DateTimeFormat costs far more than using one. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // en-US with numeric parts and the proleptic Gregorian calendar; parts are read by type, never by position.
    formatter = new Intl.DateTimeFormat("en-US", { timeZone, calendar: "gregory", numberingSystem: "latn", year: "numeric", month: "2-digit", day: "2-digit" });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Whether `timeZone` is an IANA zone this runtime knows (e.g. "Europe/Berlin", "UTC"). */
export function isKnownTimeZone(timeZone: string): boolean {
  if (timeZone === "") return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The day and month `now` falls in, in `timeZone`. Throws RangeError for an unknown zone. */
export function counterKeys(now: Date, timeZone: string): CounterKeys {
  const parts = formatterFor(timeZone).formatToParts(now);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((candidate) => candidate.type === type)?.value ?? "";
  const year = part("year").padStart(4, "0");
  const month = `${year}-${part("month")}`;
  return { day: `${month}-${part("day")}`, month };
}
