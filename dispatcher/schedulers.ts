// Connection schedulers, named and behaving like their Linux IPVS namesakes. Each picks a
// node for a *new* connection only; the connection table keeps later packets on it, so
// rebuilding a scheduler (weights, membership, health) never moves an existing connection.
// Pure logic: no I/O, no clock.
import { hashEndpoint } from "./hash.js";
import { buildMaglevTable, maglevTableSize, MAGLEV_DEFAULT_TABLE_SIZE } from "./maglev.js";

export const SCHEDULER_NAMES = ["rr", "wrr", "lc", "wlc", "sh", "mh"] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** A node as schedulers see it: only nodes that may take new connections are passed. */
export interface SchedNode {
  /** Dispatcher node slot; what pick() returns. */
  slot: number;
  id: string;
  /** Positive integer. */
  weight: number;
}

/** Current connection counts per node slot, for the least-connection schedulers. */
export interface LoadView {
  /** Established connections. */
  active(slot: number): number;
  /** Connections in any other state (handshake, closing). */
  inactive(slot: number): number;
}

export interface Scheduler {
  readonly name: SchedulerName;
  /**
   * True when the choice depends only on the client endpoint and the node set (sh, mh): a
   * packet that has no table entry (after a dispatcher restart or an eviction) is then sent
   * where its connection most likely lives instead of being refused.
   */
  readonly consistent: boolean;
  /** Replaces the set of nodes eligible for new connections. */
  setNodes(nodes: readonly SchedNode[]): void;
  /** The node slot for a new connection from srcAddr:srcPort, or -1 when no node is eligible. */
  pick(srcAddr: number, srcPort: number): number;
}

/** Round robin (ipvs rr): every eligible node in turn, weights ignored. */
export class RoundRobin implements Scheduler {
  readonly name = "rr";
  readonly consistent = false;
  private nodes: readonly SchedNode[] = [];
  private lastSlot = -1;

  setNodes(nodes: readonly SchedNode[]): void {
    // Sorted by slot, so the rotation continues after the last node picked even when that
    // node has just left.
    this.nodes = [...nodes].sort((a, b) => a.slot - b.slot);
  }

  pick(): number {
    const nodes = this.nodes;
    if (nodes.length === 0) return -1;
    let i = 0;
    while (i < nodes.length && nodes[i]!.slot <= this.lastSlot) i++;
    const slot = nodes[i < nodes.length ? i : 0]!.slot;
    this.lastSlot = slot;
    return slot;
  }
}

/**
 * Smooth weighted round robin (nginx's algorithm; ipvs wrr gives the same shares): each
 * pick adds every node's weight to its credit, takes the node with the most credit and
 * charges it the total weight. Over any window of `sum(weights)` picks each node gets
 * exactly its weight, interleaved rather than in bursts.
 */
export class WeightedRoundRobin implements Scheduler {
  readonly name = "wrr";
  readonly consistent = false;
  private nodes: readonly SchedNode[] = [];
  private credit = new Map<number, number>();
  private total = 0;

  setNodes(nodes: readonly SchedNode[]): void {
    this.nodes = [...nodes];
    this.total = this.nodes.reduce((s, n) => s + n.weight, 0);
    const credit = new Map<number, number>();
    for (const n of this.nodes) credit.set(n.slot, 0);
    this.credit = credit;
  }

  pick(): number {
    let best: SchedNode | undefined;
    let bestCredit = -Infinity;
    for (const n of this.nodes) {
      const c = this.credit.get(n.slot)! + n.weight;
      this.credit.set(n.slot, c);
      if (c > bestCredit) {
        bestCredit = c;
        best = n;
      }
    }
    if (!best) return -1;
    this.credit.set(best.slot, bestCredit - this.total);
    return best.slot;
  }
}

/** ipvs's connection "overhead": an established connection costs 256 handshaking/closing ones. */
function overhead(load: LoadView, slot: number): number {
  return load.active(slot) * 256 + load.inactive(slot);
}

/**
 * Least connections (ipvs lc) and weighted least connections (ipvs wlc: least
 * overhead/weight). Ties go to the node after the previous pick, so equal nodes take turns.
 */
class LeastConnections implements Scheduler {
  readonly consistent = false;
  private nodes: readonly SchedNode[] = [];
  private start = 0;

