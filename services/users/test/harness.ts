import { Role } from "@leadmesh/contracts/common/v1/access";
import { DepartmentServiceDefinition } from "@leadmesh/contracts/users/v1/departments";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { UserServiceDefinition } from "@leadmesh/contracts/users/v1/users";
import type { RunningService } from "@leadmesh/platform";
import type { Status } from "nice-grpc";
import { BadRequest, ErrorInfo, RichClientError } from "nice-grpc-error-details";
import { type ConnectOptions, grpcClient, uniqueTenant } from "../../../test/harness/clients";
import { startInProcess } from "../../../test/harness/in-process";
import { mintToken } from "../../../test/harness/tokens";
import { startUsers } from "../src/main";

/** The users service in-process on the test mesh's FerretDB and Redis, serving mTLS; the auth service calls it with its certificate. */
export const startUsersForTest = () => startInProcess("users", startUsers);

/** Role claims of user tokens. */
export type RoleClaim = "agent" | "manager" | "admin";

/** Clients of the three users.v1 services, all carrying one token (when given), as the operator unless `options` name another identity. */
export function connect(address: string, token: string | undefined, options: ConnectOptions = {}) {
  const users = grpcClient(UserServiceDefinition, address, token, options);
  const tenants = grpcClient(TenantServiceDefinition, address, token, options);
  const departments = grpcClient(DepartmentServiceDefinition, address, token, options);
  return {
    users: users.client,
    tenants: tenants.client,
    departments: departments.client,
    close() {
      users.close();
      tenants.close();
      departments.close();
    },
  };
}

export type Clients = ReturnType<typeof connect>;

/** Clients as the mesh service `service` (its certificate) acting for `tenant` (`leadmesh-tenant`), without a token: how auth calls users. */
export function connectAsService(address: string, service: string, tenant: string): Clients {
  return connect(address, undefined, { identity: service, tenant });
}

export function userToken(tenant: string, userId: string, ...roles: RoleClaim[]): string {
  return mintToken({ tenant, sub: userId, roles });
}

export interface TestTenant {
  tenant: string;
  adminId: string;
  /** As the auth service (its certificate, acting for the tenant). */
  service: Clients;
  /** As the tenant's first admin. */
  admin: Clients;
  /** Connects as an existing user of the tenant with the given roles. */
  as(userId: string, ...roles: RoleClaim[]): Clients;
  /** Creates an ACTIVE user (as the auth service would) and returns its id. */
  createUser(displayName: string, roles: Role[]): Promise<string>;
  close(): void;
}

/** Registers a fresh tenant with its first admin, the way the auth service does. */
export async function registerTenant(address: string, label: string): Promise<TestTenant> {
  const tenant = uniqueTenant(label);
  const opened: Clients[] = [];
  const remember = (clients: Clients) => {
    opened.push(clients);
    return clients;
  };
  const open = (token: string) => remember(connect(address, token));
  const service = remember(connectAsService(address, "auth", tenant));
  await service.tenants.createTenant({ tenant: { id: tenant, displayName: `${label} Inc` } });
  let count = 0;
  const createUser = async (displayName: string, roles: Role[]) => {
    const email = `${displayName.toLowerCase().replace(/[^a-z0-9]/g, "")}-${++count}@${tenant}.example.com`;
    const { user } = await service.users.createUser({ tenantId: tenant, email, displayName, roles });
    return user!.id;
  };
  const adminId = await createUser("Admin", [Role.ROLE_ADMIN]);
  return {
    tenant,
    adminId,
    service,
    admin: open(userToken(tenant, adminId, "admin")),
    as: (userId, ...roles) => open(userToken(tenant, userId, ...roles)),
    createUser,
    close: () => {
      for (const clients of opened) clients.close();
    },
  };
}

export async function rpcError(call: Promise<unknown>): Promise<RichClientError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(RichClientError);
    return error as RichClientError;
  }
  throw new Error("call succeeded but an error was expected");
}

export function details(error: RichClientError) {
  const info = error.extra.find((detail) => detail.$type === ErrorInfo.$type) as ErrorInfo | undefined;
  const badRequest = error.extra.find((detail) => detail.$type === BadRequest.$type) as BadRequest | undefined;
  return { code: error.code, reason: info?.reason, metadata: info?.metadata, fields: badRequest?.fieldViolations.map((violation) => violation.field) ?? [] };
}

/** The gRPC status code of a call that must fail. */
export async function codeOf(call: Promise<unknown>): Promise<Status> {
  return (await rpcError(call)).code;
}

/**
 * One users service per test file, started before and stopped after its
 * tests; `tenantFor` registers a fresh tenant whose clients close with it.
 */
export function useUsersService() {
  const state: { service?: RunningService; address: string; tenants: TestTenant[] } = { address: "", tenants: [] };
  beforeAll(async () => {
    const started = await startUsersForTest();
    state.service = started.service;
    state.address = started.address;
  });
  afterAll(async () => {
    for (const tenant of state.tenants) tenant.close();
    await state.service?.shutdown();
  });
  return {
    get address() {
      return state.address;
    },
    async tenantFor(label: string): Promise<TestTenant> {
      const tenant = await registerTenant(state.address, label);
      state.tenants.push(tenant);
      return tenant;
    },
  };
}
