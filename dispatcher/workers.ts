// --workers N: the dispatcher's data path on N worker threads, one per queue of a
// multi-queue TUN device (IFF_MULTI_QUEUE), each with its own Forwarder, connection table and
// GUE socket (worker-main.ts). This module is the main thread's side: the control plane's
// model of the forwarders (a ForwarderModel, what control.ts and metrics.ts drive and read).
//
// Affinity: the kernel picks a multi-queue TUN's receive queue per packet from its flow hash
// (symmetric over the 5-tuple; a flow whose packets this process writes to a queue is pinned
// to that queue), so every packet of a client connection reaches the same worker, the one
// whose table holds its entry. Nothing here depends on it being stateless: with rr/wrr/lc the
// table is the only record of where a connection lives. The counters prove it: a packet that
// reached another worker would be recovered there (mh/sh: `recovered`) or dropped (`no_conn`).
//
// Membership: the control plane's changes (node put/delete, health verdicts, scheduler) apply
// to the NodePool here and are sent, in order, to every worker, which applies the same change
// to its own forwarder. Health verdicts carry their time as an epoch timestamp (performance.now()
// has a different origin in every thread).
// Counters: every worker posts a snapshot (STATS_INTERVAL_MS); /stats and /metrics add the
// latest ones up, so they are at most that old. A removed node is forgotten here once no
// worker reports a connection to it.
import { Worker } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { CONN_STATE_NAMES, type ConnState } from "./conn-table.js";
import type { DataPath, DataPathConfig } from "./datapath.js";
import {
  DROP_REASONS,
  type ConnTableCounts,
  type DropReason,
  type ForwarderModel,
  type EncapMode,
  type Forwarder,
} from "./forwarder.js";
import { NodePool, type Node, type NodeHealthState, type NodeSpec } from "./nodes.js";
import type { SchedulerName } from "./schedulers.js";
import { isSchedulerName } from "./schedulers.js";

/** How often a worker posts its counters (ms). */
export const STATS_INTERVAL_MS = 100;
/** How long a worker may take to open its queue and socket. */
const READY_TIMEOUT_MS = 15_000;
/** How long a stopping worker may take to close before it is terminated. */
const STOP_TIMEOUT_MS = 5_000;

const WORKER_MAIN = fileURLToPath(new URL("./worker-main.js", import.meta.url));

/** A node as a new worker starts with it: its spec and the health state it has now. */
export interface NodeSync {
  spec: NodeSpec;
  checked: boolean;
  healthy: boolean;
  gone: boolean;
  removed: boolean;
  /** When it went down, epoch ms (meaningful while !healthy). */
  downSinceEpoch: number;
}

export interface WorkerInit {
  index: number;
  tun: string;
  config: DataPathConfig;
  scheduler: SchedulerName;
  nodes: NodeSync[];
}

/** Control-plane changes, in the order the main thread made them. */
export type WorkerCommand =
  | { op: "upsert"; spec: NodeSpec }
  | { op: "remove"; id: string }
  | { op: "health"; id: string; state: NodeHealthState; atEpoch: number }
  | { op: "scheduler"; name: SchedulerName }
  | { op: "stop" };

/** Per-node counters of one worker's forwarder. */
export interface NodeCounters {
  id: string;
  packets: number;
  bytes: number;
  scheduled: number;
  rsts: number;
  downForwarded: number;
  active: number;
  inactive: number;
}

/** One worker's counters. */
export interface WorkerSnapshot {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  connectionsScheduled: number;
  connectionsRecovered: number;
  rstsSent: number;
  ticklesSent: number;
  downForwarded: number;
  /** Indexed like DROP_REASONS. */
  drops: number[];
  table: {
    size: number;
    capacity: number;
    halfOpen: number;
    maxHalfOpen: number;
    underSynLoad: boolean;
    confirmed: number;
    /** Indexed like CONN_STATE_NAMES. */
    byState: number[];
    expired: number;
    evictedHalfOpen: number;
    evictedFull: number;
    refusedFull: number;
  };
  nodes: NodeCounters[];
  io: ReturnType<DataPath["ioStats"]>;
}

export type WorkerMessage =
  { type: "ready" } | { type: "stats"; snapshot: WorkerSnapshot } | { type: "error"; message: string };