  constructor(
    readonly name: "lc" | "wlc",
    private readonly load: LoadView,
  ) {}

  setNodes(nodes: readonly SchedNode[]): void {
    this.nodes = [...nodes];
    this.start = 0;
  }

  pick(): number {
    const n = this.nodes.length;
    if (n === 0) return -1;
    const weighted = this.name === "wlc";
    let best = -1;
    let bestLoad = 0;
    let bestWeight = 1;
    for (let k = 0; k < n; k++) {
      const i = (this.start + k) % n;
      const node = this.nodes[i]!;
      const o = overhead(this.load, node.slot);
      const w = weighted ? node.weight : 1;
      // o/w < bestLoad/bestWeight without division.
      if (best < 0 || o * bestWeight < bestLoad * w) {
        best = i;
        bestLoad = o;
        bestWeight = w;
      }
    }
    this.start = (best + 1) % n;
    return this.nodes[best]!.slot;
  }
}

export class LeastConn extends LeastConnections {
  constructor(load: LoadView) {
    super("lc", load);
  }
}

export class WeightedLeastConn extends LeastConnections {
  constructor(load: LoadView) {
    super("wlc", load);
  }
}

/**
 * Source hashing (ipvs sh): a fixed table of buckets dealt out to the nodes in turn, each
 * node taking `weight` consecutive buckets per turn; the client *address* picks the bucket,
 * so one client always lands on one node while the node set is unchanged. Not consistent
 * across changes (use mh for that).
 */
export class SourceHash implements Scheduler {
  readonly name = "sh";
  readonly consistent = true;
  private table: Int32Array;

  constructor(readonly buckets = 256) {
    this.table = new Int32Array(buckets).fill(-1);
  }

  setNodes(nodes: readonly SchedNode[]): void {
    const table = new Int32Array(this.buckets).fill(-1);
    if (nodes.length > 0) {
      let i = 0;
      let taken = 0;
      for (let b = 0; b < this.buckets; b++) {
        table[b] = nodes[i]!.slot;
        if (++taken >= nodes[i]!.weight) {
          i = (i + 1) % nodes.length;
          taken = 0;
        }
      }
    }
    this.table = table;
  }

  pick(srcAddr: number, _srcPort?: number): number {
    return this.table[hashEndpoint(srcAddr, 0) % this.buckets]!;
  }
}

/**
 * Maglev consistent hashing (ipvs mh with its mh-port flag, and Katran): the client address
 * *and port* pick a slot of a prime-sized lookup table, so connections from one client
 * spread over the nodes, and a membership change remaps only about the share of the nodes
 * that changed.
 */
export class MaglevHash implements Scheduler {
  readonly name = "mh";
  readonly consistent = true;
  private table: Int32Array;

  constructor(readonly minTableSize = MAGLEV_DEFAULT_TABLE_SIZE) {
    this.table = new Int32Array(maglevTableSize(0, minTableSize)).fill(-1);
  }

  get tableSize(): number {
    return this.table.length;
  }

  setNodes(nodes: readonly SchedNode[]): void {
    const size = maglevTableSize(nodes.length, this.minTableSize);
    this.table = buildMaglevTable(
      nodes.map((n) => ({ value: n.slot, id: n.id, weight: n.weight })),
      size,
    );
  }

  pick(srcAddr: number, srcPort: number): number {
    return this.table[hashEndpoint(srcAddr, srcPort) % this.table.length]!;
  }
}

export interface SchedulerOptions {
  /** Minimum Maglev table size (rounded up to a prime > 100 x nodes). */
  maglevTableSize?: number;
  /** Source-hash bucket count. */
  shBuckets?: number;
}

export function isSchedulerName(s: string): s is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(s);
}

export function createScheduler(name: SchedulerName, load: LoadView, opts: SchedulerOptions = {}): Scheduler {
  switch (name) {
    case "rr":
      return new RoundRobin();
    case "wrr":
      return new WeightedRoundRobin();
    case "lc":
      return new LeastConn(load);
    case "wlc":
      return new WeightedLeastConn(load);
    case "sh":
      return new SourceHash(opts.shBuckets);
    case "mh":
      return new MaglevHash(opts.maglevTableSize);
  }
}
