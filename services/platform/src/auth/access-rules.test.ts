import { AuthServiceDefinition } from "@leadmesh/contracts/auth/v1/auth";
import { AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import { LeadServiceDefinition } from "@leadmesh/contracts/leads/v1/leads";
import { accessRulesOf } from "./access-rules";

describe("access rules from the contracts", () => {
  it("decodes the rule declared on each RPC", () => {
    const rules = accessRulesOf([LeadServiceDefinition, AuthServiceDefinition]);
    expect(rules.get("/leads.v1.LeadService/GetLead")).toEqual(AccessRule.fromPartial({ roles: [Role.ROLE_AGENT, Role.ROLE_MANAGER, Role.ROLE_ADMIN] }));
    expect(rules.get("/leads.v1.LeadService/DeleteLead")!.roles).toEqual([Role.ROLE_MANAGER, Role.ROLE_ADMIN]);
    expect(rules.get("/leads.v1.LeadService/BatchGetLeads")).toEqual(AccessRule.fromPartial({ services: true }));
    expect(rules.get("/auth.v1.AuthService/Login")).toEqual(AccessRule.fromPartial({ public: true }));
  });

  it("refuses a service with an RPC that declares nothing", () => {
    const undeclared = {
      name: "Fake",
      fullName: "fake.v1.Fake",
      methods: { sneaky: { ...LeadServiceDefinition.methods.getLead, name: "Sneaky" } },
    };
    expect(() => accessRulesOf([undeclared as never])).toThrow(/without an access rule.*\/fake\.v1\.Fake\/Sneaky/);
  });

  it("lets an explicit override replace a declared rule (benchmark baselines)", () => {
    const rules = accessRulesOf([LeadServiceDefinition], { "/leads.v1.LeadService/GetLead": AccessRule.fromPartial({ public: true }) });
    expect(rules.get("/leads.v1.LeadService/GetLead")!.public).toBe(true);
    expect(rules.get("/leads.v1.LeadService/ListLeads")!.public).toBe(false);
  });
});
