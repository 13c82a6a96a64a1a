import { AbortError, isAbortError } from "abort-controller-x";
import { type CallContext, ClientError, ServerError, type ServerMiddlewareCall, Status } from "nice-grpc-common";
import { BadRequest, ErrorInfo, errorDetailsServerMiddleware, PreconditionFailure, RetryInfo, RichClientError, RichServerError } from "nice-grpc-error-details";
import { failedForForwardedUser } from "./clients";
import { DependencyUnavailableError, DomainError, type FieldViolation, isErrorReason, type PreconditionViolation } from "./errors";
import type { Logger } from "./logger";
import { REFUSED_BY_ALLOW_LIST, REFUSED_BY_KEY } from "./mtls/peer-access";
import { boundedDetails, statusText } from "./status-text";
import { activeTraceIds } from "./telemetry";

export const ERROR_DOMAIN = "leadmesh.io";

/**
 * What the kernel middleware (kernel-middleware.ts) throws for an error of
 * the call, whichever step or the handler raised it: the gRPC status the
 * caller gets. DomainErrors and driver errors carry google.rpc details
 * (serialised into grpc-status-details-bin, which Envoy turns into the JSON
 * error body), anything unexpected is INTERNAL with only the trace id, and
 * every text is well-formed and bounded (status-text.ts: a lone surrogate in
 * a status message makes grpc-js throw outside any handler and the process
 * dies). Mapping a mapped error again changes nothing.
 *
 * The details of a RichServerError are already in the trailer: the
 * library's middleware encodes them, run here on the error path only
 * instead of wrapping every call in one more generator.
 */
export async function callStatusError(error: unknown, call: ServerMiddlewareCall<unknown, unknown>, context: CallContext, logger: Logger): Promise<unknown> {
  const mapped = toServerError(error, call.method.path, context, logger);
  if (!(mapped instanceof RichServerError)) return mapped;
  // The "rest of the call" it wraps: fails with the mapped error at once.
  const failing = { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(mapped) }) } as AsyncGenerator<never, never>;
  try {
    await errorDetailsServerMiddleware({ ...call, next: () => failing }, context).next();
  } catch {
    // It rethrows what it was given, after setting the trailer.
  }
  return mapped;
}

/** The status code an error thrown by callStatusError ends the call with. */
export function statusCodeOf(error: unknown): Status {
  if (error instanceof ServerError) return error.code;
  return isAbortError(error) ? Status.CANCELLED : Status.UNKNOWN;
}

/** Every error as a ServerError with well-formed, bounded text (or the AbortError of a cancelled call). */
function toServerError(error: unknown, path: string, context: CallContext, logger: Logger): unknown {
  if (isAbortError(error)) return error;
  if (error instanceof RichServerError) return new RichServerError(error.code, statusText(error.details), boundedDetails(error.extra));
  if (error instanceof ServerError) return new ServerError(error.code, statusText(error.details));
  const domainError = error instanceof DomainError ? error : asDependencyError(error);
  if (domainError) {
    if (domainError.code === Status.UNAVAILABLE) logUnavailable(logger, error, domainError, path);
    return richError(domainError);
  }
  if (context.signal.aborted) return new AbortError("call cancelled by the client");
  if (error instanceof ClientError) {
    const relayed = relayedDownstreamError(error);
    if (relayed) {
      if (relayed.code === Status.UNAVAILABLE) logUnavailable(logger, error, relayed, path);
      return richError(relayed);
    }
  }
  const traceId = activeTraceIds()?.trace_id ?? "none";
  logger.error({ err: error, rpc: path }, "unhandled error in the call path");
  return new RichServerError(Status.INTERNAL, `internal error (trace ${traceId})`, [
    ErrorInfo.fromPartial({ reason: "INTERNAL", domain: ERROR_DOMAIN, metadata: { trace_id: traceId } }),
  ]);
}

/**
 * A call to another service that failed for a reason of time or capacity
 * fails the caller's call the same way: a downstream call that ran out of
 * the propagated deadline is this call's DEADLINE_EXCEEDED, an unreachable
 * peer UNAVAILABLE (retryable). A call that forwarded the user's token and
 * was refused for that user (the user's access rule, token, or request) is
 * the user's refusal: relayed as it came. Any other downstream status a
 * handler did not handle itself (a refusal of this service by the callee's
 * allow-list, a bad request it made as itself) is this service's or the
 * deployment's bug and stays INTERNAL, logged.
 */
function relayedDownstreamError(error: ClientError): DomainError | undefined {
  switch (error.code) {
    case Status.PERMISSION_DENIED:
    case Status.UNAUTHENTICATED:
    case Status.NOT_FOUND:
    case Status.INVALID_ARGUMENT:
      return failedForForwardedUser(error) ? relayedUserRefusal(error) : undefined;
    case Status.DEADLINE_EXCEEDED:
      return new DomainError(Status.DEADLINE_EXCEEDED, "DEPENDENCY_UNAVAILABLE", `the deadline ran out while calling ${error.path}`, {
        rpc: error.path,
      });
    case Status.UNAVAILABLE:
    case Status.RESOURCE_EXHAUSTED:
      return new DomainError(Status.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", `${error.path} is unavailable; retry later`, {
        rpc: error.path,
      });
    default:
      return undefined;
  }
}

