import { LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { DomainError } from "@leadmesh/platform";
import { Status } from "nice-grpc-common";
import {
  checkDeletable,
  checkStatusChange,
  type DistributionClaim,
  distributionStep,
  leadSaleIdFor,
  releasedChanges,
  returnedChanges,
  type SaleRecord,
  type SellableLead,
  soldChanges,
  unsoldChanges,
} from "./sale-rules";

const QUALIFIED = LeadStatus[LeadStatus.LEAD_STATUS_QUALIFIED];
const SOLD = LeadStatus[LeadStatus.LEAD_STATUS_SOLD];
const lead = (overrides: Partial<SellableLead> = {}): SellableLead => ({ _id: "lead-1", status: QUALIFIED, deleteTime: null, ...overrides });
const claim = (leadSaleId: string): DistributionClaim => ({ leadSaleId, requestId: "r", buyerId: "", actorId: "m", startTime: new Date(0) });
const sale = (leadSaleId: string, buyerId = "buyer-1"): SaleRecord => ({ leadSaleId, buyerId, priceMinor: 1250, currencyCode: "USD", sellTime: new Date(0) });

function refusal(action: () => unknown): { code: Status; reason: string; message: string } {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    const { code, reason, message } = error as DomainError;
    return { code, reason, message };
  }
  throw new Error("expected a refusal");
}

