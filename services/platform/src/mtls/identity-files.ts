/**
 * The service's own certificate, key and the mesh CA, read from files that
 * something else renews (the local launcher, cert-manager or Istio's agent
 * writing a mounted Secret). Polled every `reloadMs` by mtime and size; a new
 * certificate/key pair is taken only when the key belongs to the certificate
 * and the certificate carries our SPIFFE id, so a renewal caught half-written
 * (new certificate, old key) keeps the old pair until the key follows.
 *
 * Implements grpc-js's CertificateProvider (CA and identity listeners), so the
 * server's and every channel's TLS contexts follow a renewal: connections made
 * after it present the new certificate; open ones keep theirs.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { experimental } from "@grpc/grpc-js";
import { ConfigError } from "../config";
import type { Logger } from "../logger";
import { spiffeIdOfCertificate } from "./spiffe";

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export interface IdentityFilePaths {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface IdentityFilesOptions extends IdentityFilePaths {
  /** The SPIFFE id our certificate must carry. */
  expectedId: string;
  reloadMs: number;
  logger: Logger;
}

interface IdentityPair {
  certificate: Buffer;
  privateKey: Buffer;
  notAfter: string;
}

/** mtime and size of each file: a change in either means read it again. */
type Stamps = Record<keyof IdentityFilePaths, string>;

export class IdentityFiles implements experimental.CertificateProvider {
  private identity: IdentityPair;
  private ca: Buffer;
  private stamps: Stamps;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly timer: NodeJS.Timeout;
  /** The last complaint logged, so a file left broken is reported once, not on every poll. */
  private lastProblem = "";

  /** Reads the files now; throws a ConfigError naming the file when one is missing, unreadable or does not fit. */
  constructor(private readonly options: IdentityFilesOptions) {
    this.stamps = this.currentStamps();
    const problems: string[] = [];
    const ca = attempt(() => readCa(options.caFile), problems);
    const identity = attempt(() => readIdentity(options), problems);
    if (!ca || !identity) throw new ConfigError(problems);
    this.ca = ca;
    this.identity = identity;
    this.timer = setInterval(() => this.reload(), options.reloadMs);
    // Polling must not keep a process alive that is otherwise done.
    this.timer.unref();
  }

  get certificateNotAfter(): string {
    return this.identity.notAfter;
  }

  /** Checks the files once (the timer calls this); returns whether something new was taken. */
  reload(): boolean {
    const stamps = this.currentStamps();
    let changed = false;
    if (stamps.caFile !== this.stamps.caFile) {
      try {
        this.ca = readCa(this.options.caFile);
        this.stamps = { ...this.stamps, caFile: stamps.caFile };
        this.options.logger.info({ file: this.options.caFile }, "mesh CA reloaded");
        for (const listener of this.caListeners) listener({ caCertificate: this.ca });
        changed = true;
      } catch (error) {
        this.warnOnce({ file: this.options.caFile, reason: messageOf(error) }, "mesh CA file changed but is not usable; keeping the previous CA");
      }
    }
    if (stamps.certFile !== this.stamps.certFile || stamps.keyFile !== this.stamps.keyFile) {
      try {
        this.identity = readIdentity(this.options);
        this.stamps = { ...this.stamps, certFile: stamps.certFile, keyFile: stamps.keyFile };
        this.options.logger.info({ file: this.options.certFile, spiffeId: this.options.expectedId, notAfter: this.identity.notAfter }, "certificate renewed");
        for (const listener of this.identityListeners) listener(this.identityUpdate());
        changed = true;
      } catch (error) {
        // Usually a renewal caught between the key and the certificate being replaced: the next poll sees both.
        this.warnOnce(
          { file: this.options.certFile, reason: messageOf(error), notAfter: this.identity.notAfter },
          "certificate files changed but do not form a valid pair yet; keeping the current certificate",
        );
      }
    }
    if (changed) this.lastProblem = "";
    return changed;
  }

  private warnOnce(fields: { file: string; reason: string; notAfter?: string }, message: string): void {
    if (fields.reason === this.lastProblem) return;
    this.lastProblem = fields.reason;
    this.options.logger.warn(fields, message);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Asynchronously, as grpc-js's own provider does: a server registers its
    // context watcher only after adding this listener.
    process.nextTick(() => this.caListeners.has(listener) && listener({ caCertificate: this.ca }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener(this.identityUpdate()));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private identityUpdate() {
    return { certificate: this.identity.certificate, privateKey: this.identity.privateKey };
  }

  private currentStamps(): Stamps {
    const stamp = (file: string) => {
      try {
        const stats = statSync(file);
        return `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
      } catch {
        return "missing";
      }
    };
    return { certFile: stamp(this.options.certFile), keyFile: stamp(this.options.keyFile), caFile: stamp(this.options.caFile) };
  }
}

function readCa(file: string): Buffer {
  const pem = readFile(file, "CA certificate");
  try {
    new X509Certificate(pem);
  } catch (error) {
    throw new Error(`${file} is not a PEM certificate: ${messageOf(error)}`);
  }
  return pem;
}

function readIdentity(options: IdentityFilesOptions): IdentityPair {
  const certificatePem = readFile(options.certFile, "certificate");
  const keyPem = readFile(options.keyFile, "private key");
  let certificate: X509Certificate;
  let key: KeyObject;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch (error) {
    throw new Error(`${options.certFile} is not a PEM certificate: ${messageOf(error)}`);
  }
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new Error(`${options.keyFile} is not a PEM private key: ${messageOf(error)}`);
  }
  if (!certificate.checkPrivateKey(key)) throw new Error(`${options.keyFile} is not the private key of ${options.certFile}`);
  const id = spiffeIdOfCertificate(certificate.subjectAltName);
  if (id !== options.expectedId) {
    throw new Error(`${options.certFile} is issued to ${id ?? "no single SPIFFE id"}, not to ${options.expectedId}`);
  }
  return { certificate: certificatePem, privateKey: keyPem, notAfter: new Date(certificate.validTo).toISOString() };
}

function readFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? `${what} file ${file} does not exist` : `${what} file ${file} cannot be read: ${messageOf(error)}`);
  }
}

function attempt<T>(read: () => T, problems: string[]): T | undefined {
  try {
    return read();
  } catch (error) {
    problems.push(messageOf(error));
    return undefined;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
