/**
 * The auth service's calls to the users service, each with a service token
 * for the tenant concerned. Errors keep their gRPC status (e.g. the users
 * service's ALREADY_EXISTS reaches the registering client as 409).
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import type { User } from "@leadmesh/contracts/users/v1/user";
import { UserServiceDefinition } from "@leadmesh/contracts/users/v1/users";
import { createServiceClient, DomainError, isErrorReason } from "@leadmesh/platform";
import { ClientError, Metadata, Status } from "nice-grpc-common";
import { ErrorInfo, RichClientError } from "nice-grpc-error-details";
import type { TokenIssuer } from "./tokens";

export class UsersGateway {
  private readonly users;
  private readonly tenants;

  constructor(
    address: string,
    private readonly tokens: TokenIssuer,
  ) {
    this.users = createServiceClient(UserServiceDefinition, address, { defaultDeadlineMs: 3000 });
    this.tenants = createServiceClient(TenantServiceDefinition, address, { defaultDeadlineMs: 3000 });
  }

  private async options(tenantId: string) {
    return { metadata: Metadata({ authorization: `Bearer ${await this.tokens.serviceToken(tenantId)}` }) };
  }

  async createTenant(tenantId: string, displayName: string): Promise<void> {
    await relay(this.tenants.client.createTenant({ tenant: { id: tenantId, displayName } }, await this.options(tenantId)));
  }

  /** Whether the tenant has any user at all (deleted ones included). */
  async tenantHasUsers(tenantId: string): Promise<boolean> {
    const { users } = await relay(this.users.client.listUsers({ pageSize: 1 }, await this.options(tenantId)));
    return users.length > 0;
  }

  async createAdmin(tenantId: string, email: string, displayName: string): Promise<User> {
    const { user } = await relay(this.users.client.createUser({ tenantId, email, displayName, roles: [Role.ROLE_ADMIN] }, await this.options(tenantId)));
    if (!user) throw new Error(`users.CreateUser answered without the user it created (tenant ${tenantId})`);
    return user;
  }

  async getUser(tenantId: string, id: string): Promise<User | undefined> {
    return optional(this.users.client.getUser({ id }, await this.options(tenantId)).then((response) => response.user));
  }

  async lookupUser(tenantId: string, email: string): Promise<User | undefined> {
    return optional(this.users.client.lookupUser({ tenantId, email }, await this.options(tenantId)).then((response) => response.user));
  }

  async activateUser(tenantId: string, id: string): Promise<void> {
    await relay(this.users.client.activateUser({ tenantId, id }, await this.options(tenantId)));
  }

  close(): void {
    this.users.close();
    this.tenants.close();
  }
}

async function optional<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof ClientError && error.code === Status.NOT_FOUND) return undefined;
    throw relayed(error);
  }
}

async function relay<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw relayed(error);
  }
}

/** Turns a users-service error into a DomainError with the same status, reason and field violations. */
function relayed(error: unknown): unknown {
  if (!(error instanceof ClientError)) return error;
  // The users service refusing the auth service is a deployment error, not the end user's.
  if (error.code === Status.PERMISSION_DENIED || error.code === Status.UNAUTHENTICATED)
    return new Error(`users service refused the auth service: ${error.details}`);
  const rich = error instanceof RichClientError ? error.extra : [];
  const info = rich.find((detail): detail is ErrorInfo => detail.$type === ErrorInfo.$type);
  const violations = rich.flatMap((detail) =>
    "fieldViolations" in detail ? detail.fieldViolations.map((v) => ({ field: v.field, description: v.description })) : [],
  );
  const reason = info && isErrorReason(info.reason) ? info.reason : "DEPENDENCY_UNAVAILABLE";
  return new DomainError(error.code, reason, error.details, info?.metadata ?? {}, violations);
}
