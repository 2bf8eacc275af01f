// The dispatcher's control plane: membership, weights, scheduler, health results, and the
// JSON views the admin API serves. Transport-agnostic: it drives a Forwarder whatever its
// packets are read from and written to (service.ts wires the TUN device and sockets), or the
// forwarders of the data-path worker threads (workers.ts, --workers N), so the admin API is
// tested without devices.
import { GUE_PORT, ipv4FromString, ipv4ToString, isWireError } from "../sc/wire/index.js";
import { CONN_STATE_NAMES, type ConnState } from "./conn-table.js";
import { DROP_REASONS, type DropReason, type ForwarderModel } from "./forwarder.js";
import { HealthChecker, type HealthMonitor, type HealthOptions, type NodeHealth } from "./health.js";
import { HealthWorker } from "./health-worker.js";
import {
  MAX_WEIGHT,
  NodeSpecError,
  checkAdminUrl,
  checkNodeId,
  type Node,
  type NodeHealthState,
  type NodeSpec,
} from "./nodes.js";
import { isSchedulerName, SCHEDULER_NAMES, type SchedulerName } from "./schedulers.js";

/** A node as the admin API shows it. */
export interface NodeView {
  id: string;
  addr: string;
  port: number;
  weight: number;
  admin: string | null;
  /** Health-check result (always true without an admin URL). */
  healthy: boolean;
  /**
   * up; down (no new connections, established ones still forwarded until the grace ends);
   * gone (admin port refuses: its connections are reset).
   */
  state: NodeHealthState;
  /** ms it has been down (null while up). */
  downForMs: number | null;
  /** Deleted through the API; still forwarding its existing connections. */
  draining: boolean;
  /** Takes new connections: healthy, not draining, weight > 0. */
  eligible: boolean;
  connections: { active: number; inactive: number };
  /** New connections scheduled to it since it was added. */
  scheduled: number;
  packets: number;
  bytes: number;
  /** RSTs sent to its clients: removed while down, gone, or down past the grace. */
  rsts: number;
  /** Packets of its existing connections forwarded while it was down. */
  downForwarded: number;
  health: NodeHealth | null;
}

/** Body of PUT /nodes/:id. Omitted fields keep their value (addr is required for a new node). */
export interface NodeUpdate {
  addr?: string;
  port?: number;
  weight?: number;
  /** Base URL of the node's control API; null removes health checking. */
  admin?: string | null;
}

export interface DispatcherStats {
  vip: string;
  port: number;
  scheduler: SchedulerName;
  encap: string;
  uptimeSeconds: number;
  packets: { received: number; bytesReceived: number; forwarded: number; bytesForwarded: number };
  /** Of packets.forwarded: to nodes that were down (their established connections, within the grace). */
  forwardedToDownNodes: number;
  /** ms a down node keeps its established connections before they are reset. */
  deadGraceMs: number;
  drops: Record<DropReason, number>;
  rstsSent: number;
  /** Connections of lost nodes prompted to answer, so that the answer gets a RST (forwarder.ts). */
  ticklesSent: number;
  connections: {
    entries: number;
    capacity: number;
    /** Unconfirmed entries (no payload from the client yet), SYN_RECV included. */
    halfOpen: number;
    maxHalfOpen: number;
    underSynLoad: boolean;
    /** Entries the client confirmed by sending payload. */
    confirmed: number;
    byState: Record<(typeof CONN_STATE_NAMES)[number], number>;
    scheduled: number;
    recovered: number;
    /** Taken over from the previous dispatcher's state file (--state-file). */
    adopted: number;
    /** Opened while a node was out, placed off the hash: kept in the state file. */
    displaced: number;
    expired: number;
    evicted: { halfOpen: number; tableFull: number };
    /** New connections refused: the table was full of confirmed ones. */
    refusedFull: number;
  };
  nodes: NodeView[];
  /** Transport counters added by the service (TUN device, UDP socket). */
  io: Record<string, unknown>;
}

