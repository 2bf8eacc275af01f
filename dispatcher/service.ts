// The running dispatcher: reads client packets from the TUN device the VIP is routed to,
// runs them through a Forwarder and sends the GUE packets out (datapath.ts: --output tun, udp
// or raw; docs/dispatcher.md compares them with bench/dispatcher-forward.ts), plus the
// control plane: health checks and the admin API.
//
// --workers 1: one data path on this thread (the TUN device's only queue).
// --workers N > 1: N worker threads (workers.ts, worker-main.ts), one per queue of a
// multi-queue TUN device, each with its own forwarder, connection table and socket; this
// thread keeps the control plane (admin API, health checks, membership), sends it changes to
// the workers and adds their counters up for /stats and /metrics. It holds one more queue,
// detached (it receives nothing), so a device it created lives as long as the service.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { availableParallelism, networkInterfaces } from "node:os";
import type { FastifyInstance } from "fastify";
import { Counter, type Registry } from "prom-client";
import { TunDevice, TunError } from "../sc/tun/index.js";
import { GUE_PORT, ipv4FromString, ipv4ToString, isWireError, type GueVariant } from "../sc/wire/index.js";
import type { ClusterTrust } from "../sc/auth/secret.js";
import { AdminGuard, adminAuthFrom, type AdminEndpoint } from "../sc/auth/admin-access.js";
import { buildAdmin } from "./admin.js";
import type { ConnTimeouts } from "./conn-table.js";
import { DispatcherControl } from "./control.js";
import { DataPath, type DataPathConfig, type OutputMode } from "./datapath.js";
import type { ForwarderModel } from "./forwarder.js";
import { HandoverFile } from "./handover-file.js";
import { DEFAULT_HEALTH, type HealthOptions } from "./health.js";
import { createMetrics } from "./metrics.js";
import type { NodeSpec } from "./nodes.js";
import type { SchedulerName } from "./schedulers.js";
import { ForwarderWorkers, perWorkerShare, sumCounters } from "./workers.js";
import { UserError } from "../common/errors.js";

export type { OutputMode } from "./datapath.js";

/** Most data-path workers (threads); one TUN queue each. */
export const MAX_WORKERS = 64;

export interface DispatcherConfig {
  /** uint32 */
  vip: number;
  port: number;
  /** Further service ports balanced like `port` (443 beside 80). */
  extraPorts?: readonly number[];
  scheduler: SchedulerName;
  nodes: NodeSpec[];
  /** TUN device the VIP is routed to (attached to if it exists, else created). */
  tun: string;
  output: OutputMode;
  /**
   * Data-path worker threads, one per TUN queue (the device must be multi-queue when > 1).
   * Undefined: one per core if the device is multi-queue or is created here, else 1.
   */
  workers?: number;
  /** Outer source address; default: this host's address on the nodes' subnet. */
  source?: number;
  guePort?: number;
  variant?: GueVariant;
  udpChecksum?: boolean;
  /**
   * --output udp: group each batch's datagrams by node and send runs of equal size as one
   * UDP GSO message (default true); false sends one datagram per sendmmsg entry.
   */
  udpGso?: boolean;
  /** --output udp: largest GSO segment (UDP payload; + 28 must fit the path MTU). Default 1472. */
  udpGsoMaxSegment?: number;
  /** Connection-table size of the whole dispatcher (with workers: shared out evenly). */
  maxConnections?: number;
  maxHalfOpen?: number;
  timeouts?: Partial<ConnTimeouts>;
  /** How long a down node keeps its established connections before they are reset (ms). */
  deadGraceMs?: number;
  health?: HealthOptions;
  /** Admin API listen address and access (token, Host names); none: no admin API. */
  admin?: AdminEndpoint;
  /** The cluster secret (admin bearer token) or --insecure-dev; null: neither given. */
  trust?: ClusterTrust | null;
  /**
   * sh/mh: the state file for the connections a restart cannot rebuild from the hash
   * (handover.ts); read at start, kept up to date. None: a restart rebuilds from the hash only.
   */
  stateFile?: string;
  /** Structured log lines (one JSON object per line is what the CLI prints). */
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class DispatcherStartError extends UserError {
  constructor(message: string) {
    super(message, "ERR_DISPATCHER_START");
  }
}

/** Every IPv4 address of this host (a client packet claiming one is spoofed). */
export function localAddresses(): number[] {
  const out: number[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const addr = a.family === "IPv4" ? ipv4FromString(a.address) : null;
      if (addr !== null && !isWireError(addr)) out.push(addr);
    }
  }
  return out;
}

