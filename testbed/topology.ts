// The testbed's plan as pure data: which hosts exist, their namespaces, addresses and
// devices, and the status shape that tools read. No I/O here, so it is unit-tested.
import type { TestbedStatus, HostStatus, HostRole } from "./status.js";
import { UserError } from "../common/errors.js";

/** RFC 2544 benchmarking block; see docs/testbed.md for the address plan. */
export const SUBNET = "198.18.0.0/24";
export const PREFIX_LEN = 24;
export const VIP = "198.18.100.1";
export const DISPATCHER_IP = "198.18.0.1";
export const ORIGIN_IP = "198.18.0.2";
/** Root-namespace side of the `--expose` veth. */
export const EXPOSE_IP = "198.18.0.254";

/** The LAN device inside every host namespace (the veth end facing the switch). */
export const LAN_DEV = "eth0";
/** The persistent TUN device of the dispatcher and every node. */
export const TUN_DEV = "sctun";
/** The bridge inside the switch namespace. */
export const BRIDGE_DEV = "br0";
/** Switch-side port of the `--expose` veth. */
export const EXPOSE_PORT = "expose";

export const DEFAULT_PREFIX = "sc-";
export const MAX_NODES = 60;
export const MAX_CLIENTS = 100;
/** `<prefix>exp` lives in the root namespace and must fit IFNAMSIZ (15 chars). */
export const MAX_PREFIX_LEN = 12;

export interface TestbedOptions {
  /** Names every namespace and the root-side expose link; default "sc-". */
  prefix?: string;
  /** node1..nodeN, default 3. */
  nodes?: number;
  /** client, client2..clientC, default 1. */
  clients?: number;
  /** tc rate for every host link in both directions, e.g. "100mbit"; none by default. */
  rate?: string;
  /** Percent of IPv4 packets dropped on every pass through the switch; default 0. */
  loss?: number;
  /** Veth from the root namespace into the LAN plus a root route for the VIP. */
  expose?: boolean;
  /** Host whose TUN receives the VIP: "dispatcher" (default) or "nodeK". */
  vipHost?: string;
  /**
   * Node hosts get a multi-queue TUN device (IFF_MULTI_QUEUE), one queue per data-path worker
   * of `sc-cluster node --workers N`. Default: single-queue, because a plain open (no
   * multiQueue, e.g. sc/tcp/interop-service.ts) fails with EINVAL on a multi-queue device; the
   * node itself attaches to either kind with one worker.
   */
  multiQueueTun?: boolean;
}

/** Options with defaults applied and validated. */
export interface TestbedPlan {
  prefix: string;
  nodes: number;
  clients: number;
  rate: string | null;
  rateBitsPerSecond: number | null;
  loss: number;
  expose: boolean;
  vipHost: string;
  /** Node hosts' TUN devices are multi-queue. */
  multiQueueTun: boolean;
  switchNetns: string;
  exposeDev: string;
  hosts: HostStatus[];
}

/** A mistake in the options: the CLI prints it without a stack trace. */
export class TestbedOptionError extends UserError {
  constructor(message: string) {
    super(message, "ERR_TESTBED_OPTION");
  }
}

const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/** Parses a tc-style rate ("100mbit", "1.5mbit", "512kbit") into bits per second. */
export function parseRate(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/i.exec(rate.trim());
  if (!m) throw new TestbedOptionError(`rate must look like 100mbit, 10mbit or 512kbit, got '${rate}'`);
  const bps = Number(m[1]) * RATE_UNITS[m[2]!.toLowerCase()]!;
  if (bps < 64e3 || bps > 10e9)
    throw new TestbedOptionError(`rate must be between 64kbit and 10gbit, got '${rate}'`);
  return bps;
}

export function validatePrefix(prefix: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(prefix) || prefix.length > MAX_PREFIX_LEN)
    throw new TestbedOptionError(
      `prefix must be 1..${MAX_PREFIX_LEN} characters of letters, digits, '-' or '_' ` +
        `(it names namespaces and the 15-character interface <prefix>exp), got '${prefix}'`,
    );
  return prefix;
}

