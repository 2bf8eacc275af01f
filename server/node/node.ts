// A cluster node: document source + cache + responder + HTTP server on a transport, with the
// control plane beside it. startNode() is what `sc-cluster node` runs; tests and benchmarks
// call it in-process too.
import { hostname } from "node:os";
import type { MessagePort } from "node:worker_threads";
import { OwnerClient } from "../store/owner-client.js";
import type { Registry } from "prom-client";
import { createDocCache, type CachePolicy, type DocCache } from "../cache/doc-cache.js";
import { DocStore } from "../store/doc-store.js";
import { FsSource } from "../source/fs-source.js";
import { OriginSource } from "../source/origin-source.js";
import type { DocSource } from "../source/source.js";
import { Responder, type ResponsePolicy } from "../store/responder.js";
import { HttpServer } from "../http/server.js";
import { DateCache } from "../http/date.js";
import { DEFAULT_LIMITS, type ParserLimits } from "../http/parser.js";
import type { Timeouts } from "../http/connection.js";
import { createMode, missingForMode, type Mode, type ModeDefinition, type ModeParts } from "../modes/mode.js";
import { modeByName } from "../modes/table.js";
import {
  checkCluster,
  clusterMapper,
  planeOf,
  selfMember,
  type ClusterConfig,
} from "../membership/config.js";
import {
  fetchDispatcherView,
  Membership,
  startMembershipPoll,
  type MembershipPoll,
  type MembershipView,
} from "../membership/runtime.js";
import { clusterPurge } from "./purge.js";
import { ipv4FromString } from "../../sc/wire/addr.js";
import { isWireError } from "../../sc/wire/error.js";
import type { UserStack } from "../transport/user-stack.js";
import { ServerStats } from "../http/stats.js";
import { createMetrics } from "./metrics.js";
import { startGuardedAdmin } from "./admin.js";
import { listenKernel, type ConnListener } from "../transport/conn.js";
import { checkRootDir, listenError } from "../errors.js";
import { UserError } from "../../common/errors.js";
import type { Logger } from "../log.js";
import type { ClusterTrust } from "../../sc/auth/secret.js";
import {
  ACCESS_LOG_DEFAULTS,
  AccessLog,
  AccessLogger,
  fileSink,
  stdoutSink,
  type AccessLogFormat,
} from "../http/access-log.js";
import type { RequestObserver } from "../http/connection.js";
import { registerAccessLogMetrics, registerNodeMetrics, registerRequestDuration } from "./metrics.js";
import { CachePatternError, CacheRules } from "../http/cache-rules.js";
import { normalizePath } from "../http/url-path.js";
import type { ContentCoding } from "../http/doc.js";
import type { AdminEndpoint } from "../../sc/auth/admin-access.js";
import { registerTlsMetrics, TlsTermination } from "../transport/tls.js";

export type Stack = "kernel" | "user";
export const STACKS: readonly Stack[] = ["kernel", "user"];

