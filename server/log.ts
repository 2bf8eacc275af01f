// JSON-lines logging (pino) for the server processes. The data path logs only at debug/trace
// level, so the default "info" keeps it quiet: one line per lifecycle event.
import { pino, type Logger } from "pino";
import { UsageError } from "../common/args.js";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${level}'`);
  }
  return pino({ level, base: { pid: process.pid, ...bindings } });
}