describe("leadSaleIdFor", () => {
  it("is the same for a retry and differs per tenant, lead and request", () => {
    const id = leadSaleIdFor("acme", "lead-1", "req-1");
    expect(leadSaleIdFor("acme", "lead-1", "req-1")).toBe(id);
    expect(
      new Set([id, leadSaleIdFor("other", "lead-1", "req-1"), leadSaleIdFor("acme", "lead-2", "req-1"), leadSaleIdFor("acme", "lead-1", "req-2")]).size,
    ).toBe(4);
    // An id buyers accepts as a resource id.
    expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it("cannot be forged by shifting text between the parts", () => {
    expect(leadSaleIdFor("a", "b\nc", "d")).not.toBe(leadSaleIdFor("a\nb", "c", "d"));
  });
});

describe("distributionStep", () => {
  it("claims a free QUALIFIED lead, resumes its own claim and answers its own sale", () => {
    expect(distributionStep(lead(), "D", "")).toEqual({ kind: "claim" });
    expect(distributionStep(lead({ distribution: claim("D") }), "D", "")).toEqual({ kind: "resume", claim: claim("D") });
    expect(distributionStep(lead({ status: SOLD, sale: sale("D") }), "D", "")).toEqual({ kind: "sold", sale: sale("D") });
  });

  it("refuses another distribution while one holds the lead (ABORTED) and a lead sold by another sale", () => {
    expect(refusal(() => distributionStep(lead({ distribution: claim("E") }), "D", ""))).toMatchObject({
      code: Status.ABORTED,
      reason: "DISTRIBUTION_IN_PROGRESS",
    });
    expect(refusal(() => distributionStep(lead({ status: SOLD, sale: sale("E") }), "D", ""))).toEqual({
      code: Status.FAILED_PRECONDITION,
      reason: "FAILED_PRECONDITION",
      message: 'lead "lead-1" is already sold (sale E)',
    });
  });

  it("refuses deleted leads and leads that are not QUALIFIED", () => {
    expect(refusal(() => distributionStep(lead({ deleteTime: new Date() }), "D", "")).message).toMatch(/deleted/);
    expect(refusal(() => distributionStep(lead({ status: LeadStatus[LeadStatus.LEAD_STATUS_NEW] }), "D", "")).message).toMatch(
      /LEAD_STATUS_NEW; only a LEAD_STATUS_QUALIFIED lead/,
    );
  });
});

describe("distributionStep of a reused request_id", () => {
  it("refuses the sale id of a returned sale, whatever else the lead says", () => {
    expect(refusal(() => distributionStep(lead({ pastSaleIds: ["D"] }), "D", ""))).toEqual({
      code: Status.FAILED_PRECONDITION,
      reason: "FAILED_PRECONDITION",
      message: 'request_id was used for sale D of lead "lead-1", which was returned; use a new request_id to distribute the lead again',
    });
    expect(distributionStep(lead({ pastSaleIds: ["D"] }), "E", "")).toEqual({ kind: "claim" });
  });

  it("refuses another buyer_id than the one the request_id's claim or sale recorded (INVALID_ARGUMENT)", () => {
    const claimedFor = (buyerId: string) => ({ ...claim("D"), buyerId });
    expect(refusal(() => distributionStep(lead({ distribution: claimedFor("b-1") }), "D", "b-2"))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      message: expect.stringContaining('request_id: was already used to distribute lead "lead-1" with buyer_id "b-1"'),
    });
    expect(refusal(() => distributionStep(lead({ status: SOLD, sale: { ...sale("D"), requestedBuyerId: "" } }), "D", "b-1")).code).toBe(
      Status.INVALID_ARGUMENT,
    );
    expect(distributionStep(lead({ status: SOLD, sale: { ...sale("D"), requestedBuyerId: "b-1" } }), "D", "b-1").kind).toBe("sold");
    // A sale recorded before the fingerprint was kept answers any retry.
    expect(distributionStep(lead({ status: SOLD, sale: sale("D") }), "D", "b-9").kind).toBe("sold");
  });
});

describe("recording and releasing", () => {
  it("records a sale and clears a refused claim only while the claim is that sale's", () => {
    expect(soldChanges(lead({ distribution: claim("D") }), sale("D"))).toEqual({ status: SOLD, sale: sale("D"), distribution: null });
    expect(soldChanges(lead({ distribution: claim("E") }), sale("D"))).toBeUndefined();
    expect(soldChanges(lead({ status: SOLD, sale: sale("D") }), sale("D"))).toBeUndefined();
    expect(unsoldChanges(lead({ distribution: claim("D") }), "D")).toEqual({ distribution: null });
    expect(unsoldChanges(lead({ distribution: claim("E") }), "D")).toBeUndefined();
  });

  it("releases only its own sale, remembering the buyer once", () => {
    const sold = lead({ status: SOLD, sale: sale("D", "buyer-2"), returnedBuyerIds: ["buyer-1"] });
    expect(releasedChanges(sold, "D")).toEqual({ status: QUALIFIED, sale: null, returnedBuyerIds: ["buyer-1", "buyer-2"], pastSaleIds: ["D"] });
    expect(releasedChanges(sold, "E")).toBeUndefined();
    expect(releasedChanges(lead(), "D")).toBeUndefined();
    expect(releasedChanges(lead({ status: SOLD, sale: sale("D", "buyer-1"), returnedBuyerIds: ["buyer-1"] }), "D")?.returnedBuyerIds).toEqual(["buyer-1"]);
  });

  it("releases a sale returned while its distribution still held the lead: claim cleared, buyer and sale id remembered", () => {
    expect(returnedChanges(lead({ distribution: claim("D"), pastSaleIds: ["C"] }), "D", "buyer-3")).toEqual({
      status: QUALIFIED,
      sale: null,
      distribution: null,
      returnedBuyerIds: ["buyer-3"],
      pastSaleIds: ["C", "D"],
    });
    expect(returnedChanges(lead({ distribution: claim("E") }), "D", "buyer-3")).toBeUndefined();
    expect(returnedChanges(lead({ pastSaleIds: ["D"] }), "D", "buyer-3")).toBeUndefined();
  });
});

describe("UpdateLead and DeleteLead around a sale", () => {
  it("freezes the status of a sold lead and of a lead being distributed", () => {
    expect(() => checkStatusChange(lead())).not.toThrow();
    expect(refusal(() => checkStatusChange(lead({ status: SOLD, sale: sale("D") })))).toMatchObject({
      code: Status.FAILED_PRECONDITION,
      message: 'lead "lead-1" is sold (sale D); return the sale to change its status',
    });
    expect(refusal(() => checkStatusChange(lead({ distribution: claim("D") })))).toMatchObject({ code: Status.ABORTED, reason: "DISTRIBUTION_IN_PROGRESS" });
  });

  it("refuses to delete a lead being distributed", () => {
    expect(() => checkDeletable(lead({ status: SOLD, sale: sale("D") }))).not.toThrow();
    expect(refusal(() => checkDeletable(lead({ distribution: claim("D") }))).code).toBe(Status.ABORTED);
  });
});