export interface NodeConfig {
  nodeId: string;
  stack: Stack;
  /** kernel: the address to bind; user: the address the stack owns (the VIP) and the port. */
  listen: { host: string; port: number };
  /** --stack user: the TUN device to attach to (default "sctun"). */
  tun?: string;
  /** --stack user: overrides of the TCP stack configuration. */
  tcpConfig?: Record<string, unknown>;
  /** Exactly one of root and origin. */
  root?: string;
  origin?: string;
  /** The control plane's address and access (token, Host names); null: none. */
  admin: AdminEndpoint | null;
  cacheBytes: number;
  cachePolicy: CachePolicy;
  mode: string | Mode;
  /** Cluster membership (needed by the cluster modes sc, cf-lru, cf-lfu). */
  cluster?: ClusterConfig;
  /**
   * The cluster secret (or the explicit --insecure-dev); cluster modes refuse to start with
   * null. Also the source of the admin API's bearer token.
   */
  trust: ClusterTrust | null;
  /** --stack user: take client packets in GUE on this UDP port (0: off). */
  guePort?: number;
  /**
   * --stack user: IPv4 prefixes (--gue-allow) that may send GUE besides the cluster's members:
   * the dispatcher's address, or an IPVS/Katran front. Without members and without these the
   * GUE input stays closed (planGueInput).
   */
  gueAllow?: readonly string[];
  /** Settings of the chosen mode (e.g. Socket Cloning's timeouts), checked by the mode. */
  modeSettings?: Record<string, unknown>;
  timeouts: Timeouts;
  limits?: Partial<ParserLimits>;
  maxConnections: number;
  /** Files above this (or above the cache size) are streamed from disk, not read whole. */
  maxInMemoryBytes: number;
  fsConcurrency: number;
  originConnections: number;
  originTimeoutMs: number;
  logger: Logger;
  /** Revalidate cached documents older than this with the source (ms); 0 or absent: never. */
  revalidateTtlMs?: number;
  /** Learn the membership from the dispatcher's GET /nodes (server/membership/runtime.ts). */
  membersFrom?: { url: string; intervalMs: number };
  /**
   * The bearer token for other members' and the dispatcher's admin APIs when this node has no
   * admin API of its own to take it from (a data-path worker: the main thread has the API).
   */
  controlToken?: string;
  /** Timeout of a purge forwarded to a member and of a membership poll (ms). */
  controlTimeoutMs?: number;
  /** Access log (none when absent): a file path, or "-" for standard output. */
  accessLog?: {
    path: string;
    format: AccessLogFormat;
    bufferBytes?: number;
    flushMs?: number;
  };
  /** Cache-Control per path pattern, `PATTERN=VALUE` (http/cache-rules.ts), first match wins. */
  cacheControl?: readonly string[];
  /**
   * --workers N (node-workers.ts): this is data-path worker `index` of `count`, on its own
   * TUN queue and its own steered GUE socket (conn-user.ts).
   */
  worker?: { index: number; count: number };
  /**
   * A data-path worker's port to the node's shared document cache (server/store/shared-cache.ts,
   * owned by the main thread): its store is then an L1 in front of it.
   */
  sharedCache?: MessagePort;
  /** Request path of the page sent with 404s (e.g. "/404.html"). */
  notFoundPage?: string;
  /** Codings served from precompressed siblings (`x.br`, `x.gz`); none when absent. */
  precompressed?: readonly ContentCoding[];
  /**
   * HTTPS beside HTTP (server/transport/tls.ts): on `port` of the same address (the VIP on --stack user),
   * with this certificate chain and key. TLS connections are served on this node.
   */
  tls?: {
    port: number;
    certFile: string;
    keyFile: string;
    /** TLS 1.3 records after the handshake by our record layer ("own") or OpenSSL's (default). */
    recordLayer?: "openssl" | "own";
  };
}

export const NODE_DEFAULTS = {
  cacheBytes: 256 * 1024 * 1024,
  timeouts: { headerMs: 10_000, idleMs: 30_000, sendMs: 30_000, lingerMs: 5_000 },
  maxConnections: 10_000,
  maxInMemoryBytes: 64 * 1024 * 1024,
  fsConcurrency: 64,
  originConnections: 32,
  originTimeoutMs: 10_000,
};

/** At most one warning per this long about access log write failures. */
const ACCESS_LOG_WARN_MS = 10_000;

