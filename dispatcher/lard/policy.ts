// Locality-Aware Request Distribution (Pai et al., ASPLOS'98, section 2): which back-end a
// request's target goes to. Pure: no I/O, time is a parameter.
//
// Basic LARD maps each target to one node, chosen as the least loaded one the first time, and
// keeps it there (its cache holds the document) unless that node is overloaded: its load is
// above T_high while some node is below T_low, or it is at 2 x T_high. Then the target moves to
// the least loaded node. LARD/R keeps a *set* of nodes per target: a request goes to the least
// loaded member; when that one is overloaded the least loaded node of the cluster joins the set
// (a hot document is replicated), and a set unchanged for K ms loses its most loaded member
// (replication follows demand down again).
//
// Load is the number of connections a node serves now (handed to it and not yet released), as
// the front-end counts them; the paper's bound on the whole cluster, S = (n - 1) x T_high +
// T_low - 1 connections, is `admissionLimit()`: beyond it the front-end should hold or refuse
// new connections instead of overloading every node.

export interface LardOptions {
  /** Below this load a node counts as underloaded (paper: 25). */
  tLow: number;
  /** Above this load a node counts as loaded; at twice it, overloaded (paper: 65). */
  tHigh: number;
  /** LARD/R: a target's node set may grow (hot documents on several nodes). */
  replication: boolean;
  /** LARD/R: a set unchanged this long loses its most loaded member (paper: K = 20 s). */
  shrinkAfterMs: number;
  /** Targets remembered at most (least recently used forgotten first): bounds memory. */
  maxTargets: number;
}

export const LARD_DEFAULTS: LardOptions = {
  tLow: 25,
  tHigh: 65,
  replication: true,
  shrinkAfterMs: 20_000,
  maxTargets: 100_000,
};

/** Why a request went where it went (the front-end counts these). */
export type LardReason =
  /** The target had no node (new, forgotten, or its nodes left): least loaded node. */
  | "first"
  /** The target's node (or its set's least loaded member) took it. */
  | "local"
  /** Its node was overloaded: the target moved to the least loaded node (basic LARD). */
  | "moved"
  /** Its set's members were overloaded: the least loaded node joined the set (LARD/R). */
  | "replicated"
  /** Its node refused the handoff (busy): the least loaded other node took it (and the target). */
  | "elsewhere";

export interface LardChoice {
  node: string;
  reason: LardReason;
}

interface TargetEntry {
  /** Nodes holding the target, at least one. */
  nodes: string[];
  /** When the set last changed (LARD/R shrinking). */
  changedAt: number;
}

export class LardPolicy {
  private readonly opts: LardOptions;
  /** Node id -> connections it serves now. Insertion order is the tie-break order. */
  private readonly loads = new Map<string, number>();
  /** Target -> its node(s); a Map keeps use order for the LRU bound. */
  private readonly targets = new Map<string, TargetEntry>();

  constructor(nodes: readonly string[], opts: Partial<LardOptions> = {}) {
    this.opts = { ...LARD_DEFAULTS, ...opts };
    const { tLow, tHigh, maxTargets, shrinkAfterMs } = this.opts;
    if (!(Number.isInteger(tLow) && tLow >= 0 && Number.isInteger(tHigh) && tHigh > tLow))
      throw new RangeError(`LARD needs whole thresholds 0 <= T_low < T_high, got ${tLow}, ${tHigh}`);
    if (!(Number.isInteger(maxTargets) && maxTargets > 0)) throw new RangeError("maxTargets must be > 0");
    if (!(shrinkAfterMs > 0)) throw new RangeError("shrinkAfterMs must be > 0");
    for (const n of nodes) this.addNode(n);
  }

  get options(): Readonly<LardOptions> {
    return this.opts;
  }

  /**
   * A node may take requests (joined, or healthy again). Its load starts at `load`: the
   * connections it still serves from before it left (0 for a node that joins).
   */
  addNode(id: string, load = 0): void {
    if (!this.loads.has(id)) this.loads.set(id, load);
  }

  /** A node takes no more requests: it leaves every target's set (its connections are gone). */
  removeNode(id: string): void {
    if (!this.loads.delete(id)) return;
    for (const [t, e] of this.targets) {
      const i = e.nodes.indexOf(id);
      if (i < 0) continue;
      e.nodes.splice(i, 1);
      if (e.nodes.length === 0) this.targets.delete(t);
    }
  }

  nodes(): string[] {
    return [...this.loads.keys()];
  }

  load(id: string): number {
    return this.loads.get(id) ?? 0;
  }

