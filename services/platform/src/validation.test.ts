import fc from "fast-check";
import { InvalidArgumentError, Violations } from "./errors";
import {
  checkEmail,
  checkId,
  checkOptionalEmail,
  checkOptionalId,
  checkPhone,
  checkTenantId,
  codePointLength,
  MAX_EMAIL_LENGTH,
  normalizeEmail,
  requireId,
  requireMessage,
  text,
} from "./validation";

describe("checkEmail", () => {
  it.each(["ada@example.com", "ada.lovelace+leads@mail.example.co.uk", "o'brien@example.ie", "x@a-b.example", "a@xn--p1ai.example"])("accepts %s", (email) => {
    expect(checkEmail(email)).toBeUndefined();
  });

  it.each([
    ["no at sign", "ada.example.com"],
    ["empty local part", "@example.com"],
    ["single-label domain", "ada@localhost"],
    ["leading dot", ".ada@example.com"],
    ["double dot", "ada..l@example.com"],
    ["trailing dot", "ada.@example.com"],
    ["space", "ada lovelace@example.com"],
    ["two at signs", "ada@b@example.com"],
    ["hyphen-edged label", "ada@-example.com"],
    ["empty label", "ada@example..com"],
    ["numeric top-level domain", "ada@10.0.0.1"],
    ["non-ASCII", "adà@example.com"],
    ["NUL", "ada\u0000@example.com"],
    ["lone surrogate", "ada\ud800@example.com"],
  ])("rejects %s", (_, email) => {
    expect(checkEmail(email)).toBe("must be a valid email address such as ada@example.com");
  });

  it("bounds the local part to 64 and the address to 254 characters", () => {
    expect(checkEmail(`${"a".repeat(64)}@example.com`)).toBeUndefined();
    expect(checkEmail(`${"a".repeat(65)}@example.com`)).toMatch(/valid email/);
    const longDomain = `${Array.from({ length: 4 }, () => "d".repeat(60)).join(".")}.com`;
    const atLimit = `${"a".repeat(MAX_EMAIL_LENGTH - longDomain.length - 1)}@${longDomain}`;
    expect(atLimit).toHaveLength(254);
    expect(checkEmail(atLimit)).toBeUndefined();
    expect(checkEmail(`a${atLimit}`)).toBe("must be at most 254 characters");
  });

  it("requires a value unless optional", () => {
    expect(checkEmail("")).toBe("is required");
    expect(checkOptionalEmail("")).toBeUndefined();
    expect(checkOptionalEmail("nope")).toMatch(/valid email/);
  });

  it("never throws, whatever the input", () => {
    const unit = fc.oneof(fc.constantFrom("@", ".", "-", "\ud800", "a"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }));
    fc.assert(fc.property(fc.string({ unit, maxLength: 300 }), (value) => expect(["string", "undefined"]).toContain(typeof checkEmail(value))));
  });

  it("normalizes by trimming and lower-casing", () => {
    expect(normalizeEmail("  Ada@Example.COM ")).toBe("ada@example.com");
  });
});

describe("checkPhone", () => {
  it("accepts empty or E.164 numbers only", () => {
    expect(checkPhone("")).toBeUndefined();
    expect(checkPhone("+14155550123")).toBeUndefined();
    for (const bad of ["14155550123", "+04155550123", "+1 415 555 0123", "+1234567890123456", "+12345"]) {
      expect(checkPhone(bad)).toBe("must be in E.164 format, e.g. +14155550123");
    }
  });
});

describe("ids", () => {
  it("accepts 1-64 characters of [A-Za-z0-9_-]", () => {
    expect(checkId("a_B-9")).toBeUndefined();
    expect(checkId("x".repeat(64))).toBeUndefined();
    expect(checkId("")).toBe("is required");
    for (const bad of ["x".repeat(65), "a b", "a/b", "ä", "$gt"]) expect(checkId(bad)).toBe("must be an id of 1-64 characters [A-Za-z0-9_-]");
    expect(checkOptionalId("")).toBeUndefined();
    expect(checkOptionalId("a.b")).toMatch(/must be an id/);
  });

  it("requireId throws INVALID_ARGUMENT naming the field", () => {
    expect(requireId("abc", "id")).toBe("abc");
    const thrown = (() => {
      try {
        requireId("../etc", "lead.id");
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as InvalidArgumentError).fieldViolations).toEqual([{ field: "lead.id", description: "must be an id of 1-64 characters [A-Za-z0-9_-]" }]);
  });

  it("requireMessage throws for an absent message only", () => {
    expect(requireMessage({ a: 1 }, "lead")).toEqual({ a: 1 });
    expect(() => requireMessage(undefined, "lead")).toThrow("invalid request: lead: is required");
  });

  it("tenant ids are DNS-label-like and lower case", () => {
    expect(checkTenantId("acme-2")).toBeUndefined();
    expect(checkTenantId("")).toBe("is required");
    for (const bad of ["Acme", "-acme", "a".repeat(64), "acme_inc", "acme.example"]) expect(checkTenantId(bad)).toMatch(/1-63 characters/);
  });
});

describe("text", () => {
  const name = text({ max: 5, required: true });
  const note = text({ max: 20, multiline: true });

  it("counts code points, not UTF-16 units", () => {
    expect(codePointLength("😀😀")).toBe(2);
    expect(codePointLength("a\ud800b")).toBe(3);
    expect(name("😀😀😀😀😀")).toBeUndefined();
    expect(name("😀😀😀😀😀😀")).toBe("must be at most 5 characters (got 6)");
  });

  it("requires non-blank text only when asked", () => {
    expect(name("  ")).toBe("is required");
    expect(note("")).toBeUndefined();
  });

  it("rejects control characters in names, allows line breaks in free text", () => {
    for (const bad of ["a\u0000", "a\nb", "a\tb", "a\u007f", "a\u0085"]) expect(name(bad)).toBe("must not contain control characters");
    expect(note("line one\nline two\tx")).toBeUndefined();
    expect(note("bell\u0007")).toBe("must not contain control characters");
  });

  it("rejects lone surrogates, which cannot be stored as UTF-8", () => {
    expect(name("ab\udc00")).toBe("must be valid Unicode text");
    expect(name("ab\ud83d")).toBe("must be valid Unicode text");
  });

  it("reports a 1 MB value with its length", () => {
    expect(note("x".repeat(1 << 20))).toBe(`must be at most 20 characters (got ${1 << 20})`);
  });

  it("accepts exactly the well-formed, control-free strings within bounds", () => {
    // Lone surrogates, controls, blanks and astral characters mixed into arbitrary code points.
    const unit = fc.oneof(fc.constantFrom("\ud800", "\udfff", "\u0000", "\u0085", "\n", " ", "😀"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }));
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 8 }), (value) => {
        const expected = value.trim() !== "" && [...value].length <= 5 && !/\p{Cc}/u.test(value) && Buffer.from(value, "utf8").toString("utf8") === value;
        expect(name(value) === undefined).toBe(expected);
      }),
    );
  });
});

describe("Violations.check", () => {
  it("records a failing check under its field and ignores a passing one", () => {
    const violations = new Violations();
    violations.check("email", "ada@example.com", checkEmail);
    violations.check("phone", "555", checkPhone);
    expect(violations.count).toBe(1);
    expect(() => violations.throwIfAny()).toThrow("phone: must be in E.164 format");
  });
});
