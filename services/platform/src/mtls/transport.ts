/**
 * One per process: how this service's server and clients secure their
 * connections and learn who is on the other end.
 *
 * mtls: TLS with our certificate (identity-files.ts, renewed from disk
 * without restart). The server asks every client for a certificate but lets
 * the handshake finish whatever it gets (requestCert true, rejectUnauthorized
 * false, as grpc-js's certificate-provider server credentials set them), so
 * the call layer refuses with a logged reason (peer-identity.ts,
 * peer-access.ts). Clients require the server to present exactly the SPIFFE
 * id of the peer they meant to reach, not just any certificate of our CA.
 *
 * sidecar: plaintext on the port (Istio's sidecar does the TLS); the caller's
 * identity comes from the sidecar's x-forwarded-client-cert.
 */
import type { PeerCertificate } from "node:tls";
import { ChannelCredentials, experimental, ServerCredentials, type ServerInterceptor } from "@grpc/grpc-js";
import type { Logger } from "../logger";
import type { MeshConfig, MeshSecurity } from "../service-config";
import { IdentityFiles } from "./identity-files";
import { peerIdentityInterceptor } from "./peer-identity";
import { type SpiffeScope, spiffeId, spiffeIdOfCertificate } from "./spiffe";

export interface MeshTransport {
  mode: MeshSecurity;
  /** Our own SPIFFE id. */
  selfId: string;
  scope: SpiffeScope;
  /** For the main port's listen(). The same object every time (grpc-js compares credentials by identity). */
  serverCredentials(): ServerCredentials;
  /** For createServer({ interceptors }): writes the verified peer and the deadline into internal metadata. */
  serverInterceptors: ServerInterceptor[];
  /** For a channel to `peerName`'s replicas; the server must prove that identity. */
  channelCredentials(peerName: string): ChannelCredentials;
  spiffeIdOf(name: string): string;
  /** Stops watching the certificate files. */
  close(): void;
}

export function createMeshTransport(config: MeshConfig, serviceName: string, logger: Logger): MeshTransport {
  const scope: SpiffeScope = { trustDomain: config.meshTrustDomain, namespace: config.meshNamespace };
  const selfId = spiffeId(scope, serviceName);
  const interceptors = [peerIdentityInterceptor({ mode: config.meshSecurity, sidecarPeers: config.meshSidecarPeers })];
  const common = { mode: config.meshSecurity, selfId, scope, serverInterceptors: interceptors, spiffeIdOf: (name: string) => spiffeId(scope, name) };

  if (config.meshSecurity === "sidecar") {
    const server = ServerCredentials.createInsecure();
    const channel = ChannelCredentials.createInsecure();
    logger.info({ spiffeId: selfId, mode: "sidecar" }, "mesh transport: plaintext behind the sidecar; caller identity from x-forwarded-client-cert");
    return { ...common, serverCredentials: () => server, channelCredentials: () => channel, close: () => undefined };
  }

  const files = new IdentityFiles({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    caFile: config.tlsCaFile,
    expectedId: selfId,
    reloadMs: config.tlsReloadMs,
    logger,
  });
  // requestCert: true (a CA provider is given), rejectUnauthorized: false (requireClientCertificate false).
  const server = experimental.createCertificateProviderServerCredentials(files, files, false);
  const channels = new Map<string, ChannelCredentials>();
  logger.info({ spiffeId: selfId, mode: "mtls", certFile: config.tlsCertFile, notAfter: files.certificateNotAfter }, "mesh transport: mTLS");
  return {
    ...common,
    serverCredentials: () => server,
    channelCredentials(peerName) {
      const expected = spiffeId(scope, peerName);
      let credentials = channels.get(expected);
      if (!credentials) {
        credentials = experimental.createCertificateProviderChannelCredentials(files, files, {
          checkServerIdentity: (_host, certificate) => serverIdentityProblem(certificate, expected),
        });
        channels.set(expected, credentials);
      }
      return credentials;
    },
    close: () => files.close(),
  };
}

/** Undefined when the server's certificate carries exactly the SPIFFE id we meant to reach; else why not (the connection is refused). */
export function serverIdentityProblem(certificate: PeerCertificate, expected: string): Error | undefined {
  const presented = spiffeIdOfCertificate(certificate.subjectaltname);
  if (presented === expected) return undefined;
  const error = new Error(`server presented ${presented ?? "no single SPIFFE id"}, expected ${expected}`);
  (error as NodeJS.ErrnoException).code = "ERR_TLS_CERT_ALTNAME_INVALID";
  return error;
}
