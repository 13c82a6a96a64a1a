/**
 * The local mesh's certificates: a development CA and one short-lived
 * certificate per identity (each service, the Envoy edge, the operators'
 * tools), each carrying its SPIFFE id as its one URI SAN, the form Istio
 * issues (`spiffe://<trust-domain>/ns/<namespace>/sa/<name>`). In Kubernetes
 * Istio (or cert-manager) issues them instead; nothing in a service depends
 * on this file, only on the files it writes.
 *
 * Local certificates also name `localhost`, `127.0.0.1` and `::1` so that
 * operators' tools (grpcurl, grpc-health-probe), which check the host name,
 * accept a service's certificate; the services themselves check the SPIFFE id.
 *
 * Files (in one directory, each replaced atomically by a rename, so a reader
 * never sees half a file): `ca.crt`, `ca.key`, and `<name>.crt` / `<name>.key`
 * per identity. A reader that polls may still see a new certificate next to
 * the old key for a moment: the platform's reader checks that they match and
 * waits for the pair (services/platform/src/mtls/identity-files.ts).
 */
import { X509Certificate as NodeX509Certificate, randomBytes, webcrypto } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const HOUR_MS = 3_600_000;
/** Leaves are backdated a little: clocks of peers differ, and a certificate is never "not yet valid" on the machine that made it. */
const BACKDATE_MS = 5 * 60_000;

export interface CertificateAuthority {
  certificatePem: string;
  privateKeyPem: string;
  subject: string;
  notAfter: Date;
  privateKey: CryptoKey;
}

export interface IssuedCertificate {
  spiffeId: string;
  certificatePem: string;
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssueOptions {
  spiffeId: string;
  /** Extra SANs for tools that check host names. */
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  notBefore?: Date;
  notAfter?: Date;
}

export async function createCertificateAuthority(options: { name?: string; validForMs?: number } = {}): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const now = Date.now();
  const notAfter = new Date(now + (options.validForMs ?? 30 * 24 * HOUR_MS));
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${options.name ?? "leadmesh development CA"}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificatePem: pemText(certificate),
    privateKeyPem: await privateKeyPem(keys.privateKey),
    subject: certificate.subject,
    notAfter,
    privateKey: keys.privateKey,
  };
}

/** A leaf certificate for `spiffeId`, usable as server and as client (mTLS), signed by `ca`. */
export async function issueCertificate(ca: CertificateAuthority, options: IssueOptions): Promise<IssuedCertificate> {
  const keys = await generateKeys();
  const notBefore = options.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + BACKDATE_MS + 24 * HOUR_MS);
  const names: x509.JsonGeneralName[] = [
    { type: "url", value: options.spiffeId },
    ...(options.dnsNames ?? []).map((value): x509.JsonGeneralName => ({ type: "dns", value })),
    ...(options.ipAddresses ?? []).map((value): x509.JsonGeneralName => ({ type: "ip", value })),
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${options.spiffeId.split("/").pop() ?? "leaf"}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingKey: ca.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names, false),
    ],
  });
  return {
    spiffeId: options.spiffeId,
    certificatePem: pemText(certificate),
    privateKeyPem: await privateKeyPem(keys.privateKey),
    notBefore,
    notAfter,
  };
}

/** An identity of the mesh: the file stem and the SPIFFE id its certificate carries. */
export interface MeshIdentity {
  name: string;
  spiffeId: string;
}

export interface MeshCertificateOptions {
  /** Lifetime of a leaf; default 24 h. */
  lifetimeMs?: number;
  /** A leaf with less than this fraction of its lifetime left is renewed; default 1/2 (as Istio). */
  renewWhenLeft?: number;
  /** Renew every leaf whatever its age (tests of renewal). */
  force?: boolean;
  /**
   * When the CA is replaced: how long the new trust bundle is on disk before
   * any leaf it signed is, so that every reader (services poll every
   * TLS_RELOAD_MS, 1 s by default; Envoy watches) trusts the new CA before a
   * peer presents a certificate from it. Default 3 s.
   */
  trustPropagationMs?: number;
}

export interface MeshCertificatePaths {
  dir: string;
  caFile: string;
  certFile(name: string): string;
  keyFile(name: string): string;
}

export function meshCertificatePaths(dir: string): MeshCertificatePaths {
  return {
    dir,
    caFile: join(dir, "ca.crt"),
    certFile: (name) => join(dir, `${name}.crt`),
    keyFile: (name) => join(dir, `${name}.key`),
  };
}