export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}`;
}

export interface RunningNode {
  readonly nodeId: string;
  readonly address: { host: string; port: number };
  readonly adminAddress: { host: string; port: number } | null;
  readonly server: HttpServer;
  readonly stats: ServerStats;
  readonly cache: DocCache;
  readonly store: DocStore;
  readonly registry: Registry;
  /** JSON snapshot served at /stats. */
  snapshot(): Record<string, unknown>;
  /** Stops accepting, finishes or closes connections (reset after graceMs), closes the rest. */
  shutdown(graceMs: number): Promise<void>;
  /** Runtime membership (cluster modes), null for a stand-alone node. */
  readonly membership: Membership | null;
  /** Polls the dispatcher now (SIGHUP), when --members-from is set. */
  pollMembers(): Promise<void>;
  /**
   * Drain, first step: /healthz answers 503 so the dispatcher sends no new connections, while
   * the node keeps serving (and accepting) until shutdown().
   */
  beginDrain(): void;
  /** Re-opens the access log file (SIGUSR1, after logrotate moved it). */
  reopenLogs(): void;
  /** Replaces the --cache-control rules (SIGHUP); throws a UserError for a bad pattern. */
  setCacheControl(patterns: readonly string[]): void;
  /** The HTTPS address, when --tls-cert is given. */
  readonly tlsAddress: { host: string; port: number } | null;
  /**
   * Reads the TLS certificate and key again (SIGHUP), from `files` if given; new handshakes
   * use them. Throws a UserError (the old certificate stays) for a bad file.
   */
  reloadTls(files?: { certFile: string; keyFile: string }): Promise<void>;
}

/** --cache-control PATTERN=VALUE rules, or a UserError naming the bad one. */
function parseCacheControl(patterns: readonly string[]): CacheRules {
  try {
    return CacheRules.parse(patterns);
  } catch (err) {
    throw err instanceof CachePatternError ? new UserError(`--cache-control: ${err.message}`) : err;
  }
}

/** Releases what start-up opened so far, newest first, when a later phase fails. */
class Undo {
  private readonly steps: (() => Promise<unknown>)[] = [];
  push(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.reverse()) await step().catch(() => undefined);
  }
}

type ModeChoice = { def: ModeDefinition } | { mode: Mode };

/** The cluster as this node starts with it, and how it talks to the other members' control planes. */
export interface Members {
  cluster: ClusterConfig | null;
  membership: Membership | null;
  /** The bearer token this node sends to other members and to the dispatcher (purge, polls). */
  controlToken: string | undefined;
  controlTimeoutMs: number;
}

/** The documents and how requests for them are answered and accounted. */
interface Documents {
  cache: DocCache;
  source: DocSource;
  store: DocStore;
  responder: Responder;
  stats: ServerStats;
  dates: DateCache;
  registry: Registry;
  requests: RequestObserver;
  accessLog: AccessLog | null;
}

/** The HTTP server on its listeners. */
interface Serving {
  server: HttpServer;
  listener: ConnListener;
  tcpStats: (() => Record<string, unknown>) | undefined;
  tls: TlsTermination | null;
  tlsListener: ConnListener | null;
}

export async function startNode(cfg: NodeConfig): Promise<RunningNode> {
  const modeChoice = checkNodeConfig(cfg);
  const policy = responsePolicyFrom(cfg);
  const members = await joinCluster(cfg);
  const undo = new Undo();
  try {
    const docs = await openDocuments(cfg, policy, undo);
    const userStack = cfg.stack === "user" ? await openStack(cfg, members, docs.registry, undo) : null;
    const mode =
      "def" in modeChoice
        ? await createMode(modeChoice.def, modeParts(cfg, members, docs, userStack))
        : modeChoice.mode;
    const closeMode = mode.close?.bind(mode);
    if (closeMode) undo.push(closeMode);
    const serving = await openServing(cfg, docs, mode, userStack, undo);
    return await openControl(cfg, members, docs, mode, serving);
  } catch (err) {
    await undo.run();
    throw err;
  }
}

/** The checks that need nothing opened: which mode, and whether this node has what it needs. */
function checkNodeConfig(cfg: NodeConfig): ModeChoice {
  if ((cfg.root === undefined) === (cfg.origin === undefined)) {
    throw new UserError("give exactly one of --root DIR and --origin URL");
  }
  // A mode by name (from the table) or a Mode object given in-process (tests).
  const choice: ModeChoice =
    typeof cfg.mode === "string" ? { def: modeByName(cfg.mode) } : { mode: cfg.mode };
  const missing =
    "def" in choice &&
    missingForMode(choice.def, {
      cluster: !!cfg.cluster,
      trust: cfg.trust !== null,
      userStack: cfg.stack === "user",
    });
  if (missing) throw new UserError(missing);
  return choice;
}

/** --cache-control and --not-found-page, checked. */
function responsePolicyFrom(cfg: NodeConfig): ResponsePolicy {
  const policy: ResponsePolicy = {};
  if (cfg.cacheControl && cfg.cacheControl.length > 0)
    policy.cacheRules = parseCacheControl(cfg.cacheControl);
  if (cfg.notFoundPage !== undefined) {
    const norm = normalizePath(cfg.notFoundPage);
    if (!norm.ok || norm.path.endsWith("/"))
      throw new UserError(`--not-found-page must be a file's path like /404.html, got '${cfg.notFoundPage}'`);
    policy.notFoundPage = norm.path;
  }
  return policy;
}

