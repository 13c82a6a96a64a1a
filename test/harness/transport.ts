/**
 * The kernel's own mesh transport (services/platform/src/mtls), acting as a
 * given identity with the test mesh's certificates: for tests that use the
 * platform's client factory (createServiceClient) the way a service does,
 * e.g. as "auth" calling users' replicas. Close it when done (it polls the
 * certificate files for renewals).
 */
import { createLogger, createMeshTransport, type MeshTransport } from "@leadmesh/platform";
import type { MeshCertificatePaths } from "../../scripts/mesh/certificates";
import { loadMeshModel } from "../../scripts/mesh/model";
import { meshCertificates } from "./mesh-info";

export function meshTransportAs(identity: string, certificates: MeshCertificatePaths = meshCertificates()): MeshTransport {
  const { mesh, identity: tokens } = loadMeshModel();
  return createMeshTransport(
    {
      meshSecurity: "mtls",
      meshTrustDomain: mesh.trustDomain,
      meshNamespace: mesh.namespace,
      // Only the server side reads the allow-list; this transport is a client.
      meshPeers: {},
      meshEdgeIdentity: mesh.edge,
      meshOperatorIdentity: mesh.operator,
      meshIdentityService: tokens.service,
      tlsCertFile: certificates.certFile(identity),
      tlsKeyFile: certificates.keyFile(identity),
      tlsCaFile: certificates.caFile,
      tlsReloadMs: 1000,
      meshSidecarPeers: [],
    },
    identity,
    createLogger(`test-${identity}`, process.env.LOG_LEVEL ?? "silent"),
  );
}
