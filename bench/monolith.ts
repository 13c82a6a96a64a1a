/**
 * The NestJS + Mongoose monolith (bench/monolith/) next to a running mesh:
 * built with tsc, started as one node process against a database of its own
 * on the mesh's FerretDB, its tokens signed with a key pair made here (the
 * monolith verifies them with the public key, RS256, on every request), and
 * checked to be a working app before anything is measured: a valid token
 * reads the tenant's lead, no token or a forged one is 401, another tenant's
 * token is 404 for it, an invalid body is 400.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import type { RunningMesh } from "../scripts/mesh/local-mesh";
import { freePort, ManagedProcess, waitUntil } from "../scripts/mesh/processes";
import { REPO_ROOT } from "../scripts/mesh/topology";

const MONOLITH_DIR = join(__dirname, "monolith");
const MONOLITH_DATABASE = "leads_bench_monolith";
const ISSUER = "monolith-bench";
const AUDIENCE = "monolith";
/** Longer than any bench run: an expiring token would turn the measurement into 401s. */
const TOKEN_LIFETIME_S = 2 * 3600;

export interface Monolith {
  url: string;
  pid: number;
  /** "Bearer …" of an admin of the tenant the bench works in. */
  authorization: string;
  /** A lead of that tenant, created through the API. */
  leadId: string;
  stop(): Promise<void>;
}

/** Compiles bench/monolith with tsc (decorator metadata); incremental, so a second run costs about two seconds. */
export function buildMonolith(): void {
  try {
    execFileSync(join(REPO_ROOT, "node_modules", ".bin", "tsc"), ["-p", MONOLITH_DIR], { cwd: REPO_ROOT, stdio: "pipe" });
  } catch (error) {
    const output = error instanceof Error && "stdout" in error ? String((error as { stdout: unknown }).stdout) : String(error);
    throw new Error(`building the monolith (tsc -p bench/monolith) failed:\n${output}`);
  }
}

function signer(privateKey: KeyObject) {
  return (tenant: string, sub: string, roles: string[]) =>
    new SignJWT({ tenant, roles })
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setSubject(sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${TOKEN_LIFETIME_S}s`)
      .sign(privateKey);
}

async function call(url: string, init: { method?: string; authorization?: string; body?: string } = {}): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (init.authorization) headers.authorization = init.authorization;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, { method: init.method ?? "GET", headers, body: init.body, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, text: await response.text() };
}

function expectStatus(what: string, got: { status: number; text: string }, expected: number): void {
  if (got.status !== expected) throw new Error(`monolith check failed: ${what}: expected HTTP ${expected}, got ${got.status} ${got.text.slice(0, 300)}`);
}

/** The checks that make the comparison one against a working app. */
async function verifyMonolith(
  url: string,
  sign: ReturnType<typeof signer>,
  tenant: string,
  leadBody: string,
): Promise<{ authorization: string; leadId: string }> {
  const authorization = `Bearer ${await sign(tenant, "bench-admin", ["admin"])}`;
  const created = await call(`${url}/api/v1/leads`, { method: "POST", authorization, body: leadBody });
  expectStatus("creating a lead with a valid token", created, 201);
  const leadId = (JSON.parse(created.text) as { lead?: { id?: string } }).lead?.id;
  if (!leadId) throw new Error(`monolith check failed: the created lead has no id: ${created.text.slice(0, 300)}`);
  const leadUrl = `${url}/api/v1/leads/${leadId}`;
  const read = await call(leadUrl, { authorization });
  expectStatus("reading the lead with a valid token", read, 200);
  const lead = (JSON.parse(read.text) as { lead?: { id?: string; tenantId?: string } }).lead;
  if (lead?.id !== leadId || lead.tenantId !== tenant) throw new Error(`monolith check failed: read back ${read.text.slice(0, 300)}`);
  expectStatus("reading without a token", await call(leadUrl), 401);
  const forged = signer(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
  expectStatus(
    "reading with a token signed by another key",
    await call(leadUrl, { authorization: `Bearer ${await forged(tenant, "bench-admin", ["admin"])}` }),
    401,
  );
  const otherTenant = `Bearer ${await sign(`${tenant}-other`, "other-admin", ["admin"])}`;
  expectStatus("reading another tenant's lead", await call(leadUrl, { authorization: otherTenant }), 404);
  expectStatus("updating another tenant's lead", await call(leadUrl, { method: "PATCH", authorization: otherTenant, body: '{"firstName":"Mallory"}' }), 404);
  expectStatus("a caller without a leads role", await call(leadUrl, { authorization: `Bearer ${await sign(tenant, "nobody", [])}` }), 403);
  expectStatus(
    "creating a lead without a source",
    await call(`${url}/api/v1/leads`, { method: "POST", authorization, body: '{"firstName":"X","email":"x@example.com"}' }),
    400,
  );
  const listed = await call(`${url}/api/v1/leads?pageSize=20`, { authorization });
  expectStatus("listing the tenant's leads", listed, 200);
  const ids = ((JSON.parse(listed.text) as { leads?: { id: string }[] }).leads ?? []).map((item) => item.id);
  if (!ids.includes(leadId)) throw new Error(`monolith check failed: the list does not contain lead ${leadId}: ${listed.text.slice(0, 300)}`);
  return { authorization, leadId };
}

/** Builds, starts and checks the monolith; `tenant` is the tenant id its bench tokens carry. */
export async function startMonolith(mesh: RunningMesh, tenant: string, leadBody: string): Promise<Monolith> {
  buildMonolith();
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const publicKeyFile = join(mesh.runDir, "monolith-jwt-public.pem");
  writeFileSync(publicKeyFile, publicKey.export({ type: "spki", format: "pem" }));
  const port = await freePort();
  const server = new ManagedProcess({
    name: "monolith",
    command: process.execPath,
    args: [join(MONOLITH_DIR, "dist", "main.js")],
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      MONOLITH_PORT: String(port),
      MONGO_URL: mesh.mongoUrl,
      MONGO_DATABASE: MONOLITH_DATABASE,
      JWT_PUBLIC_KEY_FILE: publicKeyFile,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    },
    logFile: join(mesh.runDir, "monolith.log"),
  }).start();
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil("the monolith to answer /healthz", async () => (await call(`${url}/healthz`)).status === 200, 60_000, server);
    const { authorization, leadId } = await verifyMonolith(url, signer(privateKey), tenant, leadBody);
    const pid = server.pid;
    if (pid === undefined) throw new Error("the monolith has no pid");
    return {
      url,
      pid,
      authorization,
      leadId,
      stop: async () => {
        await server.stop();
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
