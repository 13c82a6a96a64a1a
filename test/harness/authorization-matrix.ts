/**
 * The authorization matrix, generated from a mesh model: for every RPC of the
 * chosen services, anonymous, another tenant, an insufficient and a
 * sufficient role, the self field, and service callers allowed or not by the
 * topology must get the expected code. Calls go straight to each service's
 * gRPC port, so internal RPCs are covered too. An RPC without a rule fails
 * here (and the service refuses to start).
 *
 * defineAuthorizationMatrix declares the jest cases; the model decides what
 * they are, the target decides which running mesh they hit (the shared test
 * mesh, or a private one with a fixture service).
 */

import { type AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import { Status } from "nice-grpc";
import type { MeshCertificatePaths } from "../../scripts/mesh/certificates";
import { definitionsOfPackage } from "../../scripts/mesh/contracts";
import { implementedServices, type MeshModel, type RpcModel, serviceOf, spiffeIdOf } from "../../scripts/mesh/model";
import { type ConnectOptions, grpcClient } from "./clients";
import { authSignedToken, type RegisteredTenant, registerTenant } from "./identity";
import { DEFECT_CODES } from "./status-codes";

export interface MatrixTarget {
  /** Ingress of the mesh (tenants register through it). */
  ingressUrl: string;
  /** Its database (the auth service's signing key is read from it). */
  mongoUrl: string;
  /** gRPC "host:port" of a service. */
  grpcAddress(service: string): string;
  /** The mesh's certificates (RunningMesh.tls); the shared test mesh's by default. */
  certificates?: MeshCertificatePaths;
}

export interface MatrixOptions {
  model: MeshModel;
  /** Services to cover; every implemented one by default. */
  services?: string[];
  /** The running mesh; called once the cases run (after the caller's beforeAll started it). */
  target: () => MatrixTarget;
  /**
   * Resources of tenant A for addressed RPCs: by RPC path when an RPC
   * addresses another resource than its service's others
   * ("/buyers.v1.BuyerService/GetLeadSale" → a sale id), otherwise by gRPC
   * service ("leads.v1.LeadService" → a lead id).
   */
  seed?: (tenantA: RegisteredTenant, target: MatrixTarget) => Promise<Record<string, string>>;
}

const USER_ROLES = [Role.ROLE_AGENT, Role.ROLE_MANAGER, Role.ROLE_ADMIN];
const claim = (role: Role) => Role[role].replace("ROLE_", "").toLowerCase();
const DENIALS = [Status.UNAUTHENTICATED, Status.PERMISSION_DENIED];
/**
 * An allowed call must reach its handler and get an answer the handler can
 * give: neither a denial nor a code that stands for a defect (INTERNAL,
 * UNAVAILABLE, UNIMPLEMENTED…), which would otherwise pass as "allowed".
 */
const NOT_AN_ALLOWED_ANSWER = [...DENIALS, ...DEFECT_CODES].map((code) => Status[code]);

interface Case {
  service: string;
  protoPackage: string;
  rpc: RpcModel;
}

export function matrixCases(model: MeshModel, services = implementedServices(model).map((service) => service.name)): Case[] {
  return services.flatMap((name) => {
    const service = serviceOf(model, name);
    return service.rpcs.map((rpc) => ({ service: name, protoPackage: service.package, rpc }));
  });
}

/** Path variables of the RPC's REST binding, e.g. ["lead.id"]: the fields that address a resource. */
function addressFields(rpc: RpcModel): string[] {
  return rpc.http[0]?.pathFields ?? [];
}

function generatedMethod(target: Case) {
  const definition = definitionsOfPackage(target.protoPackage).find((candidate) => candidate.fullName === target.rpc.grpcService);
  const method = definition && Object.entries(definition.methods).find(([, candidate]) => candidate.name === target.rpc.method);
  if (!definition || !method) throw new Error(`${target.rpc.path} has no generated client code: run 'npm run generate'`);
  return { definition, clientMethod: method[0], requestType: method[1].requestType };
}

/** Request with `value` at each proto field path ("lead.id" → { lead: { id } }). */
type FieldTree = { [key: string]: string | FieldTree };

function requestWith(target: Case, fields: Record<string, string>): unknown {
  const partial: FieldTree = {};
  for (const [path, value] of Object.entries(fields)) {
    const keys = path.split(".").map((segment) => segment.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()));
    let node = partial;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== "object") node[key] = {};
      node = node[key] as FieldTree;
    }
    node[keys[keys.length - 1]] = value;
  }
  return generatedMethod(target).requestType.fromPartial(partial);
}

/** The status of the call, and its message (to tell the access layer's refusals from the handler's). */
async function outcomeOf(
  mesh: MatrixTarget,
  target: Case,
  token: string | undefined,
  request: unknown,
  as: ConnectOptions = {},
): Promise<{ code: number; message: string }> {
  const { definition, clientMethod } = generatedMethod(target);
  // As the operator (allowed on every RPC, so the user's token decides) unless `as` names a service identity.
  const { client, close } = grpcClient(definition as never, mesh.grpcAddress(target.service), token, {
    certificates: mesh.certificates,
    ...as,
  });
  const method = (client as Record<string, (request: unknown) => Promise<unknown>>)[clientMethod];
  try {
    await method(request);
    return { code: Status.OK, message: "" };
  } catch (error) {
    return { code: (error as { code: number }).code, message: (error as { details: string }).details };
  } finally {
    close();
  }
}

function describeRule(rule: AccessRule): string {
  if (rule.public) return "public";
  const parts = [rule.roles.map(claim).join("/") || "no role", rule.selfField && `self(${rule.selfField})`, rule.services && "services"].filter(Boolean);
  return parts.join(" + ");
}