/** This host's IPv4 address on the same subnet as `addr`, if any. */
export function localAddressFacing(addr: number): number | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== "IPv4" || a.internal) continue;
      const local = ipv4FromString(a.address);
      const mask = ipv4FromString(a.netmask);
      if (isWireError(local) || isWireError(mask)) continue;
      if ((local & mask) >>> 0 === (addr & mask) >>> 0) return local;
    }
  }
  return undefined;
}

function isLocalAddress(addr: number): boolean {
  return Object.values(networkInterfaces()).some((list) =>
    (list ?? []).some((a) => a.family === "IPv4" && a.address === ipv4ToString(addr)),
  );
}

/**
 * Packets written into a TUN device with a local source address are martians unless the
 * device has accept_local=1 (measured: without it the kernel drops every one silently).
 */
function enableAcceptLocal(dev: string): void {
  const path = `/proc/sys/net/ipv4/conf/${dev}/accept_local`;
  if (!existsSync(path)) return;
  if (readFileSync(path, "utf8").trim() === "1") return;
  try {
    writeFileSync(path, "1");
  } catch (err) {
    throw new DispatcherStartError(
      `cannot set ${path} to 1 (${(err as Error).message}); it is needed to route GUE packets with this ` +
        "host's address as source out of the TUN device. Set it as root, or use --source VIP or --output udp",
    );
  }
}

/** How the data path runs: on this thread, or on worker threads. */
type Engine = { kind: "single"; path: DataPath } | { kind: "workers"; pool: ForwarderWorkers };

type LogFn = (message: string, fields?: Record<string, unknown>) => void;

/** The GUE packets' source: --source, else this host's address facing the first node. */
function gueSource(config: DispatcherConfig): DispatcherConfig["source"] {
  if (config.source !== undefined) return config.source;
  const first = config.nodes[0];
  const source = first ? localAddressFacing(first.addr) : undefined;
  if (source === undefined && config.output !== "udp") {
    throw new DispatcherStartError(
      "no local address on the nodes' subnet to use as the GUE source: give --source ADDR",
    );
  }
  return source;
}

/** Data-path threads: --workers, else 1 with a state file (it holds one table), else one per core. */
function workerCount(config: DispatcherConfig): number {
  if (
    config.workers !== undefined &&
    (!Number.isInteger(config.workers) || config.workers < 1 || config.workers > MAX_WORKERS)
  ) {
    throw new DispatcherStartError(`workers must be an integer 1..${MAX_WORKERS}, got ${config.workers}`);
  }
  // The handover file holds one data path's table: a state file means one data-path thread.
  if (config.stateFile !== undefined && config.workers !== undefined && config.workers > 1)
    throw new DispatcherStartError(
      "--state-file needs --workers 1 (the handover file holds one data path's table)",
    );
  return config.workers ?? (config.stateFile !== undefined ? 1 : availableParallelism());
}

function dataPathConfig(config: DispatcherConfig, source: DispatcherConfig["source"]): DataPathConfig {
  return {
    vip: config.vip,
    port: config.port,
    ...(config.extraPorts ? { extraPorts: config.extraPorts } : {}),
    scheduler: config.scheduler,
    output: config.output,
    source: source ?? 0,
    bind: config.source ?? 0,
    localAddrs: localAddresses(),
    ...(config.variant !== undefined ? { variant: config.variant } : {}),
    ...(config.udpChecksum !== undefined ? { udpChecksum: config.udpChecksum } : {}),
    ...(config.udpGso !== undefined ? { udpGso: config.udpGso } : {}),
    ...(config.udpGsoMaxSegment !== undefined ? { udpGsoMaxSegment: config.udpGsoMaxSegment } : {}),
    ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
    ...(config.maxHalfOpen !== undefined ? { maxHalfOpen: config.maxHalfOpen } : {}),
    ...(config.timeouts !== undefined ? { timeouts: config.timeouts } : {}),
    ...(config.deadGraceMs !== undefined ? { deadGraceMs: config.deadGraceMs } : {}),
  };
}

export class DispatcherService {
  readonly control: DispatcherControl;
  readonly metrics: Registry;
  /** The data path's TUN queue (--workers 1), or the detached queue this thread holds. */
  readonly tun: TunDevice;
  readonly source: number;
  /** Data-path threads (1: this one). */
  readonly workers: number;
  private readonly engine: Engine;
  private admin: FastifyInstance | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private handover: HandoverFile | undefined;
  private closing = false;
  /** Resolves when the service stops (stop() or a fatal TUN error). */
  readonly done: Promise<Error | undefined>;
  private finish: (err: Error | undefined) => void = () => {};
  adminUrl: string | undefined;