export class ControlError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = "ControlError";
  }
}

export interface ControlOptions {
  /** Health-check settings; undefined: no checks (nodes with an admin URL stay as they are). */
  health?: HealthOptions;
  /**
   * Run the checks on a worker thread (health-worker.ts), away from the data path's event
   * loop; onError: the worker died. Default: on this thread.
   */
  healthWorker?: { onError: (err: Error) => void };
  /** Logs state changes (node up/down, membership). */
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Extra counters for /stats, e.g. the TUN device's. */
  ioStats?: () => Record<string, unknown>;
  /** Default GUE port for nodes added without one. */
  guePort?: number;
  /** The clock the forwarder's input() gets (ms); health changes are stamped with it. */
  clock?: () => number;
}

export class DispatcherControl<F extends ForwarderModel = ForwarderModel> {
  readonly health: HealthMonitor | undefined;
  private readonly startedAt = performance.now();
  private readonly log: (message: string, fields?: Record<string, unknown>) => void;
  private readonly clock: () => number;

  constructor(
    readonly forwarder: F,
    private readonly opts: ControlOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.clock = opts.clock ?? (() => performance.now());
    if (opts.health) {
      const nodes = () => this.forwarder.nodes.list();
      const verdict = (id: string, state: NodeHealthState, reason: string) =>
        this.applyHealth(id, state, reason);
      this.health = opts.healthWorker
        ? new HealthWorker(opts.health, nodes, verdict, opts.healthWorker.onError)
        : new HealthChecker(opts.health, nodes, verdict);
    }
  }

  /** A health verdict (from the checker, wherever it runs). */
  applyHealth(id: string, state: NodeHealthState, reason: string): void {
    if (this.forwarder.setHealth(id, state, this.clock())) {
      this.log(`node ${state}`, { node: id, reason });
    }
  }

  start(): void {
    this.health?.start();
  }

  async stop(): Promise<void> {
    await this.health?.stop();
  }

  get scheduler(): SchedulerName {
    return this.forwarder.schedulerName;
  }

  setScheduler(name: string): void {
    if (!isSchedulerName(name)) {
      throw new ControlError(400, `unknown scheduler '${name}' (one of ${SCHEDULER_NAMES.join(", ")})`);
    }
    if (name !== this.forwarder.schedulerName) {
      this.forwarder.setScheduler(name);
      this.log("scheduler changed", { scheduler: name });
    }
  }

  nodes(): NodeView[] {
    return this.forwarder.nodes.list().map((n) => this.view(n));
  }

  node(id: string): NodeView {
    const n = this.forwarder.nodes.get(id);
    if (!n) throw new ControlError(404, `no node '${id}'`);
    return this.view(n);
  }

