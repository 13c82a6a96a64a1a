/**
 * Identity for end-to-end tests, through the real auth service: register a
 * tenant over REST, and mint tokens with the auth service's real current
 * signing key (read from its database) for principals the matrix needs
 * (e.g. an agent of tenant A) without creating every user.
 */
import { createPrivateKey, randomUUID } from "node:crypto";
import { type AccessTokenClaims, signJwt } from "@leadmesh/platform";
import { MongoClient } from "mongodb";
import { uniqueTenant } from "./clients";
import { meshInfo } from "./mesh-info";
import { TEST_AUDIENCE, TEST_ISSUER } from "./tokens";

export const PASSWORD = "correct horse battery staple";

export interface RegisteredTenant {
  tenantId: string;
  email: string;
  adminId: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

export interface RestOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
  /** Ingress to call; the global test mesh's by default. */
  baseUrl?: string;
}

export async function rest(method: string, path: string, options: RestOptions = {}) {
  const response = await fetch(`${options.baseUrl ?? meshInfo().ingressUrl}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: a response body of any RPC; tests read the fields they expect
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

export async function registerTenant(label: string, baseUrl?: string): Promise<RegisteredTenant> {
  const tenantId = uniqueTenant(label);
  const email = `admin@${tenantId}.example`;
  const response = await rest("POST", "/api/v1/auth:register", {
    body: { tenantId, tenantDisplayName: `${label} Inc.`, email, password: PASSWORD, displayName: "Ada Admin" },
    baseUrl,
  });
  if (response.status !== 200) throw new Error(`register failed: ${response.status} ${response.text}`);
  return {
    tenantId,
    email,
    adminId: response.json.user.id,
    accessToken: response.json.tokens.accessToken,
    refreshToken: response.json.tokens.refreshToken,
    sessionId: response.json.tokens.sessionId,
  };
}

const cachedKeys = new Map<string, { kid: string; pem: string }>();

/** The auth service's current signing key (default rotation: one key per UTC day), of the test mesh unless `mongoUrl` names another. */
export async function authSigningKey(rotationSeconds = 86400, mongoUrl = meshInfo().mongoUrl): Promise<{ kid: string; pem: string }> {
  const cachedKey = cachedKeys.get(mongoUrl);
  if (cachedKey) return cachedKey;
  const client = new MongoClient(mongoUrl);
  try {
    const epoch = String(Math.floor(Date.now() / 1000 / rotationSeconds));
    const document = await client.db("auth").collection<{ _id: string; kid: string; privatePem: string }>("signing_keys").findOne({ _id: epoch });
    if (!document) throw new Error("the auth service has not created its signing key yet");
    const key = { kid: document.kid, pem: document.privatePem };
    cachedKeys.set(mongoUrl, key);
    return key;
  } finally {
    await client.close();
  }
}

/** A token signed with the real auth key; claims default to a fresh agent of `tenant`. */
export async function authSignedToken(overrides: Partial<AccessTokenClaims> & { tenant: string }, kid?: string, mongoUrl?: string): Promise<string> {
  const key = await authSigningKey(undefined, mongoUrl);
  const now = Math.floor(Date.now() / 1000);
  const claims: AccessTokenClaims = {
    iss: TEST_ISSUER,
    aud: TEST_AUDIENCE,
    sub: `user-${randomUUID().slice(0, 8)}`,
    roles: ["agent"],
    jti: randomUUID(),
    sid: randomUUID(),
    iat: now,
    exp: now + 300,
    ...overrides,
  };
  return signJwt(claims, kid ?? key.kid, createPrivateKey(key.pem));
}
