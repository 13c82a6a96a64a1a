/**
 * The authorization matrix, generated from the access rules declared in
 * proto/: for every RPC of every implemented service, anonymous, another
 * tenant, an insufficient role and a sufficient role (and service callers
 * allowed or not by mesh/topology.yaml) must get the expected code. Calls go
 * straight to each service's gRPC port, so internal RPCs are covered too.
 * An RPC without a rule fails here (and the service refuses to start).
 */
import { Status } from "nice-grpc";
import { Role, type AccessRule } from "@leadmesh/contracts/common/v1/access";
import { rpcsOfPackage, definitionsOfPackage, type RpcDeclaration } from "../../scripts/mesh/contracts";
import { callersOf } from "../../scripts/mesh/local-mesh";
import { loadTopology } from "../../scripts/mesh/topology";
import { grpcClient } from "../harness/clients";
import { authSignedToken, registerTenant, rest, type RegisteredTenant } from "../harness/identity";
import { meshInfo } from "../harness/mesh-info";

const topology = loadTopology();
const implemented = topology.services.filter((service) => service.implemented);
const USER_ROLES = [Role.ROLE_AGENT, Role.ROLE_MANAGER, Role.ROLE_ADMIN];
const claim = (role: Role) => Role[role].replace("ROLE_", "").toLowerCase();
const DENIALS = [Status.UNAUTHENTICATED, Status.PERMISSION_DENIED];

interface Case {
  service: string;
  rpc: RpcDeclaration;
}
const cases: Case[] = implemented.flatMap((service) => rpcsOfPackage(service.package).map((rpc) => ({ service: service.name, rpc })));

/** Path variables of the RPC's REST binding, e.g. ["lead.id"]: the fields that address a resource. */
function addressFields(rpc: RpcDeclaration): string[] {
  return rpc.http[0]?.pathFields ?? [];
}

/** Request with `value` at a proto field path ("lead.id" → { lead: { id } }). */
function requestWith(rpc: RpcDeclaration, fields: Record<string, string>): unknown {
  const partial: Record<string, any> = {};
  for (const [path, value] of Object.entries(fields)) {
    const keys = path.split(".").map((segment) => segment.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()));
    let target = partial;
    for (const key of keys.slice(0, -1)) target = target[key] ??= {};
    target[keys[keys.length - 1]] = value;
  }
  return rpc.requestType.fromPartial(partial);
}

/** The status of the call, and its message (to tell the access layer's refusals from the handler's). */
async function outcomeOf(service: string, rpc: RpcDeclaration, token: string | undefined, request: unknown): Promise<{ code: number; message: string }> {
  const { client, close } = grpcClient(definitionsOfPackage(`${service}.v1`).find((d) => d.fullName === rpc.service)! as never, `127.0.0.1:${meshInfo().services[service].grpc}`, token);
  const method = (client as Record<string, (request: unknown) => Promise<unknown>>)[rpc.method.charAt(0).toLowerCase() + rpc.method.slice(1)];
  try {
    await method(request);
    return { code: Status.OK, message: "" };
  } catch (error) {
    return { code: (error as { code: number }).code, message: (error as { details: string }).details };
  } finally {
    close();
  }
}

async function codeOf(service: string, rpc: RpcDeclaration, token: string | undefined, request: unknown): Promise<number> {
  return (await outcomeOf(service, rpc, token, request)).code;
}

let tenantA: RegisteredTenant;
let tenantB: RegisteredTenant;
/** A resource of tenant A per addressable RPC family, to check that tenant B gets NOT_FOUND. */
const fixtures: Record<string, string> = {};

beforeAll(async () => {
  tenantA = await registerTenant("matrix-a");
  tenantB = await registerTenant("matrix-b");
  fixtures["leads.v1.LeadService"] = (await rest("POST", "/api/v1/leads", { body: { firstName: "M", email: "m@example.com", source: "LEAD_SOURCE_OTHER" }, token: tenantA.accessToken })).json.lead.id;
  // A user of its own for the user RPCs, so suspending or deleting it does not disturb tenant A's admin.
  fixtures["users.v1.UserService"] = (
    await rest("POST", "/api/v1/users:invite", { body: { email: "fixture@matrix.example", displayName: "Fixture", roles: ["ROLE_AGENT"] }, token: tenantA.accessToken })
  ).json.user.id;
  fixtures["users.v1.TenantService"] = tenantA.tenantId;
  fixtures["users.v1.DepartmentService"] = (await rest("POST", "/api/v1/departments", { body: { displayName: "Matrix" }, token: tenantA.accessToken })).json.department.id;
  fixtures["auth.v1.AuthService"] = tenantA.sessionId;
});

