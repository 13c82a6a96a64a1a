import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCertificateAuthority, ensureMeshCertificates, issueCertificate, meshCertificatePaths } from "./certificates";

const identities = ["auth", "operator"].map((name) => ({ name, spiffeId: `spiffe://cluster.local/ns/leadmesh/sa/${name}` }));
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "leadmesh-certs-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const certificateOf = (name: string) => new X509Certificate(readFileSync(meshCertificatePaths(dir).certFile(name)));
const bundleOf = () => readFileSync(meshCertificatePaths(dir).caFile, "utf8").match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

describe("ensureMeshCertificates", () => {
  it("issues each identity a certificate with its SPIFFE id, signed by the CA, and keeps valid ones", async () => {
    expect(await ensureMeshCertificates(dir, identities)).toEqual(["auth", "operator"]);
    const ca = new X509Certificate(readFileSync(meshCertificatePaths(dir).caFile));
    const auth = certificateOf("auth");
    expect(auth.subjectAltName?.split(", ")).toContain("URI:spiffe://cluster.local/ns/leadmesh/sa/auth");
    expect(auth.verify(ca.publicKey)).toBe(true);
    expect(auth.checkPrivateKey(require("node:crypto").createPrivateKey(readFileSync(meshCertificatePaths(dir).keyFile("auth"))))).toBe(true);
    expect(await ensureMeshCertificates(dir, identities)).toEqual([]);
    expect(certificateOf("auth").serialNumber).toBe(auth.serialNumber);
  });

  it("renews a certificate past half its life, one for another SPIFFE id, and every one when forced", async () => {
    await ensureMeshCertificates(dir, identities, { lifetimeMs: 60 * 60_000 });
    const before = certificateOf("auth").serialNumber;
    // A lifetime of 4 h makes the 1 h certificates look past half their life.
    expect(await ensureMeshCertificates(dir, identities, { lifetimeMs: 4 * 60 * 60_000 })).toEqual(["auth", "operator"]);
    expect(certificateOf("auth").serialNumber).not.toBe(before);
    expect(await ensureMeshCertificates(dir, [{ name: "auth", spiffeId: "spiffe://cluster.local/ns/leadmesh/sa/users" }])).toEqual(["auth"]);
    expect(await ensureMeshCertificates(dir, identities, { force: true })).toEqual(["auth", "operator"]);
  });

  it("replaces a CA close to expiry, re-issues every leaf, and keeps trusting the retiring CA in the bundle", async () => {
    const old = await createCertificateAuthority({ validForMs: 24 * 60 * 60_000 });
    writeFileSync(join(dir, "ca.key"), old.privateKeyPem);
    writeFileSync(meshCertificatePaths(dir).caFile, old.certificatePem);
    const leaf = await issueCertificate(old, identities[0]);
    writeFileSync(meshCertificatePaths(dir).certFile("auth"), leaf.certificatePem);
    writeFileSync(meshCertificatePaths(dir).keyFile("auth"), leaf.privateKeyPem);

    const rotating = ensureMeshCertificates(dir, identities, { trustPropagationMs: 1000 });
    // The new bundle is out before any leaf it signed: readers trust it first.
    while (bundleOf() < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(certificateOf("auth").serialNumber).toBe(new X509Certificate(leaf.certificatePem).serialNumber);
    expect(await rotating).toEqual(["auth", "operator"]);
    expect(bundleOf()).toBe(2);
    // Node reads the first certificate of a bundle: the signing CA.
    const signing = new X509Certificate(readFileSync(meshCertificatePaths(dir).caFile));
    expect(signing.serialNumber).not.toBe(new X509Certificate(old.certificatePem).serialNumber);
    expect(certificateOf("auth").verify(signing.publicKey)).toBe(true);
    // The next run reads the new CA back from the bundle and keeps everything.
    expect(await ensureMeshCertificates(dir, identities)).toEqual([]);
  });
});
