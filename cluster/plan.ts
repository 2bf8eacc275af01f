// The cluster's plan as pure data: which process runs in which host, with which arguments,
// where it logs, and how the launcher knows it is ready. No I/O here, so every argument the
// launcher passes is unit-tested (plan.test.ts). cluster.ts carries the plan out.
import { join, resolve } from "node:path";
import {
  DEFAULT_PREFIX,
  DISPATCHER_IP,
  MAX_NODES,
  ORIGIN_IP,
  TUN_DEV,
  VIP,
  nodeIp,
  planTestbed,
  type TestbedPlan,
} from "../testbed/topology.js";
import type { HostRole } from "../testbed/status.js";
import { UserError } from "../common/errors.js";

/** Ports of the cluster's services inside their hosts (see docs/cluster.md). */
export const HTTP_PORT = 80;
export const HTTPS_PORT = 443;
export const GUE_PORT = 6080;
export const ORIGIN_PORT = 8000;
export const NODE_ADMIN_PORT = 9080;
export const DISPATCHER_ADMIN_PORT = 9100;

/** The dispatcher's own default (ipvsadm's): weighted least connections. */
export const DEFAULT_SCHEDULER = "wlc";
export const DEFAULT_MODE = "local";
/** The node's own default cache size. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_NODES = 3;
export const DEFAULT_START_TIMEOUT_MS = 60_000;
/** One data-path thread per node: the node's own default (`sc-cluster node --workers`). */
export const DEFAULT_WORKERS = 1;
export const DEFAULT_STOP_GRACE_MS = 5_000;

export interface ClusterOptions {
  /** Names the testbed's namespaces, its state file and the cluster directory; default "sc-". */
  prefix?: string;
  /** Server nodes node1..nodeN (1..60), default 3. */
  nodes?: number;
  /** Client hosts (client, client2, ...), default 1. */
  clients?: number;
  /** Cluster mode of every node (one the node accepts: server/modes/mode.ts), default "local". */
  mode?: string;
  /** Document root the origin serves. Default: a small demo site made in the cluster directory. */
  site?: string;
  /** tc rate of every host link, e.g. "100mbit"; unshaped by default. */
  rate?: string;
  /** Percent of packets dropped per pass through the switch; default 0. */
  loss?: number;
  /** Make the LAN and the VIP reachable from the root namespace (testbed --expose). */
  expose?: boolean;
  /**
   * Data-path worker threads per node (`sc-cluster node --workers N`), default 1. With more
   * than 1 the node hosts get multi-queue TUN devices and the dispatcher sends no UDP GSO.
   */
  workers?: number;
  /** Document cache of each node in bytes (a number, or "64M"-style text); default 256 MiB. */
  cacheBytes?: number | string;
  /** Dispatcher scheduler: rr, wrr, lc, wlc, sh, mh; default wlc. */
  scheduler?: string;
  /** Dispatcher weight of each node (index 0 = node1); default 1 each. */
  weights?: number[];
  /** Directory of the state files; default /run/sc-cluster (or $SC_CLUSTER_STATE_DIR). */
  stateDir?: string;
  /** Where the processes' logs go; default <stateDir>/<prefix>/ (the cluster directory). */
  logDir?: string;
  /** Every node writes a combined-format access log to <logDir>/<host>.access.log. */
  accessLog?: boolean;
  /** How long every process gets to become healthy and the VIP to answer; default 60 s. */
  startTimeoutMs?: number;
  /** SIGTERM -> SIGKILL grace when stopping; default 5 s. */
  stopGraceMs?: number;
  /**
   * Extra command-line arguments, appended to those the launcher passes, by role ("node",
   * "dispatcher", "origin") or by host ("node2"; after the role's). For benchmarks that tune a
   * process, and for tests that break one.
   */
  extraArgs?: Partial<Record<string, string[]>>;
  /**
   * HTTPS on port 443 of the VIP beside HTTP (default on when the node supports it, off for
   * lard, whose front-end parses HTTP): the launcher makes a CA and a certificate for the VIP.
   */
  tls?: boolean;
}

