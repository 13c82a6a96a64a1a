/**
 * The auth service's calls to the users service. The auth service calls as
 * itself, known to users by its certificate identity (mTLS), and names the
 * tenant each call acts in (metadata leadmesh-tenant); it holds no token for
 * that. Given the call context of the auth RPC being served, a users call
 * ends no later than that RPC's deadline and is cancelled with it. Errors
 * keep their gRPC status (e.g. the users service's ALREADY_EXISTS reaches the
 * registering client as 409).
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import type { User } from "@leadmesh/contracts/users/v1/user";
import { UserServiceDefinition } from "@leadmesh/contracts/users/v1/users";
import { callOptionsFrom, createServiceClient, DomainError, isErrorReason, type MeshTransport, TENANT_HEADER } from "@leadmesh/platform";
import { type CallContext, ClientError, Metadata, Status } from "nice-grpc-common";
import { ErrorInfo, RichClientError } from "nice-grpc-error-details";

/** Each users call; shortened to the remaining time of the auth RPC that makes it. */
const USERS_DEADLINE_MS = 3000;

export class UsersGateway {
  private readonly users;
  private readonly tenants;

  constructor(address: string, transport: MeshTransport) {
    const options = { transport, peer: "users", defaultDeadlineMs: USERS_DEADLINE_MS };
    this.users = createServiceClient(UserServiceDefinition, address, options);
    this.tenants = createServiceClient(TenantServiceDefinition, address, options);
  }

  /** Acting in `tenantId`, within the deadline and cancellation of `context` when there is one. */
  private options(tenantId: string, context: CallContext | undefined) {
    if (context) return callOptionsFrom(context, { tenant: tenantId, deadlineMs: USERS_DEADLINE_MS });
    return { metadata: Metadata({ [TENANT_HEADER]: tenantId }) };
  }

  async createTenant(tenantId: string, displayName: string, context?: CallContext): Promise<void> {
    await relay(this.tenants.client.createTenant({ tenant: { id: tenantId, displayName } }, this.options(tenantId, context)));
  }

  /** Whether the tenant has any user at all (deleted ones included). */
  async tenantHasUsers(tenantId: string, context?: CallContext): Promise<boolean> {
    const { users } = await relay(this.users.client.listUsers({ pageSize: 1 }, this.options(tenantId, context)));
    return users.length > 0;
  }

  async createAdmin(tenantId: string, email: string, displayName: string, context?: CallContext): Promise<User> {
    const request = { tenantId, email, displayName, roles: [Role.ROLE_ADMIN] };
    const { user } = await relay(this.users.client.createUser(request, this.options(tenantId, context)));
    if (!user) throw new Error(`users.CreateUser answered without the user it created (tenant ${tenantId})`);
    return user;
  }

  async getUser(tenantId: string, id: string, context?: CallContext): Promise<User | undefined> {
    return optional(this.users.client.getUser({ id }, this.options(tenantId, context)).then((response) => response.user));
  }

  async lookupUser(tenantId: string, email: string, context?: CallContext): Promise<User | undefined> {
    return optional(this.users.client.lookupUser({ tenantId, email }, this.options(tenantId, context)).then((response) => response.user));
  }

  async activateUser(tenantId: string, id: string, context?: CallContext): Promise<void> {
    await relay(this.users.client.activateUser({ tenantId, id }, this.options(tenantId, context)));
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