/**
 * Makes `dir` hold a valid CA and a valid certificate for every identity:
 * creates what is missing, renews what is past half its life (or expired, or
 * issued for another SPIFFE id or by another CA), keeps the rest. Idempotent;
 * returns the names it (re)issued. The CA lives 30 days and is replaced (with
 * every leaf) when it has less than 2 days left.
 */
export async function ensureMeshCertificates(dir: string, identities: readonly MeshIdentity[], options: MeshCertificateOptions = {}): Promise<string[]> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const paths = meshCertificatePaths(dir);
  let ca = await loadAuthority(paths);
  let newAuthority = false;
  if (!ca || ca.notAfter.getTime() - Date.now() < 2 * 24 * HOUR_MS) {
    const retiring = ca && ca.notAfter.getTime() > Date.now() ? ca.certificatePem : "";
    ca = await createCertificateAuthority();
    writeAtomically(join(dir, "ca.key"), ca.privateKeyPem, 0o600);
    // The trust bundle keeps the retiring CA until it expires: a peer still
    // presenting a certificate it signed (not yet reloaded) stays trusted.
    writeAtomically(paths.caFile, ca.certificatePem + retiring, 0o644);
    newAuthority = true;
    if (retiring) await new Promise((resolve) => setTimeout(resolve, options.trustPropagationMs ?? 3000));
  }
  const lifetimeMs = options.lifetimeMs ?? 24 * HOUR_MS;
  const renewed: string[] = [];
  for (const identity of identities) {
    if (!newAuthority && !options.force && isCurrent(paths, identity, ca, lifetimeMs * (options.renewWhenLeft ?? 0.5))) continue;
    const notBefore = new Date(Date.now() - BACKDATE_MS);
    const leaf = await issueCertificate(ca, {
      spiffeId: identity.spiffeId,
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      notBefore,
      notAfter: new Date(notBefore.getTime() + BACKDATE_MS + lifetimeMs),
    });
    // Key first: a reader that sees the new certificate finds its key already there.
    writeAtomically(paths.keyFile(identity.name), leaf.privateKeyPem, 0o600);
    writeAtomically(paths.certFile(identity.name), leaf.certificatePem, 0o644);
    renewed.push(identity.name);
  }
  return renewed;
}

function isCurrent(paths: MeshCertificatePaths, identity: MeshIdentity, ca: CertificateAuthority, minimumLeftMs: number): boolean {
  try {
    const certificate = new NodeX509Certificate(readFileSync(paths.certFile(identity.name)));
    readFileSync(paths.keyFile(identity.name));
    const left = Date.parse(certificate.validTo) - Date.now();
    const authority = new NodeX509Certificate(ca.certificatePem);
    return (
      left > minimumLeftMs && certificate.verify(authority.publicKey) && (certificate.subjectAltName ?? "").split(", ").includes(`URI:${identity.spiffeId}`)
    );
  } catch {
    return false;
  }
}

async function loadAuthority(paths: MeshCertificatePaths): Promise<CertificateAuthority | undefined> {
  try {
    // The bundle's first certificate is the signing CA; a retiring one may follow.
    const certificatePem = firstPem(readFileSync(paths.caFile, "utf8"));
    const privateKeyPem = readFileSync(join(paths.dir, "ca.key"), "utf8");
    const certificate = new x509.X509Certificate(certificatePem);
    const privateKey = await webcrypto.subtle.importKey("pkcs8", pemBody(privateKeyPem), ALGORITHM, true, ["sign"]);
    return { certificatePem, privateKeyPem, subject: certificate.subject, notAfter: certificate.notAfter, privateKey };
  } catch {
    return undefined;
  }
}

/** Writes through a temporary file and a rename: readers see the old file or the new one, never a part. */
export function writeAtomically(file: string, content: string, mode: number): void {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, file);
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END PRIVATE KEY-----\n`;
}

/** PEM ending in a newline, so that certificates concatenate into a valid bundle. */
function pemText(certificate: x509.X509Certificate): string {
  return `${certificate.toString("pem").trimEnd()}\n`;
}

function firstPem(bundle: string): string {
  const end = "-----END CERTIFICATE-----";
  const at = bundle.indexOf(end);
  return at < 0 ? bundle : `${bundle.slice(0, at + end.length)}\n`;
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function serialNumber(): string {
  // Positive 128-bit serial: the top bit clear so DER does not read it as negative.
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString("hex");
}
