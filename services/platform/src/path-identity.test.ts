/**
 * The REST path against the request, from the contracts' bindings; the
 * end-to-end proof through Envoy is test/e2e/path-vs-body.test.ts.
 */
import { Metadata, Status } from "nice-grpc-common";
import { compilePathTemplate, matchPathTemplate } from "./contract/path-template";
import { InvalidArgumentError } from "./errors";
import type { MeshPeer } from "./mtls/peer-access";
import { ORIGINAL_PATH_HEADER, pathIdentityCheck } from "./path-identity";

const UPDATE_USER = "/users.v1.UserService/UpdateUser";
const CHANGE_ROLES = "/users.v1.UserService/ChangeUserRoles";
const UPDATE_PREFERENCES = "/notification.v1.NotificationService/UpdateNotificationPreferences";
const GET_JWKS = "/auth.v1.AuthService/GetJwks";
const check = pathIdentityCheck([UPDATE_USER, CHANGE_ROLES, UPDATE_PREFERENCES, GET_JWKS]);

const edge: MeshPeer = { spiffeId: "spiffe://cluster.local/ns/leadmesh/sa/ingress", name: "ingress", isService: false, isEdge: true };
const operator: MeshPeer = { spiffeId: "spiffe://cluster.local/ns/leadmesh/sa/operator", name: "operator", isService: false, isEdge: false };

function transcoded(path: string): Metadata {
  return Metadata({ [ORIGINAL_PATH_HEADER]: path });
}

function violationsOf(run: () => void) {
  try {
    run();
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    return { message: error.message, violations: error.fieldViolations };
  }
  return undefined;
}

describe("path templates", () => {
  it.each([
    ["/api/v1/users/{user.id}", "/api/v1/users/u1", { "user.id": "u1" }],
    ["/api/v1/users/{id}:changeRoles", "/api/v1/users/u1:changeRoles", { id: "u1" }],
    [
      "/api/v1/users/{notification_preferences.user_id}/notificationPreferences",
      "/api/v1/users/u%201/notificationPreferences",
      { "notification_preferences.user_id": "u%201" },
    ],
    ["/v1/{name=shelves/*/books/*}", "/v1/shelves/s1/books/b2", { name: "shelves/s1/books/b2" }],
    ["/v1/{path=**}:get", "/v1/a/b/c:get", { path: "a/b/c" }],
  ])("%s matches %s", (pattern, path, values) => {
    expect(Object.fromEntries(matchPathTemplate(compilePathTemplate(pattern), path) ?? [])).toEqual(values);
  });

  it.each([
    ["/api/v1/users/{id}:changeRoles", "/api/v1/users/u1:suspend"],
    ["/api/v1/users/{user.id}", "/api/v1/users/u1/extra"],
    ["/api/v1/users/{user.id}", "/api/v1/leads/u1"],
  ])("%s does not match %s", (pattern, path) => {
    expect(matchPathTemplate(compilePathTemplate(pattern), path)).toBeUndefined();
  });
});

describe("a transcoded request against its REST path", () => {
  it("refuses a body id that differs from the path, naming both values on the bound field", () => {
    const refused = violationsOf(() => check(UPDATE_USER, { user: { id: "u2", title: "x" } }, transcoded("/api/v1/users/u1?updateMask=title"), edge));
    expect(refused?.violations).toEqual([{ field: "user.id", description: expect.stringContaining('is "u2" in the request but the path names "u1"') }]);
    expect(refused?.message).toContain("user.id");
  });

  it("covers body * bindings and nested snake_case field paths", () => {
    expect(violationsOf(() => check(CHANGE_ROLES, { id: "u2", roles: [] }, transcoded("/api/v1/users/u1:changeRoles"), edge))?.violations).toEqual([
      { field: "id", description: expect.stringContaining('"u2"') },
    ]);
    const preferences = transcoded("/api/v1/users/u1/notificationPreferences");
    expect(violationsOf(() => check(UPDATE_PREFERENCES, { notificationPreferences: { userId: "u2" } }, preferences, edge))?.violations[0].field).toBe(
      "notification_preferences.user_id",
    );
    expect(violationsOf(() => check(UPDATE_PREFERENCES, { notificationPreferences: { userId: "u1" } }, preferences, edge))).toBeUndefined();
  });

  it("refuses a body that clears the bound field", () => {
    expect(violationsOf(() => check(UPDATE_USER, { user: { id: "" } }, transcoded("/api/v1/users/u1"), edge))?.violations[0].field).toBe("user.id");
  });

  it("accepts the path's value however the path spells it", () => {
    for (const [path, id] of [
      ["/api/v1/users/u1", "u1"],
      ["/api/v1/users/u%201", "u 1"],
      ["/api/v1/users/caf%C3%A9", "café"],
      ["/api/v1/users/a%2Fb", "a%2Fb"],
      ["/api/v1/users/a%2Fb", "a/b"],
    ]) {
      expect(violationsOf(() => check(UPDATE_USER, { user: { id } }, transcoded(path), edge))).toBeUndefined();
    }
  });

  it("believes the original path only from the edge, and compares nothing for calls that were not transcoded", () => {
    const spoofed = transcoded("/api/v1/users/u1");
    expect(violationsOf(() => check(UPDATE_USER, { user: { id: "u2" } }, spoofed, operator))).toBeUndefined();
    expect(violationsOf(() => check(UPDATE_USER, { user: { id: "u2" } }, Metadata(), edge))).toBeUndefined();
  });

  it("checks a path with a trailing slash (the transcoder routes it) and refuses a path that matches none of the RPC's bindings", () => {
    expect(violationsOf(() => check(UPDATE_USER, { user: { id: "u2" } }, transcoded("/api/v1/users/u1/"), edge))?.violations[0].field).toBe("user.id");
    expect(violationsOf(() => check(UPDATE_USER, { user: { id: "u1" } }, transcoded("/api/v1/users/u1/"), edge))).toBeUndefined();
    const unmatched = violationsOf(() => check(UPDATE_USER, { user: { id: "u1" } }, transcoded("/api/v1/users/u1/extra"), edge));
    expect(unmatched?.message).toBe("the REST path /api/v1/users/u1/extra matches none of /users.v1.UserService/UpdateUser's paths (/api/v1/users/{user.id})");
  });

  it("compares nothing for RPCs without path variables", () => {
    expect(violationsOf(() => check(GET_JWKS, {}, transcoded("/.well-known/jwks.json"), edge))).toBeUndefined();
  });
});
