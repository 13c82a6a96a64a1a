/**
 * The kernel's mesh transport (mTLS with SPIFFE identities, or plaintext
 * behind a sidecar). API as in /tmp/mtls-design.md "Kernel", with one
 * addition: createMeshTransport takes the service's own identity name,
 *
 *   createMeshTransport(config: MeshConfig, serviceName: string, logger) → MeshTransport
 *     { mode, selfId, scope, serverCredentials(), serverInterceptors, channelCredentials(peerName), spiffeIdOf(name), close() }
 *
 * A test client or tool that acts as another identity (e.g. "operator")
 * passes that name and its TLS_* files: its channelCredentials(service)
 * present that identity and check the service's SPIFFE id.
 * The peer that peer-access.ts verified is `context.meshPeer` ({ spiffeId, name, isService })
 * (nice-grpc's own `context.peer` stays the TCP address).
 */
export * from "./identity-files";
export * from "./peer-access";
export { DEADLINE_HEADER, PEER_HEADER, PEER_PROBLEM_HEADER, peerIdentityInterceptor, XFCC_HEADER } from "./peer-identity";
export * from "./spiffe";
export * from "./transport";
export * from "./xfcc";
