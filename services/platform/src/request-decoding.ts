/**
 * Requests whose bytes are not a valid protobuf message of the RPC's request
 * type. grpc-js answers a throwing deserializer with INTERNAL ("Error
 * deserializing request"), blaming the server for the client's bytes, and
 * Envoy shows that as a 500. So the kernel decodes leniently: a request that
 * does not parse becomes a marker, and the kernel middleware answers it
 * with INVALID_ARGUMENT (refuseUndecodable) before fail-fast,
 * authentication or the handler see it.
 *
 * The same goes for a google.protobuf.Timestamp outside the range proto
 * allows (years 0001 to 9999): ts-proto (useDate) decodes it without a word
 * into an Invalid Date, and whatever later encodes or prints the request
 * throws (found by the generated-input tests: CreateLead answered INTERNAL).
 */
import type { CompatServiceDefinition } from "nice-grpc";
import { InvalidArgumentError } from "./errors";

const UNDECODABLE = Symbol("undecodable request");

interface UndecodableRequest {
  [UNDECODABLE]: string;
}

interface DecodableType {
  decode(input: Uint8Array): unknown;
}

interface TsProtoMethod {
  requestType: DecodableType;
}

/** The definition with each request decoder turning a parse failure into a marker instead of throwing. */
export function withLenientRequestDecoding<S extends CompatServiceDefinition>(definition: S): S {
  const { methods } = definition as unknown as { methods: Record<string, TsProtoMethod> };
  const lenient: Record<string, TsProtoMethod> = {};
  for (const [name, method] of Object.entries(methods)) {
    const { decode } = method.requestType;
    const decodeLeniently = (input: Uint8Array): unknown => {
      let request: unknown;
      try {
        request = decode(input);
      } catch (error) {
        return { [UNDECODABLE]: error instanceof Error ? error.message : String(error) } satisfies UndecodableRequest;
      }
      const badTimestamp = timestampOutOfRange(request, "");
      return badTimestamp === undefined
        ? request
        : ({ [UNDECODABLE]: `${badTimestamp} is not a valid google.protobuf.Timestamp (years 0001 to 9999)` } satisfies UndecodableRequest);
    };
    lenient[name] = { ...method, requestType: { ...method.requestType, decode: decodeLeniently } };
  }
  return { ...definition, methods: lenient };
}

/** Throws INVALID_ARGUMENT for a request that lenient decoding marked as not parsing. */
export function refuseUndecodable(request: unknown, path: string): void {
  if (isUndecodable(request)) {
    const reason = request[UNDECODABLE];
    throw new InvalidArgumentError([{ field: "", description: reason }], `the request is not a valid ${path} request message: ${reason}`);
  }
}

function isUndecodable(request: unknown): request is UndecodableRequest {
  return typeof request === "object" && request !== null && UNDECODABLE in request;
}

/** Path (proto field names) of the first Date in a decoded message that is invalid or outside years 1 to 9999. */
function timestampOutOfRange(value: unknown, path: string): string | undefined {
  const keys = badTimestampKeys(value);
  if (keys === undefined) return undefined;
  return keys.reverse().reduce((prefix, key) => (prefix === "" ? snakeCase(key) : `${prefix}.${snakeCase(key)}`), path);
}

/**
 * Keys leading to the first bad Date, innermost first; [] when `value` is
 * one. Runs on every request: it allocates nothing unless it finds one.
 */
function badTimestampKeys(value: unknown): string[] | undefined {
  if (value instanceof Date) {
    const year = value.getUTCFullYear();
    return Number.isNaN(year) || year < 1 || year > 9999 ? [] : undefined;
  }
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return undefined;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const found = badTimestampKeys((value as Record<string, unknown>)[key]);
    if (found !== undefined) {
      found.push(key);
      return found;
    }
  }
  return undefined;
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}
