// `sc-cluster up`'s option values turned into what `up` checks before it makes anything and the
// options of the cluster it starts (cluster/plan.ts ClusterOptions), without I/O.
import { UsageError, bool, list, optStr, str, type ParsedValues } from "../common/args.js";
import { checkHostName } from "../sc/auth/admin-access.js";
import { parseByteSize, type ClusterOptions } from "../cluster/index.js";
import { DEFAULT_PREFIX } from "../testbed/topology.js";

/** What `up` checks before it looks at the machine. */
export interface UpOptions {
  prefix: string;
  detach: boolean;
  json: boolean;
  /** --cache-bytes as given (checked: cluster/plan.ts parses it again). */
  cacheBytes: string;
  timeoutS: number;
  rate: string | undefined;
  loss: number | undefined;
}

function numberOpt(v: ParsedValues, name: string, whole: boolean): number | undefined {
  const raw = optStr(v, name);
  if (raw === undefined) return undefined;
  const n = Number(raw.replace(/%$/, ""));
  if (raw.trim() === "" || !Number.isFinite(n) || (whole && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be a ${whole ? "whole number" : "number"}, got '${raw}'`);
  return n;
}

function weightsOpt(v: ParsedValues): number[] | undefined {
  const raw = optStr(v, "weights");
  if (raw === undefined) return undefined;
  return raw.split(",").map((w) => {
    if (!/^\d+$/.test(w.trim()))
      throw new UsageError(`--weights must be whole numbers separated by commas, got '${raw}'`);
    return Number(w);
  });
}

/** The options checked first: no positional arguments, the cache size, the timeout, the loss. */
export function upOptionsFrom(values: ParsedValues, positionals: readonly string[]): UpOptions {
  if (positionals.length > 0) throw new UsageError(`up: unexpected argument '${positionals[0]}'`);
  const prefix = optStr(values, "prefix") ?? DEFAULT_PREFIX;
  const detach = bool(values, "detach");
  const json = bool(values, "json");
  const cacheBytes = str(values, "cache-bytes");
  try {
    parseByteSize(cacheBytes);
  } catch (err) {
    throw new UsageError(`--cache-bytes: ${(err as Error).message}`);
  }
  const timeoutS = numberOpt(values, "timeout", false);
  if (timeoutS === undefined || !(timeoutS > 0))
    throw new UsageError("--timeout must be a positive number of seconds");
  const loss = numberOpt(values, "loss", false);
  return { prefix, detach, json, cacheBytes, timeoutS, rate: optStr(values, "rate"), loss };
}

/** --dashboard-host: the names the dashboard answers to, checked (against DNS rebinding). */
export function dashboardHostNames(values: ParsedValues): string[] {
  return list(values, "dashboard-host").map((n) => {
    const c = checkHostName(n);
    if (c === undefined) throw new UsageError(`--dashboard-host must be a host name, got '${n}'`);
    return c;
  });
}

/** The options of the cluster to start; the cluster's plan checks the mode, scheduler and sizes. */
export function clusterOptionsFrom(values: ParsedValues, up: UpOptions): ClusterOptions {
  return {
    prefix: up.prefix,
    nodes: numberOpt(values, "nodes", true),
    clients: numberOpt(values, "clients", true),
    mode: optStr(values, "mode"),
    workers: numberOpt(values, "workers", true),
    site: optStr(values, "site"),
    rate: up.rate,
    loss: up.loss,
    expose: bool(values, "expose") && !bool(values, "no-expose"),
    cacheBytes: up.cacheBytes,
    accessLog: bool(values, "access-log"),
    scheduler: optStr(values, "scheduler"),
    weights: weightsOpt(values),
    ...(bool(values, "no-tls") ? { tls: false } : {}),
    logDir: optStr(values, "log-dir"),
    startTimeoutMs: up.timeoutS * 1000,
  };
}

/** The command that stops the cluster of this prefix. */
export function downCommand(prefix: string): string {
  return `sc-cluster down${prefix === DEFAULT_PREFIX ? "" : ` --prefix ${prefix}`}`;
}
