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

/** Keys by database and epoch: a lookup after midnight UTC finds the new day's key, not the one cached the day before. */
const cachedKeys = new Map<string, { kid: string; pem: string }>();

export interface SigningKeyLookup {
  /** The instant to sign at; now by default. */
  now?: number;
  /** The auth service's database; "auth" by default. */
  database?: string;
}

/**
 * The key the auth service signs with at `now`, of the test mesh unless
 * `mongoUrl` names another. Auth names its keys by epoch (signing-keys.ts:
 * _id = floor(seconds / rotation), one per UTC day by default) and creates
 * the next epoch's key a whole epoch ahead, so after midnight UTC the new
 * day's key is already there; it is looked up per epoch, as auth's own
 * SigningKeys.current() does, so a run that crosses midnight signs with the
 * key auth signs with, not yesterday's until it is retired.
 */
export async function authSigningKey(
  rotationSeconds = 86400,
  mongoUrl = meshInfo().mongoUrl,
  { now = Date.now(), database = "auth" }: SigningKeyLookup = {},
): Promise<{ kid: string; pem: string }> {
  const epoch = String(Math.floor(now / 1000 / rotationSeconds));
  const cacheKey = JSON.stringify([mongoUrl, database, epoch]);
  const cachedKey = cachedKeys.get(cacheKey);
  if (cachedKey) return cachedKey;
  const client = new MongoClient(mongoUrl);
  try {
    const document = await client.db(database).collection<{ _id: string; kid: string; privatePem: string }>("signing_keys").findOne({ _id: epoch });
    if (!document) throw new Error(`the auth service has not created its signing key of epoch ${epoch} (${rotationSeconds} s rotation) in ${database} yet`);
    const key = { kid: document.kid, pem: document.privatePem };
    cachedKeys.set(cacheKey, key);
    return key;
  } finally {
    await client.close();
  }
}

/** A token signed with the real auth key; claims default to a fresh agent of `tenant`. */
export async function authSignedToken(overrides: Partial<AccessTokenClaims> & { tenant: string }, kid?: string, mongoUrl?: string): Promise<string> {
  // One instant for the key and iat: the key is the one auth signs with at the token's issue time.
  const signedAt = Date.now();
  const key = await authSigningKey(undefined, mongoUrl, { now: signedAt });
  const now = Math.floor(signedAt / 1000);
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
