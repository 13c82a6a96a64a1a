/**
 * How leads reads buyers' SellLead answers: a refusal is final only when
 * buyers says it decided D (ErrorInfo reason and metadata), never by status
 * code alone; a returned sale is its own outcome, in both shapes buyers may
 * send it.
 */
import { LeadSale, LeadSaleState } from "@leadmesh/contracts/buyers/v1/lead_sale";
import { Lead } from "@leadmesh/contracts/leads/v1/lead";
import { ClientError, Status } from "nice-grpc-common";
import { ErrorInfo, RichClientError } from "nice-grpc-error-details";
import { outcomeOfError, outcomeOfSale, type SellLeadCall } from "./buyers-gateway";

const call = (validateOnly = false): SellLeadCall => ({
  tenantId: "acme",
  leadSaleId: "D",
  lead: Lead.fromPartial({ id: "lead-1" }),
  buyerId: "",
  validateOnly,
});

function buyersError(code: Status, reason: string, metadata: Record<string, string> = {}): RichClientError {
  return new RichClientError("/buyers.v1.BuyerService/SellLead", code, "refused", [ErrorInfo.fromPartial({ reason, domain: "leadmesh.io", metadata })]);
}

describe("outcomeOfError", () => {
  it("takes NO_MATCHING_BUYER (buyers sealed D) and a named buyer that does not exist as final refusals, relayed as they came", () => {
    const noMatch = outcomeOfError(buyersError(Status.FAILED_PRECONDITION, "NO_MATCHING_BUYER", { lead_id: "lead-1" }), call());
    expect(noMatch).toMatchObject({
      kind: "refused",
      error: { code: Status.FAILED_PRECONDITION, reason: "NO_MATCHING_BUYER", metadata: { lead_id: "lead-1" } },
    });
    const noBuyer = outcomeOfError(buyersError(Status.NOT_FOUND, "NOT_FOUND", { resource_type: "buyer", resource_id: "b-9" }), call());
    expect(noBuyer).toMatchObject({ kind: "refused", error: { code: Status.NOT_FOUND, metadata: { resource_type: "buyer" } } });
  });

  it("leaves the outcome unknown for any other FAILED_PRECONDITION or NOT_FOUND (the claim must stay)", () => {
    expect(outcomeOfError(buyersError(Status.FAILED_PRECONDITION, "FAILED_PRECONDITION", { lead_sale_id: "D", lead_id: "lead-1" }), call())).toBeUndefined();
    expect(outcomeOfError(buyersError(Status.NOT_FOUND, "NOT_FOUND", { resource_type: "tenant" }), call())).toBeUndefined();
    expect(outcomeOfError(new ClientError("/buyers.v1.BuyerService/SellLead", Status.FAILED_PRECONDITION, "no details"), call())).toBeUndefined();
    expect(outcomeOfError(buyersError(Status.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE"), call())).toBeUndefined();
  });

  it("reads a returned sale D from its ErrorInfo: the buyer that returned it", () => {
    const returned = buyersError(Status.FAILED_PRECONDITION, "FAILED_PRECONDITION", { lead_sale_state: "RETURNED", buyer_id: "b-1", lead_sale_id: "D" });
    expect(outcomeOfError(returned, call())).toEqual({ kind: "returned", buyerId: "b-1" });
    // Without the buyer, nothing can be released safely: unknown.
    expect(outcomeOfError(buyersError(Status.FAILED_PRECONDITION, "FAILED_PRECONDITION", { lead_sale_state: "RETURNED" }), call())).toBeUndefined();
  });

  it("relays every FAILED_PRECONDITION and NOT_FOUND of validate_only (nothing is decided or claimed)", () => {
    expect(outcomeOfError(buyersError(Status.FAILED_PRECONDITION, "FAILED_PRECONDITION"), call(true))?.kind).toBe("refused");
  });
});

describe("outcomeOfSale", () => {
  const sale = (state: LeadSaleState) => LeadSale.fromPartial({ id: "D", buyerId: "b-1", state });

  it("records only a SOLD sale; a RETURNED one is returned by its buyer; any other state decides nothing", () => {
    expect(outcomeOfSale(sale(LeadSaleState.LEAD_SALE_STATE_SOLD), call())).toMatchObject({ kind: "sold" });
    expect(outcomeOfSale(sale(LeadSaleState.LEAD_SALE_STATE_RETURNED), call())).toEqual({ kind: "returned", buyerId: "b-1" });
    expect(() => outcomeOfSale(sale(LeadSaleState.LEAD_SALE_STATE_PENDING), call())).toThrow(/LEAD_SALE_STATE_PENDING, which decides nothing/);
    // validate_only answers the would-be sale, PENDING.
    expect(outcomeOfSale(sale(LeadSaleState.LEAD_SALE_STATE_PENDING), call(true))).toMatchObject({ kind: "sold" });
  });
});
