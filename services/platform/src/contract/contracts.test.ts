import { Role } from "@leadmesh/contracts/common/v1/access";
import { contracts } from "./contracts";

describe("contracts read from the descriptor set", () => {
  const source = contracts();

  it("reads access rules, REST bindings and idempotency of an RPC", () => {
    const getLead = source.method("/leads.v1.LeadService/GetLead")!;
    expect(getLead.access?.roles).toEqual([Role.ROLE_AGENT, Role.ROLE_MANAGER, Role.ROLE_ADMIN]);
    expect(getLead.http).toEqual([{ verb: "get", pattern: "/api/v1/leads/{id}", body: "", pathFields: ["id"] }]);
    expect(getLead.idempotency).toBe("NO_SIDE_EFFECTS");
    expect(getLead.retryable).toBe(true);
    expect(getLead.input.typeName).toBe("leads.v1.GetLeadRequest");
  });

  it("knows RPCs without a REST binding and non-idempotent writes", () => {
    const batch = source.method("/leads.v1.LeadService/BatchGetLeads")!;
    expect(batch.http).toEqual([]);
    expect(batch.access?.services).toBe(true);
    const update = source.method("/leads.v1.LeadService/UpdateLead")!;
    expect(update.http[0]).toMatchObject({ verb: "patch", body: "lead", pathFields: ["lead.id"] });
    expect(update.retryable).toBe(false);
  });

  it("lists the services of a package", () => {
    expect(source.servicesOfPackage("users.v1")).toEqual(["users.v1.DepartmentService", "users.v1.TenantService", "users.v1.UserService"]);
    expect(source.methodsOfPackage("auth.v1").every((method) => method.access !== undefined)).toBe(true);
  });
});
