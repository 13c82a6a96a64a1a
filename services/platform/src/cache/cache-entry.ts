/**
 * What one read-cache key holds in Redis, and the compare-and-set that
 * writes it. An entry is one binary string: an ASCII header "<revision>:L"
 * (a live resource, its protobuf bytes follow) or "<revision>:T" (a
 * tombstone: the resource is gone as of that revision). The revision leads so
 * that the Lua script can compare it without knowing the resource's codec.
 */

export type EntryKind = "live" | "tombstone";

/** A decoded entry: the resource's bytes for a live one. */
export interface StoredEntry {
  revision: number;
  kind: EntryKind;
  payload: Buffer;
}

const KIND_CODE: Record<EntryKind, string> = { live: "L", tombstone: "T" };
const COLON = 0x3a;
const LIVE = 0x4c;
const TOMBSTONE = 0x54;
/** Revisions are safe integers: at most 16 digits, the colon within the first 17 bytes. */
const MAX_HEADER_DIGITS = 16;

export function encodeEntry(revision: number, kind: EntryKind, payload?: Uint8Array): Buffer {
  if (!Number.isSafeInteger(revision) || revision < 0) throw new Error(`read cache: revision must be a non-negative safe integer, got ${revision}`);
  const header = Buffer.from(`${revision}:${KIND_CODE[kind]}`, "latin1");
  return payload && kind === "live" ? Buffer.concat([header, payload]) : header;
}

/** The entry, or undefined when the bytes are not one (written by something else, or truncated): callers treat that as a miss. */
export function decodeEntry(bytes: Buffer): StoredEntry | undefined {
  const colon = bytes.indexOf(COLON);
  if (colon < 1 || colon > MAX_HEADER_DIGITS || bytes.length < colon + 2) return undefined;
  const revision = Number(bytes.toString("latin1", 0, colon));
  if (!Number.isSafeInteger(revision) || revision < 0) return undefined;
  const code = bytes[colon + 1];
  if (code === LIVE) return { revision, kind: "live", payload: bytes.subarray(colon + 2) };
  if (code === TOMBSTONE) return { revision, kind: "tombstone", payload: bytes.subarray(colon + 2, colon + 2) };
  return undefined;
}

/**
 * KEYS[1] the entry's key; ARGV[1] the new entry's revision, ARGV[2] the
 * entry, ARGV[3] its TTL in ms. Writes only if the key holds no entry, an
 * unreadable one, or one of a LOWER revision: an equal revision is the same
 * state already there. Returns 1 when written, 0 when a newer-or-equal entry
 * stayed. Atomic in Redis, so a fill racing a write can never move a key
 * back to an older revision, whichever arrives last.
 */
export const STORE_IF_NEWER_LUA = `
local current = redis.call('GET', KEYS[1])
if current then
  local revision = tonumber(string.match(current, '^(%d+):'))
  if revision and revision >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

/**
 * A reader's claim on an empty key while it reads the database: "F:<token>".
 * Not an entry (no revision), so a write's compare-and-set replaces it like
 * an empty key, and so does its expiry or an eviction.
 */
export function fillLease(token: string): string {
  return `F:${token}`;
}

/**
 * KEYS[1] the entry's key; ARGV[1] the reader's lease, ARGV[2] the entry
 * (empty: nothing found, just release the lease), ARGV[3] its TTL in ms.
 * Writes only if the key still holds exactly that lease: a write, an
 * eviction or an expiry since the lease was taken means the reader's
 * database answer may be older than what a write already acknowledged, and
 * it must not be cached. Returns 1 when written (or released), 0 otherwise.
 */
export const FILL_IF_LEASED_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`;