/** A forwarder's counters (and its data path's I/O counters) as a snapshot (runs on the worker). */
export function snapshotOf(f: Forwarder, io: WorkerSnapshot["io"]): WorkerSnapshot {
  const t = f.table;
  return {
    packetsIn: f.packetsIn,
    bytesIn: f.bytesIn,
    packetsOut: f.packetsOut,
    bytesOut: f.bytesOut,
    connectionsScheduled: f.connectionsScheduled,
    connectionsRecovered: f.connectionsRecovered,
    rstsSent: f.rstsSent,
    ticklesSent: f.ticklesSent,
    downForwarded: f.downForwarded,
    drops: Array.from(f.drops),
    table: {
      size: t.size,
      capacity: t.capacity,
      halfOpen: t.halfOpen,
      maxHalfOpen: t.maxHalfOpen,
      underSynLoad: t.underSynLoad,
      confirmed: t.confirmed,
      byState: CONN_STATE_NAMES.map((_, s) => t.countInState(s as ConnState)),
      expired: t.expired,
      evictedHalfOpen: t.evictedHalfOpen,
      evictedFull: t.evictedFull,
      refusedFull: t.refusedFull,
    },
    nodes: f.nodes.list().map((n) => ({
      id: n.id,
      packets: n.packets,
      bytes: n.bytes,
      scheduled: n.scheduled,
      rsts: n.rsts,
      downForwarded: n.downForwarded,
      active: t.active(n.slot),
      inactive: t.inactive(n.slot),
    })),
    io,
  };
}

/** Each worker's connection-table share of the total (--max-conns is for the whole dispatcher). */
export function perWorkerShare(total: number | undefined, workers: number): number | undefined {
  return total === undefined ? undefined : Math.max(1, Math.ceil(total / workers));
}

export interface WorkerPoolOptions {
  config: DataPathConfig;
  workers: number;
  /** The multi-queue TUN device; every worker opens one queue of it. */
  tun: string;
  /** A worker failed (could not start, TUN read error, crashed): the service stops. */
  onFatal: (err: Error) => void;
}

const EMPTY_TABLE: WorkerSnapshot["table"] = {
  size: 0,
  capacity: 0,
  halfOpen: 0,
  maxHalfOpen: 0,
  underSynLoad: false,
  confirmed: 0,
  byState: CONN_STATE_NAMES.map(() => 0),
  expired: 0,
  evictedHalfOpen: 0,
  evictedFull: 0,
  refusedFull: 0,
};

/** Sums of the workers' latest snapshots, per node id. */
export class Aggregate {
  packetsIn = 0;
  bytesIn = 0;
  packetsOut = 0;
  bytesOut = 0;
  connectionsScheduled = 0;
  connectionsRecovered = 0;
  rstsSent = 0;
  ticklesSent = 0;
  downForwarded = 0;
  drops = DROP_REASONS.map(() => 0);
  table: WorkerSnapshot["table"] = { ...EMPTY_TABLE, byState: [...EMPTY_TABLE.byState] };
  nodes = new Map<string, NodeCounters>();

  static of(snaps: readonly WorkerSnapshot[]): Aggregate {
    const a = new Aggregate();
    const t = a.table;
    for (const s of snaps) {
      a.packetsIn += s.packetsIn;
      a.bytesIn += s.bytesIn;
      a.packetsOut += s.packetsOut;
      a.bytesOut += s.bytesOut;
      a.connectionsScheduled += s.connectionsScheduled;
      a.connectionsRecovered += s.connectionsRecovered;
      a.rstsSent += s.rstsSent;
      a.ticklesSent += s.ticklesSent;
      a.downForwarded += s.downForwarded;
      s.drops.forEach((v, i) => (a.drops[i] = (a.drops[i] ?? 0) + v));
      t.size += s.table.size;
      t.capacity += s.table.capacity;
      t.halfOpen += s.table.halfOpen;
      t.maxHalfOpen += s.table.maxHalfOpen;
      t.underSynLoad ||= s.table.underSynLoad;
      t.confirmed += s.table.confirmed;
      s.table.byState.forEach((v, i) => (t.byState[i] = (t.byState[i] ?? 0) + v));
      t.expired += s.table.expired;
      t.evictedHalfOpen += s.table.evictedHalfOpen;
      t.evictedFull += s.table.evictedFull;
      t.refusedFull += s.table.refusedFull;
      for (const n of s.nodes) {
        const sum = a.nodes.get(n.id);
        if (!sum) {
          a.nodes.set(n.id, { ...n });
          continue;
        }
        sum.packets += n.packets;
        sum.bytes += n.bytes;
        sum.scheduled += n.scheduled;
        sum.rsts += n.rsts;
        sum.downForwarded += n.downForwarded;
        sum.active += n.active;
        sum.inactive += n.inactive;
      }
    }
    return a;
  }
}

