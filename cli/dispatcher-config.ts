// `sc-cluster dispatcher`'s option values turned into the L4 dispatcher's configuration or the
// LARD front-end's options, without I/O: the command (dispatcher.ts) adds what needs files read
// (the admin token, the cluster secret). Also what a SIGHUP changes, and the "ready" line.
import { hostPort, int, list, optStr, str, bool, UsageError, type ParsedValues } from "../common/args.js";
import { nodeListChanges, parseNodeSpec, type NodeSpec } from "../dispatcher/nodes.js";
import { isSchedulerName, SCHEDULER_NAMES, type SchedulerName } from "../dispatcher/schedulers.js";
import { MAX_WORKERS, type DispatcherConfig, type OutputMode } from "../dispatcher/service.js";
import type { DispatcherStats, NodeView } from "../dispatcher/control.js";
import type { HealthOptions } from "../dispatcher/health.js";
import { ipv4FromString, isWireError } from "../sc/wire/index.js";

/** The L4 dispatcher's configuration but for what the command adds (admin access, trust, log). */
export type L4Config = Omit<DispatcherConfig, "admin" | "trust" | "log"> & { output: OutputMode };

/** The LARD front-end's options but for the trust (dispatcher.ts runLard). */
export interface LardOptions {
  vip: string;
  port: number;
  tun: string;
  nodes: NodeSpec[];
  source: string | undefined;
  tLow: number;
  tHigh: number;
  health: HealthOptions;
}

/** A dispatcher's options, converted and checked: --admin's address and what --mode runs. */
export type DispatcherOptions = { adminListen: { host: string; port: number } } & (
  { mode: "l4"; config: L4Config } | { mode: "lard"; lard: LardOptions }
);

/** --port: one port or a comma list (80,443), each 1..65535, none twice. */
export function servicePorts(text: string): [number, ...number[]] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const t = part.trim();
    const n = Number(t);
    if (!/^\d+$/.test(t) || n < 1 || n > 65535)
      throw new UsageError(`--port takes ports 1..65535 separated by commas, got '${text}'`);
    if (out.includes(n)) throw new UsageError(`--port: ${n} given twice`);
    out.push(n);
  }
  const [first, ...more] = out;
  // Never: split gives at least one part, and each is a port or an error above.
  if (first === undefined)
    throw new UsageError(`--port takes ports 1..65535 separated by commas, got '${text}'`);
  return [first, ...more];
}

export function schedulerFrom(values: ParsedValues): SchedulerName {
  const scheduler = str(values, "scheduler");
  if (!isSchedulerName(scheduler))
    throw new UsageError(`--scheduler must be one of ${SCHEDULER_NAMES.join(", ")}, got '${scheduler}'`);
  return scheduler;
}

function addr(name: string, text: string): number {
  const a = ipv4FromString(text);
  if (isWireError(a)) throw new UsageError(`--${name} must be an IPv4 address, got '${text}'`);
  return a;
}