/** The callee's refusal of the forwarded user, with its reason and field violations; undefined when the allow-list refused this service. */
function relayedUserRefusal(error: ClientError): DomainError | undefined {
  const details = error instanceof RichClientError ? error.extra : [];
  const info = details.find((detail): detail is ErrorInfo => detail.$type === ErrorInfo.$type);
  if (info?.metadata[REFUSED_BY_KEY] === REFUSED_BY_ALLOW_LIST) return undefined;
  return relayedAsItCame(error);
}

/**
 * Another service's error as this service's own, with its reason, metadata,
 * field and precondition violations: for a handler that decided the callee's
 * answer is its caller's answer too (e.g. leads relaying buyers' "no buyer
 * can take the lead" with the reason for each buyer).
 */
export function relayedAsItCame(error: ClientError): DomainError {
  const details = error instanceof RichClientError ? error.extra : [];
  const info = details.find((detail): detail is ErrorInfo => detail.$type === ErrorInfo.$type);
  const violations: FieldViolation[] = details.flatMap((detail) =>
    detail.$type === BadRequest.$type ? detail.fieldViolations.map(({ field, description }) => ({ field, description })) : [],
  );
  const preconditions: PreconditionViolation[] = details.flatMap((detail) =>
    detail.$type === PreconditionFailure.$type ? detail.violations.map(({ type, subject, description }) => ({ type, subject, description })) : [],
  );
  const reason = info && isErrorReason(info.reason) ? info.reason : REASON_OF_CODE[error.code as keyof typeof REASON_OF_CODE];
  return new DomainError(error.code, reason ?? "INTERNAL", error.details, { ...info?.metadata, rpc: error.path }, violations, undefined, preconditions);
}

const REASON_OF_CODE = {
  [Status.PERMISSION_DENIED]: "PERMISSION_DENIED",
  [Status.UNAUTHENTICATED]: "UNAUTHENTICATED",
  [Status.NOT_FOUND]: "NOT_FOUND",
  [Status.INVALID_ARGUMENT]: "INVALID_FIELDS",
} as const;

/**
 * A driver failure is news (warn, with the driver's error). A refusal raised
 * as a DomainError (fail-fast on a dependency the health monitor already
 * reported down, once per change) is not: at warn, every call during an
 * outage would write a stack trace.
 */
function logUnavailable(logger: Logger, raised: unknown, mapped: DomainError, rpc: string): void {
  if (raised === mapped) logger.debug({ rpc, reason: mapped.reason, metadata: mapped.metadata }, "call refused: dependency unavailable");
  else logger.warn({ err: raised, rpc }, "dependency unavailable");
}

function richError(error: DomainError): RichServerError {
  const details: (ErrorInfo | BadRequest | RetryInfo | PreconditionFailure)[] = [
    ErrorInfo.fromPartial({ reason: error.reason, domain: ERROR_DOMAIN, metadata: error.metadata }),
  ];
  if (error.fieldViolations.length > 0) details.push(BadRequest.fromPartial({ fieldViolations: error.fieldViolations }));
  if (error.preconditionViolations.length > 0) details.push(PreconditionFailure.fromPartial({ violations: error.preconditionViolations }));
  if (error.retryAfterMs !== undefined) {
    const ms = Math.max(0, Math.ceil(error.retryAfterMs));
    details.push(RetryInfo.fromPartial({ retryDelay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 } }));
  }
  return new RichServerError(error.code, statusText(error.message), boundedDetails(details));
}

/**
 * Driver errors that mean "the database/cache is not reachable right now".
 * Matched by class name so the kernel needs no hard dependency on which
 * driver raised it; they become UNAVAILABLE, which clients may retry.
 */
const MONGO_UNAVAILABLE = new Set([
  "MongoServerSelectionError",
  "MongoNetworkError",
  "MongoNetworkTimeoutError",
  "MongoNotConnectedError",
  "MongoTopologyClosedError",
  "MongoPoolClearedError",
]);

function asDependencyError(error: unknown): DomainError | undefined {
  if (!(error instanceof Error)) return undefined;
  // Named like their health checks (mongo.ts, redis.ts), as fail-fast.ts names them.
  if (MONGO_UNAVAILABLE.has(error.name)) return new DependencyUnavailableError("mongodb");
  // "Command timed out": ioredis's commandTimeout, a Redis that accepts but does not answer.
  if (error.name === "MaxRetriesPerRequestError" || /Connection is closed|enableOfflineQueue|Command timed out/.test(error.message)) {
    return new DependencyUnavailableError("redis");
  }
  return undefined;
}
