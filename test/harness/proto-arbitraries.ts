/**
 * Requests generated from a message descriptor (proto/ as compiled into the
 * descriptor set, read with @bufbuild/protobuf), for the generated-input
 * tests: every field of every kind (scalars at their limits, every enum
 * number and unknown ones, nested messages, lists, maps, oneofs) with
 * hostile values (hostile-values.ts).
 *
 * - binaryRequest: protobuf bytes for a direct gRPC call. Strings are
 *   UTF-8-encoded by the writer, so a string field is sometimes repeated at
 *   the end with invalid UTF-8 bytes (the last occurrence wins when parsed).
 * - jsonRequest: a proto3-JSON-shaped value for a REST body or query, where
 *   any field may also carry the wrong JSON type, a number no int64 holds,
 *   or a deeply nested value, and unknown keys appear.
 */
import { create, type DescEnum, type DescField, type DescMessage, getOption, hasOption, ScalarType, toBinary, toJson } from "@bufbuild/protobuf";
import type { GenExtension } from "@bufbuild/protobuf/codegenv2";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { FieldOptions } from "@bufbuild/protobuf/wkt";
import { contracts } from "@leadmesh/platform";
import fc from "fast-check";
import { hostileText, INT32_LIMITS, INT64_LIMITS, plausibleText, textForField, UINT32_LIMITS, UINT64_LIMITS } from "./hostile-values";

export interface RequestContext {
  /** Ids of real fixtures (lead, user, department, session…), mixed into id fields. */
  knownIds: readonly string[];
}

const MAX_DEPTH = 6;

// ---------------------------------------------------------------- protobuf

export interface BinaryRequest {
  bytes: Uint8Array;
}

/** Serialised requests of `message`, hostile but always valid protobuf framing. */
export function binaryRequest(message: DescMessage, context: RequestContext): fc.Arbitrary<BinaryRequest> {
  const init = fc.oneof(messageInit(message, context, 0), focusedInit(message, context, 0), focusedInit(message, context, 0));
  return fc.tuple(init, invalidUtf8Tail(message)).map(([init, tail]) => {
    const bytes = concat(toBinary(message, create(message, init as never)), tail);
    // What fast-check prints for a counterexample: requests can be megabytes long.
    const shown = Buffer.from(bytes.subarray(0, 2048)).toString("base64");
    return { bytes, [fc.toStringMethod]: () => `${bytes.length} bytes, base64 ${shown}${bytes.length > 2048 ? "…" : ""}` };
  });
}

/**
 * Bytes no protobuf parser accepts as `message`: a valid request cut short
 * inside its last field, a field of a wire type that does not exist (6, 7),
 * a length past the end, a varint that never ends.
 */
export function undecodableRequest(message: DescMessage, context: RequestContext): fc.Arbitrary<Uint8Array> {
  const cutShort = focusedInit(message, context, 0).map((init) => {
    const valid = toBinary(message, create(message, init as never));
    // An unknown field appended and cut: its length says more bytes follow than do, and skipping it runs past the end.
    const tail = new BinaryWriter().tag(536_870_911, WireType.LengthDelimited).bytes(new Uint8Array(10)).finish();
    return concat(valid, tail.subarray(0, tail.length - 5));
  });
  return fc.oneof(
    cutShort,
    fc.integer({ min: 1, max: 15 }).map((number) => Uint8Array.from([(number << 3) | 6, 1])), // wire type 6 (a one-byte tag)
    fc.integer({ min: 1, max: 15 }).map((number) => Uint8Array.from([(number << 3) | 7, 1])), // wire type 7
    fc.constant(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x41])), // length 4 GiB, one byte present
    fc.constant(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), // varint of 11 bytes
  );
}

function messageInit(message: DescMessage, context: RequestContext, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (depth > MAX_DEPTH) return fc.constant({});
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of message.fields) {
    if (field.oneof) continue;
    parts[field.localName] = fieldInit(field, context, depth);
  }
  for (const oneof of message.oneofs) {
    parts[oneof.localName] = fc.oneof(
      fc.constant({ case: undefined }),
      ...oneof.fields.map((field) => fieldInit(field, context, depth).map((value) => ({ case: field.localName, value }))),
    );
  }
  return fc.record(parts, { requiredKeys: [] });
}

/**
 * One field hostile (inside nested messages: one of theirs), every other a
 * plausible value: a request that fails validation on all fields at once
 * never shows how the handler and the store treat the hostile one.
 */
