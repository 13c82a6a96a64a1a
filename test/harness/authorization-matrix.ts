/**
 * The authorization matrix, generated from a mesh model: for every RPC of the
 * chosen services, anonymous, another tenant, an insufficient and a
 * sufficient role, the self field, and service callers allowed or not by the
 * topology must get the expected code. Calls go straight to each service's
 * gRPC port, so internal RPCs are covered too. An RPC without a rule fails
 * here (and the service refuses to start).
 *
 * The expected rule of each RPC comes from the reviewed table
 * test/golden/access-rules.txt (access-rules-table.ts), not from the rules
 * the server enforces: a loosened rule then fails its cases instead of
 * moving the expectation along with it. Refusals must carry the access
 * layer's message (a handler's own refusal does not prove the rule), allowed
 * calls must reach the handler, and the cases that ran are counted per
 * service and kind against minimums, so cases cannot vanish silently.
 *
 * defineAuthorizationMatrix declares the jest cases; the model decides what
 * they are, the target decides which running mesh they hit (the shared test
 * mesh, or a private one with a fixture service).
 */

import { randomUUID } from "node:crypto";
import { type AccessRule, Role } from "@leadmesh/contracts/common/v1/access";
import { Status } from "nice-grpc";
import type { MeshCertificatePaths } from "../../scripts/mesh/certificates";
import { definitionsOfPackage } from "../../scripts/mesh/contracts";
import { implementedServices, type MeshModel, type RpcModel, serviceOf, spiffeIdOf } from "../../scripts/mesh/model";
import { ACCESS_RULES_GOLDEN, committedAccessRules, formatRule, UPDATE_ACCESS_RULES_COMMAND } from "./access-rules-table";
import { type ConnectOptions, grpcClient } from "./clients";
import { authSignedToken, type RegisteredTenant, registerTenant } from "./identity";

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

/** The kinds of case the matrix counts (see MatrixOptions.minimumCases). */
export const CASE_KINDS = ["anonymous", "insufficient role", "other tenant", "allowed caller", "outside caller"] as const;
export type CaseKind = (typeof CASE_KINDS)[number];

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
   * service ("leads.v1.LeadService" → a lead id). Created by tenant A's admin
   * (tenant A's `adminId` owns them) unless they are users.
   */
  seed?: (tenantA: RegisteredTenant, target: MatrixTarget) => Promise<Record<string, string>>;
  /**
   * A new resource of tenant A for one case of a destructive RPC (an RPC
   * bound to HTTP DELETE), by gRPC service: each such case gets its own, so
   * neither it nor later cases pass against a resource that is already gone.
   * Required when a covered RPC is destructive and addressed.
   */
  freshResource?: (grpcService: string, tenantA: RegisteredTenant, target: MatrixTarget) => Promise<string>;
  /**
   * The least number of cases of each kind that must have run, per service
   * (the counts as they are when the table is reviewed). Without it every
   * covered service must run at least one anonymous and one allowed case.
   */
  minimumCases?: Record<string, Partial<Record<CaseKind, number>>>;
  /** The reviewed rules (test/golden/access-rules.txt by default). */
  expectedRules?: Map<string, AccessRule>;
}

const USER_ROLES = [Role.ROLE_AGENT, Role.ROLE_MANAGER, Role.ROLE_ADMIN];
const claim = (role: Role) => Role[role].replace("ROLE_", "").toLowerCase();
/**
 * What an allowed call may answer: success, or a refusal of the request
 * itself that only a handler gives (the matrix's requests are minimal and may
 * address a resource the caller cannot see). Never a denial, and never a code
 * that stands for a defect (INTERNAL, UNAVAILABLE, UNIMPLEMENTED, UNKNOWN…),
 * which would otherwise pass as "allowed".
 */
const HANDLER_ANSWERS = [
  Status.OK,
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.FAILED_PRECONDITION,
  Status.ABORTED,
  Status.OUT_OF_RANGE,
];

interface Case {
  service: string;
  protoPackage: string;
  rpc: RpcModel;
}

