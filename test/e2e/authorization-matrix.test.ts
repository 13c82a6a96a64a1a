/**
 * The authorization matrix of every implemented service on the shared test
 * mesh, generated from the mesh model (access rules declared in proto/,
 * callers declared in mesh/topology.yaml): see test/harness/authorization-matrix.ts.
 */
import { loadMeshModel } from "../../scripts/mesh/model";
import { defineAuthorizationMatrix } from "../harness/authorization-matrix";
import { type Api, createQualifiedLead, distribute, expectOk, fundedBuyer } from "../harness/distribution";
import { type RegisteredTenant, rest } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";

/** A buyer of tenant A with a sale of a lead, for the buyer RPCs and the sale RPCs (which address the sale, not the buyer). */
async function seedSale(api: Api): Promise<{ buyerId: string; saleId: string }> {
  const buyer = await fundedBuyer(api, 10_000, { displayName: "Matrix buyer", priceMinor: 500 });
  const lead = await createQualifiedLead(api, { firstName: "Sold", email: "sold@example.com" });
  const sold = expectOk(await distribute(api, lead.id, { buyerId: buyer.id }), `distributing lead ${lead.id} to the matrix buyer`);
  return { buyerId: buyer.id, saleId: sold.json.sale.leadSaleId };
}

/** A resource of tenant A per addressable gRPC service (or RPC), to check that tenant B gets NOT_FOUND. */
async function seedResources(tenantA: RegisteredTenant): Promise<Record<string, string>> {
  const token = tenantA.accessToken;
  const { buyerId, saleId } = await seedSale({ token });
  return {
    "buyers.v1.BuyerService": buyerId,
    "/buyers.v1.BuyerService/GetLeadSale": saleId,
    "/buyers.v1.BuyerService/ReturnLeadSale": saleId,
    "leads.v1.LeadService": (await rest("POST", "/api/v1/leads", { body: { firstName: "M", email: "m@example.com", source: "LEAD_SOURCE_OTHER" }, token })).json
      .lead.id,
    // A user of its own for the user RPCs, so suspending or deleting it does not disturb tenant A's admin.
    "users.v1.UserService": (
      await rest("POST", "/api/v1/users:invite", { body: { email: "fixture@matrix.example", displayName: "Fixture", roles: ["ROLE_AGENT"] }, token })
    ).json.user.id,
    "users.v1.TenantService": tenantA.tenantId,
    "users.v1.DepartmentService": (await rest("POST", "/api/v1/departments", { body: { displayName: "Matrix" }, token })).json.department.id,
    "auth.v1.AuthService": tenantA.sessionId,
  };
}

defineAuthorizationMatrix({
  model: loadMeshModel(),
  target: () => {
    const info = meshInfo();
    return { ingressUrl: info.ingressUrl, mongoUrl: info.mongoUrl, grpcAddress: (service) => `127.0.0.1:${info.services[service].grpc}` };
  },
  seed: seedResources,
});
