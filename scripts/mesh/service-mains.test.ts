/**
 * A service's main declares in code which datastores it connects to
 * (loadServiceConfig(name, env, [...])); mesh/topology.yaml declares the same
 * for the launcher. They must agree. The launcher's own start proves that a
 * main needs nothing the model does not give it (it would exit 78); this
 * checks the other half: every datastore the topology declares is one the
 * main requires, so no service is handed a URL it never uses.
 */
import { join } from "node:path";
import { ConfigError } from "@leadmesh/platform";
import { implementedServices, loadMeshModel } from "./model";
import { serviceEnvironment } from "./model-environment";
import { REPO_ROOT } from "./topology";

type Starter = (env: NodeJS.ProcessEnv) => Promise<{ shutdown(): Promise<void> }>;

const model = loadMeshModel();
const URL_VARIABLE = { mongodb: "MONGO_URL", redis: "REDIS_URL" } as const;

/** The service's exported start function (startLeads, startAuth, ...): main.ts's one export that starts it. */
function starterOf(service: string): Starter {
  const main = require(join(REPO_ROOT, "services", service, "src", "main")) as Record<string, unknown>;
  const starters = Object.entries(main).filter(([name, value]) => /^start[A-Z]/.test(name) && typeof value === "function");
  if (starters.length !== 1)
    throw new Error(`services/${service}/src/main.ts must export one start function, found ${starters.map(([name]) => name).join(", ") || "none"}`);
  return starters[0][1] as Starter;
}

const cases = implementedServices(model).flatMap((service) => service.datastores.map((store) => [service.name, store] as const));

it.each(cases)("%s requires the %s its topology entry declares", async (service, store) => {
  const environment = serviceEnvironment(model, service, {
    bindHost: "127.0.0.1",
    ports: { grpc: 0, health: 0, metrics: 0 },
    mongoUrl: "mongodb://127.0.0.1:1/",
    redisUrl: "redis://127.0.0.1:1",
    peers: Object.fromEntries(model.services.map((peer) => [peer.name, "127.0.0.1:1"])),
    // Datastores are the subject here: no certificate files to read.
    security: "sidecar",
  });
  delete environment[URL_VARIABLE[store]];
  // Config is checked before anything connects, so this never reaches a network.
  const outcome = await starterOf(service)(environment).then(
    async (running) => {
      await running.shutdown();
      return "started without it";
    },
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(ConfigError);
  expect((outcome as ConfigError).problems).toEqual([expect.stringMatching(new RegExp(`^${URL_VARIABLE[store]} is required`))]);
});
