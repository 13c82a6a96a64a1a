/**
 * users.v1.DepartmentService over real gRPC against real FerretDB and Redis.
 */

import { Role } from "@leadmesh/contracts/common/v1/access";
import { Status } from "nice-grpc";
import { codeOf, details, rpcError, useUsersService } from "./harness";

const users = useUsersService();
const tenantFor = (label: string) => users.tenantFor(label);

describe("departments", () => {
  it("creates, reads, renames and deletes departments", async () => {
    const t = await tenantFor("dept-crud");
    const { department } = await t.admin.departments.createDepartment({ department: { displayName: " Inbound ", headUserId: t.adminId, id: "ignored" } });
    expect(department).toMatchObject({ tenantId: t.tenant, displayName: "Inbound", headUserId: t.adminId });
    expect(department!.id).toMatch(/^[0-9a-f]{24}$/);
    expect((await t.admin.departments.getDepartment({ id: department!.id })).department).toEqual(department);

    const renamed = (await t.admin.departments.updateDepartment({ department: { id: department!.id, displayName: "Inbound sales" } })).department!;
    expect(renamed).toMatchObject({ displayName: "Inbound sales", headUserId: t.adminId });
    const headless = (await t.admin.departments.updateDepartment({ department: { id: department!.id }, updateMask: ["head_user_id"] })).department!;
    expect(headless.headUserId).toBe("");

    await t.admin.departments.deleteDepartment({ id: department!.id });
    expect(await codeOf(t.admin.departments.getDepartment({ id: department!.id }))).toBe(Status.NOT_FOUND);
    expect(await codeOf(t.admin.departments.deleteDepartment({ id: department!.id }))).toBe(Status.NOT_FOUND);
  });

  it("keeps names unique per tenant, ignoring case", async () => {
    const a = await tenantFor("dept-unique-a");
    const b = await tenantFor("dept-unique-b");
    await a.admin.departments.createDepartment({ department: { displayName: "Outbound" } });
    const second = (await a.admin.departments.createDepartment({ department: { displayName: "Renewals" } })).department!;
    expect(details(await rpcError(a.admin.departments.createDepartment({ department: { displayName: "OUTBOUND" } })))).toMatchObject({
      code: Status.ALREADY_EXISTS,
      reason: "ALREADY_EXISTS",
    });
    expect(await codeOf(a.admin.departments.updateDepartment({ department: { id: second.id, displayName: "outbound " } }))).toBe(Status.ALREADY_EXISTS);
    // Renaming to a different case of its own name is fine.
    expect((await a.admin.departments.updateDepartment({ department: { id: second.id, displayName: "RENEWALS" } })).department!.displayName).toBe("RENEWALS");
    await b.admin.departments.createDepartment({ department: { displayName: "Outbound" } });
  });

  it("requires the head to be a live user of the tenant", async () => {
    const a = await tenantFor("dept-head-a");
    const b = await tenantFor("dept-head-b");
    const error = await rpcError(a.admin.departments.createDepartment({ department: { displayName: "Sales", headUserId: b.adminId } }));
    expect(details(error)).toMatchObject({ code: Status.INVALID_ARGUMENT, fields: ["department.head_user_id"] });
    const leaverId = await a.createUser("Leaver", [Role.ROLE_MANAGER]);
    await a.admin.users.deleteUser({ id: leaverId });
    expect(details(await rpcError(a.admin.departments.createDepartment({ department: { displayName: "Sales", headUserId: leaverId } }))).fields).toEqual([
      "department.head_user_id",
    ]);
    expect(details(await rpcError(a.admin.departments.createDepartment({ department: { displayName: "" } }))).fields).toEqual(["department.display_name"]);
  });

  it("refuses to delete a department while users are in it", async () => {
    const t = await tenantFor("dept-delete");
    const { department } = await t.admin.departments.createDepartment({ department: { displayName: "Busy" } });
    const id = await t.createUser("Member", [Role.ROLE_AGENT]);
    await t.admin.users.updateUser({ user: { id, departmentId: department!.id } });
    const busy = await rpcError(t.admin.departments.deleteDepartment({ id: department!.id }));
    expect(details(busy)).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "FAILED_PRECONDITION" });
    await t.admin.users.updateUser({ user: { id }, updateMask: ["department_id"] });
    await t.admin.departments.deleteDepartment({ id: department!.id });
  });

  it("lists by name with paging, to every role; only admins change them", async () => {
    const t = await tenantFor("dept-list");
    for (const name of ["delta", "Alpha", "charlie", "Bravo", "echo"]) await t.admin.departments.createDepartment({ department: { displayName: name } });
    const agentId = await t.createUser("Agent", [Role.ROLE_AGENT]);
    const agent = t.as(agentId, "agent");
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await agent.departments.listDepartments({ pageSize: 2, pageToken });
      seen.push(...page.departments.map((department) => department.displayName));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(["Alpha", "Bravo", "charlie", "delta", "echo"]);
    // Its access rule admits services, but mesh/topology.yaml lets none call it: not even auth's certificate opens it.
    expect(await codeOf(t.service.departments.listDepartments({}))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(agent.departments.createDepartment({ department: { displayName: "Mine" } }))).toBe(Status.PERMISSION_DENIED);
    const manager = t.as(await t.createUser("Manager", [Role.ROLE_MANAGER]), "manager");
    expect(await codeOf(manager.departments.deleteDepartment({ id: "aaaaaaaaaaaaaaaaaaaaaaaa" }))).toBe(Status.PERMISSION_DENIED);
  });

  it("never shows one tenant's departments to another", async () => {
    const a = await tenantFor("dept-iso-a");
    const b = await tenantFor("dept-iso-b");
    const { department } = await a.admin.departments.createDepartment({ department: { displayName: "Secret" } });
    const id = department!.id;
    expect(await codeOf(b.admin.departments.getDepartment({ id }))).toBe(Status.NOT_FOUND);
    expect(await codeOf(b.admin.departments.updateDepartment({ department: { id, displayName: "Mine" } }))).toBe(Status.NOT_FOUND);
    expect(await codeOf(b.admin.departments.deleteDepartment({ id }))).toBe(Status.NOT_FOUND);
    expect((await b.admin.departments.listDepartments({})).departments).toEqual([]);
    expect(details(await rpcError(b.admin.users.updateUser({ user: { id: b.adminId, departmentId: id } }))).fields).toEqual(["user.department_id"]);
  });
});
