import { Status } from "nice-grpc";

/**
 * A failed call that is the service's fault: a crash or bug (INTERNAL,
 * UNKNOWN, DATA_LOSS), a dependency reported down although it is up in this
 * test (UNAVAILABLE), a hang (DEADLINE_EXCEEDED) or a declared RPC without a
 * handler (UNIMPLEMENTED). Every other code is an answer to bad input.
 */
export const DEFECT_CODES: ReadonlySet<Status> = new Set([
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.DATA_LOSS,
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
]);
