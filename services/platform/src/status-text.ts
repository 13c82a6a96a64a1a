/**
 * Text that leaves a service inside a gRPC status: the message (grpc-message
 * header) and the strings of google.rpc details (grpc-status-details-bin).
 *
 * Why it needs care: messages echo user input. grpc-js writes the message
 * with encodeURI(), which throws URIError on a lone UTF-16 surrogate, outside
 * any handler, and the process dies. And both go out as HTTP/2 trailers,
 * which peers cap (Envoy 60 KiB, gRPC C-core 8 KiB by default): an echoed
 * 1 MB value would make the status itself fail. So every string is made
 * well-formed (lone surrogates become U+FFFD) and cut, on a code point
 * boundary, to a byte budget, ending in an ellipsis when cut.
 */

/** Budget of the status message, in UTF-8 bytes. */
export const STATUS_MESSAGE_MAX_BYTES = 1024;
/** Budget of each string inside the details (field paths, descriptions, metadata values). */
export const DETAIL_TEXT_MAX_BYTES = 200;
/** Entries kept of each list inside the details (e.g. field violations); the message still counts them all. */
export const DETAIL_LIST_MAX_ITEMS = 20;

const ELLIPSIS = "\u2026";
const ELLIPSIS_BYTES = 3;

/** `String.prototype.toWellFormed` (ES2024, Node ≥ 20); the compiler's lib stops at ES2023. */
type WellFormable = string & { toWellFormed(): string };

/** `text`, well-formed and at most `maxBytes` UTF-8 bytes long. */
export function statusText(text: string, maxBytes = STATUS_MESSAGE_MAX_BYTES): string {
  const wellFormed = (text as WellFormable).toWellFormed();
  // Fast path: a UTF-16 code unit never takes more than 3 UTF-8 bytes.
  if (wellFormed.length * 3 <= maxBytes || Buffer.byteLength(wellFormed, "utf8") <= maxBytes) return wellFormed;
  const budget = Math.max(0, maxBytes - ELLIPSIS_BYTES);
  let bytes = 0;
  let end = 0;
  for (const character of wellFormed) {
    const size = utf8Length(character.codePointAt(0) ?? 0);
    if (bytes + size > budget) break;
    bytes += size;
    end += character.length;
  }
  return wellFormed.slice(0, end) + ELLIPSIS;
}

function utf8Length(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}

/**
 * A copy of error details (ts-proto plain objects of google.rpc types) with
 * every string bounded by statusText(…, DETAIL_TEXT_MAX_BYTES), map keys
 * included, and every list cut to DETAIL_LIST_MAX_ITEMS. Numbers, booleans,
 * bytes and the `$type` tags that select each detail's encoder pass through.
 */
export function boundedDetails<T>(value: T): T {
  return withoutEmptyMetadata(boundValue(value)) as T;
}

/**
 * ErrorInfo metadata without entries whose key or value is empty. Protobuf
 * leaves an empty value out of the encoded map entry, and Envoy 1.40's
 * grpc_json_transcoder (convert_grpc_status) dereferences the missing value
 * while turning the details into the JSON error body: one request whose
 * error echoed an empty id (DELETE /api/v1/auth/sessions/x?id=) made the
 * whole edge crash with a segmentation fault (found by the REST fuzzer).
 */
function withoutEmptyMetadata(details: unknown): unknown {
  if (!Array.isArray(details)) return details;
  return details.map((detail) => {
    const info = detail as { $type?: string; metadata?: Record<string, string> };
    if (info?.$type !== "google.rpc.ErrorInfo" || !info.metadata) return detail;
    return { ...info, metadata: Object.fromEntries(Object.entries(info.metadata).filter(([key, value]) => key !== "" && value !== "")) };
  });
}

function boundValue(value: unknown): unknown {
  if (typeof value === "string") return statusText(value, DETAIL_TEXT_MAX_BYTES);
  if (Array.isArray(value)) return value.slice(0, DETAIL_LIST_MAX_ITEMS).map(boundValue);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [statusText(key, DETAIL_TEXT_MAX_BYTES), boundValue(entry)]));
  }
  return value;
}
