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
  /**
   * HTTPS: the launcher makes the demo CA and the VIP's certificate in `dir` (server/transport/tls-certs.ts);
   * clients trust `caCert`. null: HTTP only.
   */
  tls: { dir: string; caCert: string; cert: string; key: string; url: string } | null;
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

/** Resolves and checks the options, and lays out every process. */
export function planCluster(options: ClusterOptions, caps: Capabilities): ClusterPlan {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const nodes = options.nodes ?? DEFAULT_NODES;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
    throw new ClusterOptionError(`nodes must be a whole number from 1 to ${MAX_NODES}, got ${nodes}`);
  const testbed = planTestbed({
    prefix,
    nodes,
    clients: options.clients,
    rate: options.rate,
    loss: options.loss,
    expose: options.expose,
  });
  const mode = options.mode ?? DEFAULT_MODE;
  if (!caps.modes.includes(mode))
    throw new ClusterOptionError(
      `mode must be one the node supports (${caps.modes.join(", ")}), got '${mode}'`,
    );
  if (!caps.nodeOptions.includes("gue-port"))
    throw new ClusterOptionError(
      "this build's `sc-cluster node` has no GUE input (--gue-port): the dispatcher could not reach the nodes",
    );
  if (!caps.nodeOptions.includes("gue-allow"))
    throw new ClusterOptionError(
      "this build's `sc-cluster node` has no GUE allow-list (--gue-allow): it could not be told to take the dispatcher's packets",
    );
  const scheduler = options.scheduler ?? DEFAULT_SCHEDULER;
  if (!caps.schedulers.includes(scheduler))
    throw new ClusterOptionError(
      `scheduler must be one of ${caps.schedulers.join(", ")}, got '${scheduler}'`,
    );
  const cacheBytes = parseByteSize(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
  const weights = options.weights ?? Array<number>(nodes).fill(1);
  if (weights.length !== nodes)
    throw new ClusterOptionError(`give one weight per node: ${nodes} nodes, ${weights.length} weights`);
  for (const w of weights)
    if (!Number.isInteger(w) || w < 0 || w > 65535)
      throw new ClusterOptionError(`weights must be whole numbers from 0 to 65535, got ${w}`);
  if (!weights.some((w) => w > 0)) throw new ClusterOptionError("at least one node needs a weight above 0");
  if (options.site !== undefined && options.site.trim() === "")
    throw new ClusterOptionError("site must name a directory");
  const extra = options.extraArgs ?? {};
  for (const key of Object.keys(extra))
    if (
      !["node", "dispatcher", "origin"].includes(key) &&
      !testbed.hosts.some((h) => h.name === key && h.role !== "client")
    )
      throw new ClusterOptionError(
        `extraArgs: '${key}' is neither a role (node, dispatcher, origin) nor a server host`,
      );

  const dir = clusterDir(prefix, options.stateDir);
  const logDir = resolve(options.logDir ?? dir);
  const argsFor = (role: string, host: string, base: string[]) => [
    ...base,
    ...(extra[role] ?? []),
    ...(host !== role ? (extra[host] ?? []) : []),
  ];
  const originUrl = `http://${ORIGIN_IP}:${ORIGIN_PORT}`;
  const secretFile = join(dir, "cluster.secret");
  const demoDir = join(dir, "demo-site");
  // loadgen's synthesizer puts the documents in root/ beside the trace and the manifest.
  const site = resolve(options.site ?? join(demoDir, "root"));
  if (options.tls === true && mode === "lard")
    throw new ClusterOptionError("HTTPS is not supported with mode lard (its front-end parses HTTP)");
  if (options.tls === true && !caps.nodeOptions.includes("tls-cert"))
    throw new ClusterOptionError("this build's `sc-cluster node` has no --tls-cert: it cannot serve HTTPS");
  const tlsDir = join(dir, "tls");
  const tls =
    (options.tls ?? true) && mode !== "lard" && caps.nodeOptions.includes("tls-cert")
      ? {
          dir: tlsDir,
          caCert: join(tlsDir, "ca.crt"),
          cert: join(tlsDir, "server.crt"),
          key: join(tlsDir, "server.key"),
          url: `https://${VIP}${HTTPS_PORT === 443 ? "" : `:${HTTPS_PORT}`}/`,
        }
      : null;

  const processes: ProcessPlan[] = [
    {
      host: "origin",
      role: "origin",
      args: argsFor("origin", "origin", [
        "origin",
        "--root",
        site,
        "--listen",
        `${ORIGIN_IP}:${ORIGIN_PORT}`,
      ]),
      log: join(logDir, "origin.log"),
      // Any HTTP answer (a site need not have an index page) means it serves.
      ready: { url: `${originUrl}/`, expect: "any" },
    },
  ];
  const nodeSpecs: string[] = [];
  // Every node knows every member (cluster modes map URLs to them and reach them directly).
  const peers = caps.nodeOptions.includes("peer")
    ? Array.from({ length: nodes }, (_, i) => ["--peer", `node${i + 1}=${nodeIp(i + 1)}`]).flat()
    : [];
  for (let k = 1; k <= nodes; k++) {
    const host = `node${k}`;
    const ip = nodeIp(k);
    const admin = `http://${ip}:${NODE_ADMIN_PORT}`;
    processes.push({
      host,
      role: "node",
      args: argsFor("node", host, [
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
        originUrl,
        "--admin",
        `${ip}:${NODE_ADMIN_PORT}`,
        "--node-id",
        host,
        "--mode",
        mode,
        "--cache-bytes",
        String(cacheBytes),
        "--secret-file",
        secretFile,
        ...(options.accessLog ? ["--access-log", join(logDir, `${host}.access.log`)] : []),
        ...(tls ? ["--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-port", String(HTTPS_PORT)] : []),
        ...peers,
      ]),
      log: join(logDir, `${host}.log`),
      admin,
      ready: { url: `${admin}/healthz`, expect: 200 },
    });
    const w = weights[k - 1]!;
    nodeSpecs.push(`${host}=${ip}:${GUE_PORT}${w !== 1 ? `,weight=${w}` : ""},admin=${admin}`);
  }
  const dispatcherAdmin = `http://${DISPATCHER_IP}:${DISPATCHER_ADMIN_PORT}`;
  processes.push({
    host: "dispatcher",
    role: "dispatcher",
    args: argsFor("dispatcher", "dispatcher", [
      "dispatcher",
      // LARD's front-end takes the dispatcher's place (the nodes run --mode lard).
      ...(mode === "lard" ? ["--mode", "lard"] : []),
      "--vip",
      VIP,
      "--port",
      tls ? `${HTTP_PORT},${HTTPS_PORT}` : String(HTTP_PORT),
      "--tun",
      TUN_DEV,
      "--scheduler",
      scheduler,
      // A restart (kill -9 included) takes over the connections the hash cannot place.
      "--state-file",
      join(dir, "dispatcher.state"),
      "--admin",
      `${DISPATCHER_IP}:${DISPATCHER_ADMIN_PORT}`,
      // The outer source the nodes' --gue-allow names (also its default: its LAN address).
      "--source",
      DISPATCHER_IP,
      "--secret-file",
      secretFile,
      ...nodeSpecs.flatMap((s) => ["--node", s]),
    ]),
    log: join(logDir, "dispatcher.log"),
    admin: dispatcherAdmin,
    ready: { url: `${dispatcherAdmin}/healthz`, expect: 200 },
  });

  return {
    prefix,
    testbed,
    dir,
    secretFile,
    logDir,
    mode,
    scheduler,
    cacheBytes,
    weights,
    site,
    demoSite: options.site === undefined,
    demoDir,
    startTimeoutMs: positiveMs(options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS, "startTimeoutMs"),
    stopGraceMs: positiveMs(options.stopGraceMs, DEFAULT_STOP_GRACE_MS, "stopGraceMs"),
    vipUrl: `http://${VIP}${HTTP_PORT === 80 ? "" : `:${HTTP_PORT}`}/`,
    originUrl,
    processes,
    tls,
  };
}
