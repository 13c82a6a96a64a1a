import { CallDirection, CallOutcome, LeadActivity, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { InvalidArgumentError } from "@leadmesh/platform";
import { clientActivity } from "./activity-rules";

function fields(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as InvalidArgumentError).fieldViolations.map((violation) => violation.field);
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("clientActivity", () => {
  it("accepts a note and trims it", () => {
    expect(clientActivity(LeadActivity.fromPartial({ detail: { $case: "note", value: { text: " called back " } } }))).toEqual({
      $case: "note",
      value: { text: "called back" },
    });
  });

  it("accepts a complete call", () => {
    const call = { direction: CallDirection.CALL_DIRECTION_OUTBOUND, outcome: CallOutcome.CALL_OUTCOME_CONNECTED, durationSeconds: 300, summary: "interested" };
    expect(clientActivity(LeadActivity.fromPartial({ detail: { $case: "call", value: call } }))).toEqual({ $case: "call", value: call });
  });

  it("keeps line breaks in notes but refuses other control characters", () => {
    expect(clientActivity(LeadActivity.fromPartial({ detail: { $case: "note", value: { text: "line 1\nline 2" } } }))).toEqual({
      $case: "note",
      value: { text: "line 1\nline 2" },
    });
    expect(fields(() => clientActivity(LeadActivity.fromPartial({ detail: { $case: "note", value: { text: "a\u0000b" } } })))).toEqual(["activity.note.text"]);
  });

  it("rejects empty, incomplete and service-only activities", () => {
    expect(fields(() => clientActivity(undefined))).toEqual(["activity"]);
    expect(fields(() => clientActivity(LeadActivity.fromPartial({ detail: { $case: "note", value: { text: "  " } } })))).toEqual(["activity.note.text"]);
    expect(fields(() => clientActivity(LeadActivity.fromPartial({ detail: { $case: "call", value: { durationSeconds: -1 } } })))).toEqual([
      "activity.call.direction",
      "activity.call.outcome",
      "activity.call.duration_seconds",
    ]);
    expect(
      fields(() =>
        clientActivity(
          LeadActivity.fromPartial({
            detail: { $case: "statusChange", value: { fromStatus: LeadStatus.LEAD_STATUS_NEW, toStatus: LeadStatus.LEAD_STATUS_SOLD } },
          }),
        ),
      ),
    ).toEqual(["activity.status_change"]);
  });
});
