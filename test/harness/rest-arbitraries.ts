/**
 * REST requests for one google.api.http binding, generated from the RPC's
 * request descriptor: hostile path variables (percent-encoded, including the
 * invalid UTF-8 that lone surrogates become), query parameters for the
 * fields a GET or DELETE carries there, JSON bodies from jsonRequest
 * (wrong types, huge numbers, deep nesting, unknown keys), and raw bodies
 * no JSON parser accepts (invalid UTF-8, truncated, NUL, BOM, deep nesting);
 * sometimes with hostile values in the headers the edge and services read.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { HttpBinding } from "@leadmesh/platform";
import fc from "fast-check";
import { hostileText, textForField } from "./hostile-values";
import { type JsonLike, jsonRequest, jsonText, RawJson, type RequestContext, wrongJson } from "./proto-arbitraries";

export interface RestRequest {
  method: string;
  /** Path and query, already percent-encoded. */
  path: string;
  contentType?: string;
  body?: string | Uint8Array;
  /** Extra request headers (Latin-1: what HTTP/1.1 carries byte for byte). */
  headers?: Record<string, string>;
}

/** Headers the edge or a service reads: client address, trace context, user agent (stored with sessions), deadlines. */
const READ_HEADERS = ["user-agent", "x-forwarded-for", "traceparent", "tracestate", "x-request-id", "grpc-timeout", "accept-language", "x-trace-id"];

/** Header values: printable Latin-1 including bytes 0x80-0xFF (invalid UTF-8 on the wire), near-valid trace contexts and addresses, long values. */
const headerValue = fc.oneof(
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((code) => code !== 0x7f)
      .map((code) => String.fromCharCode(code)),
    maxLength: 60,
  }),
  fc.constantFrom(
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-00000000000000000000000000000000-0000000000000000-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01-extra",
    "1.2.3.4, ::1, fe80::1%eth0, 999.999.999.999, unknown",
    "::ffff:127.0.0.1",
    "99999999999999999999S",
    "-1m",
    "\u00ff\u00fe",
  ),
  fc.integer({ min: 1000, max: 70_000 }).map((length) => "\u00e9".repeat(length)),
);

const hostileHeaders = fc.oneof(
  { arbitrary: fc.constant<Record<string, string>>({}), weight: 3 },
  { arbitrary: fc.dictionary(fc.constantFrom(...READ_HEADERS), headerValue, { minKeys: 1, maxKeys: 3 }), weight: 1 },
);

/** Percent-encoding that, unlike encodeURIComponent, also takes lone surrogates: as their 3-byte (invalid UTF-8) forms. */
export function percentEncode(text: string): string {
  let encoded = "";
  for (const character of text) {
    const codePoint = character.codePointAt(0)!;
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) {
      encoded += [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)]
        .map((byte) => `%${byte.toString(16).toUpperCase()}`)
        .join("");
    } else encoded += encodeURIComponent(character);
  }
  return encoded;
}

/** Path segments that are not percent-encodings of any text: malformed escapes, invalid UTF-8, dot segments. */
const RAW_SEGMENTS = [
  "%FF",
  "%ED%A0%80",
  "%C0%AF",
  "%00",
  "..",
  ".",
  "%2e%2e",
  "%2F..%2F",
  "%",
  "a%2",
  "%%",
  "%u0041",
  "",
  "a;b",
  "a?b=1",
  "~",
  "%F4%90%80%80",
];

