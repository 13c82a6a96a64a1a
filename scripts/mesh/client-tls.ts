/**
 * mTLS credentials for the launcher's and the tests' own gRPC clients (health
 * checks, operators' calls, a test acting as a service): the identity's
 * certificate from the mesh's certificate directory (certificates.ts), the
 * mesh CA as the only trust root, and the server's SPIFFE id checked instead
 * of a host name, as the services' own clients do.
 *
 * Files are read when the credentials are made: a long-lived client keeps the
 * certificate it started with (the services' kernel re-reads renewals; these
 * clients are short-lived).
 */
import { readFileSync } from "node:fs";
import { type ChannelCredentials, credentials } from "@grpc/grpc-js";
import type { MeshCertificatePaths } from "./certificates";

export interface ClientTls {
  /** The mesh's certificate directory (RunningMesh.tls, meshCertificatePaths). */
  certificates: MeshCertificatePaths;
  /** Identity whose certificate the client presents; default "operator". */
  identity?: string;
  /**
   * SPIFFE id the server must present. Without one, any SPIFFE id signed by
   * the mesh CA is accepted (a client that does not know which service
   * listens at an address, e.g. an in-process replica on a random port).
   */
  server?: string;
}

export const OPERATOR_IDENTITY = "operator";

/**
 * Channel options to go with clientCredentials: the TLS server name sent is
 * "localhost" (which local certificates carry) instead of the IP address of
 * the target, which Node warns about (RFC 6066 has no IP server names). The
 * server's identity is still checked by its SPIFFE id, not by this name.
 */
export const CLIENT_TLS_CHANNEL_OPTIONS = { "grpc.ssl_target_name_override": "localhost" } as const;

/** The URI SANs of a certificate as Node's TLS layer reports them ("URI:spiffe://…, DNS:localhost"). */
export function uriSans(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(", ")
    .filter((name) => name.startsWith("URI:"))
    .map((name) => name.slice("URI:".length));
}

/** Why a server certificate's SANs do not name `expected` (any SPIFFE id when undefined), or undefined when they do. */
export function serverIdentityProblem(subjectAltName: string | undefined, expected: string | undefined): string | undefined {
  const ids = uriSans(subjectAltName).filter((uri) => uri.startsWith("spiffe://"));
  if (ids.length === 0) return `the server certificate carries no SPIFFE id (SANs: ${subjectAltName ?? "none"})`;
  if (expected !== undefined && !ids.includes(expected)) return `the server presented ${ids.join(", ")}, expected ${expected}`;
  return undefined;
}

export function clientCredentials(tls: ClientTls): ChannelCredentials {
  const identity = tls.identity ?? OPERATOR_IDENTITY;
  const { caFile, certFile, keyFile } = tls.certificates;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`mTLS client as ${identity}: cannot read the ${what} ${file}: ${(error as Error).message}`);
    }
  };
  return credentials.createSsl(read(caFile, "mesh CA"), read(keyFile(identity), "private key"), read(certFile(identity), "certificate"), {
    checkServerIdentity: (_host, certificate) => {
      const problem = serverIdentityProblem(certificate.subjectaltname, tls.server);
      return problem ? new Error(problem) : undefined;
    },
  });
}