function focusedInit(message: DescMessage, context: RequestContext, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (message.fields.length === 0 || depth > MAX_DEPTH) return fc.constant({});
  return fc.constantFrom(...message.fields).chain((focus) => {
    const hostile = focus.fieldKind === "message" ? focusedInit(focus.message, context, depth + 1) : fieldInit(focus, context, depth);
    return hostile.map((value) => {
      const init = plausibleInit(message, context, depth);
      if (focus.oneof) init[focus.oneof.localName] = { case: focus.localName, value };
      else init[focus.localName] = value;
      return init;
    });
  });
}

/** A request a well-behaved client would send, with `overrides` (by localName) on top, serialised. */
export function plausibleRequest(message: DescMessage, context: RequestContext, overrides: Record<string, unknown> = {}): Uint8Array {
  return toBinary(message, create(message, { ...plausibleInit(message, context, 0), ...overrides } as never));
}

/** What a well-behaved client would send, by field name and kind (hostile-values.ts plausibleText). */
function plausibleInit(message: DescMessage, context: RequestContext, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  if (depth > MAX_DEPTH || WELL_KNOWN_OMITTED.has(message.typeName)) return init;
  for (const field of message.fields) {
    if (isOutputOnly(field)) continue;
    const value = plausibleValue(field, context, depth);
    if (value === undefined) continue;
    if (field.oneof) {
      if (!(field.oneof.localName in init)) init[field.oneof.localName] = { case: field.localName, value };
    } else init[field.localName] = value;
  }
  return init;
}

const FIELD_BEHAVIOR_OUTPUT_ONLY = 3;

/** Declared `(google.api.field_behavior) = OUTPUT_ONLY`: a well-behaved client leaves it out. */
function isOutputOnly(field: DescField): boolean {
  const extension = contracts().registry.getExtension("google.api.field_behavior") as GenExtension<FieldOptions, number[]> | undefined;
  return extension !== undefined && hasOption(field, extension) && getOption(field, extension).includes(FIELD_BEHAVIOR_OUTPUT_ONLY);
}

/** Optional well-known types a client leaves out. */
const WELL_KNOWN_OMITTED = new Set(["google.protobuf.Timestamp", "google.protobuf.FieldMask"]);

function plausibleValue(field: DescField, context: RequestContext, depth: number): unknown {
  const plausibleScalar = (type: ScalarType): unknown =>
    type === ScalarType.STRING
      ? plausibleText(field.name, context.knownIds)
      : type === ScalarType.BOOL
        ? false
        : type === ScalarType.BYTES
          ? new Uint8Array()
          : isInt64(type)
            ? 0n
            : field.name === "page_size"
              ? 10
              : 50;
  const plausibleEnum = (enumType: DescEnum) => (enumType.values[1] ?? enumType.values[0]).number;
  switch (field.fieldKind) {
    case "scalar":
      return plausibleScalar(field.scalar);
    case "enum":
      return plausibleEnum(field.enum);
    case "message":
      return WELL_KNOWN_OMITTED.has(field.message.typeName) ? undefined : plausibleInit(field.message, context, depth + 1);
    case "list":
      return field.listKind === "scalar" ? [plausibleScalar(field.scalar)] : field.listKind === "enum" ? [plausibleEnum(field.enum)] : [];
    case "map":
      return {};
  }
}

function isInt64(type: ScalarType): boolean {
  return [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(type);
}

function fieldInit(field: DescField, context: RequestContext, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalarValue(field.scalar, field.name, context);
    case "enum":
      return enumNumber(field.enum);
    case "message":
      return messageInit(field.message, context, depth + 1);
    case "list": {
      const element =
        field.listKind === "scalar"
          ? scalarValue(field.scalar, field.name, context)
          : field.listKind === "enum"
            ? enumNumber(field.enum)
            : messageInit(field.message, context, depth + 1);
      return fc.oneof(
        { arbitrary: fc.array(element, { maxLength: 4 }), weight: 9 },
        { arbitrary: fc.array(element, { minLength: 100, maxLength: 300 }), weight: 1 },
      );
    }
    case "map": {
      const value =
        field.mapKind === "scalar"
          ? scalarValue(field.scalar, field.name, context)
          : field.mapKind === "enum"
            ? enumNumber(field.enum)
            : messageInit(field.message, context, depth + 1);
      const key = scalarValue(field.mapKey, `${field.name}_key`, context).map(String);
      return fc.oneof(
        { arbitrary: fc.dictionary(key, value, { maxKeys: 4 }), weight: 9 },
        { arbitrary: fc.dictionary(key, value, { minKeys: 100, maxKeys: 300 }), weight: 1 },
      );
    }
  }
}

function scalarValue(type: ScalarType, fieldName: string, context: RequestContext): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return textForField(fieldName, context.knownIds);
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.constantFrom(...INT32_LIMITS), fc.integer(), fc.integer({ min: -10, max: 1000 }));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.constantFrom(...UINT32_LIMITS), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.oneof(fc.constantFrom(...INT64_LIMITS), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(...UINT64_LIMITS), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
  }
}

