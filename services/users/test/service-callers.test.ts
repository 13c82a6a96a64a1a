/**
 * Services call users as themselves: their certificate identity (mTLS) and
 * the tenant they name in metadata leadmesh-tenant, never a token. What a
 * calling service that gets this wrong is told, and that the old service
 * tokens (a JWT with role "service", even correctly signed) open nothing.
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { Status } from "nice-grpc";
import { mintToken } from "../../../test/harness/tokens";
import { connect, connectAsService, details, rpcError, useUsersService } from "./harness";

const users = useUsersService();

describe("a calling service that names no tenant", () => {
  it("is refused by service-only and shared RPCs alike, and told to send leadmesh-tenant", async () => {
    const t = await users.tenantFor("no-tenant");
    const auth = connect(users.address, undefined, { identity: "auth" });
    try {
      const create = await rpcError(auth.users.createUser({ tenantId: t.tenant, email: "x@example.com", displayName: "X", roles: [Role.ROLE_AGENT] }));
      expect(details(create)).toMatchObject({ code: Status.PERMISSION_DENIED, reason: "PERMISSION_DENIED" });
      expect(create.details).toBe('service "auth" named no tenant for /users.v1.UserService/CreateUser: send the tenant id in metadata leadmesh-tenant');
      // ListUsers would otherwise answer an empty page for the empty tenant.
      const list = await rpcError(auth.users.listUsers({ pageSize: 1 }));
      expect(details(list)).toMatchObject({ code: Status.PERMISSION_DENIED });
      expect(list.details).toMatch(/named no tenant for \/users\.v1\.UserService\/ListUsers/);
      const lookup = await rpcError(auth.users.lookupUser({ tenantId: t.tenant, email: "admin-1@example.com" }));
      expect(details(lookup)).toMatchObject({ code: Status.PERMISSION_DENIED });
      // Once it names the tenant, the same calls work.
      expect((await t.service.users.listUsers({ pageSize: 1 })).users).toHaveLength(1);
    } finally {
      auth.close();
    }
  });

  it("may act only for the tenant it named", async () => {
    const a = await users.tenantFor("named-a");
    const b = await users.tenantFor("named-b");
    const error = await rpcError(a.service.users.createUser({ tenantId: b.tenant, email: "x@example.com", displayName: "X", roles: [Role.ROLE_AGENT] }));
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["tenant_id"] });
    expect((await b.admin.users.listUsers({})).users.map((user) => user.email)).not.toContain("x@example.com");
  });
});

describe("service tokens", () => {
  it("are refused even when correctly signed, from any identity", async () => {
    const t = await users.tenantFor("service-token");
    const token = mintToken({ tenant: t.tenant, sub: "auth", roles: ["service"] });
    for (const identity of ["operator", "auth"]) {
      const clients = connect(users.address, token, { identity });
      try {
        const error = await rpcError(clients.users.createUser({ tenantId: t.tenant, email: "svc@example.com", displayName: "Svc", roles: [Role.ROLE_AGENT] }));
        expect(details(error)).toMatchObject({ code: Status.UNAUTHENTICATED });
        expect(error.details).toMatch(/service tokens are no longer accepted/);
        expect(details(await rpcError(clients.users.listUsers({})))).toMatchObject({ code: Status.UNAUTHENTICATED });
      } finally {
        clients.close();
      }
    }
    // Nor does adding a user role to one make it a user token.
    const mixed = connect(users.address, mintToken({ tenant: t.tenant, sub: t.adminId, roles: ["admin", "service"] }));
    try {
      expect(details(await rpcError(mixed.users.listUsers({})))).toMatchObject({ code: Status.UNAUTHENTICATED });
    } finally {
      mixed.close();
    }
  });
});

describe("identities that are not the calling service", () => {
  it("get nothing without a user's token", async () => {
    const t = await users.tenantFor("other-identity");
    const createUser = (clients: ReturnType<typeof connect>) =>
      rpcError(clients.users.createUser({ tenantId: t.tenant, email: "y@example.com", displayName: "Y", roles: [Role.ROLE_AGENT] }));
    // leads is a mesh service, but mesh/topology.yaml does not let it call users' RPCs.
    const leads = connectAsService(users.address, "leads", t.tenant);
    // The edge and the operators' tools are no services: without a token they are nobody, tenant or not.
    const edge = connect(users.address, undefined, { identity: "ingress", tenant: t.tenant });
    const operator = connect(users.address, undefined, { tenant: t.tenant });
    try {
      expect(details(await createUser(leads))).toMatchObject({ code: Status.PERMISSION_DENIED });
      expect(details(await createUser(edge))).toMatchObject({ code: Status.PERMISSION_DENIED });
      expect(details(await rpcError(edge.users.listUsers({})))).toMatchObject({ code: Status.UNAUTHENTICATED });
      expect(details(await createUser(operator))).toMatchObject({ code: Status.UNAUTHENTICATED });
      expect(details(await rpcError(operator.users.listUsers({})))).toMatchObject({ code: Status.UNAUTHENTICATED });
    } finally {
      for (const clients of [leads, edge, operator]) clients.close();
    }
  });
});
