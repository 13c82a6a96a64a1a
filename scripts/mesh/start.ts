/**
 * `npm start`: brings the whole local mesh up on the ports of
 * mesh/topology.yaml with each service's replicas, prints what runs where
 * and every restart the supervisor makes, and stops everything on Ctrl-C.
 */
import { join, relative } from "node:path";
import { OPERATOR_IDENTITY } from "./client-tls";
import { healthStatus } from "./health-client";
import { type RunningMesh, startMesh } from "./local-mesh";
import { spiffeIdOf } from "./model";
import type { SupervisorEvent } from "./processes";
import { REPO_ROOT } from "./topology";

const clock = () => new Date().toISOString().slice(11, 23);
/** npm start runs for days: the 24 h certificates are checked this often and renewed past half their life. */
const CERTIFICATE_CHECK_MS = 10 * 60_000;

/** Ready-to-paste grpcurl and grpc-health-probe commands (from the repository root) against one service, as the operator. */
function operatorCommands(mesh: RunningMesh, service: string): string {
  const at = (file: string) => relative(REPO_ROOT, file);
  const { grpc, health } = mesh.services[service];
  const tls = mesh.tls;
  return [
    `  grpcurl (reflection, any RPC; add -H 'authorization: Bearer <token>' for user RPCs):`,
    `    .tools/bin/grpcurl -cacert ${at(tls.caFile)} -cert ${at(tls.certFile(OPERATOR_IDENTITY))} -key ${at(tls.keyFile(OPERATOR_IDENTITY))} 127.0.0.1:${grpc} list`,
    "  health over mTLS on the main port:",
    `    .tools/bin/grpc-health-probe -addr=127.0.0.1:${grpc} -tls -tls-ca-cert ${at(tls.caFile)} -tls-client-cert ${at(tls.certFile(OPERATOR_IDENTITY))} -tls-client-key ${at(tls.keyFile(OPERATOR_IDENTITY))}`,
    "  health on the plaintext probe port (grpc.health.v1 only, what Kubernetes probes):",
    `    .tools/bin/grpc-health-probe -addr=127.0.0.1:${health}`,
  ].join("\n");
}

/** One line per restart on the console (the process's own log has it too); giving up is an error. */
function reportSupervisorEvent(event: SupervisorEvent) {
  if (event.kind === "gave-up") console.error(`${clock()} leadmesh: ${event.message}`);
  else console.log(`${clock()} ${event.message}`);
}

/**
 * Ctrl-C while the mesh is still starting: the components run in their own
 * process groups, so a default SIGINT exit would orphan them on the fixed
 * ports. Exiting through process.exit runs the launcher's exit hook, which
 * kills every child it started.
 */
function exitOnSignalDuringStartup(signal: NodeJS.Signals) {
  console.error(`\n${signal} during startup: stopping what has started.`);
  process.exit(130);
}

async function main() {
  process.on("SIGINT", exitOnSignalDuringStartup);
  process.on("SIGTERM", exitOnSignalDuringStartup);
  const runDir = join(REPO_ROOT, ".run", "local");
  console.log("starting the leadmesh local mesh ...");
  const mesh = await startMesh({
    ports: "topology",
    replicas: "topology",
    runDir,
    renewCertificatesEveryMs: CERTIFICATE_CHECK_MS,
    log: (line) => console.log(`  ${line}`),
    onSupervisorEvent: reportSupervisorEvent,
  });
  const rows: string[] = [];
  for (const replica of Object.values(mesh.replicas).flat()) {
    const { grpc, health, metrics } = replica.ports;
    rows.push(
      `  ${replica.name.padEnd(9)} grpc 127.0.0.1:${grpc} (${await healthStatus(grpc, { tls: { certificates: mesh.tls, server: spiffeIdOf(mesh.topology, replica.service) } })})  probe :${health}  metrics http://127.0.0.1:${metrics}/metrics  log ${relative(REPO_ROOT, replica.process.spec.logFile)}`,
    );
  }
  const notYet = mesh.topology.services.filter((service) => !service.implemented).map((service) => service.name);
  console.log(`
leadmesh is up.
  REST + gRPC  ${mesh.ingressUrl}   (e.g. curl ${mesh.ingressUrl}/api/v1/leads)
  envoy admin  ${mesh.adminUrl}
  mongodb      ${mesh.mongoUrl}  (FerretDB, data in .run/local/ferretdb)
  redis        ${mesh.redisUrl}
services (every process supervised: restarted after a crash, given up after a crash loop):
${rows.join("\n")}
${notYet.length > 0 ? `contract only (not implemented yet): ${notYet.join(", ")}\n` : ""}logs: .run/local/*.log
mTLS inside the mesh: every service's gRPC port requires a client certificate of the mesh CA.
  operator certificate  ${relative(REPO_ROOT, mesh.tls.certFile(OPERATOR_IDENTITY))} (key ${relative(REPO_ROOT, mesh.tls.keyFile(OPERATOR_IDENTITY))}, CA ${relative(REPO_ROOT, mesh.tls.caFile)}; 24 h, renewed while this runs)
${operatorCommands(mesh, mesh.services.leads ? "leads" : Object.keys(mesh.services)[0])}
Every API call needs a token; start by registering a tenant (see README.md, "Using it"):
  curl -s -X POST ${mesh.ingressUrl}/api/v1/auth:register -H 'content-type: application/json' \\
    -d '{"tenantId":"acme","tenantDisplayName":"Acme Inc.","email":"ada@acme.example","password":"correct horse battery","displayName":"Ada"}'
Press Ctrl-C to stop.`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping ...");
    await mesh.stop();
    console.log("stopped.");
    process.exit(0);
  };
  process.off("SIGINT", exitOnSignalDuringStartup);
  process.off("SIGTERM", exitOnSignalDuringStartup);
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A crashed component is restarted by its supervisor (reported above);
  // one that keeps crashing is given up and the rest keeps running, so the
  // effect (fewer replicas, health NOT_SERVING, Envoy 503) can be observed.
}

main().catch((error: Error) => {
  console.error(`leadmesh: ${error.message}`);
  process.exit(1);
});
