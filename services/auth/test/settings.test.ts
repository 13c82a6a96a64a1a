/**
 * The built auth service started with bad settings: it must exit 78
 * (EX_CONFIG) with one readable list of problems, not a stack trace, before
 * it connects to anything.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const MAIN = join(__dirname, "..", "dist", "main.js");

/** Runs the built auth main with valid shared settings plus `settings`; it must exit before connecting anywhere. */
function runAuth(settings: Record<string, string>) {
  return spawnSync(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      MONGO_URL: "mongodb://127.0.0.1:1/",
      REDIS_URL: "redis://127.0.0.1:1",
      AUTH_ISSUER: "iss",
      AUTH_AUDIENCE: "aud",
      ...settings,
    },
    encoding: "utf8",
    timeout: 20_000,
  });
}

it("exits 78 listing every bad setting", () => {
  const result = runAuth({ TRUSTED_PROXIES: "10.0.0.0/99", PASSWORD_MEMORY_KIB: "lots" });
  expect(result.status).toBe(78);
  expect(result.stderr).toMatch(/^auth: invalid configuration:\n/);
  expect(result.stderr).toMatch(/TRUSTED_PROXIES="10.0.0.0\/99" is invalid: "10.0.0.0\/99" is not a CIDR/);
  expect(result.stderr).toMatch(/PASSWORD_MEMORY_KIB="lots" is invalid/);
  expect(result.stderr).not.toMatch(/\n\s+at /);
});

it("exits 78 when settings contradict each other", () => {
  const result = runAuth({ ACCESS_TOKEN_TTL_SECONDS: "900", KEY_ROTATION_SECONDS: "1000" });
  expect(result.status).toBe(78);
  expect(result.stderr).toMatch(/KEY_ROTATION_SECONDS \(1000\) must be at least twice ACCESS_TOKEN_TTL_SECONDS \(900\)/);
});