export function nodeIp(k: number): string {
  return `198.18.0.${10 + k}`;
}

export function clientName(k: number): string {
  return k === 1 ? "client" : `client${k}`;
}

export function clientIp(k: number): string {
  return `198.18.0.${100 + k}`;
}

function wholeNumber(
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  what: string,
): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new TestbedOptionError(`${what} must be a whole number from ${min} to ${max}, got ${n}`);
  return n;
}

/** Applies defaults, validates, and lays out every host. */
export function planTestbed(options: TestbedOptions = {}): TestbedPlan {
  const prefix = validatePrefix(options.prefix ?? DEFAULT_PREFIX);
  const nodes = wholeNumber(options.nodes, 3, 1, MAX_NODES, "nodes");
  const clients = wholeNumber(options.clients, 1, 1, MAX_CLIENTS, "clients");
  const rate = options.rate === undefined || options.rate === "" ? null : options.rate.trim().toLowerCase();
  const rateBitsPerSecond = rate === null ? null : parseRate(rate);
  const loss = options.loss ?? 0;
  if (!Number.isFinite(loss) || loss < 0 || loss > 100)
    throw new TestbedOptionError(`loss is a percentage from 0 to 100, got ${loss}`);
  if (Math.abs(Math.round(loss * 100) - loss * 100) > 1e-6)
    throw new TestbedOptionError(`loss has at most two decimals (0.01% steps), got ${loss}`);

  const multiQueueTun = options.multiQueueTun ?? false;
  const hosts: HostStatus[] = [];
  const add = (name: string, role: HostRole, ip: string, tun: boolean): void => {
    const multiQueue = tun && multiQueueTun && role === "node";
    hosts.push({
      name,
      role,
      netns: prefix + name,
      ip,
      ...(tun ? { tun: TUN_DEV } : {}),
      ...(multiQueue ? { tunMultiQueue: true } : {}),
    });
  };
  for (let k = 1; k <= clients; k++) add(clientName(k), "client", clientIp(k), false);
  add("dispatcher", "dispatcher", DISPATCHER_IP, true);
  add("origin", "origin", ORIGIN_IP, false);
  for (let k = 1; k <= nodes; k++) add(`node${k}`, "node", nodeIp(k), true);

  const vipHost = options.vipHost ?? "dispatcher";
  const vh = hosts.find((h) => h.name === vipHost);
  if (!vh || !vh.tun)
    throw new TestbedOptionError(
      `vip-host must be 'dispatcher' or a node of this testbed (node1..node${nodes}), got '${vipHost}'`,
    );

  return {
    prefix,
    nodes,
    clients,
    rate,
    rateBitsPerSecond,
    loss,
    expose: options.expose ?? false,
    vipHost,
    multiQueueTun,
    switchNetns: `${prefix}sw`,
    exposeDev: `${prefix}exp`,
    hosts,
  };
}

/** The status document (`status --json`), as written to the state file. */
export function planStatus(plan: TestbedPlan): TestbedStatus {
  return {
    prefix: plan.prefix,
    vip: VIP,
    subnet: SUBNET,
    hosts: plan.hosts.map((h) => ({ ...h })),
    vipHost: plan.vipHost,
    rate: plan.rate,
    loss: plan.loss,
    expose: plan.expose,
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Whether a namespace name belongs to the testbed with this prefix. Anchored on the
 * exact host-name shapes, so prefix "sc-" never claims "sc-x-node1" of another testbed.
 */
export function ownsNetns(prefix: string, netns: string): boolean {
  return new RegExp(`^${escapeRegExp(prefix)}(sw|client\\d*|dispatcher|origin|node\\d+)$`).test(netns);
}

/** Quotes a word for /bin/sh. */
export function shQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