function describeRule(rule: AccessRule): string {
  if (rule.public) return "public";
  const parts = [rule.roles.map(claim).join("/") || "no role", rule.selfField && `self(${rule.selfField})`, rule.services && "services"].filter(Boolean);
  return parts.join(" + ");
}

describe.each(cases.map((c) => [`${c.rpc.path}`, c] as const))("%s", (_path, { service, rpc }) => {
  it("declares an access rule", () => {
    expect(rpc.access).toBeDefined();
  });
  if (!rpc.access) return;
  const rule = rpc.access;
  const targetId = () => fixtures[rpc.service] ?? "";
  const addressed = () => Object.fromEntries(addressFields(rpc).map((field) => [field, targetId()]));

  it(`anonymous (${describeRule(rule)})`, async () => {
    const { code, message } = await outcomeOf(service, rpc, undefined, requestWith(rpc, addressed()));
    if (rule.public) {
      // The handler may still refuse the empty request (e.g. an invalid refresh token), but not for lack of an access token.
      expect(code).not.toBe(Status.PERMISSION_DENIED);
      expect(message).not.toMatch(/access token/);
    } else {
      expect(code).toBe(Status.UNAUTHENTICATED);
      expect(message).toMatch(/access token is required/);
    }
  });

  if (rule.public) return;

  const insufficient = USER_ROLES.filter((role) => !rule.roles.includes(role));
  if (insufficient.length > 0) it.each(insufficient.map((role) => [claim(role)]))("insufficient role %s → PERMISSION_DENIED", async (role) => {
    const token = await authSignedToken({ tenant: tenantA.tenantId, roles: [role] });
    // With a self rule the caller addresses someone else, so only the role could grant access.
    expect(await codeOf(service, rpc, token, requestWith(rpc, addressed()))).toBe(Status.PERMISSION_DENIED);
  });

  if (rule.roles.length > 0) it.each(rule.roles.map((role) => [claim(role)]))("sufficient role %s → allowed", async (role) => {
    const token = await authSignedToken({ tenant: tenantA.tenantId, roles: [role] });
    expect(DENIALS).not.toContain(await codeOf(service, rpc, token, requestWith(rpc, addressed())));
  });

  if (rule.selfField) {
    it(`self (${rule.selfField}) with no role → allowed`, async () => {
      const self = fixtures[rpc.service];
      // iat one second ahead: earlier cases may have revoked this user's tokens up to this second.
      const token = await authSignedToken({ tenant: tenantA.tenantId, roles: [], sub: self, iat: Math.floor(Date.now() / 1000) + 1 });
      expect(DENIALS).not.toContain(await codeOf(service, rpc, token, requestWith(rpc, { [rule.selfField]: self })));
    });
  }

  const allowedCallers = callersOf(topology, service);
  const strangers = implemented.map((s) => s.name).filter((name) => !allowedCallers.includes(name) && name !== service);
  if (rule.services && allowedCallers.length > 0) {
    it(`service ${allowedCallers[0]} (declared caller) → allowed`, async () => {
      const token = await authSignedToken({ tenant: tenantA.tenantId, roles: ["service"], sub: allowedCallers[0], sid: "" });
      expect(DENIALS).not.toContain(await codeOf(service, rpc, token, requestWith(rpc, { ...addressed(), tenant_id: tenantA.tenantId })));
    });
  }
  if (strangers.length > 0) {
    it(`service ${strangers[0]} (not a declared caller) → PERMISSION_DENIED`, async () => {
      const token = await authSignedToken({ tenant: tenantA.tenantId, roles: ["service"], sub: strangers[0], sid: "" });
      expect(await codeOf(service, rpc, token, requestWith(rpc, addressed()))).toBe(Status.PERMISSION_DENIED);
    });
  }

  if (addressFields(rpc).length > 0 && rule.roles.length > 0) {
    it("another tenant with a sufficient role → NOT_FOUND", async () => {
      const token = await authSignedToken({ tenant: tenantB.tenantId, roles: [claim(rule.roles[rule.roles.length - 1])] });
      expect(await codeOf(service, rpc, token, requestWith(rpc, addressed()))).toBe(Status.NOT_FOUND);
    });
  }
});

it("covers every RPC of every implemented service", () => {
  expect(cases.length).toBeGreaterThan(0);
  const undeclared = cases.filter((c) => !c.rpc.access).map((c) => c.rpc.path);
  expect(undeclared).toEqual([]);
});
