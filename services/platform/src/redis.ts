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
  // take well under a millisecond, and 1 s is the health check's own budget,
  // after which fail-fast.ts refuses new calls anyway.
  const redis = new Redis(url, {
    connectTimeout: 2000,
    commandTimeout: 1000,
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
    healthCheck: { name: "redis", check: () => redis.ping() },
    async close() {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}
