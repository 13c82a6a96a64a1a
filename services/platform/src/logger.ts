import { type Logger, pino } from "pino";
import { activeTraceIds } from "./telemetry";

export type { Logger };

/**
 * Structured JSON logs. Every line written inside a request carries the
 * trace_id/span_id of the active span, so a log line leads to its trace.
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: () => activeTraceIds() ?? {},
  });
}
