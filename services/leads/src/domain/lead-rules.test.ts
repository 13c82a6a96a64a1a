import { Lead, LeadSource, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { InvalidArgumentError } from "@leadmesh/platform";
import { applyUpdate, inputOf, newLead } from "./lead-rules";

const valid = Lead.fromPartial({ firstName: "Ada", email: "ada@example.com", source: LeadSource.LEAD_SOURCE_WEB_FORM });

function violationsOf(action: () => unknown): Record<string, string> {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return Object.fromEntries((error as InvalidArgumentError).fieldViolations.map((v) => [v.field, v.description]));
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("newLead", () => {
  it("accepts a minimal lead and defaults the status to NEW", () => {
    expect(newLead(valid)).toMatchObject({ firstName: "Ada", status: LeadStatus.LEAD_STATUS_NEW });
  });

  it("trims text fields", () => {
    expect(newLead({ ...valid, firstName: "  Ada ", company: " Acme " })).toMatchObject({ firstName: "Ada", company: "Acme" });
  });

  it("reports every invalid field with its path", () => {
    const violations = violationsOf(() =>
      newLead(
        Lead.fromPartial({
          firstName: "",
          email: "not-an-email",
          phone: "0800 123",
          source: 99 as LeadSource,
          status: LeadStatus.LEAD_STATUS_SOLD,
          score: 101,
          tags: ["ok", "Not OK"],
          attributes: { "bad.key": "x" },
          countryCode: "usa",
          postalCode: "!!",
          lastName: "x".repeat(101),
          assigneeId: "no spaces please",
        }),
      ),
    );
    expect(Object.keys(violations).sort()).toEqual(
      [
        "lead.assignee_id",
        "lead.attributes",
        "lead.country_code",
        "lead.email",
        "lead.first_name",
        "lead.last_name",
        "lead.phone",
        "lead.postal_code",
        "lead.score",
        "lead.source",
        "lead.status",
        "lead.tags",
      ].sort(),
    );
    expect(violations["lead.phone"]).toMatch(/E\.164/);
    expect(violations["lead.source"]).toMatch(/LEAD_SOURCE_WEB_FORM/);
    expect(violations["lead.last_name"]).toMatch(/at most 100 characters \(got 101\)/);
  });

  it("requires an email or a phone", () => {
    expect(violationsOf(() => newLead({ ...valid, email: "" }))).toEqual({ "lead.email": "a lead needs an email or a phone number" });
    expect(newLead({ ...valid, email: "", phone: "+14155550123" }).phone).toBe("+14155550123");
  });

  it("requires a lead and a source", () => {
    expect(violationsOf(() => newLead(undefined))).toEqual({ lead: "is required" });
    expect(violationsOf(() => newLead({ ...valid, source: LeadSource.LEAD_SOURCE_UNSPECIFIED }))).toHaveProperty(["lead.source"]);
  });

  it("rejects control characters and too many tags or attributes", () => {
    const violations = violationsOf(() =>
      newLead({
        ...valid,
        company: "Acme\u0000",
        tags: Array.from({ length: 21 }, (_, i) => `t${i}`),
        attributes: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"])),
      }),
    );
    expect(violations).toEqual({
      "lead.company": "must not contain control characters",
      "lead.tags": "must have at most 20 entries (got 21)",
      "lead.attributes": "must have at most 50 entries (got 51)",
    });
  });
});

describe("newLead with the platform's field checks", () => {
  it("counts names in characters, not UTF-16 units, and refuses broken Unicode", () => {
    expect(newLead({ ...valid, firstName: "😀".repeat(100) }).firstName).toBe("😀".repeat(100));
    expect(violationsOf(() => newLead({ ...valid, firstName: "😀".repeat(101), company: "Acme\ud800", attributes: { note: "a\u0007" } }))).toEqual({
      "lead.first_name": "must be at most 100 characters (got 101)",
      "lead.company": "must be valid Unicode text",
      "lead.attributes": 'value of "note" must not contain control characters',
    });
  });

  it("refuses an email with a dot-edged local part, as every service does", () => {
    expect(violationsOf(() => newLead({ ...valid, email: "ada.@example.com" }))).toEqual({
      "lead.email": "must be a valid email address such as ada@example.com",
    });
  });
});

describe("applyUpdate", () => {
  const current = newLead({ ...valid, phone: "+14155550123", score: 10 });

  it("updates exactly the masked fields, clearing those left empty", () => {
    const { next, changed } = applyUpdate(current, Lead.fromPartial({ score: 80, phone: "" }), ["score", "phone"]);
    expect(next).toMatchObject({ score: 80, phone: "", email: "ada@example.com", firstName: "Ada" });
    expect(changed.sort()).toEqual(["phone", "score"]);
  });

  it("accepts camelCase mask paths as sent through REST", () => {
    const { next } = applyUpdate(current, Lead.fromPartial({ assigneeId: "u-1" }), ["assigneeId"]);
    expect(next.assigneeId).toBe("u-1");
  });

  it("without a mask updates the fields the request sets (AIP-134)", () => {
    const { next, changed } = applyUpdate(current, Lead.fromPartial({ status: LeadStatus.LEAD_STATUS_CONTACTED }), undefined);
    expect(next.status).toBe(LeadStatus.LEAD_STATUS_CONTACTED);
    expect(next.score).toBe(10);
    expect(changed).toEqual(["status"]);
  });

  it("reports no change when values are equal", () => {
    expect(applyUpdate(current, Lead.fromPartial({ score: 10 }), ["score"]).changed).toEqual([]);
  });

  it("rejects unknown and output-only paths and invalid results", () => {
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), ["nickname"])).update_mask).toMatch(/"nickname" is not a field of Lead/);
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), ["create_time"])).update_mask).toMatch(/output only/);
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), ["email", "phone"]))).toEqual({
      "lead.email": "a lead needs an email or a phone number",
    });
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), ["status"]))).toHaveProperty(["lead.status"]);
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), undefined)).update_mask).toMatch(/names no field/);
  });

  it("never lets a client make a lead SOLD, but passes a sold lead's unchanged status back", () => {
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({ status: LeadStatus.LEAD_STATUS_SOLD }), ["status"]))).toEqual({
      "lead.status": "LEAD_STATUS_SOLD is set by DistributeLead only, not by clients",
    });
    expect(violationsOf(() => newLead({ ...valid, status: LeadStatus.LEAD_STATUS_SOLD }))).toHaveProperty(["lead.status"]);
    const sold = { ...current, status: LeadStatus.LEAD_STATUS_SOLD };
    expect(applyUpdate(sold, Lead.fromPartial({ ...inputOf(Lead.fromPartial(sold)), score: 55 }), ["*"]).changed).toEqual(["score"]);
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), ["sale"])).update_mask).toMatch(/output only/);
    expect(violationsOf(() => applyUpdate(current, Lead.fromPartial({}), ["returnedBuyerIds"])).update_mask).toMatch(/output only/);
  });

  it('"*" replaces every mutable field', () => {
    const replacement = Lead.fromPartial({
      firstName: "Grace",
      phone: "+441234567890",
      source: LeadSource.LEAD_SOURCE_REFERRAL,
      status: LeadStatus.LEAD_STATUS_LOST,
    });
    const { next } = applyUpdate(current, replacement, ["*"]);
    expect(next).toEqual(inputOf(replacement));
  });
});