const RAW_BODIES: (string | Uint8Array)[] = [
  Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // {"a":"<invalid UTF-8>"}
  Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), // BOM + {}
  Uint8Array.from([0xed, 0xa0, 0x80]),
  "{",
  '{"a":',
  '{"firstName":"x"',
  "{}}",
  "null",
  "[]",
  '"text"',
  "1e400",
  "\u0000",
  "",
  '{"a":1,"a":2}',
  '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
  `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
  `{"a":"${"\\ud800".repeat(1000)}"}`,
  "\u{1F600}".repeat(1000),
];

/** Requests for `binding` of an RPC whose request message is `input`. */
export function restRequest(binding: HttpBinding, input: DescMessage, context: RequestContext): fc.Arbitrary<RestRequest> {
  const method = binding.verb.toUpperCase();
  const pathValues = fc.tuple(
    ...binding.pathFields.map((field) =>
      fc.oneof(
        { arbitrary: textForField(field.split(".").pop()!, context.knownIds).map(percentEncode), weight: 4 },
        { arbitrary: fc.constantFrom(...RAW_SEGMENTS), weight: 1 },
      ),
    ),
  );
  const path = pathValues.map((values) => {
    let index = 0;
    return binding.pattern.replace(/\{[^}]+\}/g, () => values[index++]);
  });
  const fields = jsonRequest(input, context);
  // Rare: the transcoder refuses unknown parameters before the service sees the rest.
  const extraQuery = fc.oneof(
    { arbitrary: fc.constant<[string, string][]>([]), weight: 4 },
    { arbitrary: fc.array(fc.tuple(hostileText(0), hostileText(0)), { minLength: 1, maxLength: 2 }), weight: 1 },
  );

  if (binding.body === "") {
    return fc
      .tuple(path, fields, extraQuery, hostileHeaders)
      .map(([base, json, extra, headers]) => printable({ method, path: base + queryString(json, extra), headers }));
  }
  const bodyField = binding.body === "*" ? undefined : input.fields.find((field) => field.name === binding.body)!.jsonName;
  const jsonBody = fields.map((json) => jsonText(bodyField === undefined ? json : (json[bodyField] ?? {})));
  const body = fc.oneof(
    { arbitrary: jsonBody.map((text) => ({ contentType: "application/json", body: text as string | Uint8Array })), weight: 6 },
    { arbitrary: wrongJson.map((value) => ({ contentType: "application/json", body: jsonText(value) as string | Uint8Array })), weight: 1 },
    {
      arbitrary: fc.tuple(
        fc.constantFrom(...RAW_BODIES),
        fc.constantFrom<string | undefined>(
          "application/json",
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/json; charset=latin1",
          undefined,
        ),
      ),
      weight: 2,
    },
  );
  return fc
    .tuple(path, body, hostileHeaders)
    .map(([base, chosen, headers]) =>
      printable(
        Array.isArray(chosen)
          ? { method, path: base, body: chosen[0], contentType: chosen[1], headers }
          : { method, path: base, ...(chosen as { contentType: string; body: string }), headers },
      ),
    );
}

/** fast-check prints a counterexample with this; the request itself can be megabytes long. */
function printable(request: RestRequest): RestRequest {
  return Object.assign(request, { [fc.toStringMethod]: () => describeRestRequest(request) });
}

/** The request's scalar fields as query parameters (as the transcoder reads GET and DELETE requests), plus unknown ones. */
function queryString(json: { [key: string]: JsonLike }, extra: [string, string][]): string {
  const pairs: string[] = [];
  const add = (key: string, value: JsonLike) => {
    if (value === null || typeof value === "object") {
      if (value instanceof RawJson) pairs.push(`${percentEncode(key)}=${percentEncode(value.text.slice(0, 5000))}`);
      return;
    }
    pairs.push(`${percentEncode(key)}=${percentEncode(String(value))}`);
  };
  for (const [key, value] of Object.entries(json)) {
    if (Array.isArray(value)) for (const element of value) add(key, element);
    else add(key, value);
  }
  for (const [key, value] of extra) add(key, value);
  return pairs.length > 0 ? `?${pairs.join("&")}` : "";
}

/** A short description for failure messages (values can be megabytes long). */
export function describeRestRequest(request: RestRequest): string {
  const body = request.body === undefined ? "" : typeof request.body === "string" ? request.body : Buffer.from(request.body).toString("latin1");
  const cut = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text);
  const headers = Object.entries(request.headers ?? {})
    .map(([name, value]) => ` ${name}: ${JSON.stringify(cut(value))}`)
    .join("");
  return `${request.method} ${cut(request.path)}${request.contentType ? ` [${request.contentType}]` : ""}${headers}${body ? ` body ${JSON.stringify(cut(body))}` : ""}`;
}