/** Membership from --peer, and from the dispatcher's view first when --members-from is given. */
export async function joinCluster(cfg: NodeConfig): Promise<Members> {
  // A data-path worker talks to its peers on its own plane's ports (planeOf).
  const checked = cfg.cluster ? checkCluster(cfg.cluster) : null;
  const cluster = checked && cfg.worker ? planeOf(checked, cfg.worker.index) : checked;
  const membership = cluster ? new Membership(cluster, clusterMapper(cluster)) : null;
  const controlToken =
    cfg.admin?.token ??
    cfg.controlToken ??
    (cfg.trust?.kind === "secret" ? cfg.trust.secret.adminToken() : undefined);
  const controlTimeoutMs = cfg.controlTimeoutMs ?? 3000;
  if (cluster && membership && cfg.membersFrom) {
    // Start with the dispatcher's view (a joining node then maps like the others from the start).
    const view = await fetchDispatcherView(
      cfg.membersFrom.url,
      controlToken,
      controlTimeoutMs,
      selfMember(cluster),
    );
    if (view instanceof Error)
      cfg.logger.warn({ error: view.message }, "membership: dispatcher not reachable yet, using --peer");
    else membership.apply(view);
  }
  return { cluster, membership, controlToken, controlTimeoutMs };
}

export async function openSource(cfg: NodeConfig): Promise<DocSource> {
  if (cfg.origin === undefined) {
    return FsSource.create({
      root: await checkRootDir(cfg.root ?? ""),
      maxInMemory: Math.min(cfg.maxInMemoryBytes, cfg.cacheBytes),
      concurrency: cfg.fsConcurrency,
    });
  }
  try {
    return new OriginSource({
      url: cfg.origin,
      connections: cfg.originConnections,
      timeoutMs: cfg.originTimeoutMs,
      maxObjectBytes: cfg.maxInMemoryBytes,
    });
  } catch (err) {
    throw new UserError(
      err instanceof TypeError ? `invalid --origin URL '${cfg.origin}'` : (err as Error).message,
    );
  }
}

/** Source, cache, store and responder; the metrics registry; the access log. */
async function openDocuments(cfg: NodeConfig, policy: ResponsePolicy, undo: Undo): Promise<Documents> {
  const { cache, source, store } = await openStore(cfg, undo);
  const stats = new ServerStats();
  const dates = new DateCache();
  const responder = new Responder(store, dates, policy);
  const registry = createMetrics({
    nodeId: cfg.nodeId,
    stats,
    documents: cfg.sharedCache ? null : { cache, store },
  });
  const observeDuration = registerRequestDuration(registry);
  const accessLog = cfg.accessLog ? await openAccessLog(cfg.accessLog, cfg.logger) : null;
  let accessLogger: AccessLogger | null = null;
  if (accessLog !== null && cfg.accessLog) {
    undo.push(() => accessLog.close());
    registerAccessLogMetrics(registry, accessLog.counters);
    accessLogger = new AccessLogger(accessLog, cfg.accessLog.format, cfg.nodeId);
  }
  const requests: RequestObserver = {
    completed(r) {
      observeDuration(r.clonedTo !== null, r.durationS);
      accessLogger?.record(r);
    },
  };
  return { cache, source, store, responder, stats, dates, registry, requests, accessLog };
}

/** The cache policy: the mode's own (cf-lru, cf-lfu), else --cache-policy. */
export function cachePolicyOf(cfg: Pick<NodeConfig, "mode" | "cachePolicy">): CachePolicy {
  const def = typeof cfg.mode === "string" ? modeByName(cfg.mode) : undefined;
  return def?.cachePolicy ?? cfg.cachePolicy;
}

