// The dispatcher's control plane: membership, weights, scheduler, health results, and the
// JSON views the admin API serves. Transport-agnostic: it drives a Forwarder whatever its
// packets are read from and written to (service.ts wires the TUN device and sockets), so
// the admin API is tested without devices.
import { GUE_PORT, ipv4FromString, ipv4ToString, isWireError } from "../sc/wire/index.js";
import { CONN_STATE_NAMES, type ConnState } from "./conn-table.js";
import { DROP_REASONS, type DropReason, type Forwarder } from "./forwarder.js";
import { HealthChecker, type HealthOptions, type NodeHealth } from "./health.js";
import { MAX_WEIGHT, NodeSpecError, checkAdminUrl, checkNodeId, type Node, type NodeSpec } from "./nodes.js";
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
  /** Deleted through the API; still forwarding its existing connections. */
  draining: boolean;
  /** Takes new connections: healthy, not draining, weight > 0. */
  eligible: boolean;
  connections: { active: number; inactive: number };
  /** New connections scheduled to it since it was added. */
  scheduled: number;
  packets: number;
  bytes: number;
  /** RSTs sent to its clients while it was down. */
  rsts: number;
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
  drops: Record<DropReason, number>;
  rstsSent: number;
  connections: {
    entries: number;
    capacity: number;
    halfOpen: number;
    maxHalfOpen: number;
    underSynLoad: boolean;
    byState: Record<(typeof CONN_STATE_NAMES)[number], number>;
    scheduled: number;
    recovered: number;
    expired: number;
    evicted: { halfOpen: number; tableFull: number };
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
  /** Logs state changes (node up/down, membership). */
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Extra counters for /stats, e.g. the TUN device's. */
  ioStats?: () => Record<string, unknown>;
  /** Default GUE port for nodes added without one. */
  guePort?: number;
}

export class DispatcherControl {
  readonly health: HealthChecker | undefined;
  private readonly startedAt = performance.now();
  private readonly log: (message: string, fields?: Record<string, unknown>) => void;

  constructor(
    readonly forwarder: Forwarder,
    private readonly opts: ControlOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    if (opts.health) {
      this.health = new HealthChecker(
        opts.health,
        () => this.forwarder.nodes.list(),
        (id, healthy, reason) => {
          if (this.forwarder.setHealthy(id, healthy)) {
            this.log(healthy ? "node up" : "node down", { node: id, reason });
          }
        },
      );
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
    else if (body.admin !== undefined) {
      try {
        admin = checkAdminUrl(body.admin);
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
      drops,
      rstsSent: f.rstsSent,
      connections: {
        entries: t.size,
        capacity: t.capacity,
        halfOpen: t.halfOpen,
        maxHalfOpen: t.maxHalfOpen,
        underSynLoad: t.underSynLoad,
        byState,
        scheduled: f.connectionsScheduled,
        recovered: f.connectionsRecovered,
        expired: t.expired,
        evicted: { halfOpen: t.evictedHalfOpen, tableFull: t.evictedFull.reduce((a, b) => a + b, 0) },
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
      draining: n.removed,
      eligible: n.healthy && !n.removed && n.weight > 0,
      connections: { active: t.active(n.slot), inactive: t.inactive(n.slot) },
      scheduled: n.scheduled,
      packets: n.packets,
      bytes: n.bytes,
      rsts: n.rsts,
      health: this.health?.health(n.id) ?? null,
    };
  }
}
