import { readFileSync } from "node:fs";

/** What the bench (or an operator) gives the monolith through its environment. */
export interface MonolithConfig {
  host: string;
  port: number;
  mongoUrl: string;
  mongoDatabase: string;
  /** PEM of the RSA public key every access token must be signed with (RS256). */
  jwtPublicKey: string;
  jwtIssuer: string;
  jwtAudience: string;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`monolith: environment variable ${name} is required`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv): MonolithConfig {
  const port = Number(required(env, "MONOLITH_PORT"));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`monolith: MONOLITH_PORT must be a TCP port, got "${env.MONOLITH_PORT}"`);
  const keyFile = required(env, "JWT_PUBLIC_KEY_FILE");
  let jwtPublicKey: string;
  try {
    jwtPublicKey = readFileSync(keyFile, "utf8");
  } catch (error) {
    throw new Error(`monolith: cannot read JWT_PUBLIC_KEY_FILE ${keyFile}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    host: env.MONOLITH_HOST || "127.0.0.1",
    port,
    mongoUrl: required(env, "MONGO_URL"),
    mongoDatabase: required(env, "MONGO_DATABASE"),
    jwtPublicKey,
    jwtIssuer: required(env, "JWT_ISSUER"),
    jwtAudience: required(env, "JWT_AUDIENCE"),
  };
}
