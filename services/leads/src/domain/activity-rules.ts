import { CallDirection, CallOutcome, type LeadActivity } from "@leadmesh/contracts/leads/v1/lead";
import { InvalidArgumentError, isSpecifiedEnumValue, text, Violations } from "@leadmesh/platform";

export type ActivityDetail = NonNullable<LeadActivity["detail"]>;

const checkNote = text({ max: 5000, required: true, multiline: true });
const checkCallSummary = text({ max: 5000, multiline: true });

/** Validates the detail of a client-recorded activity: a note or a call. */
export function clientActivity(activity: LeadActivity | undefined): ActivityDetail {
  const detail = activity?.detail;
  if (!detail) throw new InvalidArgumentError([{ field: "activity", description: "must set exactly one of note or call" }]);
  const violations = new Violations();
  switch (detail.$case) {
    case "note": {
      const note = detail.value.text.trim();
      violations.check("activity.note.text", note, checkNote);
      violations.throwIfAny();
      return { $case: "note", value: { text: note } };
    }
    case "call": {
      const call = detail.value;
      if (!isSpecifiedEnumValue(CallDirection, call.direction)) violations.add("activity.call.direction", "must be OUTBOUND or INBOUND");
      if (!isSpecifiedEnumValue(CallOutcome, call.outcome)) violations.add("activity.call.outcome", "must be CONNECTED, VOICEMAIL, NO_ANSWER or WRONG_NUMBER");
      if (!Number.isInteger(call.durationSeconds) || call.durationSeconds < 0 || call.durationSeconds > 86400) {
        violations.add("activity.call.duration_seconds", "must be between 0 and 86400");
      }
      violations.check("activity.call.summary", call.summary, checkCallSummary);
      violations.throwIfAny();
      return { $case: "call", value: { ...call, summary: call.summary.trim() } };
    }
    case "statusChange":
      throw new InvalidArgumentError([
        { field: "activity.status_change", description: "is recorded by the service when UpdateLead changes the status; send a note or a call" },
      ]);
  }
}