  private constructor(
    private readonly config: DispatcherConfig,
    tun: TunDevice,
    source: number,
    engine: Engine,
  ) {
    this.tun = tun;
    this.source = source;
    this.engine = engine;
    this.workers = engine.kind === "single" ? 1 : engine.pool.size;
    this.done = new Promise((resolve) => (this.finish = resolve));
    const log = config.log ?? (() => {});
    const model: ForwarderModel = engine.kind === "single" ? engine.path.forwarder : engine.pool;
    this.control = new DispatcherControl(model, {
      health: config.health ?? DEFAULT_HEALTH,
      // Off the data path's thread: a busy event loop here made healthy nodes fail checks.
      healthWorker: {
        onError: (err) => {
          log("health checker failed", { error: err.message });
          void this.stop(err);
        },
      },
      clock: () => performance.now(),
      log,
      guePort: config.guePort ?? GUE_PORT,
      ioStats: () => this.ioStats(),
    });
    const writeDrops = () => this.ioTotals().tunWriteDrops;
    const udpErrors = () => this.ioTotals().udpSendDrops;
    const perWorker = () => this.perWorkerPackets();
    this.metrics = createMetrics(this.control, (registry) => {
      new Counter({
        name: "sc_dispatcher_tun_write_drops_total",
        help: "Packets the TUN device did not take (send buffer full, invalid, closed)",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(writeDrops());
        },
      });
      new Counter({
        name: "sc_dispatcher_udp_send_errors_total",
        help: "GUE packets the UDP or raw socket did not send (--output udp/raw: send buffer full, unreachable, invalid)",
        registers: [registry],
        collect() {
          this.reset();
          this.inc(udpErrors());
        },
      });
      new Counter({
        name: "sc_dispatcher_worker_packets_received_total",
        help: "Packets read from the TUN device, per data-path worker (its TUN queue); one worker with --workers 1",
        labelNames: ["worker"],
        registers: [registry],
        collect() {
          this.reset();
          perWorker().forEach((n, i) => this.inc({ worker: String(i) }, n));
        },
      });
    });
  }

  /** Opens the TUN device and sockets, starts forwarding, health checks and the admin API. */
  static async start(config: DispatcherConfig): Promise<DispatcherService> {
    const log = config.log ?? (() => {});
    const source = gueSource(config);
    const workers = workerCount(config);
    const svc = DispatcherService.withEngine(
      config,
      dataPathConfig(config, source),
      source ?? 0,
      workers,
      log,
    );
    try {
      for (const n of config.nodes) svc.control.forwarder.upsertNode(n);
      if (config.output === "tun" && isLocalAddress(svc.source)) enableAcceptLocal(svc.tun.name);
      // Adopt the previous dispatcher's displaced connections before the first packet.
      if (config.stateFile !== undefined && svc.engine.kind === "single") {
        svc.handover = new HandoverFile(config.stateFile, svc.engine.path.forwarder, log);
        svc.handover.start(performance.now());
      }
      await svc.startDataPath();
      svc.control.start();
      if (config.admin) await svc.listenAdmin(config.admin);
    } catch (err) {
      await svc.stop();
      throw err instanceof DispatcherStartError ? err : new DispatcherStartError((err as Error).message);
    }
    return svc;
  }

  /** The service around one data path in this thread, or a pool of worker threads behind a keeper queue. */
  private static withEngine(
    config: DispatcherConfig,
    dp: DataPathConfig,
    source: number,
    workers: number,
    log: LogFn,
  ): DispatcherService {
    const keeper = workers > 1 ? openKeeperQueue(config.tun, config.workers !== undefined, log) : undefined;
    if (keeper === undefined) {
      let path: DataPath;
      try {
        path = DataPath.open(dp, config.tun, false);
      } catch (err) {
        throw new DispatcherStartError((err as Error).message);
      }
      return new DispatcherService(config, path.tun, source, { kind: "single", path });
    }
    let failed: (err: Error) => void = () => {};
    const pool = new ForwarderWorkers({
      config: {
        ...dp,
        maxConnections: perWorkerShare(config.maxConnections ?? 1 << 20, workers),
        ...(config.maxHalfOpen !== undefined
          ? { maxHalfOpen: perWorkerShare(config.maxHalfOpen, workers) }
          : {}),
      },
      workers,
      tun: keeper.name,
      onFatal: (err) => failed(err),
    });
    const svc = new DispatcherService(config, keeper, source, { kind: "workers", pool });
    failed = (err) => {
      log("data-path worker failed", { error: err.message });
      void svc.stop(err);
    };
    return svc;
  }

  private async startDataPath(): Promise<void> {
    const log = this.config.log ?? (() => {});
    const e = this.engine;
    if (e.kind === "single") {
      e.path.start((err) => {
        log("TUN device failed", { error: err.message });
        void this.stop(err);
      });
      this.tickTimer = setInterval(() => e.path.forwarder.tick(performance.now()), 1000);
    } else {
      await e.pool.start();
      this.tickTimer = setInterval(() => e.pool.tick(), 1000);
    }
  }

  private ioStats(): Record<string, unknown> {
    const base = { output: this.config.output, source: ipv4ToString(this.source), workers: this.workers };
    const e = this.engine;
    if (e.kind === "single") {
      const io = e.path.ioStats();
      return { ...base, tun: { name: this.tun.name, ...io.tun }, ...(io.udp ? { udp: io.udp } : {}) };
    }
    const snaps = e.pool.snapshots();
    const tuns = snaps.flatMap((s) => (s ? [s.io.tun] : []));
    const udps = snaps.flatMap((s) => (s?.io.udp ? [s.io.udp] : []));
    return {
      ...base,
      tun: { name: this.tun.name, multiQueue: true, ...sumCounters(tuns) },
      ...(udps.length > 0 ? { udp: sumCounters(udps) } : {}),
      // Per worker: its share of the traffic and its own table (affinity shows here).
      perWorker: snaps.map((s, i) => ({
        worker: i,
        packetsIn: s?.packetsIn ?? 0,
        packetsForwarded: s?.packetsOut ?? 0,
        batchesIn: s?.io.tun.batchesIn ?? 0,
        connections: s?.table.size ?? 0,
        scheduled: s?.connectionsScheduled ?? 0,
        recovered: s?.connectionsRecovered ?? 0,
      })),
    };
  }

  private ioTotals(): { tunWriteDrops: number; udpSendDrops: number } {
    const e = this.engine;
    if (e.kind === "single") {
      const io = e.path.ioStats();
      return { tunWriteDrops: io.tun.writeDrops, udpSendDrops: io.udp?.sendDrops ?? 0 };
    }
    let tunWriteDrops = 0;
    let udpSendDrops = 0;
    for (const s of e.pool.snapshots()) {
      tunWriteDrops += s?.io.tun.writeDrops ?? 0;
      udpSendDrops += s?.io.udp?.sendDrops ?? 0;
    }
    return { tunWriteDrops, udpSendDrops };
  }

  private perWorkerPackets(): number[] {
    const e = this.engine;
    if (e.kind === "single") return [e.path.forwarder.packetsIn];
    return e.pool.snapshots().map((s) => s?.packetsIn ?? 0);
  }

  private async listenAdmin(addr: AdminEndpoint): Promise<void> {
    const guard = new AdminGuard(adminAuthFrom(this.config.trust ?? null, addr.token), [
      addr.host,
      ...(addr.names ?? []),
    ]);
    this.config.log?.(guard.describe(), guard.auth.kind === "open" ? { level: "warn" } : {});
    const app = buildAdmin(this.control, this.metrics, guard);
    this.admin = app;
    try {
      await app.listen({ host: addr.host, port: addr.port });
    } catch (err) {
      throw new DispatcherStartError(
        `admin API cannot listen on ${addr.host}:${addr.port}: ${(err as Error).message}`,
      );
    }
    const a = app.server.address();
    const port = typeof a === "object" && a ? a.port : addr.port;
    this.adminUrl = `http://${addr.host.includes(":") ? `[${addr.host}]` : addr.host}:${port}`;
  }

  /** Stops everything; the persistent TUN device stays. Idempotent. */
  async stop(err?: Error): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    await this.handover?.stop();
    await this.control.stop();
    await this.admin?.close().catch(() => {});
    if (this.engine.kind === "single") this.engine.path.close();
    else await this.engine.pool.stop();
    this.tun.close();
    this.finish(err);
  }
}

/**
 * --workers > 1: opens the device as a multi-queue one and detaches this thread's queue (it
 * receives nothing; the workers attach theirs). A persistent single-queue device cannot take
 * more queues: with --workers given that is an error, by default the service runs on one
 * thread (undefined is returned).
 */
function openKeeperQueue(
  name: string,
  explicit: boolean,
  log: (message: string, fields?: Record<string, unknown>) => void,
): TunDevice | undefined {
  let tun: TunDevice;
  try {
    tun = TunDevice.open({ name, up: true, multiQueue: true });
  } catch (err) {
    if (err instanceof TunError && err.code === "EINVAL") {
      if (!explicit) {
        log("TUN device is single-queue: forwarding on one thread", { tun: name, workers: 1 });
        return undefined;
      }
      throw new DispatcherStartError(
        `--workers needs a multi-queue TUN device, and ${name} is not one: recreate it with ` +
          `ip tuntap add dev ${name} mode tun multi_queue (then its routes), or use --workers 1`,
      );
    }
    throw new DispatcherStartError((err as Error).message);
  }
  try {
    tun.setQueueAttached(false);
  } catch (err) {
    tun.close();
    throw new DispatcherStartError((err as Error).message);
  }
  return tun;
}
