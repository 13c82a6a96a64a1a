/**
 * Certificates of a test's own small mesh: a CA made for the test (kept in
 * memory too, so a test can issue odd certificates from it: expired, for an
 * identity the mesh does not know) and one leaf per identity, written by the
 * same scripts/mesh/certificates.ts the launcher uses, in a temporary
 * directory that `remove()` deletes.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  ensureMeshCertificates,
  type IssuedCertificate,
  issueCertificate,
  type MeshCertificatePaths,
  type MeshIdentity,
  meshCertificatePaths,
} from "../../scripts/mesh/certificates";

/** The platform's defaults (MESH_TRUST_DOMAIN, MESH_NAMESPACE); the test services are given them explicitly. */
export const TEST_TRUST_DOMAIN = "cluster.local";
export const TEST_NAMESPACE = "leadmesh";

export function testSpiffeId(name: string): string {
  return `spiffe://${TEST_TRUST_DOMAIN}/ns/${TEST_NAMESPACE}/sa/${name}`;
}

/** A client's or server's key material as PEM buffers (what grpc-js and node:tls take). */
export interface KeyPair {
  certificate: Buffer;
  privateKey: Buffer;
}

export interface TestCertificates {
  dir: string;
  paths: MeshCertificatePaths;
  ca: CertificateAuthority;
  identities: MeshIdentity[];
  caPem(): Buffer;
  /** The current files of `name` (re-read on every call: renewals replace them). */
  keyPair(name: string): KeyPair;
  /** Serial number (upper-case hex, as node:tls reports it) of the certificate now on disk for `name`. */
  serialOf(name: string): string;
  /** Issues new leaves for every identity, as the launcher's periodic renewal does. */
  renew(): Promise<string[]>;
  /** A leaf from this CA with any validity, not written to the directory. */
  issue(name: string, validity?: { notBefore?: Date; notAfter?: Date }): Promise<KeyPair>;
  remove(): void;
}

export async function createTestCertificates(names: readonly string[]): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), "leadmesh-mtls-"));
  const paths = meshCertificatePaths(dir);
  const ca = await createCertificateAuthority({ name: "leadmesh test CA" });
  // The files ensureMeshCertificates reads back as its CA, so that leaves (and renewals) come from this one.
  writeFileSync(join(dir, "ca.key"), ca.privateKeyPem, { mode: 0o600 });
  writeFileSync(paths.caFile, ca.certificatePem);
  const identities = names.map((name) => ({ name, spiffeId: testSpiffeId(name) }));
  await ensureMeshCertificates(dir, identities);
  return {
    dir,
    paths,
    ca,
    identities,
    caPem: () => readFileSync(paths.caFile),
    keyPair: (name) => ({ certificate: readFileSync(paths.certFile(name)), privateKey: readFileSync(paths.keyFile(name)) }),
    serialOf: (name) => new X509Certificate(readFileSync(paths.certFile(name))).serialNumber.toUpperCase(),
    renew: () => ensureMeshCertificates(dir, identities, { force: true }),
    issue: async (name, validity = {}) => asKeyPair(await issueCertificate(ca, { spiffeId: testSpiffeId(name), ipAddresses: ["127.0.0.1"], ...validity })),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A certificate for `name` from a CA nobody in the mesh trusts. */
export async function foreignKeyPair(name: string): Promise<KeyPair> {
  const stranger = await createCertificateAuthority({ name: "some other CA" });
  return asKeyPair(await issueCertificate(stranger, { spiffeId: testSpiffeId(name), ipAddresses: ["127.0.0.1"] }));
}

function asKeyPair(issued: IssuedCertificate): KeyPair {
  return { certificate: Buffer.from(issued.certificatePem), privateKey: Buffer.from(issued.privateKeyPem) };
}