/**
 * The documents: the node's own cache in front of its source, or on a data-path worker an L1
 * in front of the node's shared cache (server/store/shared-cache.ts), with the worker's own
 * source for large files only.
 */
async function openStore(
  cfg: NodeConfig,
  undo: Undo,
): Promise<{ cache: DocCache; source: DocSource; store: DocStore }> {
  const ttlMs = cfg.revalidateTtlMs ?? 0;
  const own = await openSource(cfg);
  if (cfg.sharedCache) {
    const client = new OwnerClient(cfg.sharedCache, own);
    undo.push(() => client.close());
    // The L1 only holds what the owner holds; the same policy keeps `policy` right in /stats.
    const cache = createDocCache(cachePolicyOf(cfg), cfg.cacheBytes);
    const store = new DocStore(cache, client, { ttlMs });
    client.bind(store);
    return { cache, source: client, store };
  }
  undo.push(() => own.close());
  const cache = createDocCache(cachePolicyOf(cfg), cfg.cacheBytes);
  const store = new DocStore(cache, own, { ttlMs, precompressed: cfg.precompressed ?? [] });
  return { cache, source: own, store };
}

async function openAccessLog(a: NonNullable<NodeConfig["accessLog"]>, log: Logger): Promise<AccessLog> {
  // A failing disk is reported once per ACCESS_LOG_WARN_MS, with how many failures it stands for.
  let warnedAt = -Infinity;
  let unreported = 0;
  const warn = (err: Error, during: string) => {
    unreported++;
    const now = performance.now();
    if (now - warnedAt < ACCESS_LOG_WARN_MS) return;
    log.warn({ err: err.message, path: a.path, failures: unreported }, `access log ${during} failed`);
    warnedAt = now;
    unreported = 0;
  };
  try {
    const sink = a.path === "-" ? stdoutSink() : await fileSink(a.path);
    return new AccessLog(sink, {
      maxBufferBytes: a.bufferBytes ?? ACCESS_LOG_DEFAULTS.maxBufferBytes,
      flushBytes: Math.min(ACCESS_LOG_DEFAULTS.flushBytes, a.bufferBytes ?? Infinity),
      flushIntervalMs: a.flushMs ?? ACCESS_LOG_DEFAULTS.flushIntervalMs,
      onError: warn,
    });
  } catch (err) {
    throw new UserError(`cannot open the access log '${a.path}': ${(err as Error).message}`);
  }
}

/** --stack user: our TCP on the TUN device, with GUE input from the members and --gue-allow. */
async function openStack(
  cfg: NodeConfig,
  members: Members,
  registry: Registry,
  undo: Undo,
): Promise<UserStack> {
  const { openUserStack, planGueInput, registerGueMetrics, registerTcpMetrics } =
    await import("../transport/user-stack.js");
  const log = cfg.logger;
  const gue = planGueInput(
    cfg.guePort ?? 0,
    members.cluster?.members.map((m) => m.addr) ?? [],
    cfg.gueAllow ?? [],
  );
  if (gue.open) {
    const allow = gue.allow.toStrings();
    if (gue.allow.matchesAll)
      log.warn({ port: gue.port, allow }, "GUE input takes packets from any sender (--gue-allow 0.0.0.0/0)");
    else log.info({ port: gue.port, allow }, "GUE input");
  } else if (cfg.guePort) log.warn({ port: cfg.guePort }, `GUE input not opened: ${gue.why}`);
  let us: UserStack;
  try {
    us = await openUserStack({
      tun: cfg.tun ?? "sctun",
      address: cfg.listen.host,
      ...(cfg.tcpConfig ? { tcpConfig: cfg.tcpConfig } : {}),
      ...(gue.open ? { gue: { port: gue.port, allowFrom: gue.allow } } : {}),
      ...(cfg.worker ? { worker: cfg.worker } : {}),
    });
  } catch (err) {
    throw new UserError(
      `cannot start the user-space stack on TUN '${cfg.tun ?? "sctun"}': ${(err as Error).message}\n` +
        "(run it as root inside a testbed host, e.g. via `sc-cluster up`, or use --stack kernel " +
        "to serve on the kernel's TCP with --listen ADDR:PORT)",
    );
  }
  undo.push(() => us.close());
  registerTcpMetrics(registry, us.stack);
  if (us.gue) registerGueMetrics(registry, us.gue);
  if (gue.open && members.membership) {
    // A member that joins may forward client packets to clones here.
    const allow = gue.allow;
    const admitMembers = (list: readonly { addr: string }[]) => {
      for (const m of list) {
        const a = ipv4FromString(m.addr);
        if (!isWireError(a)) allow.addHost(a);
      }
    };
    members.membership.on("change", (v: MembershipView) => admitMembers(v.members));
    admitMembers(members.membership.current.members);
  }
  return us;
}