  /** Connections the cluster takes before the front-end should hold new ones (paper: S). */
  admissionLimit(): number {
    const n = this.loads.size;
    return n === 0 ? 0 : (n - 1) * this.opts.tHigh + this.opts.tLow - 1;
  }

  /** Connections all nodes serve now. */
  totalLoad(): number {
    let s = 0;
    for (const l of this.loads.values()) s += l;
    return s;
  }

  /** The nodes holding `target` now (for tests and /stats). */
  holders(target: string): readonly string[] {
    return this.targets.get(target)?.nodes ?? [];
  }

  get targetCount(): number {
    return this.targets.size;
  }

  /**
   * Chooses the node for a request of `target` at `now` and counts one more connection on
   * it (release() takes it back). Null when no node is there.
   */
  assign(target: string, now: number): LardChoice | null {
    const choice = this.choose(target, now);
    if (choice !== null) this.loads.set(choice.node, this.load(choice.node) + 1);
    return choice;
  }

  /**
   * The node chosen for `target` refused it (busy): the least loaded node not in `exclude`
   * takes it and the target with it (the refusing nodes leave the target's set, the new one
   * joins it), counted one more connection. Null when every node is excluded.
   */
  assignElsewhere(target: string, exclude: readonly string[], now: number): LardChoice | null {
    const n = this.leastLoaded([...this.loads.keys()].filter((id) => !exclude.includes(id)));
    if (n === undefined) return null;
    const e = this.targets.get(target);
    if (e === undefined) this.remember(target, { nodes: [n], changedAt: now });
    else {
      e.nodes = e.nodes.filter((id) => !exclude.includes(id) && id !== n);
      e.nodes.push(n);
      e.changedAt = now;
    }
    this.loads.set(n, this.load(n) + 1);
    return { node: n, reason: "elsewhere" };
  }

  /** A connection `assign` counted on `node` ended or moved on. */
  release(node: string): void {
    const l = this.loads.get(node);
    if (l !== undefined && l > 0) this.loads.set(node, l - 1);
  }

  private choose(target: string, now: number): LardChoice | null {
    const least = this.leastLoaded(this.loads.keys());
    if (least === undefined) return null;
    const e = this.targets.get(target);
    if (e === undefined) {
      this.remember(target, { nodes: [least], changedAt: now });
      return { node: least, reason: "first" };
    }
    // Most recently used last: the LRU bound forgets the target unused longest.
    this.targets.delete(target);
    this.targets.set(target, e);
    if (!this.opts.replication) {
      const n = e.nodes[0]!;
      if (!this.overloaded(this.load(n))) return { node: n, reason: "local" };
      e.nodes[0] = least;
      e.changedAt = now;
      return { node: least, reason: least === n ? "local" : "moved" };
    }
    let n = this.leastLoaded(e.nodes)!;
    let reason: LardReason = "local";
    if (this.overloaded(this.load(n)) && !e.nodes.includes(least)) {
      e.nodes.push(least);
      e.changedAt = now;
      n = least;
      reason = "replicated";
    }
    if (e.nodes.length > 1 && now - e.changedAt > this.opts.shrinkAfterMs) {
      const m = this.mostLoaded(e.nodes)!;
      // The member just chosen stays: shrink by the most loaded one of the others.
      const drop = m !== n ? m : this.mostLoaded(e.nodes.filter((x) => x !== n))!;
      e.nodes.splice(e.nodes.indexOf(drop), 1);
      e.changedAt = now;
    }
    return { node: n, reason };
  }

  /** The paper's test: above T_high while some node is below T_low, or at 2 x T_high. */
  private overloaded(load: number): boolean {
    const { tLow, tHigh } = this.opts;
    if (load >= 2 * tHigh) return true;
    if (load <= tHigh) return false;
    for (const l of this.loads.values()) if (l < tLow) return true;
    return false;
  }

  private leastLoaded(ids: Iterable<string>): string | undefined {
    let best: string | undefined;
    let bestLoad = Infinity;
    for (const id of ids) {
      const l = this.load(id);
      if (l < bestLoad) {
        best = id;
        bestLoad = l;
      }
    }
    return best;
  }

  private mostLoaded(ids: Iterable<string>): string | undefined {
    let best: string | undefined;
    let bestLoad = -1;
    for (const id of ids) {
      const l = this.load(id);
      if (l > bestLoad) {
        best = id;
        bestLoad = l;
      }
    }
    return best;
  }

  private remember(target: string, e: TargetEntry): void {
    if (this.targets.size >= this.opts.maxTargets) {
      const oldest = this.targets.keys().next();
      if (oldest.done !== true) this.targets.delete(oldest.value);
    }
    this.targets.set(target, e);
  }
}