interface WorkerSlot {
  worker: Worker;
  snapshot: WorkerSnapshot | undefined;
  exited: Promise<void>;
}

/** Adds up the numeric fields of objects of the same shape (per-worker TUN or socket stats). */
export function sumCounters<T extends object>(list: readonly T[]): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const o of list) {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "number") out[k] = ((out[k] as number | undefined) ?? 0) + v;
      else if (typeof v === "boolean") out[k] = ((out[k] as boolean | undefined) ?? false) || v;
    }
  }
  return out;
}

export class ForwarderWorkers implements ForwarderModel {
  readonly nodes: NodePool;
  readonly table: ConnTableCounts;
  readonly vip: number;
  readonly port: number;
  readonly encap: EncapMode;
  readonly deadGraceMs: number;
  private scheduler: SchedulerName;
  private readonly slots: WorkerSlot[] = [];
  private sum = new Aggregate();
  private stopping = false;

  constructor(private readonly opts: WorkerPoolOptions) {
    const c = opts.config;
    this.vip = c.vip >>> 0;
    this.port = c.port;
    this.encap = c.output === "udp" ? "inner" : "ipv4";
    this.deadGraceMs = c.deadGraceMs ?? 60_000;
    this.scheduler = c.scheduler;
    this.nodes = new NodePool(256);
    const sum = () => this.sum;
    const nodeSum = (slot: number) => {
      const n = this.nodes.bySlot(slot);
      return n ? sum().nodes.get(n.id) : undefined;
    };
    this.table = {
      get size() {
        return sum().table.size;
      },
      get capacity() {
        return sum().table.capacity;
      },
      get halfOpen() {
        return sum().table.halfOpen;
      },
      get maxHalfOpen() {
        return sum().table.maxHalfOpen;
      },
      get underSynLoad() {
        return sum().table.underSynLoad;
      },
      get confirmed() {
        return sum().table.confirmed;
      },
      countInState: (s: ConnState) => sum().table.byState[s] ?? 0,
      get expired() {
        return sum().table.expired;
      },
      get evictedHalfOpen() {
        return sum().table.evictedHalfOpen;
      },
      get evictedFull() {
        return sum().table.evictedFull;
      },
      get refusedFull() {
        return sum().table.refusedFull;
      },
      active: (slot: number) => nodeSum(slot)?.active ?? 0,
      inactive: (slot: number) => nodeSum(slot)?.inactive ?? 0,
    };
  }

  /** Worker threads (started or to be started). */
  get size(): number {
    return this.opts.workers;
  }