/** The --node list, each id once; a node's GUE port defaults to --gue-port. */
function nodesFrom(values: ParsedValues, guePort: number): NodeSpec[] {
  const nodes = list(values, "node").map((t) => {
    try {
      return parseNodeSpec(t, guePort);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  const ids = new Set<string>();
  for (const n of nodes) {
    if (ids.has(n.id)) throw new UsageError(`--node: id '${n.id}' given twice`);
    ids.add(n.id);
  }
  return nodes;
}

function healthFrom(values: ParsedValues): HealthOptions {
  return {
    intervalMs: int(values, "health-interval", 10, 3_600_000),
    timeoutMs: int(values, "health-timeout", 10, 60_000),
    fall: int(values, "health-fall", 1, 100),
    rise: int(values, "health-rise", 1, 100),
  };
}

/**
 * The dispatcher's options as the configuration of what --mode runs. The checks run in the
 * order the options were always checked, so a command line with one bad value gets the same
 * error as ever.
 */
export function dispatcherOptionsFrom(values: ParsedValues): DispatcherOptions {
  const scheduler = schedulerFrom(values);
  const output = str(values, "output");
  if (output !== "tun" && output !== "udp" && output !== "raw")
    throw new UsageError(`--output must be tun, udp or raw, got '${output}'`);
  const variant = str(values, "gue-variant");
  if (variant !== "0" && variant !== "1")
    throw new UsageError(`--gue-variant must be 0 or 1, got '${variant}'`);
  const guePort = int(values, "gue-port", 1, 65535);
  const nodes = nodesFrom(values, guePort);
  const adminListen = hostPort(str(values, "admin"), "--admin");
  const mode = str(values, "mode");
  if (mode !== "l4" && mode !== "lard") throw new UsageError(`--mode must be l4 or lard, got '${mode}'`);
  const ports = servicePorts(str(values, "port"));
  if (mode === "lard") return { adminListen, mode, lard: lardFrom(values, ports, nodes) };
  const [port, ...extraPorts] = ports;
  const base: L4Base = { scheduler, output, guePort, variant: variant === "0" ? 0 : 1, nodes, port };
  return { adminListen, mode, config: l4From(values, base, extraPorts) };
}

/** --mode lard: one port, no --workers, T_low below T_high. */
function lardFrom(values: ParsedValues, ports: [number, ...number[]], nodes: NodeSpec[]): LardOptions {
  const [port] = ports;
  if (ports.length !== 1)
    throw new UsageError("--mode lard serves one port (its front-end parses HTTP; HTTPS is not supported)");
  if (optStr(values, "workers") !== undefined) throw new UsageError("--workers is for --mode l4 only");
  const tLow = int(values, "lard-t-low", 0, 1_000_000);
  const tHigh = int(values, "lard-t-high", 1, 1_000_000);
  if (tHigh <= tLow) throw new UsageError("--lard-t-high must be above --lard-t-low");
  return {
    health: healthFrom(values),
    vip: str(values, "vip"),
    port,
    tun: str(values, "tun"),
    nodes,
    source: optStr(values, "source"),
    tLow,
    tHigh,
  };
}

type L4Base = Pick<L4Config, "scheduler" | "output" | "guePort" | "variant" | "nodes" | "port">;

/** --mode l4: the forwarder's table, timeouts (given in s) and data path. */
function l4From(values: ParsedValues, base: L4Base, extraPorts: number[]): L4Config {
  const maxConns = int(values, "max-conns", 1, 1 << 26);
  const halfOpenText = optStr(values, "max-half-open");
  const sourceText = optStr(values, "source");
  const seconds = (name: string) => int(values, name, 1, 365 * 86400) * 1000;
  const fin = seconds("timeout-fin");
  return {
    vip: addr("vip", str(values, "vip")),
    ...base,
    ...(extraPorts.length > 0 ? { extraPorts } : {}),
    tun: str(values, "tun"),
    ...(optStr(values, "workers") !== undefined ? { workers: int(values, "workers", 1, MAX_WORKERS) } : {}),
    source: sourceText === undefined ? undefined : addr("source", sourceText),
    udpChecksum: bool(values, "udp-checksum"),
    udpGso: !bool(values, "no-udp-gso"),
    maxConnections: maxConns,
    maxHalfOpen: halfOpenText === undefined ? undefined : int(values, "max-half-open", 1, maxConns),
    timeouts: {
      established: seconds("timeout-established"),
      synRecv: seconds("timeout-syn"),
      synRecvUnderLoad: seconds("timeout-syn-flood"),
      finWait: fin,
      timeWait: fin,
      close: seconds("timeout-close"),
    },
    deadGraceMs: int(values, "dead-grace", 0, 365 * 86400) * 1000,
    stateFile: optStr(values, "state-file"),
    health: healthFrom(values),
  };
}

/** What a SIGHUP changes: the scheduler, and the --node list against the one in force. */
export function reloadFrom(
  next: ParsedValues,
  current: readonly NodeSpec[],
): { scheduler: SchedulerName; nodes: NodeSpec[]; put: NodeSpec[]; remove: string[] } {
  const scheduler = schedulerFrom(next);
  // The same checks as at start-up: a reload that names a node twice is refused whole.
  const nodes = nodesFrom(next, int(next, "gue-port", 1, 65535));
  return { scheduler, nodes, ...nodeListChanges(current, nodes) };
}

/** The {"ready":true,...} line: where the dispatcher forwards, and to which nodes. */
export function readyRecord(
  stats: Pick<DispatcherStats, "vip" | "port" | "scheduler" | "io"> & {
    nodes: readonly Pick<NodeView, "id" | "addr" | "port" | "weight" | "admin">[];
  },
  svc: { output: OutputMode; workers: number; tun: string; admin: string | undefined; pid: number },
): Record<string, unknown> {
  return {
    ready: true,
    pid: svc.pid,
    vip: stats.vip,
    port: stats.port,
    scheduler: stats.scheduler,
    output: svc.output,
    workers: svc.workers,
    tun: svc.tun,
    source: stats.io.source,
    admin: svc.admin,
    nodes: stats.nodes.map((n) => ({
      id: n.id,
      addr: n.addr,
      port: n.port,
      weight: n.weight,
      admin: n.admin,
    })),
  };
}