/** Every declared number, and numbers no version of the enum declares. */
function enumNumber(enumType: DescEnum): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(...enumType.values.map((value) => value.number)), fc.constantFrom(...INT32_LIMITS), fc.integer());
}

const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xf0, 0x9f, 0x98]].map((bytes) =>
  Uint8Array.from(bytes),
);

/** Nothing, or one string field of the message again, holding invalid UTF-8. */
function invalidUtf8Tail(message: DescMessage): fc.Arbitrary<Uint8Array> {
  const stringFields = message.fields.filter((field) => field.fieldKind === "scalar" && field.scalar === ScalarType.STRING);
  if (stringFields.length === 0) return fc.constant(new Uint8Array());
  const tail = fc
    .tuple(
      fc.constantFrom(...stringFields),
      fc.array(fc.oneof(fc.constantFrom(...INVALID_UTF8), fc.uint8Array({ maxLength: 6 })), { minLength: 1, maxLength: 5 }),
    )
    .map(([field, chunks]) =>
      new BinaryWriter()
        .tag(field.number, WireType.LengthDelimited)
        .bytes(concat(...chunks))
        .finish(),
    );
  return fc.oneof({ arbitrary: fc.constant(new Uint8Array()), weight: 3 }, { arbitrary: tail, weight: 1 });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const result = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

// ---------------------------------------------------------------- JSON

/** JSON text inserted verbatim by jsonText: numbers JSON.stringify cannot write, and nesting deeper than its recursion. */
export class RawJson {
  constructor(readonly text: string) {}
}

export type JsonLike = null | boolean | number | string | RawJson | JsonLike[] | { [key: string]: JsonLike };

/** JSON text of a generated value (JSON.stringify escapes lone surrogates as \udXXX, as a hostile client may). */
export function jsonText(value: JsonLike): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([key, entry]) => `${JSON.stringify(key)}:${jsonText(entry)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Values of the wrong kind for whatever field they land in, nesting included. */
export const wrongJson: fc.Arbitrary<JsonLike> = fc.oneof(
  fc.constantFrom<JsonLike>(null, true, 0, -1, 1.5, "", [], {}, [null], { "": null }),
  fc.constantFrom(
    ...[
      "1e400",
      "-1e400",
      "9223372036854775808",
      "-9223372036854775809",
      "18446744073709551616",
      "123456789012345678901234567890",
      "-0",
      "1E2",
      "0.0000001",
    ].map((text) => new RawJson(text)),
  ),
  fc.integer({ min: 2, max: 20_000 }).map((depth) => new RawJson(`${"[".repeat(depth)}${"]".repeat(depth)}`)),
  fc.integer({ min: 2, max: 20_000 }).map((depth) => new RawJson(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`)),
  hostileText(0),
);

/**
 * proto3 JSON of `message`: either hostile throughout (values, wrong types,
 * unknown keys), or focused like focusedInit (one field hostile, the rest
 * plausible, JSON-encoded by @bufbuild/protobuf).
 */
export function jsonRequest(message: DescMessage, context: RequestContext): fc.Arbitrary<{ [key: string]: JsonLike }> {
  return fc.oneof(hostileJson(message, context, 0), focusedJson(message, context, 0), focusedJson(message, context, 0));
}

function hostileJson(message: DescMessage, context: RequestContext, depth: number): fc.Arbitrary<{ [key: string]: JsonLike }> {
  if (depth > MAX_DEPTH) return fc.constant({});
  const parts: Record<string, fc.Arbitrary<JsonLike>> = {};
  for (const field of message.fields) parts[field.jsonName] = orWrong(jsonField(field, context, depth));
  const unknownKeys = fc.oneof(
    { arbitrary: fc.constant({}), weight: 4 },
    { arbitrary: fc.dictionary(hostileText(0), wrongJson, { minKeys: 1, maxKeys: 2 }), weight: 1 },
  );
  return fc.tuple(fc.record(parts, { requiredKeys: [] }), unknownKeys).map(([known, unknown]) => ({ ...unknown, ...known }) as { [key: string]: JsonLike });
}

function focusedJson(message: DescMessage, context: RequestContext, depth: number): fc.Arbitrary<{ [key: string]: JsonLike }> {
  const plausible = () =>
    toJson(message, create(message, plausibleInit(message, context, depth) as never), { alwaysEmitImplicit: false }) as { [key: string]: JsonLike };
  if (message.fields.length === 0 || depth > MAX_DEPTH) return fc.constant(plausible());
  return fc.constantFrom(...message.fields).chain((focus) => {
    const hostile =
      focus.fieldKind === "message" && !JSON_FORM_MESSAGES.has(focus.message.typeName)
        ? focusedJson(focus.message, context, depth + 1)
        : orWrong(jsonField(focus, context, depth));
    return hostile.map((value) => {
      const json = plausible();
      if (focus.oneof) for (const member of focus.oneof.fields) delete json[member.jsonName];
      json[focus.jsonName] = value;
      return json;
    });
  });
}

