// A cluster node: document source + cache + responder + HTTP server on a transport, with the
// control plane beside it. startNode() is what `sc-cluster node` runs; tests and benchmarks
// call it in-process too.
import { hostname } from "node:os";
import { Counter, type Registry } from "prom-client";
import { createDocCache, type CachePolicy, type DocCache } from "../cache/doc-cache.js";
import { DocStore } from "../store/doc-store.js";
import { FsSource } from "../source/fs-source.js";
import { OriginSource } from "../source/origin-source.js";
import type { DocSource } from "../source/source.js";
import { Responder } from "../store/responder.js";
import { HttpServer } from "../http/server.js";
import { DateCache } from "../http/date.js";
import { DEFAULT_LIMITS, type ParserLimits } from "../http/parser.js";
import type { Timeouts } from "../http/connection.js";
import { createMode, missingForMode, type Mode, type ModeDefinition } from "../modes/mode.js";
import { modeByName } from "../modes/table.js";
import { checkCluster, clusterMapper, selfMember, type ClusterConfig } from "../membership/config.js";
import {
  fetchDispatcherView,
  Membership,
  startMembershipPoll,
  type MembershipView,
} from "../membership/runtime.js";
import { forwardedBody, purgeRequestFrom, sendPurge } from "./purge.js";
import { mirrorCounter } from "../metrics-mirror.js";
import { ipv4FromString } from "../../sc/wire/addr.js";
import { isWireError } from "../../sc/wire/error.js";
import type { UserStack } from "../transport/user-stack.js";
import { ServerStats } from "../http/stats.js";
import { createMetrics } from "./metrics.js";
import { startAdmin, type AdminServer } from "./admin.js";
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
import { registerAccessLogMetrics, registerRequestDuration } from "./metrics.js";
import { CachePatternError, CacheRules } from "../http/cache-rules.js";
import { normalizePath } from "../http/url-path.js";
import type { ContentCoding } from "../http/doc.js";
import { AdminGuard, adminAuthFrom, type AdminEndpoint } from "../../sc/auth/admin-access.js";
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

