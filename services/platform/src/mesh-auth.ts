import { AuthServiceDefinition, GetJwksRequest } from "@leadmesh/contracts/auth/v1/auth";
import type { Redis } from "ioredis";
import { JwksCache, type JwksFetcher } from "./auth/jwks-cache";
import { Revocations } from "./auth/revocation";
import type { AuthSettings } from "./caller";
import { createServiceClient } from "./clients";
import type { MeshTransport } from "./mtls/transport";
import type { ServiceConfig } from "./service-config";

/**
 * Auth settings of a service that verifies tokens issued by the auth service:
 * JWKS fetched over mTLS gRPC from AUTH_ADDRESS (every replica of the identity
 * service, round-robin: one that is down does not stop the fetch), revocations
 * in the shared Redis.
 */
export function meshAuth(config: ServiceConfig, redis: Redis, transport: MeshTransport, fetchKeys?: JwksFetcher): AuthSettings & { close(): void } {
  let close = (): void => {};
  if (!fetchKeys) {
    const { client, close: closeClient } = createServiceClient(AuthServiceDefinition, config.authAddress, {
      transport,
      peer: config.meshIdentityService,
      defaultDeadlineMs: 2000,
    });
    fetchKeys = async () => (await client.getJwks(GetJwksRequest.fromPartial({}))).keys;
    close = closeClient;
  }
  return {
    issuer: config.authIssuer,
    audience: config.authAudience,
    jwks: new JwksCache(fetchKeys),
    revocations: new Revocations(redis),
    close,
  };
}
