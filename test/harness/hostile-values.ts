/**
 * fast-check arbitraries for the values an outside fuzzer sends: text with
 * lone surrogates, NUL, control and bidi characters, astral characters,
 * injection-looking fragments, long and (rarely) 1 MB values; numbers at and
 * past their limits; and, for the fields that have a grammar (AIP-160
 * filters, order_by, page tokens, ids, emails), inputs that are almost right,
 * so that generated requests also get past validation into handlers and
 * stores. Used by the generated-input tests in test/fuzz.
 */
import fc from "fast-check";

/** Fragments that broke or confused parsers somewhere: encoders, URL and JSON decoders, Mongo, shells, terminals. */
const HOSTILE_FRAGMENTS = [
  "\uD800",
  "\uDBFF",
  "\uDC00",
  "\uDFFF",
  "\uD83D",
  "\u{1F600}",
  "\u{10FFFF}",
  "\uFFFD",
  "\uFFFF",
  "\uFEFF",
  "\u0000",
  "\u0001",
  "\u0007",
  "\u0008",
  "\u001b[31m",
  "\u007f",
  "\u0085",
  "\r\n",
  "\t",
  "\u2028",
  "\u202E",
  "\u200F",
  "\u200B",
  "\u0301",
  "\u0130",
  "ß",
  "ﬃ",
  "%",
  "%00",
  "%ED%A0%80",
  "%FF",
  "%2F",
  "%25",
  "../",
  "..\\",
  "/",
  "?",
  "#",
  "&",
  "=",
  ";",
  ",",
  "+",
  "$where",
  "$gt",
  "$ne",
  "a.b",
  '{"$gt":""}',
  "\\",
  '"',
  "'",
  "`",
  "<script>",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, meant literally
  "${x}",
  "{{x}}",
  "%s%n",
  "' OR 1=1 --",
  "*",
  "(",
  ")",
  "AND",
  "OR",
  "NOT",
  "=",
  "!=",
  "<=",
  ">=",
  " ",
  "",
];

/** A 1 MiB value: past every limit the services declare (Envoy's body cap is 1 MiB; gRPC accepts 4 MiB). */
export const ONE_MEGABYTE = `${"\u{1F600}".repeat(1 << 18)}\uD800`;

/** One UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

const fragmentText = fc
  .array(fc.oneof(fc.constantFrom(...HOSTILE_FRAGMENTS), fc.string({ unit: "grapheme-ascii", maxLength: 8 })), { maxLength: 8 })
  .map((parts) => parts.join(""));

const longText = fc
  .tuple(fc.constantFrom("a", "\u{1F600}", "\uD800", "é", "\u0000", "("), fc.integer({ min: 200, max: 70_000 }))
  .map(([unit, count]) => unit.repeat(count));

/** Any hostile text; `megabyteWeight` 0 leaves out the 1 MiB value. */
export function hostileText(megabyteWeight = 1): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fragmentText, weight: 30 },
    { arbitrary: fc.string({ unit: "binary", maxLength: 40 }), weight: 15 },
    { arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }), weight: 15 },
    { arbitrary: longText, weight: 3 },
    { arbitrary: fc.constant(ONE_MEGABYTE), weight: megabyteWeight },
  );
}

/** Filterable fields of the implemented list RPCs (and some that are not), for near-valid AIP-160 filters. */
const FILTER_FIELDS = [
  "status",
  "score",
  "email",
  "source",
  "owner_id",
  "assignee_id",
  "create_time",
  "update_time",
  "department_id",
  "manager_id",
  "display_name",
  "deleted",
  "x",
  "_id",
  "$where",
  "a.b",
];
const FILTER_VALUES = [
  "NEW",
  "LEAD_STATUS_QUALIFIED",
  "ACTIVE",
  "50",
  "-1",
  "999999999999999999999",
  "true",
  '"a\\"b"',
  "'x'",
  '"\u0000"',
  '"\uD800"',
  "2026-01-31T00:00:00Z",
  "2026-13-45T99:99:99Z",
  '"unterminated',
  "null",
  "1e400",
];
const FILTER_OPERATORS = ["=", "!=", "<", "<=", ">", ">=", ":", "==", "!", "~"];

const comparison = fc
  .tuple(fc.constantFrom(...FILTER_FIELDS), fc.constantFrom(...FILTER_OPERATORS), fc.oneof(fc.constantFrom(...FILTER_VALUES), hostileText(0)))
  .map(([field, operator, value]) => `${field} ${operator} ${value}`);

