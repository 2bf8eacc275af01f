// A cluster node: document source + cache + responder + HTTP server on a transport, with the
// control plane beside it. startNode() is what `sc-cluster node` runs; tests and benchmarks
// call it in-process too.
import { hostname } from "node:os";
import type { Registry } from "prom-client";
import { createDocCache, type CachePolicy, type DocCache } from "./cache/doc-cache.js";
import { DocStore } from "./doc-store.js";
import { FsSource } from "./source/fs-source.js";
import { OriginSource } from "./source/origin-source.js";
import type { DocSource } from "./source/source.js";
import { Responder } from "./responder.js";
import { HttpServer } from "./http-server.js";
import { DateCache } from "./http/date.js";
import { DEFAULT_LIMITS, type ParserLimits } from "./http/parser.js";
import type { Timeouts } from "./connection.js";
import { MODES, type Mode, type ModeContext } from "./modes.js";
import "./modes/all.js";
import { checkCluster, clusterMapper, type ClusterConfig } from "./cluster.js";
import type { UserStack } from "./conn-user.js";
import { ServerStats } from "./stats.js";
import { createMetrics } from "./metrics.js";
import { startAdmin, type AdminServer } from "./admin.js";
import { listenKernel, type ConnListener } from "./conn.js";
import { checkRootDir, listenError, UserFacingError } from "./errors.js";
import type { Logger } from "./log.js";
import type { ClusterTrust } from "../sc/auth/secret.js";
import { AdminGuard, adminAuthFrom, type AdminEndpoint } from "../sc/auth/admin-access.js";

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
}

export async function startNode(cfg: NodeConfig): Promise<RunningNode> {
  const log = cfg.logger;
  if ((cfg.root === undefined) === (cfg.origin === undefined)) {
    throw new UserFacingError("give exactly one of --root DIR and --origin URL");
  }
  const modeDef = typeof cfg.mode === "string" ? MODES[cfg.mode] : undefined;
  if (typeof cfg.mode === "string" && modeDef === undefined) {
    throw new UserFacingError(`unknown mode '${cfg.mode}' (known: ${Object.keys(MODES).join(", ")})`);
  }
  if (modeDef?.needsCluster && !cfg.cluster) {
    throw new UserFacingError(
      `--mode ${modeDef.name} needs the cluster's members (--peer ID=ADDR, one per node)`,
    );
  }
  if (modeDef?.needsUserStack && cfg.stack !== "user") {
    throw new UserFacingError(
      `--mode ${modeDef.name} needs --stack user (it owns the TCP state of connections)`,
    );
  }
  if (modeDef?.needsCluster && cfg.trust === null) {
    throw new UserFacingError(
      `--mode ${modeDef.name} needs the cluster secret (--secret-file FILE, same file on every member; ` +
        "`sc-cluster secret --out FILE` makes one), or --insecure-dev to run unauthenticated",
    );
  }
  const cluster = cfg.cluster ? checkCluster(cfg.cluster) : null;

  const cache = createDocCache(modeDef?.cachePolicy ?? cfg.cachePolicy, cfg.cacheBytes);
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
      throw new UserFacingError(
        err instanceof TypeError ? `invalid --origin URL '${cfg.origin}'` : (err as Error).message,
      );
    }
  }
  const store = new DocStore(cache, source);
  const stats = new ServerStats();
  const dates = new DateCache();
  const responder = new Responder(store, dates);
  const registry = createMetrics({ nodeId: cfg.nodeId, stats, cache, store });

  // Release what was opened so far when a later step fails.
  const undo: (() => Promise<unknown>)[] = [() => source.close()];
  const fail = async (err: unknown): Promise<never> => {
    for (const u of undo.reverse()) await u().catch(() => undefined);
    throw err;
  };

  let userStack: UserStack | null = null;
  if (cfg.stack === "user") {
    const { openUserStack, planGueInput, registerGueMetrics, registerTcpMetrics } =
      await import("./conn-user.js");
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
      });
      const us = userStack;
      undo.push(() => us.close());
      registerTcpMetrics(registry, us.stack);
      if (us.gue) registerGueMetrics(registry, us.gue);
    } catch (err) {
      return fail(
        new UserFacingError(
          `cannot start the user-space stack on TUN '${cfg.tun ?? "sctun"}': ${(err as Error).message}\n` +
            "(run it as root inside a testbed host, e.g. via `sc-cluster up`, or use --stack kernel " +
            "to serve on the kernel's TCP with --listen ADDR:PORT)",
        ),
      );
    }
  }

  let mode: Mode;
  if (typeof cfg.mode === "string") {
    const ctx: ModeContext = {
      nodeId: cfg.nodeId,
      cluster,
      trust: cfg.trust,
      mapper: cluster ? clusterMapper(cluster) : null,
      store,
      responder,
      stats,
      dates,
      registry,
      log,
      userStack,
      httpPort: cfg.listen.port,
      modeSettings: cfg.modeSettings ?? {},
    };
    try {
      mode = await modeDef!.create(ctx);
    } catch (err) {
      return fail(err);
    }
  } else mode = cfg.mode;
  if (mode.close) undo.push(() => mode.close!());

  const server = new HttpServer({
    responder,
    mode,
    stats,
    limits: { ...DEFAULT_LIMITS, ...cfg.limits },
    timeouts: cfg.timeouts,
    dates,
    log,
    maxConnections: cfg.maxConnections,
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
    store: { loads: store.loads, joined: store.joined },
    sourceStats: source.stats(),
    ...(tcpStats ? { tcp: tcpStats() } : {}),
    ...(mode.stats ? { [mode.name]: mode.stats() } : {}),
  });

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
        healthy: () => !server.draining,
      });
    } catch (err) {
      await listener.close();
      await server.shutdown(0);
      return fail(err);
    }
  }

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
    async shutdown(graceMs: number) {
      await server.shutdown(graceMs);
      await mode.close?.();
      await source.close();
      await admin?.close();
    },
  };
}
