/** Callers and error helpers shared by the unit tests in src/domain. */
import { Role } from "@leadmesh/contracts/common/v1/access";
import { type Caller, DomainError, InvalidArgumentError } from "@leadmesh/platform";

/** Users reach the users service through the edge; a service calls it directly, as its own mesh identity. */
export function caller(kind: Caller["kind"], actorId: string, ...roles: Role[]): Caller {
  const peer = kind === "service" ? actorId : "ingress";
  return { kind, tenantId: "acme", actorId, roles, sessionId: "", tokenId: "", tokenExpiresAt: 0, peer };
}

export const admin = caller("user", "u-admin", Role.ROLE_ADMIN);
export const manager = caller("user", "u-manager", Role.ROLE_MANAGER);
export const agent = caller("user", "u-agent", Role.ROLE_AGENT);
export const service = caller("service", "auth", Role.ROLE_SERVICE);

/** The field violations of an INVALID_ARGUMENT thrown by `action`, field → description. */
export function violationsOf(action: () => unknown): Record<string, string> {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return Object.fromEntries((error as InvalidArgumentError).fieldViolations.map((v) => [v.field, v.description]));
  }
  throw new Error("expected INVALID_ARGUMENT");
}

/** The reason of the DomainError thrown by `action`. */
export function reasonOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    return (error as DomainError).reason;
  }
  throw new Error("expected a DomainError");
}
