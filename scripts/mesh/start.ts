/**
 * `npm start`: brings the whole local mesh up on the ports of
 * mesh/topology.yaml with each service's replicas, prints what runs where
 * and every restart the supervisor makes, and stops everything on Ctrl-C.
 */
import { join, relative } from "node:path";
import { healthStatus } from "./health-client";
import { startMesh } from "./local-mesh";
import type { SupervisorEvent } from "./processes";
import { REPO_ROOT } from "./topology";

const clock = () => new Date().toISOString().slice(11, 23);

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
    log: (line) => console.log(`  ${line}`),
    onSupervisorEvent: reportSupervisorEvent,
  });
  const rows: string[] = [];
  for (const replica of Object.values(mesh.replicas).flat()) {
    const { grpc, health, metrics } = replica.ports;
    rows.push(
      `  ${replica.name.padEnd(9)} grpc 127.0.0.1:${grpc} (${await healthStatus(grpc)})  probe :${health}  metrics http://127.0.0.1:${metrics}/metrics  log ${relative(REPO_ROOT, replica.process.spec.logFile)}`,
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