function modeParts(
  cfg: NodeConfig,
  members: Members,
  docs: Documents,
  userStack: UserStack | null,
): ModeParts {
  const { store, responder, stats, dates, registry } = docs;
  return {
    nodeId: cfg.nodeId,
    cluster: members.cluster,
    trust: cfg.trust,
    membership: members.membership,
    store,
    responder,
    stats,
    dates,
    registry,
    log: cfg.logger,
    userStack,
    httpPort: cfg.listen.port,
    ...(cfg.tls ? { tlsPort: cfg.tls.port } : {}),
    ...(cfg.worker ? { worker: cfg.worker } : {}),
    modeSettings: cfg.modeSettings ?? {},
  };
}

/** The HTTP server on its listener, and HTTPS beside it when --tls-cert is given. */
async function openServing(
  cfg: NodeConfig,
  docs: Documents,
  mode: Mode,
  userStack: UserStack | null,
  undo: Undo,
): Promise<Serving> {
  const { responder, stats, dates, requests } = docs;
  const server = new HttpServer({
    responder,
    mode,
    stats,
    limits: { ...DEFAULT_LIMITS, ...cfg.limits },
    timeouts: cfg.timeouts,
    dates,
    log: cfg.logger,
    maxConnections: cfg.maxConnections,
    requests,
  });
  let listener: ConnListener;
  let tcpStats: (() => Record<string, unknown>) | undefined;
  if (userStack !== null) {
    const user = userStack.listen(cfg.listen.port);
    tcpStats = () => user.tcpStats();
    listener = user;
  } else {
    try {
      listener = await listenKernel(cfg.listen.host, cfg.listen.port);
    } catch (err) {
      throw listenError(err, "HTTP", cfg.listen.host, cfg.listen.port);
    }
  }
  server.attach(listener);
  undo.push(async () => {
    await listener.close();
    await server.shutdown(0);
  });
  const tls = cfg.tls ? await openHttps(cfg, cfg.tls, userStack) : null;
  if (tls !== null) {
    server.attach(tls.listener);
    registerTlsMetrics(docs.registry, tls.termination);
  }
  return { server, listener, tcpStats, tls: tls?.termination ?? null, tlsListener: tls?.listener ?? null };
}

async function openHttps(
  cfg: NodeConfig,
  t: NonNullable<NodeConfig["tls"]>,
  userStack: UserStack | null,
): Promise<{ termination: TlsTermination; listener: ConnListener }> {
  const termination = await TlsTermination.create({
    certFile: t.certFile,
    keyFile: t.keyFile,
    handshakeTimeoutMs: cfg.timeouts.headerMs,
    maxHandshakes: cfg.maxConnections,
    takeOver: t.recordLayer === "own",
  });
  if (userStack !== null) return { termination, listener: termination.listener(userStack.listen(t.port)) };
  try {
    return { termination, listener: termination.listener(await listenKernel(cfg.listen.host, t.port)) };
  } catch (err) {
    throw listenError(err, "HTTPS", cfg.listen.host, t.port);
  }
}

