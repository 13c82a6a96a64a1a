/**
 * The error model. Domain code throws these; the error middleware turns them
 * into gRPC statuses with google.rpc details (ErrorInfo always, BadRequest for
 * field violations, RetryInfo when a retry delay is known). Anything else
 * becomes INTERNAL with only the trace id: stack traces and driver messages
 * never reach callers.
 *
 * One way to raise each error: a subclass per status below. DomainError itself
 * is constructed directly only to relay another service's error as it came.
 */
import { ErrorReason as ProtoErrorReason } from "@leadmesh/contracts/common/v1/errors";
import { Status } from "nice-grpc-common";

export interface FieldViolation {
  /** Path of the field in the request, e.g. "lead.email". */
  field: string;
  /** What is wrong and what would be right. */
  description: string;
}

/** One unmet precondition (google.rpc.PreconditionFailure.Violation), e.g. why a buyer could not take a lead. */
export interface PreconditionViolation {
  /** Kind of precondition, e.g. "BUYER_SKIPPED". */
  type: string;
  /** What it is about, e.g. "buyers/<id>". */
  subject: string;
  description: string;
}

type Unprefixed<Name> = Name extends `ERROR_REASON_${infer Reason}` ? Reason : never;

/**
 * Names of common.v1.ErrorReason without the prefix, as ErrorInfo.reason
 * carries them. Derived from the generated enum, so a reason added to or
 * removed from the proto changes this type at compile time.
 */
export type ErrorReason = Exclude<Unprefixed<keyof typeof ProtoErrorReason>, "UNSPECIFIED">;

/** Whether `value` (e.g. a reason received from another service) is one of ours. */
export function isErrorReason(value: string): value is ErrorReason {
  return value !== "UNSPECIFIED" && `ERROR_REASON_${value}` in ProtoErrorReason;
}

export class DomainError extends Error {
  constructor(
    readonly code: Status,
    readonly reason: ErrorReason,
    message: string,
    readonly metadata: Record<string, string> = {},
    readonly fieldViolations: FieldViolation[] = [],
    /** When set, the caller is told (google.rpc.RetryInfo) to retry after this long. */
    readonly retryAfterMs?: number,
    /** Sent as google.rpc.PreconditionFailure. */
    readonly preconditionViolations: PreconditionViolation[] = [],
  ) {
    super(message);
    this.name = "DomainError";
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message: string) {
    super(Status.UNAUTHENTICATED, "UNAUTHENTICATED", message);
  }
}

export class PermissionDeniedError extends DomainError {
  constructor(message: string) {
    super(Status.PERMISSION_DENIED, "PERMISSION_DENIED", message);
  }
}

/** Another call holds what this one needs (the same request still running): the caller retries shortly. */
export class ConcurrentCallError extends DomainError {
  constructor(message: string, metadata: Record<string, string> = {}) {
    super(Status.ABORTED, "FAILED_PRECONDITION", message, metadata);
  }
}

export class ResourceExhaustedError extends DomainError {
  constructor(message: string, retryAfterMs: number, metadata: Record<string, string> = {}) {
    super(Status.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", message, metadata, [], retryAfterMs);
  }
}

export class InvalidArgumentError extends DomainError {
  constructor(fieldViolations: FieldViolation[], message = describeViolations(fieldViolations)) {
    super(Status.INVALID_ARGUMENT, "INVALID_FIELDS", message, {}, fieldViolations);
  }
}

export class InvalidPageTokenError extends DomainError {
  constructor(detail: string) {
    super(Status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", `page_token is invalid: ${detail}`, {}, [{ field: "page_token", description: detail }]);
  }
}

export class NotFoundError extends DomainError {
  constructor(resourceType: string, id: string) {
    super(Status.NOT_FOUND, "NOT_FOUND", `${resourceType} "${id}" not found`, { resource_type: resourceType, resource_id: id });
  }
}

export class AlreadyExistsError extends DomainError {
  constructor(resourceType: string, key: string) {
    super(Status.ALREADY_EXISTS, "ALREADY_EXISTS", `${resourceType} ${key} already exists`, { resource_type: resourceType });
  }
}

export class EtagMismatchError extends DomainError {
  constructor(resourceType: string, id: string, currentEtag: string) {
    super(Status.ABORTED, "ETAG_MISMATCH", `${resourceType} "${id}" was changed by someone else (current etag ${currentEtag}); re-read it and retry`, {
      resource_type: resourceType,
      resource_id: id,
      current_etag: currentEtag,
    });
  }
}

export class FailedPreconditionError extends DomainError {
  constructor(message: string, metadata: Record<string, string> = {}) {
    super(Status.FAILED_PRECONDITION, "FAILED_PRECONDITION", message, metadata);
  }
}

/** FAILED_PRECONDITION with the list of what is unmet (google.rpc.PreconditionFailure), under a specific reason. */
export class PreconditionFailureError extends DomainError {
  constructor(reason: ErrorReason, message: string, violations: PreconditionViolation[], metadata: Record<string, string> = {}) {
    super(Status.FAILED_PRECONDITION, reason, message, metadata, [], undefined, violations);
  }
}

/** Someone else's write of the same operation is still being applied (RevisionedWrites): retry shortly. */
export class OperationPendingError extends DomainError {
  constructor(message: string, retryAfterMs: number, metadata: Record<string, string> = {}) {
    super(Status.UNAVAILABLE, "OPERATION_PENDING", message, metadata, [], retryAfterMs);
  }
}

export class DependencyUnavailableError extends DomainError {
  constructor(dependency: string, retryAfterMs?: number) {
    super(Status.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", `${dependency} is unavailable; retry later`, { dependency }, [], retryAfterMs);
  }
}

function describeViolations(violations: FieldViolation[]): string {
  const shown = violations.slice(0, 3).map((v) => `${v.field}: ${v.description}`);
  const more = violations.length > 3 ? ` (and ${violations.length - 3} more)` : "";
  return `invalid request: ${shown.join("; ")}${more}`;
}

/**
 * Collects field violations while validating a request, then throws them all
 * at once so the caller sees every problem in one round trip.
 */
export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.list.push({ field, description });
  }

  /** Runs a field check (see validation.ts) and records its complaint, if any, under `field`. */
  check<T>(field: string, value: T, check: (value: T) => string | undefined): void {
    const problem = check(value);
    if (problem) this.add(field, problem);
  }

  get count(): number {
    return this.list.length;
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw new InvalidArgumentError([...this.list]);
  }
}