/** A mistake in the options: the CLI prints it without a stack trace. */
export class ClusterOptionError extends UserError {
  constructor(message: string) {
    super(message, "ERR_CLUSTER_OPTION");
  }
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte size: a whole number with an optional K, M or G suffix (powers of 1024). */
export function parseByteSize(value: number | string, what = "cache size"): number {
  let n: number;
  if (typeof value === "number") n = value;
  else {
    const m = /^(\d+)([kmg]?)i?b?$/i.exec(value.trim());
    if (!m)
      throw new ClusterOptionError(`${what} must be a byte size like 65536, 64K, 256M or 1G, got '${value}'`);
    n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  }
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new ClusterOptionError(`${what} must be positive, got '${value}'`);
  return n;
}

/** What the launcher needs to know about the programs it starts (read from them, not assumed). */
export interface Capabilities {
  /** Modes the node accepts (server/modes/mode.ts). */
  modes: readonly string[];
  /** Schedulers the dispatcher accepts (dispatcher/schedulers.ts). */
  schedulers: readonly string[];
  /** Options of `sc-cluster node` (its command spec): the cluster needs its GUE input. */
  nodeOptions: readonly string[];
  /** Largest `--workers` the node takes (server/node/workers.ts MAX_NODE_WORKERS); absent: 1. */
  maxNodeWorkers?: number;
}

export interface ProcessPlan {
  /** Testbed host it runs in (also its name in status and logs). */
  host: string;
  role: Exclude<HostRole, "client">;
  /** Arguments after `sc-cluster`. */
  args: string[];
  log: string;
  /** URL of its control API (reachable from the client hosts); none for the origin. */
  admin?: string;
  /** GET this from a client host; the process is ready once it answers as `ready.expect` says. */
  ready: { url: string; expect: "any" | 200 };
}

export interface ClusterPlan {
  prefix: string;
  testbed: TestbedPlan;
  /** The cluster directory: state, default logs, demo site. */
  dir: string;
  /** The cluster secret every node and the dispatcher read (made anew by each start, mode 0600). */
  secretFile: string;
  logDir: string;
  mode: string;
  /** Data-path worker threads per node (`--workers`). */
  workers: number;
  scheduler: string;
  cacheBytes: number;
  weights: number[];
  /** The document root the origin serves (absolute). */
  site: string;
  /** No site was given: the launcher makes the demo site (its root is `site`). */
  demoSite: boolean;
  /** Where the demo site goes (trace and manifest beside its root). */
  demoDir: string;
  startTimeoutMs: number;
  stopGraceMs: number;
  vipUrl: string;
  originUrl: string;
  /** Origin first, then the nodes, then the dispatcher (the order they are started in). */
  processes: ProcessPlan[];
  /** HTTPS on the VIP; null: HTTP only. */
  tls: TlsPlan | null;
}

/**
 * HTTPS: the launcher makes the demo CA and the VIP's certificate in `dir` (server/transport/tls-certs.ts);
 * clients trust `caCert`.
 */
export interface TlsPlan {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
  url: string;
}

export const DEFAULT_STATE_DIR = "/run/sc-cluster";

export function stateDir(dir?: string): string {
  return dir ?? process.env.SC_CLUSTER_STATE_DIR ?? DEFAULT_STATE_DIR;
}

/** <stateDir>/<prefix>/: the cluster's own files (beside the testbed's <prefix>.json). */
export function clusterDir(prefix: string, dir?: string): string {
  return resolve(stateDir(dir), prefix);
}

function positiveMs(v: number | undefined, def: number, what: string): number {
  if (v === undefined) return def;
  if (!Number.isFinite(v) || v <= 0)
    throw new ClusterOptionError(`${what} must be a positive number of ms, got ${v}`);
  return v;
}

/** The options checked and resolved to their defaults: what the processes are planned from. */
export interface ClusterSettings {
  prefix: string;
  nodes: number;
  testbed: TestbedPlan;
  mode: string;
  workers: number;
  scheduler: string;
  cacheBytes: number;
  weights: number[];
  /** Extra arguments by role or server host (checked: every key names one). */
  extraArgs: Partial<Record<string, string[]>>;
}

/** Where the cluster's files go, and where the origin is reached. */
export interface ClusterLayout {
  dir: string;
  secretFile: string;
  logDir: string;
  site: string;
  demoDir: string;
  originUrl: string;
}

/** Resolves and checks the options, and lays out every process. */
export function planCluster(options: ClusterOptions, caps: Capabilities): ClusterPlan {
  const settings = checkClusterOptions(options, caps);
  const layout = planLayout(settings.prefix, options);
  const tls = planTls(options.tls, settings.mode, caps, layout.dir);
  const processes = planProcesses({
    settings,
    layout,
    tls,
    accessLog: options.accessLog ?? false,
    peers: caps.nodeOptions.includes("peer") ? peerArgs(settings.nodes) : [],
  });
  return {
    prefix: settings.prefix,
    testbed: settings.testbed,
    dir: layout.dir,
    secretFile: layout.secretFile,
    logDir: layout.logDir,
    mode: settings.mode,
    workers: settings.workers,
    scheduler: settings.scheduler,
    cacheBytes: settings.cacheBytes,
    weights: settings.weights,
    site: layout.site,
    demoSite: options.site === undefined,
    demoDir: layout.demoDir,
    startTimeoutMs: positiveMs(options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS, "startTimeoutMs"),
    stopGraceMs: positiveMs(options.stopGraceMs, DEFAULT_STOP_GRACE_MS, "stopGraceMs"),
    vipUrl: `http://${VIP}${HTTP_PORT === 80 ? "" : `:${HTTP_PORT}`}/`,
    originUrl: layout.originUrl,
    processes,
    tls,
  };
}

/** Every option but tls and the timeouts checked, in the order a user meets the mistakes. */
export function checkClusterOptions(options: ClusterOptions, caps: Capabilities): ClusterSettings {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const nodes = checkNodeCount(options.nodes ?? DEFAULT_NODES);
  const workers = checkWorkerCount(options.workers ?? DEFAULT_WORKERS, caps);
  const testbed = planTestbed({
    prefix,
    nodes,
    clients: options.clients,
    rate: options.rate,
    loss: options.loss,
    expose: options.expose,
    // One TUN queue per worker; the flag is fixed when the device is made.
    multiQueueTun: workers > 1,
  });
  const mode = checkMode(options.mode ?? DEFAULT_MODE, caps);
  checkModeWorkers(mode, workers);
  checkGueSupport(caps);
  const scheduler = checkScheduler(options.scheduler ?? DEFAULT_SCHEDULER, caps);
  const cacheBytes = parseByteSize(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
  const weights = checkWeights(options.weights ?? Array<number>(nodes).fill(1), nodes);
  if (options.site !== undefined && options.site.trim() === "")
    throw new ClusterOptionError("site must name a directory");
  const extraArgs = checkExtraArgs(options.extraArgs ?? {}, testbed);
  return { prefix, nodes, testbed, mode, workers, scheduler, cacheBytes, weights, extraArgs };
}

export function checkNodeCount(nodes: number): number {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
    throw new ClusterOptionError(`nodes must be a whole number from 1 to ${MAX_NODES}, got ${nodes}`);
  return nodes;
}

/** Data-path workers per node: 1 up to what the node takes (1 when it has no --workers). */
export function checkWorkerCount(workers: number, caps: Capabilities): number {
  const max = caps.nodeOptions.includes("workers") ? (caps.maxNodeWorkers ?? 1) : 1;
  if (Number.isInteger(workers) && workers >= 1 && workers <= max) return workers;
  if (max === 1 && Number.isInteger(workers) && workers > 1)
    throw new ClusterOptionError(
      `this build's \`sc-cluster node\` has no data-path workers: workers must be 1, got ${workers}`,
    );
  throw new ClusterOptionError(`workers must be a whole number from 1 to ${max}, got ${workers}`);
}

/**
 * LARD runs no node workers: the front-end hands each connection off to a node (sc/handoff),
 * and the handoff would have to reach the worker whose stack is to hold it.
 */
export function checkModeWorkers(mode: string, workers: number): void {
  if (mode === "lard" && workers > 1)
    throw new ClusterOptionError(
      `workers: mode lard does not support node data-path workers (its TCP handoff reaches a node, not a worker); use workers 1, got ${workers}`,
    );
}

export function checkMode(mode: string, caps: Capabilities): string {
  if (!caps.modes.includes(mode))
    throw new ClusterOptionError(
      `mode must be one the node supports (${caps.modes.join(", ")}), got '${mode}'`,
    );
  return mode;
}

/** The node must take GUE, and only from the addresses it is told: else no packet reaches it. */
export function checkGueSupport(caps: Capabilities): void {
  if (!caps.nodeOptions.includes("gue-port"))
    throw new ClusterOptionError(
      "this build's `sc-cluster node` has no GUE input (--gue-port): the dispatcher could not reach the nodes",
    );
  if (!caps.nodeOptions.includes("gue-allow"))
    throw new ClusterOptionError(
      "this build's `sc-cluster node` has no GUE allow-list (--gue-allow): it could not be told to take the dispatcher's packets",
    );
}

export function checkScheduler(scheduler: string, caps: Capabilities): string {
  if (!caps.schedulers.includes(scheduler))
    throw new ClusterOptionError(
      `scheduler must be one of ${caps.schedulers.join(", ")}, got '${scheduler}'`,
    );
  return scheduler;
}

/** One dispatcher weight per node, each 0..65535 (ipvsadm's range), not all 0. */
export function checkWeights(weights: number[], nodes: number): number[] {
  if (weights.length !== nodes)
    throw new ClusterOptionError(`give one weight per node: ${nodes} nodes, ${weights.length} weights`);
  for (const w of weights)
    if (!Number.isInteger(w) || w < 0 || w > 65535)
      throw new ClusterOptionError(`weights must be whole numbers from 0 to 65535, got ${w}`);
  if (!weights.some((w) => w > 0)) throw new ClusterOptionError("at least one node needs a weight above 0");
  return weights;
}

/** Every key of extraArgs names a role or a server host of the testbed. */
export function checkExtraArgs(
  extra: Partial<Record<string, string[]>>,
  testbed: TestbedPlan,
): Partial<Record<string, string[]>> {
  for (const key of Object.keys(extra))
    if (
      !["node", "dispatcher", "origin"].includes(key) &&
      !testbed.hosts.some((h) => h.name === key && h.role !== "client")
    )
      throw new ClusterOptionError(
        `extraArgs: '${key}' is neither a role (node, dispatcher, origin) nor a server host`,
      );
  return extra;
}

/** The cluster directory and what goes in it, the logs, the site, the origin's URL. */
export function planLayout(
  prefix: string,
  options: Pick<ClusterOptions, "stateDir" | "logDir" | "site">,
): ClusterLayout {
  const dir = clusterDir(prefix, options.stateDir);
  const demoDir = join(dir, "demo-site");
  return {
    dir,
    secretFile: join(dir, "cluster.secret"),
    logDir: resolve(options.logDir ?? dir),
    // loadgen's synthesizer puts the documents in root/ beside the trace and the manifest.
    site: resolve(options.site ?? join(demoDir, "root")),
    demoDir,
    originUrl: `http://${ORIGIN_IP}:${ORIGIN_PORT}`,
  };
}

/**
 * HTTPS unless turned off, lard (its front-end parses HTTP) or a node without --tls-cert; asking
 * for it where it cannot be is an error.
 */
export function planTls(
  wanted: boolean | undefined,
  mode: string,
  caps: Capabilities,
  dir: string,
): TlsPlan | null {
  if (wanted === true && mode === "lard")
    throw new ClusterOptionError("HTTPS is not supported with mode lard (its front-end parses HTTP)");
  if (wanted === true && !caps.nodeOptions.includes("tls-cert"))
    throw new ClusterOptionError("this build's `sc-cluster node` has no --tls-cert: it cannot serve HTTPS");
  if (!(wanted ?? true) || mode === "lard" || !caps.nodeOptions.includes("tls-cert")) return null;
  const tlsDir = join(dir, "tls");
  return {
    dir: tlsDir,
    caCert: join(tlsDir, "ca.crt"),
    cert: join(tlsDir, "server.crt"),
    key: join(tlsDir, "server.key"),
    url: `https://${VIP}${HTTPS_PORT === 443 ? "" : `:${HTTPS_PORT}`}/`,
  };
}

/** What every process's plan is made from. */
interface ProcessContext {
  settings: ClusterSettings;
  layout: ClusterLayout;
  tls: TlsPlan | null;
  accessLog: boolean;
  /** --peer arguments (empty when the node takes none). */
  peers: string[];
}

/** Origin first, then the nodes, then the dispatcher: the order they are started in. */
function planProcesses(ctx: ProcessContext): ProcessPlan[] {
  const nodes = Array.from({ length: ctx.settings.nodes }, (_, i) => planNode(ctx, i + 1));
  return [planOrigin(ctx), ...nodes, planDispatcher(ctx)];
}

/** A process's arguments: the launcher's, then its role's extra ones, then its host's. */
export function withExtraArgs(
  extra: Partial<Record<string, string[]>>,
  role: string,
  host: string,
  base: string[],
): string[] {
  return [...base, ...(extra[role] ?? []), ...(host !== role ? (extra[host] ?? []) : [])];
}

/** Every node knows every member (cluster modes map URLs to them and reach them directly). */
export function peerArgs(nodes: number): string[] {
  return Array.from({ length: nodes }, (_, i) => ["--peer", `node${i + 1}=${nodeIp(i + 1)}`]).flat();
}

function nodeAdmin(k: number): string {
  return `http://${nodeIp(k)}:${NODE_ADMIN_PORT}`;
}

/** The dispatcher's --node value for node k: its GUE address, its weight unless 1, its admin. */
export function dispatcherNodeSpec(k: number, weight: number): string {
  return `node${k}=${nodeIp(k)}:${GUE_PORT}${weight !== 1 ? `,weight=${weight}` : ""},admin=${nodeAdmin(k)}`;
}

function planOrigin({ settings, layout }: ProcessContext): ProcessPlan {
  return {
    host: "origin",
    role: "origin",
    args: withExtraArgs(settings.extraArgs, "origin", "origin", [
      "origin",
      "--root",
      layout.site,
      "--listen",
      `${ORIGIN_IP}:${ORIGIN_PORT}`,
    ]),
    log: join(layout.logDir, "origin.log"),
    // Any HTTP answer (a site need not have an index page) means it serves.
    ready: { url: `${layout.originUrl}/`, expect: "any" },
  };
}

function planNode({ settings, layout, tls, accessLog, peers }: ProcessContext, k: number): ProcessPlan {
  const host = `node${k}`;
  const ip = nodeIp(k);
  const admin = nodeAdmin(k);
  return {
    host,
    role: "node",
    args: withExtraArgs(settings.extraArgs, "node", host, [
      "node",
      "--stack",
      "user",
      "--tun",
      TUN_DEV,
      "--vip",
      VIP,
      "--port",
      String(HTTP_PORT),
      "--gue-port",
      String(GUE_PORT),
      // GUE only from the dispatcher (its outer source, below) and the members (--peer).
      "--gue-allow",
      DISPATCHER_IP,
      "--origin",
      layout.originUrl,
      "--admin",
      `${ip}:${NODE_ADMIN_PORT}`,
      "--node-id",
      host,
      "--mode",
      settings.mode,
      // One TUN queue, TCP stack and steered GUE socket per worker (server/node/workers.ts).
      ...(settings.workers > 1 ? ["--workers", String(settings.workers)] : []),
      "--cache-bytes",
      String(settings.cacheBytes),
      "--secret-file",
      layout.secretFile,
      ...(accessLog ? ["--access-log", join(layout.logDir, `${host}.access.log`)] : []),
      ...(tls ? ["--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-port", String(HTTPS_PORT)] : []),
      ...peers,
    ]),
    log: join(layout.logDir, `${host}.log`),
    admin,
    ready: { url: `${admin}/healthz`, expect: 200 },
  };
}

/**
 * Behind node workers the dispatcher sends no UDP GSO. The nodes steer each GUE datagram to a
 * worker by its inner packet, but a GSO message (--output udp, GSO on by default) of several
 * clients' datagrams reaches the node as one skb, and the kernel picks one worker's socket for
 * all of it. The launcher's default --output tun writes one packet at a time and uses no GSO;
 * the flag keeps GSO off when extraArgs choose --output udp.
 */
const NO_UDP_GSO = ["--no-udp-gso"];

function planDispatcher({ settings, layout, tls }: ProcessContext): ProcessPlan {
  const admin = `http://${DISPATCHER_IP}:${DISPATCHER_ADMIN_PORT}`;
  const nodeSpecs = settings.weights.map((w, i) => dispatcherNodeSpec(i + 1, w));
  return {
    host: "dispatcher",
    role: "dispatcher",
    args: withExtraArgs(settings.extraArgs, "dispatcher", "dispatcher", [
      "dispatcher",
      // LARD's front-end takes the dispatcher's place (the nodes run --mode lard).
      ...(settings.mode === "lard" ? ["--mode", "lard"] : []),
      "--vip",
      VIP,
      "--port",
      tls ? `${HTTP_PORT},${HTTPS_PORT}` : String(HTTP_PORT),
      "--tun",
      TUN_DEV,
      "--scheduler",
      settings.scheduler,
      // A restart (kill -9 included) takes over the connections the hash cannot place.
      "--state-file",
      join(layout.dir, "dispatcher.state"),
      "--admin",
      `${DISPATCHER_IP}:${DISPATCHER_ADMIN_PORT}`,
      // The outer source the nodes' --gue-allow names (also its default: its LAN address).
      "--source",
      DISPATCHER_IP,
      "--secret-file",
      layout.secretFile,
      ...(settings.mode !== "lard" && settings.workers > 1 ? NO_UDP_GSO : []),
      ...nodeSpecs.flatMap((s) => ["--node", s]),
    ]),
    log: join(layout.logDir, "dispatcher.log"),
    admin,
    ready: { url: `${admin}/healthz`, expect: 200 },
  };
}