export async function startNode(cfg: NodeConfig): Promise<RunningNode> {
  const log = cfg.logger;
  if ((cfg.root === undefined) === (cfg.origin === undefined)) {
    throw new UserError("give exactly one of --root DIR and --origin URL");
  }
  // A mode by name (from the table) or a Mode object given in-process (tests).
  const modeChoice: { def: ModeDefinition } | { mode: Mode } =
    typeof cfg.mode === "string" ? { def: modeByName(cfg.mode) } : { mode: cfg.mode };
  const missing =
    "def" in modeChoice &&
    missingForMode(modeChoice.def, {
      cluster: !!cfg.cluster,
      trust: cfg.trust !== null,
      userStack: cfg.stack === "user",
    });
  if (missing) throw new UserError(missing);
  const cluster = cfg.cluster ? checkCluster(cfg.cluster) : null;
  const membership = cluster ? new Membership(cluster, clusterMapper(cluster)) : null;
  // The bearer token this node sends to other members and to the dispatcher (purge, polls).
  const controlToken =
    cfg.admin?.token ?? (cfg.trust?.kind === "secret" ? cfg.trust.secret.adminToken() : undefined);
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
      log.warn({ error: view.message }, "membership: dispatcher not reachable yet, using --peer");
    else membership.apply(view);
  }

  const cache = createDocCache(
    ("def" in modeChoice ? modeChoice.def.cachePolicy : undefined) ?? cfg.cachePolicy,
    cfg.cacheBytes,
  );
  let source: DocSource;
  if (cfg.root !== undefined) {
    const root = await checkRootDir(cfg.root);
    source = await FsSource.create({
      root,
      maxInMemory: Math.min(cfg.maxInMemoryBytes, cfg.cacheBytes),
      concurrency: cfg.fsConcurrency,
    });
  } else {
    try {
      source = new OriginSource({
        url: cfg.origin!,
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
  let cacheRules: CacheRules | undefined;
  let notFoundPage: string | undefined;
  try {
    if (cfg.cacheControl && cfg.cacheControl.length > 0) cacheRules = parseCacheControl(cfg.cacheControl);
  } catch (err) {
    await source.close();
    throw err;
  }
  if (cfg.notFoundPage !== undefined) {
    const norm = normalizePath(cfg.notFoundPage);
    if (!norm.ok || norm.path.endsWith("/")) {
      await source.close();
      throw new UserError(`--not-found-page must be a file's path like /404.html, got '${cfg.notFoundPage}'`);
    }
    notFoundPage = norm.path;
  }
  const store = new DocStore(cache, source, {
    ttlMs: cfg.revalidateTtlMs ?? 0,
    precompressed: cfg.precompressed ?? [],
  });
  const stats = new ServerStats();
  const dates = new DateCache();
  const responder = new Responder(store, dates, {
    ...(cacheRules ? { cacheRules } : {}),
    ...(notFoundPage !== undefined ? { notFoundPage } : {}),
  });
  const registry = createMetrics({ nodeId: cfg.nodeId, stats, cache, store });
  const observeDuration = registerRequestDuration(registry);
  let accessLog: AccessLog | null = null;
  let accessLogger: AccessLogger | null = null;
  if (cfg.accessLog) {
    const a = cfg.accessLog;
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
      accessLog = new AccessLog(sink, {
        maxBufferBytes: a.bufferBytes ?? ACCESS_LOG_DEFAULTS.maxBufferBytes,
        flushBytes: Math.min(ACCESS_LOG_DEFAULTS.flushBytes, a.bufferBytes ?? Infinity),
        flushIntervalMs: a.flushMs ?? ACCESS_LOG_DEFAULTS.flushIntervalMs,
        onError: warn,
      });
    } catch (err) {
      await source.close();
      throw new UserError(`cannot open the access log '${a.path}': ${(err as Error).message}`);
    }
    registerAccessLogMetrics(registry, accessLog.counters);
    accessLogger = new AccessLogger(accessLog, a.format, cfg.nodeId);
  }
  const requests: RequestObserver = {
    completed(r) {
      observeDuration(r.clonedTo !== null, r.durationS);
      accessLogger?.record(r);
    },
  };

  // Release what was opened so far when a later step fails.
  const undo: (() => Promise<unknown>)[] = [() => source.close()];
  if (accessLog) {
    const al = accessLog;
    undo.push(() => al.close());
  }
  const fail = async (err: unknown): Promise<never> => {
    for (const u of undo.reverse()) await u().catch(() => undefined);
    throw err;
  };

  let userStack: UserStack | null = null;
  if (cfg.stack === "user") {
    const { openUserStack, planGueInput, registerGueMetrics, registerTcpMetrics } =
      await import("../transport/user-stack.js");
    let gue;
    try {
      gue = planGueInput(cfg.guePort ?? 0, cluster?.members.map((m) => m.addr) ?? [], cfg.gueAllow ?? []);
    } catch (err) {
      return fail(err);
    }
    if (gue.open) {
      const allow = gue.allow.toStrings();
      if (gue.allow.matchesAll) {
        log.warn(
          { port: gue.port, allow },
          "GUE input takes packets from any sender (--gue-allow 0.0.0.0/0)",
        );
      } else log.info({ port: gue.port, allow }, "GUE input");
    } else if (cfg.guePort) log.warn({ port: cfg.guePort }, `GUE input not opened: ${gue.why}`);
    try {
      userStack = await openUserStack({
        tun: cfg.tun ?? "sctun",
        address: cfg.listen.host,
        ...(cfg.tcpConfig ? { tcpConfig: cfg.tcpConfig } : {}),
        ...(gue.open ? { gue: { port: gue.port, allowFrom: gue.allow } } : {}),
        ...(cfg.worker ? { worker: cfg.worker } : {}),
      });
      const us = userStack;
      undo.push(() => us.close());
      registerTcpMetrics(registry, us.stack);
      if (us.gue) registerGueMetrics(registry, us.gue);
      // A member that joins may forward client packets to clones here.
      if (gue.open) {
        const allow = gue.allow;
        const admitMembers = (members: readonly { addr: string }[]) => {
          for (const m of members) {
            const a = ipv4FromString(m.addr);
            if (!isWireError(a)) allow.addHost(a);
          }
        };
        membership?.on("change", (v: MembershipView) => admitMembers(v.members));
        if (membership) admitMembers(membership.current.members);
      }
    } catch (err) {
      return fail(
        new UserError(
          `cannot start the user-space stack on TUN '${cfg.tun ?? "sctun"}': ${(err as Error).message}\n` +
            "(run it as root inside a testbed host, e.g. via `sc-cluster up`, or use --stack kernel " +
            "to serve on the kernel's TCP with --listen ADDR:PORT)",
        ),
      );
    }
  }

  let mode: Mode;
  if ("def" in modeChoice) {
    try {
      mode = await createMode(modeChoice.def, {
        nodeId: cfg.nodeId,
        cluster,
        trust: cfg.trust,
        membership,
        store,
        responder,
        stats,
        dates,
        registry,
        log,
        userStack,
        httpPort: cfg.listen.port,
        modeSettings: cfg.modeSettings ?? {},
      });
    } catch (err) {
      return fail(err);
    }
  } else mode = modeChoice.mode;
  const closeMode = mode.close?.bind(mode);
  if (closeMode) undo.push(closeMode);

  const server = new HttpServer({
    responder,
    mode,
    stats,
    limits: { ...DEFAULT_LIMITS, ...cfg.limits },
    timeouts: cfg.timeouts,
    dates,
    log,
    maxConnections: cfg.maxConnections,
    requests,
  });

  let listener: ConnListener;
  let tcpStats: (() => Record<string, unknown>) | undefined;
  if (userStack !== null) {
    try {
      const user = userStack.listen(cfg.listen.port);
      tcpStats = () => user.tcpStats();
      listener = user;
    } catch (err) {
      return fail(err);
    }
  } else {
    try {
      listener = await listenKernel(cfg.listen.host, cfg.listen.port);
    } catch (err) {
      return fail(listenError(err, "HTTP", cfg.listen.host, cfg.listen.port));
    }
  }
  server.attach(listener);

  let tls: TlsTermination | null = null;
  let tlsListener: ConnListener | null = null;
  if (cfg.tls) {
    const t = cfg.tls;
    try {
      tls = await TlsTermination.create({
        certFile: t.certFile,
        keyFile: t.keyFile,
        handshakeTimeoutMs: cfg.timeouts.headerMs,
        maxHandshakes: cfg.maxConnections,
        takeOver: t.recordLayer === "own",
      });
      const inner =
        userStack !== null ? userStack.listen(t.port) : await listenKernel(cfg.listen.host, t.port);
      tlsListener = tls.listener(inner);
    } catch (err) {
      await listener.close();
      await server.shutdown(0);
      return fail(
        userStack === null && tls !== null ? listenError(err, "HTTPS", cfg.listen.host, t.port) : err,
      );
    }
    server.attach(tlsListener);
    registerTlsMetrics(registry, tls);
  }

  const startedAt = Date.now();
  const snapshot = () => ({
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
    store: {
      loads: store.loads,
      joined: store.joined,
      revalidation: { ttlMs: store.ttlMs, ...store.revalidation },
      purges: store.purges,
      purgedEntries: store.purgedEntries,
    },
    ...(membership ? { membership: { ...membership.current, changes: membership.changes } } : {}),
    sourceStats: source.stats(),
    ...(tcpStats ? { tcp: tcpStats() } : {}),
    ...(tls ? { tls: tls.stats() } : {}),
    ...(mode.stats ? { [mode.name]: mode.stats() } : {}),
  });

  /** SIGTERM's first step (beginDrain): unhealthy for the dispatcher, still serving. */
  let leaving = false;
  /** POST /purge: this node's cache, then every other member's unless it came from one. */
  const purgeCluster = async (body: unknown): Promise<{ status: number; body: unknown }> => {
    const req = purgeRequestFrom(body);
    if (typeof req === "string") return { status: 400, body: { error: req } };
    const purged = store.purge(req.target);
    log.info({ target: req.target, purged, forwarded: req.local }, "purge");
    if (req.local || membership === null || cfg.admin === null)
      return { status: 200, body: { node: cfg.nodeId, purged } };
    const adminPort = cfg.admin.port;
    const view = membership.current;
    const others = view.members.filter((m) => m.id !== cfg.nodeId);
    const results = await Promise.all(
      others.map((m) =>
        sendPurge(
          view.admin[m.id] ?? `http://${m.addr}:${adminPort}`,
          controlToken,
          forwardedBody(req.target),
          controlTimeoutMs,
        ),
      ),
    );
    const peers = Object.fromEntries(others.map((m, i) => [m.id, results[i]!]));
    const failed = others.filter((_, i) => !results[i]!.ok).map((m) => m.id);
    return {
      status: failed.length === 0 ? 200 : 502,
      body: {
        node: cfg.nodeId,
        purged,
        peers,
        ...(failed.length ? { error: `not purged on ${failed.join(", ")}` } : {}),
      },
    };
  };

  let admin: AdminServer | null = null;
  if (cfg.admin) {
    const guard = new AdminGuard(adminAuthFrom(cfg.trust, cfg.admin.token), [
      cfg.admin.host,
      ...(cfg.admin.names ?? []),
    ]);
    if (guard.auth.kind === "open") log.warn(guard.describe());
    else log.info(guard.describe());
    try {
      admin = await startAdmin({
        host: cfg.admin.host,
        port: cfg.admin.port,
        logger: log,
        registry,
        guard,
        stats: snapshot,
        healthy: () => !server.draining && !leaving,
        purge: (body) => purgeCluster(body),
      });
    } catch (err) {
      await listener.close();
      await server.shutdown(0);
      return fail(err);
    }
  }

  const poll =
    cluster && membership && cfg.membersFrom
      ? startMembershipPoll({
          url: cfg.membersFrom.url,
          token: controlToken,
          intervalMs: cfg.membersFrom.intervalMs,
          timeoutMs: controlTimeoutMs,
          membership,
          selfMember: selfMember(cluster),
          log,
        })
      : null;
  if (poll) {
    mirrorCounter(
      registry,
      "sc_membership_polls_total",
      "GET /nodes polls of the dispatcher (--members-from)",
      () => poll.polls,
    );
    mirrorCounter(
      registry,
      "sc_membership_poll_failures_total",
      "Membership polls that failed or gave a refused view",
      () => poll.failures,
    );
  }
  mirrorCounter(
    registry,
    "sc_purges_total",
    "Purges applied to this node's cache (POST /purge, own or forwarded)",
    () => store.purges,
  );
  mirrorCounter(
    registry,
    "sc_purged_entries_total",
    "Cached documents dropped by purges",
    () => store.purgedEntries,
  );
  new Counter({
    name: "sc_revalidations_total",
    help: "Cached documents checked with the source after --revalidate-ttl, by result: unchanged (304), changed (new version or gone), error (kept)",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      this.reset();
      const r = store.revalidation;
      this.inc({ result: "unchanged" }, r.unchanged);
      this.inc({ result: "changed" }, r.changed);
      this.inc({ result: "error" }, r.errors);
    },
  });
  if (membership)
    mirrorCounter(
      registry,
      "sc_membership_changes_total",
      "Membership views installed (the first one included)",
      () => membership.changes,
    );

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
