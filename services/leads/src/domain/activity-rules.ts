import { CallDirection, CallOutcome, type LeadActivity } from "@leadmesh/contracts/leads/v1/lead";
import { isSpecifiedEnumValue, text, Violations } from "@leadmesh/platform";

export type ActivityDetail = NonNullable<LeadActivity["detail"]>;

const checkNote = text({ max: 5000, required: true, multiline: true });
const checkCallSummary = text({ max: 5000, multiline: true });

/** Validates the detail of a client-recorded activity: a note or a call. */
export function clientActivity(activity: LeadActivity | undefined): ActivityDetail {
  const violations = new Violations();
  const detail = activity?.detail;
  if (!detail) {
    violations.add("activity", "must set exactly one of note or call");
    violations.throwIfAny();
  }
  switch (detail!.$case) {
    case "note": {
      const note = detail!.value.text.trim();
      violations.check("activity.note.text", note, checkNote);
      violations.throwIfAny();
      return { $case: "note", value: { text: note } };
    }
    case "call": {
      const call = detail!.value;
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
      violations.add("activity.status_change", "is recorded by the service when UpdateLead changes the status; send a note or a call");
      break;
  }
  violations.throwIfAny();
  return detail!;
}
