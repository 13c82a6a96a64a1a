/**
 * The bench's identity: one tenant registered through the real auth service
 * (POST /api/v1/auth:register, as test/harness/identity.ts does), whose
 * admin's access token authenticates every leads call and whose credentials
 * the login scenario signs in with.
 */
import { readFileSync } from "node:fs";

export interface BenchTenant {
  tenantId: string;
  email: string;
  password: string;
  accessToken: string;
}

const PASSWORD = "bench correct horse battery staple";

export async function registerTenant(ingressUrl: string): Promise<BenchTenant> {
  const tenantId = `bench-${Date.now().toString(36)}`;
  const email = `admin@${tenantId}.example`;
  const response = await fetch(`${ingressUrl}/api/v1/auth:register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenantId, tenantDisplayName: "Bench Inc.", email, password: PASSWORD, displayName: "Bench Admin" }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`registering the bench tenant failed: HTTP ${response.status} ${text}`);
  const accessToken = (JSON.parse(text) as { tokens?: { accessToken?: string } }).tokens?.accessToken;
  if (!accessToken) throw new Error(`registering the bench tenant returned no access token: ${text}`);
  return { tenantId, email, password: PASSWORD, accessToken };
}

/** Request body of POST /api/v1/auth:login for the tenant's admin. */
export const loginBody = (tenant: BenchTenant) => JSON.stringify({ tenantId: tenant.tenantId, email: tenant.email, password: tenant.password });

/** The password hash cost the auth service logged at start ("argon2id m=19456KiB t=2 p=1"). */
export function passwordHashOf(authLogFile: string): string {
  for (const line of readFileSync(authLogFile, "utf8").split("\n")) {
    if (!line.includes('"passwordHash"')) continue;
    try {
      const entry = JSON.parse(line) as { passwordHash?: unknown };
      if (typeof entry.passwordHash === "string") return entry.passwordHash;
    } catch {
      // Not a JSON log line; keep looking.
    }
  }
  return "unknown (no passwordHash line in the auth log)";
}