interface Outcome {
  code: number;
  message: string;
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

/** Deletes what it addresses: its cases need a resource each. */
export function isDestructive(rpc: RpcModel): boolean {
  return rpc.http[0]?.verb === "delete";
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
async function outcomeOf(mesh: MatrixTarget, target: Case, token: string | undefined, request: unknown, as: ConnectOptions = {}): Promise<Outcome> {
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

const shown = (outcome: Outcome) => `${Status[outcome.code]}${outcome.message ? `: ${outcome.message}` : ""}`;

/** The call reached the handler, which answered; on failure the answer is in the message. */
function expectAnsweredByHandler(outcome: Outcome): void {
  if (!HANDLER_ANSWERS.includes(outcome.code)) {
    throw new Error(`an allowed call must reach its handler (${HANDLER_ANSWERS.map((code) => Status[code]).join(", ")}), got ${shown(outcome)}`);
  }
}

/** Refused by the access layer itself (its message, not a handler's refusal with the same code). */
function expectRefused(outcome: Outcome, code: Status, accessLayerMessage: RegExp): void {
  expect(shown(outcome)).toMatch(new RegExp(`^${Status[code]}: `));
  expect(outcome.message).toMatch(accessLayerMessage);
}

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

function describeRule(rule: AccessRule): string {
  if (rule.public) return "public";
  const parts = [rule.roles.map(claim).join("/") || "no role", rule.selfField && `self(${rule.selfField})`, rule.services && "services"].filter(Boolean);
  return parts.join(" + ");
}

export function defineAuthorizationMatrix(options: MatrixOptions): void {
  const { model } = options;
  const cases = matrixCases(model, options.services);
  const covered = [...new Set(cases.map((c) => c.service))];
  const implemented = implementedServices(model).map((service) => service.name);
  const expected = options.expectedRules ?? committedAccessRules();
  let tenantA: RegisteredTenant;
  let tenantB: RegisteredTenant;
  let fixtures: Record<string, string> = {};
  const ran = new Map<string, number>();
  const count = (target: Case, kind: CaseKind) => ran.set(`${target.service}\t${kind}`, (ran.get(`${target.service}\t${kind}`) ?? 0) + 1);
  // iat one second ahead: earlier cases (Logout, LogoutEverywhere, RevokeSession) may have revoked this user's tokens up to this second.
  const token = (claims: Parameters<typeof authSignedToken>[0]) =>
    authSignedToken({ iat: Math.floor(Date.now() / 1000) + 1, ...claims }, undefined, options.target().mongoUrl);
  // The server must present the SPIFFE id of the service under test.
  const outcome = async (target: Case, kind: CaseKind, bearer: string | undefined, request: unknown, as: ConnectOptions = {}) => {
    const result = await outcomeOf(options.target(), target, bearer, request, { serverId: spiffeIdOf(model, target.service), ...as });
    count(target, kind);
    return result;
  };

  beforeAll(async () => {
    const mesh = options.target();
    tenantA = await registerTenant("matrix-a", mesh.ingressUrl);
    tenantB = await registerTenant("matrix-b", mesh.ingressUrl);
    fixtures = (await options.seed?.(tenantA, mesh)) ?? {};
  });

  it(`covers every RPC of the chosen services, each with the rule reviewed in ${ACCESS_RULES_GOLDEN.split("/").slice(-3).join("/")}`, () => {
    expect(cases.length).toBeGreaterThan(0);
    expect(cases.filter((c) => !c.rpc.access).map((c) => c.rpc.path)).toEqual([]);
    const drift = cases
      .filter((c) => c.rpc.access && (!expected.has(c.rpc.path) || formatRule(expected.get(c.rpc.path) as AccessRule) !== formatRule(c.rpc.access)))
      .map(
        (c) =>
          `${c.rpc.path}: reviewed ${expected.has(c.rpc.path) ? formatRule(expected.get(c.rpc.path) as AccessRule) : "(absent)"}, declared ${formatRule(c.rpc.access as AccessRule)}`,
      );
    if (drift.length > 0) {
      throw new Error(
        `access rules differ from the reviewed table (if the change is intended: ${UPDATE_ACCESS_RULES_COMMAND}, review and commit the diff):\n${drift.join("\n")}`,
      );
    }
  });

  describe.each(cases.map((c) => [c.rpc.path, c] as const))("%s", (_path, target) => {
    const { rpc } = target;
    const rule = expected.get(rpc.path);
    if (!rule) return;
    const destructive = isDestructive(rpc) && addressFields(rpc).length > 0;
    // Under a self rule the addressed user owns itself (its own sub grants access); anything else belongs to tenant A's admin, who created it.
    const ownsItself = rule.selfField !== "";
    const sharedId = () => fixtures[rpc.path] ?? fixtures[rpc.grpcService] ?? "";
    /** The resource a case addresses: the shared fixture, or for a destructive RPC a new one. */
    const resourceId = async () => {
      if (addressFields(rpc).length === 0) return "";
      if (!destructive) return sharedId();
      if (!options.freshResource) throw new Error(`${rpc.path} deletes what it addresses: give the matrix a freshResource for ${rpc.grpcService}`);
      // A new token of tenant A's admin: earlier cases (LogoutEverywhere with its sub) may have revoked the one from registration.
      const admin = await token({ tenant: tenantA.tenantId, roles: ["admin"], sub: tenantA.adminId });
      return options.freshResource(rpc.grpcService, { ...tenantA, accessToken: admin }, options.target());
    };
    const addressing = (id: string) => Object.fromEntries(addressFields(rpc).map((field) => [field, id]));
    const ownerOf = (id: string) => (ownsItself ? id : tenantA.adminId);
    const accessTokenRequired = /access token is required/;
    const rolesRefused = new RegExp(`do not allow ${escaped(rpc.path)}$`);
    const peerRefused = new RegExp(`may not call ${escaped(rpc.path)}`);

    it(`anonymous (${describeRule(rule)})`, async () => {
      const answer = await outcome(target, "anonymous", undefined, requestWith(target, addressing(await resourceId())));
      if (rule.public) {
        // The handler may still refuse the empty request (e.g. an invalid refresh token), but not for lack of an access token, nor by failing.
        expect(answer.code).not.toBe(Status.PERMISSION_DENIED);
        expect(answer.message).not.toMatch(/access token/);
        if (answer.code !== Status.UNAUTHENTICATED) expectAnsweredByHandler(answer);
      } else {
        expectRefused(answer, Status.UNAUTHENTICATED, accessTokenRequired);
      }
    });

    if (rule.public) return;

    const insufficient = USER_ROLES.filter((role) => !rule.roles.includes(role));
    if (insufficient.length > 0) {
      it.each(insufficient.map((role) => [claim(role)]))("insufficient role %s → PERMISSION_DENIED", async (role) => {
        const id = await resourceId();
        // With a self rule the caller addresses someone else, so only the role could grant access.
        const bearer = await token({ tenant: tenantA.tenantId, roles: [role] });
        expectRefused(await outcome(target, "insufficient role", bearer, requestWith(target, addressing(id))), Status.PERMISSION_DENIED, rolesRefused);
      });
    }

    if (rule.roles.length > 0) {
      it.each(rule.roles.map((role) => [claim(role)]))("sufficient role %s → answered by the handler", async (role) => {
        const id = await resourceId();
        // A user resource is addressed by someone else (an admin acting on itself may be refused by the handler, e.g. deleting itself).
        const bearer = await token({ tenant: tenantA.tenantId, roles: [role], ...(ownsItself ? {} : { sub: tenantA.adminId }) });
        const answer = await outcome(target, "allowed caller", bearer, requestWith(target, addressing(id)));
        expectAnsweredByHandler(answer);
        // Its own resource: a deletion of it must succeed, not pass as NOT_FOUND.
        if (destructive && role === claim(rule.roles[rule.roles.length - 1])) expect(shown(answer)).toBe("OK");
      });
    }

    if (rule.selfField) {
      it(`self (${rule.selfField}) with no role → answered by the handler`, async () => {
        const self = fixtures[rpc.grpcService];
        expect(self).toBeTruthy();
        const bearer = await token({ tenant: tenantA.tenantId, roles: [], sub: self });
        expectAnsweredByHandler(await outcome(target, "allowed caller", bearer, requestWith(target, { [rule.selfField]: self })));
      });
    }

    // Services call with their certificate (mTLS identity) and the tenant they act for, no token.
    const asService = (name: string): ConnectOptions => ({ identity: name, tenant: tenantA.tenantId });
    const strangers = implemented.filter((name) => !rpc.peers.includes(name) && name !== target.service);
    if (rule.services && rpc.servicePeers.length > 0) {
      it(`service ${rpc.servicePeers[0]} (allowed peer of this RPC) → answered by the handler`, async () => {
        const request = requestWith(target, { ...addressing(await resourceId()), tenant_id: tenantA.tenantId });
        expectAnsweredByHandler(await outcome(target, "allowed caller", undefined, request, asService(rpc.servicePeers[0])));
      });
    }
    if (strangers.length > 0) {
      it(`service ${strangers[0]} (not an allowed peer of this RPC) → PERMISSION_DENIED`, async () => {
        const answer = await outcome(target, "outside caller", undefined, requestWith(target, addressing(await resourceId())), asService(strangers[0]));
        expectRefused(answer, Status.PERMISSION_DENIED, peerRefused);
      });
    }

    // The edge forwards browsers' calls: it reaches exactly the RPCs the edge routes, whatever token it carries.
    const edge = model.mesh.edge;
    if (!rpc.peers.includes(edge)) {
      it(`edge identity ${edge} (RPC not routed at the edge) → PERMISSION_DENIED`, async () => {
        const bearer = rule.roles.length > 0 ? await token({ tenant: tenantA.tenantId, roles: [claim(rule.roles[rule.roles.length - 1])] }) : undefined;
        const answer = await outcome(target, "outside caller", bearer, requestWith(target, addressing(await resourceId())), { identity: edge });
        expectRefused(answer, Status.PERMISSION_DENIED, peerRefused);
        expect(answer.message).toContain(edge);
      });
    }

    if (addressFields(rpc).length > 0) {
      // Tenant B's tokens carry the owner's sub, so only the tenant check can refuse; tenant A's owner then reaches the same resource.
      const grants: Array<[string, Role[]]> = [...rule.roles.map((role): [string, Role[]] => [`role ${claim(role)}`, [role]])];
      if (rule.selfField) grants.push([`self (${rule.selfField}), no role`, []]);
      if (grants.length > 0 && options.seed) {
        it.each(grants)("another tenant, the owner's sub, %s → NOT_FOUND", async (_grant, roles) => {
          const id = await resourceId();
          if (id === "") throw new Error(`the seed gave no resource of tenant A for ${rpc.path} (by RPC path or ${rpc.grpcService})`);
          const request = requestWith(target, addressing(id));
          const other = await outcome(target, "other tenant", await token({ tenant: tenantB.tenantId, roles: roles.map(claim), sub: ownerOf(id) }), request);
          expect(shown(other)).toMatch(/^NOT_FOUND: /);
          const owner = await outcome(target, "allowed caller", await token({ tenant: tenantA.tenantId, roles: roles.map(claim), sub: ownerOf(id) }), request);
          expectAnsweredByHandler(owner);
          expect(shown(owner)).not.toMatch(/^NOT_FOUND: /);
        });
      } else if (grants.length > 0) {
        // Nothing to seed (a fixture service without a create RPC): only that an unknown id is not found, named as the weaker case it is.
        it.each(grants)("another tenant, nothing seeded (unknown id), %s → NOT_FOUND", async (_grant, roles) => {
          const bearer = await token({ tenant: tenantB.tenantId, roles: roles.map(claim), sub: tenantA.adminId });
          expect(shown(await outcome(target, "other tenant", bearer, requestWith(target, addressing(randomUUID()))))).toMatch(/^NOT_FOUND: /);
        });
      }
    }
  });

  it("ran at least the expected number of cases of each kind for each service", () => {
    const counted = (service: string, kind: CaseKind) => ran.get(`${service}\t${kind}`) ?? 0;
    const table = covered.map((service) => `${service}: ${CASE_KINDS.map((kind) => `${kind} ${counted(service, kind)}`).join(", ")}`);
    const short = covered.flatMap((service) => {
      const minimum = options.minimumCases?.[service] ?? { anonymous: 1, "allowed caller": 1 };
      return CASE_KINDS.filter((kind) => counted(service, kind) < (minimum[kind] ?? 0)).map(
        (kind) => `${service} ${kind}: ran ${counted(service, kind)}, expected at least ${minimum[kind]}`,
      );
    });
    if (short.length > 0) throw new Error(`matrix cases vanished:\n${short.join("\n")}\nran:\n${table.join("\n")}`);
    if (options.minimumCases) expect(Object.keys(options.minimumCases).sort()).toEqual([...covered].sort());
  });
}
