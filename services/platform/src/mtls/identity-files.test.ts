/**
 * The certificate reader against real files, written the way the local
 * launcher renews them (scripts/mesh/certificates.ts).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  ensureMeshCertificates,
  issueCertificate,
  meshCertificatePaths,
  writeAtomically,
} from "../../../../scripts/mesh/certificates";
import { ConfigError } from "../config";
import { IdentityFiles } from "./identity-files";

const AUTH = "spiffe://cluster.local/ns/leadmesh/sa/auth";
const USERS = "spiffe://cluster.local/ns/leadmesh/sa/users";

let dir: string;
let ca: CertificateAuthority;
const silent = pino({ level: "silent" });
const opened: IdentityFiles[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "identity-files-"));
  // Our own CA, written where ensureMeshCertificates finds and reuses it, so the tests can sign extra certificates with it.
  ca = await createCertificateAuthority();
  writeAtomically(join(dir, "ca.key"), ca.privateKeyPem, 0o600);
  writeAtomically(meshCertificatePaths(dir).caFile, ca.certificatePem, 0o644);
  await ensureMeshCertificates(dir, [
    { name: "auth", spiffeId: AUTH },
    { name: "users", spiffeId: USERS },
  ]);
});

afterEach(() => {
  for (const files of opened.splice(0)) files.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(name = "auth", expectedId = AUTH): IdentityFiles {
  const paths = meshCertificatePaths(dir);
  const files = new IdentityFiles({
    certFile: paths.certFile(name),
    keyFile: paths.keyFile(name),
    caFile: paths.caFile,
    expectedId,
    reloadMs: 3_600_000,
    logger: silent,
  });
  opened.push(files);
  return files;
}

function configProblems(create: () => unknown): string[] {
  try {
    create();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

/** The latest identity a listener receives (listeners get the current one on the next tick). */
async function identityOf(files: IdentityFiles): Promise<string> {
  return new Promise((resolve) => {
    const listener = (update: { certificate: Buffer } | null) => {
      files.removeIdentityCertificateListener(listener);
      resolve(update?.certificate.toString() ?? "none");
    };
    files.addIdentityCertificateListener(listener);
  });
}

/** Makes sure a rewritten file's stamp differs even within one mtime tick. */
function touch(file: string, secondsAhead: number): void {
  const later = new Date(statSync(file).mtimeMs + secondsAhead * 1000);
  utimesSync(file, later, later);
}

describe("identity files", () => {
  it("refuses to start without a file, naming it", () => {
    rmSync(meshCertificatePaths(dir).keyFile("auth"));
    const problems = configProblems(() => open());
    expect(problems).toEqual([`private key file ${meshCertificatePaths(dir).keyFile("auth")} does not exist`]);
  });

  it("refuses to start with a certificate issued to another identity, or a key of another certificate", () => {
    expect(configProblems(() => open("users", AUTH))[0]).toBe(`${meshCertificatePaths(dir).certFile("users")} is issued to ${USERS}, not to ${AUTH}`);
    const paths = meshCertificatePaths(dir);
    writeAtomically(paths.keyFile("auth"), readFileSync(paths.keyFile("users"), "utf8"), 0o600);
    expect(configProblems(() => open())[0]).toBe(`${paths.keyFile("auth")} is not the private key of ${paths.certFile("auth")}`);
  });

  it("takes a renewed pair and tells its listeners", async () => {
    const files = open();
    const before = await identityOf(files);
    const updates: string[] = [];
    files.addIdentityCertificateListener((update) => updates.push(update?.certificate.toString() ?? "none"));
    await new Promise((resolve) => process.nextTick(resolve));
    updates.length = 0;

    await ensureMeshCertificates(dir, [{ name: "auth", spiffeId: AUTH }], { force: true });
    touch(meshCertificatePaths(dir).certFile("auth"), 2);
    expect(files.reload()).toBe(true);
    const after = await identityOf(files);
    expect(after).not.toBe(before);
    expect(updates).toEqual([after]);
    expect(files.reload()).toBe(false); // nothing changed since
  });

  it("keeps the current pair while the new certificate's key has not arrived, and takes the pair once it has", async () => {
    const files = open();
    const before = await identityOf(files);
    const paths = meshCertificatePaths(dir);
    const renewed = await issueCertificate(ca, { spiffeId: AUTH });
    // A renewal caught half-way: the certificate is new, the key still the old one.
    writeFileSync(paths.certFile("auth"), renewed.certificatePem);
    touch(paths.certFile("auth"), 2);
    expect(files.reload()).toBe(false);
    expect(await identityOf(files)).toBe(before);

    writeFileSync(paths.keyFile("auth"), renewed.privateKeyPem);
    touch(paths.keyFile("auth"), 2);
    expect(files.reload()).toBe(true);
    expect(await identityOf(files)).toBe(renewed.certificatePem);
  });

  it("keeps the current pair when the renewed certificate names another identity", async () => {
    const files = open();
    const before = await identityOf(files);
    const paths = meshCertificatePaths(dir);
    const wrong = await issueCertificate(ca, { spiffeId: USERS });
    writeFileSync(paths.keyFile("auth"), wrong.privateKeyPem);
    writeFileSync(paths.certFile("auth"), wrong.certificatePem);
    touch(paths.certFile("auth"), 2);
    expect(files.reload()).toBe(false);
    expect(await identityOf(files)).toBe(before);
  });

  it("polls on its own every reloadMs", async () => {
    const paths = meshCertificatePaths(dir);
    const files = new IdentityFiles({
      certFile: paths.certFile("auth"),
      keyFile: paths.keyFile("auth"),
      caFile: paths.caFile,
      expectedId: AUTH,
      reloadMs: 50,
      logger: silent,
    });
    opened.push(files);
    const before = await identityOf(files);
    await ensureMeshCertificates(dir, [{ name: "auth", spiffeId: AUTH }], { force: true });
    touch(paths.certFile("auth"), 2);
    const deadline = Date.now() + 2000;
    while ((await identityOf(files)) === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(await identityOf(files)).not.toBe(before);
  });
});
