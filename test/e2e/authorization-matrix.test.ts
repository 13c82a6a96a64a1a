/**
 * The authorization matrix of every implemented service on the shared test
 * mesh, generated from the mesh model (callers declared in
 * mesh/topology.yaml) and the reviewed access rules
 * (test/golden/access-rules.txt): see test/harness/authorization-matrix.ts.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadMeshModel } from "../../scripts/mesh/model";
import { ACCESS_RULES_GOLDEN, renderAccessRules, UPDATE_ACCESS_RULES_COMMAND } from "../harness/access-rules-table";
import { defineAuthorizationMatrix, type MatrixTarget } from "../harness/authorization-matrix";
import { type Api, createBuyer, createQualifiedLead, distribute, expectOk, fundedBuyer } from "../harness/distribution";
import { PASSWORD, type RegisteredTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";

const model = loadMeshModel();

/** A buyer of tenant A with a sale of a lead, for the buyer RPCs and the sale RPCs (which address the sale, not the buyer). */
async function seedSale(api: Api): Promise<{ buyerId: string; saleId: string }> {
  const buyer = await fundedBuyer(api, 10_000, { displayName: "Matrix buyer", priceMinor: 500 });
  const lead = await createQualifiedLead(api, { firstName: "Sold", email: "sold@example.com" });
  const sold = expectOk(await distribute(api, lead.id, { buyerId: buyer.id }), `distributing lead ${lead.id} to the matrix buyer`);
  return { buyerId: buyer.id, saleId: sold.json.sale.leadSaleId };
}

const created = async (what: string, method: string, path: string, body: unknown, token: string) =>
  expectOk(await rest(method, path, { body, token }), what).json;

const newLead = (token: string) =>
  created("creating the matrix lead", "POST", "/api/v1/leads", { firstName: "M", email: "m@example.com", source: "LEAD_SOURCE_OTHER" }, token).then(
    (json) => json.lead.id as string,
  );
const newUser = (token: string) =>
  created(
    "inviting a matrix user",
    "POST",
    "/api/v1/users:invite",
    { email: `fixture-${randomUUID().slice(0, 8)}@matrix.example`, displayName: "Fixture", roles: ["ROLE_AGENT"] },
    token,
  ).then((json) => json.user.id as string);
const newDepartment = (token: string) =>
  created("creating a matrix department", "POST", "/api/v1/departments", { displayName: `Matrix ${randomUUID().slice(0, 8)}` }, token).then(
    (json) => json.department.id as string,
  );

/** A resource of tenant A per addressable gRPC service (or RPC), to check that tenant B gets NOT_FOUND. */
async function seedResources(tenantA: RegisteredTenant): Promise<Record<string, string>> {
  const token = tenantA.accessToken;
  const { buyerId, saleId } = await seedSale({ token });
  return {
    "buyers.v1.BuyerService": buyerId,
    "/buyers.v1.BuyerService/GetLeadSale": saleId,
    "/buyers.v1.BuyerService/ReturnLeadSale": saleId,
    "leads.v1.LeadService": await newLead(token),
    // A user of its own for the user RPCs, so suspending it does not disturb tenant A's admin.
    "users.v1.UserService": await newUser(token),
    "users.v1.TenantService": tenantA.tenantId,
    "users.v1.DepartmentService": await newDepartment(token),
    "auth.v1.AuthService": tenantA.sessionId,
  };
}

/** A new resource of tenant A for one case of a destructive RPC (DeleteLead, DeleteUser, RevokeSession…). */
async function freshResource(grpcService: string, tenantA: RegisteredTenant, target: MatrixTarget): Promise<string> {
  const token = tenantA.accessToken;
  switch (grpcService) {
    case "auth.v1.AuthService": {
      const login = { tenantId: tenantA.tenantId, email: tenantA.email, password: PASSWORD };
      return expectOk(await rest("POST", "/api/v1/auth:login", { body: login, baseUrl: target.ingressUrl }), "signing tenant A's admin in").json.tokens
        .sessionId;
    }
    case "users.v1.UserService":
      return newUser(token);
    case "users.v1.DepartmentService":
      return newDepartment(token);
    case "leads.v1.LeadService":
      return newLead(token);
    case "buyers.v1.BuyerService":
      return (await createBuyer({ token })).id;
    default:
      throw new Error(`no fresh matrix resource for ${grpcService}`);
  }
}

describe("the reviewed access rules", () => {
  it(`${ACCESS_RULES_GOLDEN.split("/").slice(-3).join("/")} is what the contracts declare`, () => {
    const declared = renderAccessRules(model);
    const committed = readFileSync(ACCESS_RULES_GOLDEN, "utf8");
    if (committed !== declared) {
      throw new Error(
        `the access rules in proto/ differ from the reviewed table: if the change is intended, run '${UPDATE_ACCESS_RULES_COMMAND}' and commit the diff for review`,
      );
    }
    expect(declared).toBe(committed);
  });
});

defineAuthorizationMatrix({
  model,
  target: () => {
    const info = meshInfo();
    return { ingressUrl: info.ingressUrl, mongoUrl: info.mongoUrl, grpcAddress: (service) => `127.0.0.1:${info.services[service].grpc}` };
  },
  seed: seedResources,
  freshResource,
  // The cases as reviewed with access-rules.txt: fewer means some stopped being generated or running.
  minimumCases: {
    auth: { anonymous: 11, "insufficient role": 0, "other tenant": 3, "allowed caller": 18, "outside caller": 5 },
    users: { anonymous: 19, "insufficient role": 31, "other tenant": 18, "allowed caller": 52, "outside caller": 23 },
    leads: { anonymous: 11, "insufficient role": 9, "other tenant": 18, "allowed caller": 43, "outside caller": 13 },
    buyers: { anonymous: 14, "insufficient role": 14, "other tenant": 23, "allowed caller": 52, "outside caller": 15 },
  },
});
