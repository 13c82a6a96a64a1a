/**
 * JWT micro-benchmark: what one RS256 sign and one verify cost, in µs per
 * operation, with the platform's functions (src/auth/jwt.ts) next to the two
 * ways of doing it underneath: node:crypto by hand, and jose. A verification
 * runs once per token per process (the kernel's verified-token cache answers
 * the rest), a signature once per sign-in or refresh.
 *
 *   npx tsx bench/jwt-micro.ts            # ~20 s, one core (JWT_BENCH_ITERATIONS, JWT_BENCH_ROUNDS)
 *
 * Sequential, in-process, no I/O: the figures are the cost of one operation,
 * not throughput under load. The machine is shared, so every operation is
 * measured in several rounds interleaved with the others, and the best round
 * is reported (the least disturbed one) next to the median.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";
import { importJWK, jwtVerify, SignJWT } from "jose";
import { type AccessTokenClaims, jwkFromPrivatePem, publicKeyFromJwk, signJwt, verifyJwt } from "../services/platform/src/auth/jwt";

const ITERATIONS = Number(process.env.JWT_BENCH_ITERATIONS ?? 500);
const ROUNDS = Number(process.env.JWT_BENCH_ROUNDS ?? 5);
const WARMUP = 200;

interface Operation {
  name: string;
  run: () => unknown;
  /** Wall-clock µs per operation, one entry per round. */
  rounds: number[];
  /** CPU µs (all threads of the process) per operation, per round. */
  cpuRounds: number[];
}

async function round(operation: Operation): Promise<void> {
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) await operation.run();
  operation.rounds.push(Number(process.hrtime.bigint() - start) / 1000 / ITERATIONS);
  const cpu = process.cpuUsage(cpuStart);
  operation.cpuRounds.push((cpu.user + cpu.system) / ITERATIONS);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const jwk = await jwkFromPrivatePem(privatePem, "k1");
  const now = Math.floor(Date.now() / 1000);
  const claims: AccessTokenClaims = {
    iss: "bench",
    aud: "leadmesh",
    sub: "u1",
    tenant: "acme",
    roles: ["admin"],
    jti: "j1",
    sid: "s1",
    iat: now,
    exp: now + 900,
  };
  const options = { issuer: "bench", audience: "leadmesh" };

  const byHand = handRolled(privateKey, publicKey);
  const joseVerifyKey = await importJWK({ kty: "RSA", n: jwk.n, e: jwk.e }, "RS256");
  const token = await signJwt(claims, "k1", privateKey);
  const platformKey = await publicKeyFromJwk(jwk);

  const operations: Operation[] = (
    [
      ["sign   node:crypto by hand", () => byHand.sign(claims)],
      ["sign   jose SignJWT (KeyObject)", () => new SignJWT({ ...claims }).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: "k1" }).sign(privateKey)],
      ["sign   platform signJwt", () => signJwt(claims, "k1", privateKey)],
      ["verify node:crypto by hand", () => byHand.verify(token)],
      ["verify jose jwtVerify (CryptoKey)", () => jwtVerify(token, joseVerifyKey, { ...options, algorithms: ["RS256"] })],
      ["verify jose jwtVerify (KeyObject)", () => jwtVerify(token, publicKey, { ...options, algorithms: ["RS256"] })],
      ["verify platform verifyJwt", () => verifyJwt(token, platformKey, options)],
      ["jwk    node:crypto createPublicKey", () => createPublicKey({ key: { kty: "RSA", n: jwk.n, e: jwk.e }, format: "jwk" })],
      ["jwk    platform publicKeyFromJwk", () => publicKeyFromJwk(jwk)],
      ["jwk    platform jwkFromPrivatePem", () => jwkFromPrivatePem(privatePem, "k1")],
    ] as const
  ).map(([name, run]) => ({ name, run, rounds: [], cpuRounds: [] }));
  for (const operation of operations) for (let i = 0; i < WARMUP; i++) await operation.run();
  for (let r = 0; r < ROUNDS; r++) for (const operation of operations) await round(operation);

  console.log(`node ${process.version}, ${ROUNDS} rounds of ${ITERATIONS} operations each, after ${WARMUP} warm-up`);
  console.log(`${"operation".padEnd(38)} ${"best µs/op".padStart(11)} ${"median".padStart(8)} ${"CPU µs/op".padStart(10)}`);
  for (const operation of operations) {
    const best = Math.min(...operation.rounds);
    const cpu = operation.cpuRounds[operation.rounds.indexOf(best)];
    console.log(
      `${operation.name.padEnd(38)} ${best.toFixed(1).padStart(11)} ${median(operation.rounds).toFixed(1).padStart(8)} ${cpu.toFixed(1).padStart(10)}`,
    );
  }
}

/** RS256 on node:crypto alone: the floor any library pays on top of. */
function handRolled(privateKey: KeyObject, publicKey: KeyObject) {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return {
    sign(claims: object): string {
      const input = `${encode({ alg: "RS256", typ: "JWT", kid: "k1" })}.${encode(claims)}`;
      return `${input}.${sign("RSA-SHA256", Buffer.from(input), privateKey).toString("base64url")}`;
    },
    verify(token: string): unknown {
      const [header, payload, signature] = token.split(".");
      if (!verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, "base64url"))) throw new Error("bad signature");
      return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    },
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
