import { ErrorReason as ProtoErrorReason } from "@leadmesh/contracts/common/v1/errors";
import { Status } from "nice-grpc-common";
import {
  AlreadyExistsError,
  ConcurrentCallError,
  DependencyUnavailableError,
  DomainError,
  type ErrorReason,
  EtagMismatchError,
  FailedPreconditionError,
  InvalidArgumentError,
  InvalidPageTokenError,
  isErrorReason,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
} from "./errors";

const protoReasons = Object.keys(ProtoErrorReason)
  .filter((key) => key.startsWith("ERROR_REASON_") && key !== "ERROR_REASON_UNSPECIFIED")
  .map((key) => key.slice("ERROR_REASON_".length));

describe("ErrorReason", () => {
  it("is exactly the proto enum's names without the prefix", () => {
    // Fails to compile when the proto gains or loses a reason this list does not name.
    const everyReason: Record<ErrorReason, true> = {
      INVALID_FIELDS: true,
      NOT_FOUND: true,
      ALREADY_EXISTS: true,
      ETAG_MISMATCH: true,
      FAILED_PRECONDITION: true,
      UNAUTHENTICATED: true,
      PERMISSION_DENIED: true,
      DEPENDENCY_UNAVAILABLE: true,
      INVALID_PAGE_TOKEN: true,
      INTERNAL: true,
      RESOURCE_EXHAUSTED: true,
      NO_MATCHING_BUYER: true,
      DISTRIBUTION_IN_PROGRESS: true,
      OPERATION_PENDING: true,
    };
    expect(Object.keys(everyReason).sort()).toEqual([...protoReasons].sort());
  });

  it("recognizes received reasons only when the proto defines them", () => {
    for (const reason of protoReasons) expect(isErrorReason(reason)).toBe(true);
    for (const unknown of ["UNSPECIFIED", "ERROR_REASON_NOT_FOUND", "not_found", "", "0", "UNRECOGNIZED", "toString", "__proto__"]) {
      expect(isErrorReason(unknown)).toBe(false);
    }
  });
});

describe("one class per error", () => {
  const cases: [DomainError, Status, ErrorReason][] = [
    [new InvalidArgumentError([{ field: "a", description: "is bad" }]), Status.INVALID_ARGUMENT, "INVALID_FIELDS"],
    [new InvalidPageTokenError("corrupt"), Status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN"],
    [new NotFoundError("lead", "l1"), Status.NOT_FOUND, "NOT_FOUND"],
    [new AlreadyExistsError("tenant", "acme"), Status.ALREADY_EXISTS, "ALREADY_EXISTS"],
    [new EtagMismatchError("lead", "l1", "3"), Status.ABORTED, "ETAG_MISMATCH"],
    [new ConcurrentCallError("still running"), Status.ABORTED, "FAILED_PRECONDITION"],
    [new FailedPreconditionError("deleted"), Status.FAILED_PRECONDITION, "FAILED_PRECONDITION"],
    [new UnauthenticatedError("no token"), Status.UNAUTHENTICATED, "UNAUTHENTICATED"],
    [new PermissionDeniedError("no role"), Status.PERMISSION_DENIED, "PERMISSION_DENIED"],
    [new ResourceExhaustedError("slow down", 1000), Status.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"],
    [new DependencyUnavailableError("mongo"), Status.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE"],
  ];

  it.each(cases.map(([error, code, reason]) => [error.constructor.name, error, code, reason] as const))(
    "%s carries its status and reason",
    (_, error, code, reason) => {
      expect(error).toBeInstanceOf(DomainError);
      expect(error.code).toBe(code);
      expect(error.reason).toBe(reason);
    },
  );

  it("InvalidArgumentError summarizes its violations unless given a message", () => {
    const violations = ["a", "b", "c", "d"].map((field) => ({ field, description: "is bad" }));
    expect(new InvalidArgumentError(violations).message).toBe("invalid request: a: is bad; b: is bad; c: is bad (and 1 more)");
    expect(new InvalidArgumentError(violations.slice(0, 1), "the current password is wrong").message).toBe("the current password is wrong");
  });
});
