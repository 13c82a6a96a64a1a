import { Redis } from "ioredis";
import type { DependencyCheck } from "./health";
import type { Logger } from "./logger";

export interface RedisHandle {
  redis: Redis;
  healthCheck: DependencyCheck;
  close(): Promise<void>;
}

export function connectRedis(url: string, logger: Logger): RedisHandle {
  // Commands fail at once while disconnected (no offline queue, one retry)
  // so callers get UNAVAILABLE instead of requests piling up; the client
  // keeps reconnecting in the background with a capped backoff. A Redis that
  // accepts but does not answer is bounded by commandTimeout: our commands
  // take well under a millisecond, and the health check knows a Redis that
  // is silent for 1.5 s down, after which fail-fast.ts refuses new calls
  // anyway. 2 s, not less, so that a Redis that is slow but answering
  // (health.ts: slow is not down) still serves the commands it answers.
  const redis = new Redis(url, {
    connectTimeout: 2000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    // Concurrent calls' commands (e.g. every request's revocation check) share
    // one socket write per event-loop tick instead of one write each.
    enableAutoPipelining: true,
  });
  let lastError = "";
  redis.on("error", (error: Error) => {
    // ioredis emits the same error on every reconnect attempt; log changes only.
    if (error.message !== lastError) logger.warn({ err: error }, "redis connection error");
    lastError = error.message;
  });
  redis.on("ready", () => {
    lastError = "";
  });
  return {
    redis,
    healthCheck: {
      name: "redis",
      async check() {
        await connectionSettled(redis);
        return redis.ping();
      },
    },
    async close() {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

/** States in which a connection attempt is under way and will end in "ready" or a failure within moments. */
const OPENING = new Set(["wait", "connecting", "connect"]);

/**
 * Waits out a connection attempt that is under way. Without the offline
 * queue, a PING sent while the socket is still opening fails at once: the
 * first check after start would count Redis as down, and the service would
 * then need a whole recovery run (health.ts) before it is SERVING. A refused
 * or dropped connection settles within moments, and the health check's
 * timeout bounds the rest.
 */
function connectionSettled(redis: Redis): Promise<void> {
  if (!OPENING.has(redis.status)) return Promise.resolve();
  return new Promise((resolve) => {
    const settle = () => {
      redis.off("ready", settle).off("error", settle).off("close", settle);
      resolve();
    };
    redis.on("ready", settle).on("error", settle).on("close", settle);
  });
}
