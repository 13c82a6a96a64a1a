/**
 * Certificate renewal under traffic, over real mTLS: a service and its
 * client both read their certificates from a directory in which
 * ensureMeshCertificates renews every leaf (as `npm start` does periodically)
 * twice while calls run over several channels, long-lived ones and a fresh
 * connection per call. No call may fail, and afterwards a new connection
 * sees the server's new certificate, and a server sees the client's new one.
 *
 * Not vacuous on a busy machine: traffic runs until both renewals have been
 * written and two reload periods more, and both sides must have logged
 * taking the last certificate inside that window, with calls succeeding
 * after it.
 */
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createSecureServer, type Http2SecureServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { createServiceClient, type MeshTransport } from "@leadmesh/platform";
import { createChannel, Metadata, waitForChannelReady } from "nice-grpc";
import { uniqueTenant } from "../harness/clients";
import { createTestCertificates, type TestCertificates } from "../harness/mtls-certificates";
import {
  type CapturedLog,
  capturedLogger,
  clientTransport,
  type LogLine,
  type MeshTestService,
  recordingTenantService,
  startMeshTestService,
  TENANT_PATHS,
} from "../harness/mtls-services";

const RELOAD_MS = 200;
const RENEW_AT_MS = [1000, 2000];
const LONG_LIVED_CHANNELS = 3;

let certificates: TestCertificates;
let users: MeshTestService;
let auth: MeshTransport;
let authLog: CapturedLog;

beforeAll(async () => {
  certificates = await createTestCertificates(["users", "auth"]);
  users = await startMeshTestService({
    name: "users",
    certificates,
    meshPeers: { auth: [TENANT_PATHS.create] },
    services: [recordingTenantService().service],
    env: { TLS_RELOAD_MS: String(RELOAD_MS) },
  });
  authLog = capturedLogger("auth");
  auth = clientTransport("auth", certificates, { TLS_RELOAD_MS: String(RELOAD_MS) }, authLog);
});

afterAll(async () => {
  auth?.close();
  await users?.stop();
  certificates?.remove();
});

/** The serial of the certificate a server presents to a new TLS connection from `auth`. */
async function serverSerialSeenByNewConnection(port: number): Promise<string> {
  const { certificate, privateKey } = certificates.keyPair("auth");
  const socket: TLSSocket = connect({
    host: "127.0.0.1",
    port,
    ca: certificates.caPem(),
    cert: certificate,
    key: privateKey,
    ALPNProtocols: ["h2"],
    servername: "localhost",
  });
  try {
    await once(socket, "secureConnect");
    return socket.getPeerCertificate().serialNumber.toUpperCase();
  } finally {
    socket.destroy();
  }
}