  /** Adds or changes a node; established connections stay where they are. */
  putNode(id: string, body: NodeUpdate): { node: NodeView; created: boolean } {
    try {
      checkNodeId(id);
    } catch (e) {
      throw new ControlError(400, (e as Error).message);
    }
    const existing = this.forwarder.nodes.get(id);
    if (!existing && body.addr === undefined) throw new ControlError(400, `new node '${id}' needs "addr"`);
    let addr = existing?.addr ?? 0;
    if (body.addr !== undefined) {
      const a = ipv4FromString(body.addr);
      if (isWireError(a)) throw new ControlError(400, `"addr" '${body.addr}' is not an IPv4 address`);
      addr = a;
    }
    const port = body.port ?? existing?.port ?? this.opts.guePort ?? GUE_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new ControlError(400, `"port" must be 1..65535`);
    const weight = body.weight ?? existing?.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) {
      throw new ControlError(400, `"weight" must be an integer 0..${MAX_WEIGHT}`);
    }
    let admin = existing?.admin;
    if (body.admin === null) admin = undefined;
    else if (body.admin !== undefined) admin = body.admin;
    if (admin !== undefined) {
      // Also when only the address changes: the admin URL must stay on the node's address.
      try {
        admin = checkAdminUrl(admin, addr);
      } catch (e) {
        throw new ControlError(400, (e as Error).message);
      }
    }
    const spec: NodeSpec = { id, addr, port, weight, ...(admin !== undefined ? { admin } : {}) };
    let r;
    try {
      r = this.forwarder.upsertNode(spec);
    } catch (e) {
      if (e instanceof NodeSpecError) throw new ControlError(409, e.message);
      throw e;
    }
    this.log(r.created ? "node added" : "node changed", {
      node: id,
      addr: ipv4ToString(addr),
      port,
      weight,
      admin: admin ?? null,
    });
    void this.health?.round();
    return { node: this.view(r.node), created: r.created };
  }

  /** Takes a node out of scheduling; it keeps its connections until they end. */
  deleteNode(id: string): NodeView | null {
    const n = this.forwarder.nodes.get(id);
    if (!n || n.removed) throw new ControlError(404, `no node '${id}'`);
    this.forwarder.removeNode(id);
    const still = this.forwarder.nodes.get(id);
    this.log(still ? "node draining" : "node removed", { node: id });
    return still ? this.view(still) : null;
  }

  stats(): DispatcherStats {
    const f = this.forwarder;
    const t = f.table;
    const drops = Object.fromEntries(DROP_REASONS.map((r) => [r, f.dropCount(r)])) as Record<
      DropReason,
      number
    >;
    const byState = Object.fromEntries(
      CONN_STATE_NAMES.map((name, s) => [name, t.countInState(s as ConnState)]),
    ) as DispatcherStats["connections"]["byState"];
    return {
      vip: ipv4ToString(f.vip),
      port: f.port,
      scheduler: f.schedulerName,
      encap: f.encap,
      uptimeSeconds: (performance.now() - this.startedAt) / 1000,
      packets: {
        received: f.packetsIn,
        bytesReceived: f.bytesIn,
        forwarded: f.packetsOut,
        bytesForwarded: f.bytesOut,
      },
      forwardedToDownNodes: f.downForwarded,
      deadGraceMs: f.deadGraceMs,
      drops,
      rstsSent: f.rstsSent,
      ticklesSent: f.ticklesSent,
      connections: {
        entries: t.size,
        capacity: t.capacity,
        halfOpen: t.halfOpen,
        maxHalfOpen: t.maxHalfOpen,
        underSynLoad: t.underSynLoad,
        confirmed: t.confirmed,
        byState,
        scheduled: f.connectionsScheduled,
        recovered: f.connectionsRecovered,
        adopted: f.connectionsAdopted,
        displaced: f.displaced.size,
        expired: t.expired,
        evicted: { halfOpen: t.evictedHalfOpen, tableFull: t.evictedFull },
        refusedFull: t.refusedFull,
      },
      nodes: this.nodes(),
      io: this.opts.ioStats?.() ?? {},
    };
  }

  private view(n: Node): NodeView {
    const t = this.forwarder.table;
    return {
      id: n.id,
      addr: n.addrText,
      port: n.port,
      weight: n.weight,
      admin: n.admin ?? null,
      healthy: n.healthy,
      state: n.healthy ? "up" : n.gone ? "gone" : "down",
      downForMs: n.healthy || !Number.isFinite(n.downSince) ? null : Math.max(0, this.clock() - n.downSince),
      draining: n.removed,
      eligible: n.healthy && !n.removed && n.weight > 0,
      connections: { active: t.active(n.slot), inactive: t.inactive(n.slot) },
      scheduled: n.scheduled,
      packets: n.packets,
      bytes: n.bytes,
      rsts: n.rsts,
      downForwarded: n.downForwarded,
      health: this.health?.health(n.id) ?? null,
    };
  }
}
