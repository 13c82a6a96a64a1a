import { ConfigError } from "./config";
import { armCrashPoints } from "./crash-points";
import type { RunningService } from "./server";

/**
 * Process entry for a service: starts it, stops it gracefully on SIGTERM or
 * SIGINT (exit 0), and turns a configuration problem into one readable
 * message and exit code 78 (EX_CONFIG) instead of a stack trace.
 */
export function runMain(serviceName: string, start: () => Promise<RunningService>): void {
  // A malformed or production-refused LEADMESH_CRASH_POINTS stops the process here, not inside a request.
  const starting = (async () => {
    try {
      armCrashPoints();
    } catch (error) {
      throw new ConfigError([error instanceof Error ? error.message : String(error)]);
    }
    return start();
  })();
  starting.then(
    (running) => {
      const stop = (signal: NodeJS.Signals) => {
        process.stderr.write(`${serviceName}: ${signal} received\n`);
        running.shutdown().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`${serviceName}: shutdown failed: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    },
    (error: unknown) => {
      if (error instanceof ConfigError) {
        process.stderr.write(`${serviceName}: ${error.message}\n`);
        process.exit(78);
      }
      process.stderr.write(`${serviceName}: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