export function defineAuthorizationMatrix(options: MatrixOptions): void {
  const { model } = options;
  const cases = matrixCases(model, options.services);
  const implemented = implementedServices(model).map((service) => service.name);
  let tenantA: RegisteredTenant;
  let tenantB: RegisteredTenant;
  let fixtures: Record<string, string> = {};
  const token = (claims: Parameters<typeof authSignedToken>[0]) => authSignedToken(claims, undefined, options.target().mongoUrl);
  // The server must present the SPIFFE id of the service under test.
  const outcome = (target: Case, bearer: string | undefined, request: unknown, as: ConnectOptions = {}) =>
    outcomeOf(options.target(), target, bearer, request, { serverId: spiffeIdOf(model, target.service), ...as });
  const codeOf = async (target: Case, bearer: string | undefined, request: unknown, as?: ConnectOptions) => (await outcome(target, bearer, request, as)).code;

  beforeAll(async () => {
    const mesh = options.target();
    tenantA = await registerTenant("matrix-a", mesh.ingressUrl);
    tenantB = await registerTenant("matrix-b", mesh.ingressUrl);
    fixtures = (await options.seed?.(tenantA, mesh)) ?? {};
  });

  it("covers every RPC of the chosen services, each with an access rule", () => {
    expect(cases.length).toBeGreaterThan(0);
    expect(cases.filter((c) => !c.rpc.access).map((c) => c.rpc.path)).toEqual([]);
  });

  describe.each(cases.map((c) => [c.rpc.path, c] as const))("%s", (_path, target) => {
    const { rpc } = target;
    if (!rpc.access) return;
    const rule = rpc.access;
    const targetId = () => fixtures[rpc.path] ?? fixtures[rpc.grpcService] ?? "";
    const addressed = () => Object.fromEntries(addressFields(rpc).map((field) => [field, targetId()]));

    it(`anonymous (${describeRule(rule)})`, async () => {
      const { code, message } = await outcome(target, undefined, requestWith(target, addressed()));
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
    if (insufficient.length > 0) {
      it.each(insufficient.map((role) => [claim(role)]))("insufficient role %s → PERMISSION_DENIED", async (role) => {
        const bearer = await token({ tenant: tenantA.tenantId, roles: [role] });
        // With a self rule the caller addresses someone else, so only the role could grant access.
        expect(await codeOf(target, bearer, requestWith(target, addressed()))).toBe(Status.PERMISSION_DENIED);
      });
    }

    if (rule.roles.length > 0) {
      it.each(rule.roles.map((role) => [claim(role)]))("sufficient role %s → allowed", async (role) => {
        const bearer = await token({ tenant: tenantA.tenantId, roles: [role] });
        expect(NOT_AN_ALLOWED_ANSWER).not.toContain(Status[await codeOf(target, bearer, requestWith(target, addressed()))]);
      });
    }

    if (rule.selfField) {
      it(`self (${rule.selfField}) with no role → allowed`, async () => {
        const self = fixtures[rpc.grpcService];
        // iat one second ahead: earlier cases may have revoked this user's tokens up to this second.
        const bearer = await token({ tenant: tenantA.tenantId, roles: [], sub: self, iat: Math.floor(Date.now() / 1000) + 1 });
        expect(NOT_AN_ALLOWED_ANSWER).not.toContain(Status[await codeOf(target, bearer, requestWith(target, { [rule.selfField]: self }))]);
      });
    }

    // Services call with their certificate (mTLS identity) and the tenant they act for, no token.
    const asService = (name: string): ConnectOptions => ({ identity: name, tenant: tenantA.tenantId });
    const strangers = implemented.filter((name) => !rpc.peers.includes(name) && name !== target.service);
    if (rule.services && rpc.servicePeers.length > 0) {
      it(`service ${rpc.servicePeers[0]} (allowed peer of this RPC) → allowed`, async () => {
        const request = requestWith(target, { ...addressed(), tenant_id: tenantA.tenantId });
        expect(NOT_AN_ALLOWED_ANSWER).not.toContain(Status[await codeOf(target, undefined, request, asService(rpc.servicePeers[0]))]);
      });
    }
    if (strangers.length > 0) {
      it(`service ${strangers[0]} (not an allowed peer of this RPC) → PERMISSION_DENIED`, async () => {
        expect(await codeOf(target, undefined, requestWith(target, addressed()), asService(strangers[0]))).toBe(Status.PERMISSION_DENIED);
      });
    }

    // The edge forwards browsers' calls: it reaches exactly the RPCs the edge routes, whatever token it carries.
    const edge = model.mesh.edge;
    if (!rpc.peers.includes(edge)) {
      it(`edge identity ${edge} (RPC not routed at the edge) → PERMISSION_DENIED`, async () => {
        const bearer = rule.roles.length > 0 ? await token({ tenant: tenantA.tenantId, roles: [claim(rule.roles[rule.roles.length - 1])] }) : undefined;
        const { code, message } = await outcome(target, bearer, requestWith(target, addressed()), { identity: edge });
        expect(code).toBe(Status.PERMISSION_DENIED);
        expect(message).toContain(edge);
      });
    }

    if (addressFields(rpc).length > 0 && rule.roles.length > 0) {
      it("another tenant with a sufficient role → NOT_FOUND", async () => {
        const bearer = await token({ tenant: tenantB.tenantId, roles: [claim(rule.roles[rule.roles.length - 1])] });
        expect(await codeOf(target, bearer, requestWith(target, addressed()))).toBe(Status.NOT_FOUND);
      });
    }
  });
}