async function eventually<T>(what: string, withinMs: number, probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const until = Date.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > until) throw new Error(`${what}: still ${JSON.stringify(value)} after ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("calls keep succeeding while both sides' certificates are renewed twice; new connections present the new certificates", async () => {
  const firstServerSerial = certificates.serialOf("users");
  expect(await serverSerialSeenByNewConnection(users.grpcPort)).toBe(firstServerSerial);

  const tenant = uniqueTenant("renewal");
  const metadata = () => Metadata({ "leadmesh-tenant": tenant });
  const longLived = Array.from({ length: LONG_LIVED_CHANNELS }, () =>
    createServiceClient(TenantServiceDefinition, users.address, { transport: auth, peer: "users" }),
  );
  const failures: string[] = [];
  /** When each successful call ended, and whether it was on a fresh connection. */
  const successes: { at: number; fresh: boolean }[] = [];
  const call = async (client: (typeof longLived)[number]["client"], fresh: boolean) => {
    try {
      await client.createTenant({ tenant: { id: tenant, displayName: "Renewal" } }, { metadata: metadata(), deadline: new Date(Date.now() + 2000) });
      successes.push({ at: Date.now(), fresh });
    } catch (error) {
      failures.push(String(error));
    }
  };

  let trafficRuns = true;
  const trafficStartedAt = Date.now();
  const renewals = RENEW_AT_MS.map(
    (at) =>
      new Promise<string[]>((resolve, reject) => {
        setTimeout(() => certificates.renew().then(resolve, reject), at);
      }),
  );
  const loops = [
    ...longLived.map(async ({ client }) => {
      while (trafficRuns) await call(client, false);
    }),
    // A new channel, so a new TLS handshake, for every call: these meet the renewals half-done too.
    (async () => {
      while (trafficRuns) {
        const fresh = createServiceClient(TenantServiceDefinition, users.address, { transport: auth, peer: "users" });
        try {
          await call(fresh.client, true);
        } finally {
          fresh.close();
        }
      }
    })(),
  ];
  let trafficEndedAt: number;
  try {
    // However slow the machine, traffic runs until both renewals are on disk and both sides have had two reload periods to take them.
    const renewed = await Promise.all(renewals);
    await new Promise((resolve) => setTimeout(resolve, 2 * RELOAD_MS));
    trafficRuns = false;
    await Promise.all(loops);
    trafficEndedAt = Date.now();
    expect(renewed).toEqual([
      ["users", "auth"],
      ["users", "auth"],
    ]);
  } finally {
    trafficRuns = false;
    for (const client of longLived) client.close();
  }

  expect(failures).toEqual([]);
  expect(successes.length).toBeGreaterThan(30);
  expect(successes.filter((success) => success.fresh).length).toBeGreaterThan(5);

  // Both sides took the last certificate while the traffic ran, and calls (fresh connections among them) kept succeeding after.
  const finalNotAfter = (name: string) => new Date(new X509Certificate(readFileSync(certificates.paths.certFile(name))).validTo).toISOString();
  for (const [side, log] of [
    ["users", users.log],
    ["auth", authLog],
  ] as const) {
    const renewedInWindow = log
      .find("info", "certificate renewed")
      .filter((line: LogLine) => (line.time as number) >= trafficStartedAt && (line.time as number) <= trafficEndedAt);
    expect(renewedInWindow.length).toBeGreaterThanOrEqual(1);
    const last = renewedInWindow[renewedInWindow.length - 1];
    expect({ side, notAfter: last.notAfter }).toEqual({ side, notAfter: finalNotAfter(side) });
    const after = successes.filter((success) => success.at > (last.time as number));
    expect(after.length).toBeGreaterThan(0);
    expect(after.some((success) => success.fresh)).toBe(true);
  }

  // The server took the last renewal without a restart: a new connection gets it (within a few reload periods).
  const renewedServerSerial = certificates.serialOf("users");
  expect(renewedServerSerial).not.toBe(firstServerSerial);
  await eventually(
    "server certificate seen by a new connection",
    3000,
    () => serverSerialSeenByNewConnection(users.grpcPort),
    (serial) => serial === renewedServerSerial,
  );
});

describe("the client side presents its renewed certificate on new connections", () => {
  let probe: Http2SecureServer;
  const clientSerials: string[] = [];

  beforeAll(async () => {
    // A TLS server that requires and verifies client certificates and notes each one's serial: it plays "users".
    const { certificate, privateKey } = certificates.keyPair("users");
    probe = createSecureServer({ cert: certificate, key: privateKey, ca: certificates.caPem(), requestCert: true, rejectUnauthorized: true });
    probe.on("secureConnection", (socket: TLSSocket) => clientSerials.push(new X509Certificate(socket.getPeerCertificate().raw).serialNumber.toUpperCase()));
    probe.listen(0, "127.0.0.1");
    await once(probe, "listening");
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  async function clientSerialOnNewConnection(): Promise<string | undefined> {
    const channel = createChannel(`127.0.0.1:${(probe.address() as AddressInfo).port}`, auth.channelCredentials("users"));
    const seen = clientSerials.length;
    try {
      await waitForChannelReady(channel, new Date(Date.now() + 2000));
      return clientSerials[seen];
    } finally {
      channel.close();
    }
  }

  test("after a renewal, the client's next connection carries its new certificate", async () => {
    const before = certificates.serialOf("auth");
    expect(await clientSerialOnNewConnection()).toBe(before);
    await certificates.renew();
    const renewed = certificates.serialOf("auth");
    expect(renewed).not.toBe(before);
    await eventually("client certificate seen by a new connection", 3000, clientSerialOnNewConnection, (serial) => serial === renewed);
  });
});