/** The control plane (admin API, membership poll, node metrics) and the running node's handle. */
async function openControl(
  cfg: NodeConfig,
  members: Members,
  docs: Documents,
  mode: Mode,
  serving: Serving,
): Promise<RunningNode> {
  const { cache, source, store, responder, stats, registry, accessLog } = docs;
  const { server, listener, tls, tlsListener } = serving;
  const { membership } = members;
  const log = cfg.logger;
  const snapshot = nodeSnapshot(cfg, members, docs, mode, serving);
  /** SIGTERM's first step (beginDrain): unhealthy for the dispatcher, still serving. */
  let leaving = false;
  const admin = cfg.admin
    ? await startGuardedAdmin(cfg.admin, cfg.trust, log, registry, {
        stats: snapshot,
        healthy: () => !server.draining && !leaving,
        purge: clusterPurge({
          ...members,
          nodeId: cfg.nodeId,
          purgeLocal: (t) => store.purge(t),
          admin: cfg.admin,
          log,
        }),
      })
    : null;
  const poll = pollMembers(cfg, members, log);
  registerNodeMetrics(registry, cfg.sharedCache ? null : store, membership, poll);
  return {
    nodeId: cfg.nodeId,
    address: listener.address,
    adminAddress: admin?.address ?? null,
    server,
    stats,
    cache,
    store,
    registry,
    snapshot,
    membership,
    pollMembers: () => poll?.pollNow() ?? Promise.resolve(),
    beginDrain() {
      leaving = true;
    },
    async shutdown(graceMs: number) {
      poll?.stop();
      await server.shutdown(graceMs);
      await mode.close?.();
      await source.close();
      await admin?.close();
      await accessLog?.close();
    },
    reopenLogs() {
      accessLog?.reopen();
    },
    setCacheControl(patterns) {
      responder.setCacheRules(patterns.length > 0 ? parseCacheControl(patterns) : undefined);
    },
    tlsAddress: tlsListener?.address ?? null,
    async reloadTls(files) {
      if (tls === null)
        throw new UserError("this node serves no HTTPS (start it with --tls-cert and --tls-key)");
      await tls.reload(files);
    },
  };
}

/** --members-from: polls the dispatcher's view into the membership (null without it). */
export function pollMembers(cfg: NodeConfig, members: Members, log: Logger): MembershipPoll | null {
  const { cluster, membership } = members;
  if (!cluster || !membership || !cfg.membersFrom) return null;
  return startMembershipPoll({
    url: cfg.membersFrom.url,
    token: members.controlToken,
    intervalMs: cfg.membersFrom.intervalMs,
    timeoutMs: members.controlTimeoutMs,
    membership,
    selfMember: selfMember(cluster),
    log,
  });
}

/** The JSON served at /stats. */
function nodeSnapshot(
  cfg: NodeConfig,
  members: Members,
  docs: Documents,
  mode: Mode,
  serving: Serving,
): () => Record<string, unknown> {
  const { cache, source, store, stats } = docs;
  const { server, tcpStats, tls } = serving;
  const { membership } = members;
  const startedAt = Date.now();
  return () => ({
    node: cfg.nodeId,
    mode: mode.name,
    stack: cfg.stack,
    source: source.describe,
    uptimeSeconds: (Date.now() - startedAt) / 1000,
    draining: server.draining,
    http: {
      requests: stats.requests(),
      responses: stats.totalResponses(),
      responseBytes: stats.responseBytes,
      modeHandled: stats.modeHandled,
      timeouts: { header: stats.headerTimeouts, idle: stats.idleTimeouts, send: stats.sendTimeouts },
      aborted: stats.aborted,
    },
    connections: {
      open: stats.connectionsOpen,
      accepted: stats.connectionsAccepted,
      refused: server.refused,
    },
    cache: { policy: cache.policy, ...cache.stats() },
    store: store.snapshot(),
    ...(membership ? { membership: { ...membership.current, changes: membership.changes } } : {}),
    sourceStats: source.stats(),
    ...(tcpStats ? { tcp: tcpStats() } : {}),
    ...(tls ? { tls: tls.stats() } : {}),
    ...(mode.stats ? { [mode.name]: mode.stats() } : {}),
  });
}