  /** Starts the workers; resolves when every one has its queue and socket open. */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.opts.workers; i++) {
      const init: WorkerInit = {
        index: i,
        tun: this.opts.tun,
        config: this.opts.config,
        scheduler: this.scheduler,
        nodes: this.nodes.list().map(nodeSync),
      };
      const worker = new Worker(WORKER_MAIN, { workerData: init });
      let onReady: () => void = () => {};
      let onFail: (err: Error) => void = () => {};
      const isReady = new Promise<void>((resolve, reject) => {
        onReady = resolve;
        onFail = reject;
      });
      const slot: WorkerSlot = {
        worker,
        snapshot: undefined,
        exited: new Promise((resolve) => worker.once("exit", () => resolve())),
      };
      this.slots.push(slot);
      worker.on("message", (m: WorkerMessage) => {
        if (m.type === "ready") onReady();
        else if (m.type === "stats") {
          slot.snapshot = m.snapshot;
          this.refresh();
        } else {
          const err = new Error(`data-path worker ${i}: ${m.message}`);
          onFail(err);
          this.fatal(err);
        }
      });
      worker.on("error", (e: Error) => {
        const err = new Error(`data-path worker ${i} failed: ${e.message}`, { cause: e });
        onFail(err);
        this.fatal(err);
      });
      worker.on("exit", (code) => {
        const err = new Error(`data-path worker ${i} exited (${code})`);
        onFail(err);
        if (!this.stopping) this.fatal(err);
      });
      ready.push(isReady);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`data-path workers not ready within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([Promise.all(ready), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every worker (each writes what it has queued and closes its queue and socket). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const s of this.slots) s.worker.postMessage({ op: "stop" } satisfies WorkerCommand);
    await Promise.all(
      this.slots.map(async (s) => {
        const timer = setTimeout(() => void s.worker.terminate(), STOP_TIMEOUT_MS);
        await s.exited;
        clearTimeout(timer);
      }),
    );
  }

  get schedulerName(): SchedulerName {
    return this.scheduler;
  }

  get packetsIn(): number {
    return this.sum.packetsIn;
  }
  get bytesIn(): number {
    return this.sum.bytesIn;
  }
  get packetsOut(): number {
    return this.sum.packetsOut;
  }
  get bytesOut(): number {
    return this.sum.bytesOut;
  }
  get connectionsScheduled(): number {
    return this.sum.connectionsScheduled;
  }
  get connectionsRecovered(): number {
    return this.sum.connectionsRecovered;
  }
  /** No handover file with worker threads (--state-file needs --workers 1). */
  readonly connectionsAdopted = 0;
  readonly displaced = { size: 0 };
  get rstsSent(): number {
    return this.sum.rstsSent;
  }
  get ticklesSent(): number {
    return this.sum.ticklesSent;
  }
  get downForwarded(): number {
    return this.sum.downForwarded;
  }

  dropCount(reason: DropReason): number {
    return this.sum.drops[DROP_REASONS.indexOf(reason)] ?? 0;
  }

  setScheduler(name: SchedulerName): void {
    if (!isSchedulerName(name)) throw new RangeError(`unknown scheduler '${String(name)}'`);
    this.scheduler = name;
    this.broadcast({ op: "scheduler", name });
  }

  upsertNode(spec: NodeSpec): { node: Node; created: boolean } {
    const r = this.nodes.upsert(spec);
    this.broadcast({ op: "upsert", spec: specOf(r.node) });
    this.refresh();
    return r;
  }

  removeNode(id: string): boolean {
    const r = this.nodes.remove(id);
    if (r) this.broadcast({ op: "remove", id });
    this.reap();
    return r;
  }

  setHealth(id: string, state: NodeHealthState, now: number): boolean {
    const r = this.nodes.setHealth(id, state, now);
    if (this.nodes.get(id))
      this.broadcast({ op: "health", id, state, atEpoch: performance.timeOrigin + now });
    return r;
  }

  /** Periodic housekeeping (the workers expire their own tables): forget drained nodes. */
  tick(): void {
    this.reap();
  }

  /** The workers' latest snapshots (undefined: none yet), for per-worker figures. */
  snapshots(): (WorkerSnapshot | undefined)[] {
    return this.slots.map((s) => s.snapshot);
  }

  private broadcast(cmd: WorkerCommand): void {
    for (const s of this.slots) s.worker.postMessage(cmd);
  }

  private fatal(err: Error): void {
    if (this.stopping) return;
    this.opts.onFatal(err);
  }

  /** Recomputes the sums and copies the per-node ones onto this pool's nodes (for the views). */
  private refresh(): void {
    const snaps = this.slots.flatMap((s) => (s.snapshot ? [s.snapshot] : []));
    this.sum = Aggregate.of(snaps);
    for (const n of this.nodes.list()) {
      const c = this.sum.nodes.get(n.id);
      n.packets = c?.packets ?? 0;
      n.bytes = c?.bytes ?? 0;
      n.scheduled = c?.scheduled ?? 0;
      n.rsts = c?.rsts ?? 0;
      n.downForwarded = c?.downForwarded ?? 0;
    }
  }

  private reap(): void {
    this.nodes.reap((slot) => {
      const n = this.nodes.bySlot(slot);
      const c = n ? this.sum.nodes.get(n.id) : undefined;
      return c ? c.active + c.inactive : 0;
    });
  }
}

function specOf(n: Node): NodeSpec {
  return {
    id: n.id,
    addr: n.addr,
    port: n.port,
    weight: n.weight,
    ...(n.admin !== undefined ? { admin: n.admin } : {}),
  };
}

function nodeSync(n: Node): NodeSync {
  return {
    spec: specOf(n),
    checked: n.checked,
    healthy: n.healthy,
    gone: n.gone,
    removed: n.removed,
    downSinceEpoch: Number.isFinite(n.downSince) ? performance.timeOrigin + n.downSince : n.downSince,
  };
}