/** AIP-160 filters: valid, almost valid, unbalanced, deep, long, hostile. */
export const filterText: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.oneof(comparison, fc.constantFrom("AND", "OR", "NOT", "(", ")", "-")), { maxLength: 12 }).map((parts) => parts.join(" ")),
  fc.integer({ min: 1, max: 5000 }).map((depth) => `${"(".repeat(depth)}status = NEW${")".repeat(depth)}`),
  fc.integer({ min: 1, max: 200 }).map((terms) => Array.from({ length: terms }, (_, i) => `score >= ${i}`).join(" OR ")),
  hostileText(0),
);

/** order_by: valid orderings, unknown fields, bad directions, hostile. */
export const orderByText: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom(...FILTER_FIELDS), fc.constantFrom("", " asc", " desc", " DESC", " sideways", "  ")), { maxLength: 5 }),
      fc.constantFrom(",", ", ", ",,"),
    )
    .map(([parts, separator]) => parts.map(([field, direction]) => field + direction).join(separator)),
  hostileText(0),
);

/** Page tokens: random base64url, base64 of JSON that looks like a cursor, truncated, hostile. */
export const pageTokenText: fc.Arbitrary<string> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString("base64url")),
  fc
    .record({ o: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), k: fc.oneof(fc.string(), fc.array(fc.string())), f: fc.string() })
    .map((cursor) => Buffer.from(JSON.stringify(cursor)).toString("base64url")),
  fc.string({ unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/."), maxLength: 600 }),
  hostileText(0),
);

/** Ids: the fixtures' real ids (so requests reach stored data), well-formed unknown ones, and hostile text. */
export function idText(knownIds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...knownIds, "me", "aaaaaaaaaaaaaaaaaaaaaaaa", "0"), weight: 3 },
    { arbitrary: fc.stringMatching(/^[0-9a-f]{24}$/), weight: 1 },
    { arbitrary: hostileText(), weight: 3 },
  );
}

export const emailText: fc.Arbitrary<string> = fc.oneof(
  fc.emailAddress(),
  fc.tuple(hostileText(0), fc.constantFrom("@example.com", "@", "@@x", "@localhost", "")).map(([local, domain]) => local + domain),
  hostileText(),
);

/** Text for a request field: by what its name says it holds. */
export function textForField(fieldName: string, knownIds: readonly string[]): fc.Arbitrary<string> {
  if (fieldName === "filter") return filterText;
  if (fieldName === "order_by") return orderByText;
  if (fieldName.endsWith("page_token") || fieldName.endsWith("refresh_token") || fieldName.endsWith("reset_token")) return pageTokenText;
  if (fieldName === "id" || fieldName.endsWith("_id") || fieldName === "ids") return idText(knownIds);
  if (fieldName.includes("email")) return emailText;
  return fc.oneof({ arbitrary: hostileText(), weight: 4 }, { arbitrary: fc.string({ maxLength: 30 }), weight: 1 });
}

export const INT32_LIMITS = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31)];
export const UINT32_LIMITS = [0, 1, 2 ** 32 - 1];
export const INT64_LIMITS = [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n];
export const UINT64_LIMITS = [0n, 2n ** 64n - 1n, 2n ** 53n + 1n];

/**
 * A value a real client would send for a field, by its name: the baseline
 * that focused requests (one hostile field, the rest plausible) start from,
 * so the hostile value is what the handler and the store get to see.
 */
export function plausibleText(fieldName: string, knownIds: readonly string[]): string {
  if (fieldName === "tenant_id") return knownIds[4] ?? "acme";
  if (fieldName === "id" || fieldName.endsWith("_id") || fieldName === "ids") return knownIds[0] ?? "aaaaaaaaaaaaaaaaaaaaaaaa";
  if (fieldName.includes("email")) return "ada@example.com";
  if (fieldName.includes("password")) return "correct horse battery staple";
  if (fieldName.includes("phone")) return "+14155550100";
  if (fieldName === "country_code") return "DE";
  if (fieldName === "postal_code") return "10115";
  if (fieldName === "etag") return knownIds[6] ?? "1";
  if (fieldName === "tags") return "vip";
  if (fieldName === "filter" || fieldName === "order_by" || fieldName.endsWith("_token")) return "";
  return "Ada";
}
