import fc from "fast-check";
import { BadRequest, ErrorInfo } from "nice-grpc-error-details";
import { boundedDetails, DETAIL_LIST_MAX_ITEMS, DETAIL_TEXT_MAX_BYTES, STATUS_MESSAGE_MAX_BYTES, statusText } from "./status-text";

const utf8Bytes = (text: string) => Buffer.byteLength(text, "utf8");
const isWellFormed = (text: string) => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** Strings built from UTF-16 code units, so lone surrogates and cut pairs are common. */
const codeUnitStrings = fc
  .array(
    fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0xd800, 0xdbff, 0xdc00, 0xdfff)).map((unit) => String.fromCharCode(unit)),
    { maxLength: 3000 },
  )
  .map((units) => units.join(""));

describe("statusText", () => {
  it("replaces lone surrogates so encodeURI (what grpc-js does with the message) cannot throw", () => {
    expect(() => encodeURI("filter \uD83D")).toThrow(URIError);
    expect(statusText('unexpected character "\uD83D"')).toBe('unexpected character "\uFFFD"');
    expect(statusText("\uDE00 then \uD83D")).toBe("\uFFFD then \uFFFD");
  });

  it("keeps short well-formed text as it is, astral characters and control characters included", () => {
    const text = "lead \u{1F600} \u202Eevil\u0000 not found";
    expect(statusText(text)).toBe(text);
  });

  it("cuts long text on a code point boundary to the byte budget and marks the cut", () => {
    const cut = statusText("\u{1F600}".repeat(1000));
    expect(cut.endsWith("\u2026")).toBe(true);
    expect(utf8Bytes(cut)).toBeLessThanOrEqual(STATUS_MESSAGE_MAX_BYTES);
    expect(utf8Bytes(cut)).toBeGreaterThan(STATUS_MESSAGE_MAX_BYTES - 4 - 3);
    expect(isWellFormed(cut)).toBe(true);
    expect(statusText("a".repeat(50), 10)).toBe("aaaaaaa\u2026");
  });

  it("bounds a 1 MB message quickly", () => {
    const started = performance.now();
    expect(utf8Bytes(statusText("\u00e9".repeat(1 << 20)))).toBeLessThanOrEqual(STATUS_MESSAGE_MAX_BYTES);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it("always yields well-formed text within the budget that encodeURI accepts (property)", () => {
    fc.assert(
      fc.property(codeUnitStrings, fc.integer({ min: 3, max: 2048 }), (text, budget) => {
        const result = statusText(text, budget);
        expect(isWellFormed(result)).toBe(true);
        expect(utf8Bytes(result)).toBeLessThanOrEqual(budget);
        expect(() => encodeURI(result)).not.toThrow();
        // Untouched when it already fit; otherwise a prefix of the well-formed text.
        const wellFormed = (text as string & { toWellFormed(): string }).toWellFormed();
        if (utf8Bytes(wellFormed) <= budget) expect(result).toBe(wellFormed);
        else expect(wellFormed.startsWith(result.slice(0, -1))).toBe(true);
      }),
      { seed: 20261202, numRuns: 300 },
    );
  });
});

describe("boundedDetails", () => {
  it("bounds every string and list of google.rpc details and keeps their types", () => {
    const long = "\uD800".repeat(5000);
    const details = boundedDetails([
      ErrorInfo.fromPartial({ reason: "NOT_FOUND", domain: "leadmesh.io", metadata: { resource_id: long, [long]: "key too" } }),
      BadRequest.fromPartial({ fieldViolations: Array.from({ length: 500 }, (_, i) => ({ field: `attributes.${i}`, description: long })) }),
    ]);
    const [info, badRequest] = details as [ErrorInfo, BadRequest];
    expect(info.$type).toBe("google.rpc.ErrorInfo");
    expect(info.reason).toBe("NOT_FOUND");
    expect(badRequest.$type).toBe("google.rpc.BadRequest");
    expect(badRequest.fieldViolations).toHaveLength(DETAIL_LIST_MAX_ITEMS);
    expect(badRequest.fieldViolations[3].field).toBe("attributes.3");
    const strings = [...Object.entries(info.metadata).flat(), ...badRequest.fieldViolations.map((v) => v.description)];
    for (const text of strings) {
      expect(isWellFormed(text)).toBe(true);
      expect(utf8Bytes(text)).toBeLessThanOrEqual(DETAIL_TEXT_MAX_BYTES);
    }
    // The encoded details fit comfortably in a trailer.
    expect(BadRequest.encode(badRequest).finish().length).toBeLessThan(8 * 1024);
  });

  it("leaves out ErrorInfo metadata entries with an empty key or value (Envoy's JSON conversion crashed on them)", () => {
    const [info] = boundedDetails([ErrorInfo.fromPartial({ reason: "NOT_FOUND", metadata: { resource_type: "session", resource_id: "", "": "x" } })]) as [
      ErrorInfo,
    ];
    expect(info.metadata).toEqual({ resource_type: "session" });
  });

  it("passes numbers, booleans and bytes through", () => {
    const value = { retryDelay: { seconds: 3, nanos: 5 }, flag: true, value: new Uint8Array([1, 2]) };
    expect(boundedDetails(value)).toEqual(value);
  });
});
