/**
 * Real mTLS for the kernel's own integration tests: a CA and certificates
 * for the fake service and its callers (scripts/mesh/certificates.ts, as the
 * launcher writes them) in a temporary directory, the service's environment,
 * and client transports that present a chosen identity.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createCertificateAuthority, ensureMeshCertificates, type MeshCertificatePaths, meshCertificatePaths } from "../../../scripts/mesh/certificates";
import { createMeshTransport, loadConfig, type MeshTransport, meshSpec, spiffeId } from "../src";

const scope = { trustDomain: "cluster.local", namespace: "leadmesh" };

export interface MeshCertificates {
  paths: MeshCertificatePaths;
  caPem(): Buffer;
  /** The TLS_* variables of `name`. */
  tlsEnv(name: string): Record<string, string>;
  /** A client transport presenting `name`'s certificate; closed by close(). */
  clientAs(name: string): MeshTransport;
  close(): void;
}

export async function meshCertificates(names: readonly string[]): Promise<MeshCertificates> {
  const dir = mkdtempSync(join(tmpdir(), "platform-mtls-"));
  const paths = meshCertificatePaths(dir);
  const ca = await createCertificateAuthority({ name: "platform test CA" });
  writeFileSync(join(dir, "ca.key"), ca.privateKeyPem, { mode: 0o600 });
  writeFileSync(paths.caFile, ca.certificatePem);
  await ensureMeshCertificates(
    dir,
    names.map((name) => ({ name, spiffeId: spiffeId(scope, name) })),
  );
  const transports: MeshTransport[] = [];
  const tlsEnv = (name: string) => ({ TLS_CERT_FILE: paths.certFile(name), TLS_KEY_FILE: paths.keyFile(name), TLS_CA_FILE: paths.caFile });
  return {
    paths,
    caPem: () => readFileSync(paths.caFile),
    tlsEnv,
    clientAs(name) {
      const transport = createMeshTransport(loadConfig(meshSpec(), tlsEnv(name)), name, pino({ level: "silent" }));
      transports.push(transport);
      return transport;
    },
    close() {
      for (const transport of transports) transport.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
