/**
 * Unary gRPC calls with the request as raw bytes, for generated-input tests:
 * the bytes come from a message descriptor (proto-arbitraries.ts), so no
 * generated client type sits between the fuzzer and the wire. Over mTLS as
 * the operator by default, like every test client (clients.ts).
 */
import { Client, credentials, Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { CLIENT_TLS_CHANNEL_OPTIONS, type ConnectOptions, meshCredentials, TENANT_METADATA } from "./clients";

export interface RawOutcome {
  code: Status;
  details: string;
  /** The response message's bytes, when the call succeeded. */
  response?: Uint8Array;
}

const identity = (bytes: Buffer) => bytes;

export class RawGrpcClient {
  private readonly client: Client;
  private readonly tenant: string | undefined;

  /** `options` as for grpcClient: the identity presented (operator by default), `leadmesh-tenant`, plaintext for the ingress. */
  constructor(address: string, options: ConnectOptions = {}) {
    const tls = meshCredentials(address, options);
    this.client = tls ? new Client(address, tls, CLIENT_TLS_CHANNEL_OPTIONS) : new Client(address, credentials.createInsecure());
    this.tenant = options.tenant;
  }

  /** Calls `path` ("/pkg.Service/Method") with `request` bytes; resolves with the status, never rejects. */
  call(path: string, request: Uint8Array, token: string | undefined, timeoutMs = 10_000): Promise<RawOutcome> {
    const metadata = new Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    if (this.tenant !== undefined) metadata.set(TENANT_METADATA, this.tenant);
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        path,
        identity,
        identity,
        Buffer.from(request),
        metadata,
        { deadline: Date.now() + timeoutMs },
        (error: ServiceError | null, response?: Buffer) =>
          resolve(error ? { code: error.code, details: error.details } : { code: Status.OK, details: "", response }),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
