/**
 * `npm start`: brings the whole local mesh up on the ports of
 * mesh/topology.yaml, prints what runs where, and stops everything on Ctrl-C.
 */
import { join } from "node:path";
import { healthStatus } from "./health-client";
import { startMesh } from "./local-mesh";
import { REPO_ROOT } from "./topology";

async function main() {
  const runDir = join(REPO_ROOT, ".run", "local");
  console.log("starting the leadmesh local mesh ...");
  const mesh = await startMesh({ ports: "topology", runDir, log: (line) => console.log(`  ${line}`) });
  const rows: string[] = [];
  for (const [name, ports] of Object.entries(mesh.services)) {
    rows.push(
      `  ${name.padEnd(9)} grpc 127.0.0.1:${ports.grpc} (${await healthStatus(ports.grpc)})  probe :${ports.health}  metrics http://127.0.0.1:${ports.metrics}/metrics`,
    );
  }
  const notYet = mesh.topology.services.filter((service) => !service.implemented).map((service) => service.name);
  console.log(`
leadmesh is up.
  REST + gRPC  ${mesh.ingressUrl}   (e.g. curl ${mesh.ingressUrl}/api/v1/leads)
  envoy admin  ${mesh.adminUrl}
  mongodb      ${mesh.mongoUrl}  (FerretDB, data in .run/local/ferretdb)
  redis        ${mesh.redisUrl}
services:
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
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // A component dying on its own is reported; the rest keeps running so the
  // effect (health NOT_SERVING, Envoy 503) can be observed. Ctrl-C still stops all.
  for (const [name, managed] of Object.entries(mesh.processes)) {
    void managed.waitForExit().then((code) => {
      if (!stopping) console.error(`${name} exited unexpectedly (code ${code}); see .run/local/${name}.log`);
    });
  }
}

main().catch((error: Error) => {
  console.error(`leadmesh: ${error.message}`);
  process.exit(1);
});