/** Messages whose proto3 JSON is a string of their own form. */
const JSON_FORM_MESSAGES = new Set(["google.protobuf.Timestamp", "google.protobuf.FieldMask"]);

function orWrong(arbitrary: fc.Arbitrary<JsonLike>): fc.Arbitrary<JsonLike> {
  return fc.oneof({ arbitrary, weight: 6 }, { arbitrary: wrongJson, weight: 1 });
}

function jsonField(field: DescField, context: RequestContext, depth: number): fc.Arbitrary<JsonLike> {
  switch (field.fieldKind) {
    case "scalar":
      return jsonScalar(field.scalar, field.name, context);
    case "enum":
      return jsonEnum(field.enum);
    case "message":
      return jsonMessage(field.message, context, depth);
    case "list": {
      const element =
        field.listKind === "scalar"
          ? jsonScalar(field.scalar, field.name, context)
          : field.listKind === "enum"
            ? jsonEnum(field.enum)
            : jsonMessage(field.message, context, depth);
      return fc.array(orWrong(element), { maxLength: 4 });
    }
    case "map": {
      const value =
        field.mapKind === "scalar"
          ? jsonScalar(field.scalar, field.name, context)
          : field.mapKind === "enum"
            ? jsonEnum(field.enum)
            : jsonMessage(field.message, context, depth);
      return fc.dictionary(textForField(`${field.name}_key`, context.knownIds), orWrong(value), { maxKeys: 4 });
    }
  }
}

/** Messages with a JSON form of their own (RFC 3339 timestamps, comma-joined field masks) get near-valid strings of that form. */
function jsonMessage(message: DescMessage, context: RequestContext, depth: number): fc.Arbitrary<JsonLike> {
  if (!JSON_FORM_MESSAGES.has(message.typeName)) return hostileJson(message, context, depth + 1);
  if (message.typeName === "google.protobuf.Timestamp") {
    return fc.oneof(
      fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }).map((date) => date.toISOString()),
      fc.constantFrom("2026-13-45T99:99:99Z", "0000-00-00T00:00:00Z", "10000-01-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00.1234567891Z", "now"),
      hostileText(0),
    );
  }
  return fc
    .array(
      fc.oneof(fc.constantFrom("status", "score", "displayName", "email", "attributes", "id", "tenantId", "etag", "roles", "a.b.c", "", "*"), hostileText(0)),
      { maxLength: 5 },
    )
    .map((paths) => paths.join(","));
}

function jsonScalar(type: ScalarType, fieldName: string, context: RequestContext): fc.Arbitrary<JsonLike> {
  switch (type) {
    case ScalarType.STRING:
      return textForField(fieldName, context.knownIds);
    case ScalarType.BYTES:
      return fc.oneof(
        fc.uint8Array({ maxLength: 48 }).map((bytes) => Buffer.from(bytes).toString("base64")),
        hostileText(0),
      );
    case ScalarType.BOOL:
      return fc.oneof(fc.boolean(), fc.constantFrom<JsonLike>("true", "false", "yes", 1, 0));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom<JsonLike>("NaN", "Infinity", "-Infinity", "1e39", "nan"));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(
        fc.constantFrom<JsonLike>(...INT32_LIMITS, ...UINT32_LIMITS, 2 ** 32, -(2 ** 31) - 1, 1.5, "12", "-0", "0x10", "1e3"),
        fc.integer({ min: -10, max: 1000 }),
      );
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(
        fc.constantFrom(...INT64_LIMITS, ...UINT64_LIMITS, 2n ** 64n, -(2n ** 63n) - 1n).map((value) => value.toString()),
        fc.constantFrom<JsonLike>(2 ** 53, 1.5, "1e3", " 1", ""),
      );
  }
}

function jsonEnum(enumType: DescEnum): fc.Arbitrary<JsonLike> {
  return fc.oneof(
    fc.constantFrom<JsonLike>(...enumType.values.map((value) => value.name)),
    fc.constantFrom<JsonLike>(...enumType.values.map((value) => value.number)),
    fc.constantFrom<JsonLike>(...INT32_LIMITS, 2 ** 31, 999, `${enumType.values[0].name}_NOPE`, enumType.values[0].name.toLowerCase()),
    hostileText(0),
  );
}
