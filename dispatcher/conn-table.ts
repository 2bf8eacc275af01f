// The dispatcher's connection table: TCP 4-tuple -> node slot, with the connection state
// the dispatcher infers from the client's packets (it never sees the server's, direct
// return) and a timeout per state.
//
// Memory is fixed at construction: parallel typed arrays indexed by entry number, a
// chained hash index, and one doubly linked list per queue kept in last-seen order. A
// packet moves its entry to the tail of its queue, so expiry only ever looks at queue heads:
// O(expired) work, no timer per entry.
//
// Confirmation: the client's flags cost a blind spoofer nothing (a SYN and an ACK for the
// same made-up 4-tuple look exactly like a handshake from here), so an entry stays
// *unconfirmed* until the client sends payload on it after its first packet (an HTTP client
// always sends its request). Unconfirmed entries, whatever their state, share one queue with
// the half-open budget and the short SYN timeout; only confirmed connections get the long
// timeouts. A full table makes room by evicting finished (CLOSE, TIME_WAIT) and unconfirmed
// entries only: a confirmed connection is never evicted for a new, unconfirmed one (the new
// one is refused instead). Pure logic: time is a parameter (ms).
import { TCP_ACK as ACK, TCP_FIN as FIN, TCP_RST as RST, TCP_SYN as SYN } from "../sc/wire/tcp.js";
import { hashTuple } from "./hash.js";

/** Connection states, from the flags seen in the client -> server direction only. */
export const ConnState = {
  /** SYN seen, handshake not completed (half-open). */
  SynRecv: 0,
  Established: 1,
  /** The client sent FIN. */
  FinWait: 2,
  /** The client acknowledged something after its FIN (normally the server's FIN). */
  TimeWait: 3,
  /** RST seen. */
  Close: 4,
} as const;
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

export const CONN_STATE_NAMES = ["syn_recv", "established", "fin_wait", "time_wait", "close"] as const;
const NSTATES = 5;
const FREE = 255;

/**
 * The lists entries wait on for expiry and eviction: confirmed entries by state, every
 * unconfirmed one (but a reset one) on Unconfirmed, which SYN_RECV entries always are.
 */
const Queue = { Unconfirmed: 0, Established: 1, FinWait: 2, TimeWait: 3, Close: 4 } as const;
type Queue = (typeof Queue)[keyof typeof Queue];
const NQUEUES = 5;

function queueOf(state: ConnState, confirmed: boolean): Queue {
  if (state === ConnState.Close) return Queue.Close;
  if (!confirmed || state === ConnState.SynRecv) return Queue.Unconfirmed;
  return state; // Established, FinWait, TimeWait share their numbers with their queues
}

/** Timeouts in milliseconds. */
export interface ConnTimeouts {
  /** Unconfirmed entries: SYN_RECV, and any other state before the client sent payload. */
  synRecv: number;
  /** The unconfirmed timeout while they use more than half the half-open budget. */
  synRecvUnderLoad: number;
  established: number;
  finWait: number;
  timeWait: number;
  close: number;
}

/** IPVS's defaults (ipvsadm --set 900 120 300 covers established / fin / udp). */
export const DEFAULT_TIMEOUTS: Readonly<ConnTimeouts> = {
  synRecv: 60_000,
  synRecvUnderLoad: 5_000,
  established: 900_000,
  finWait: 120_000,
  timeWait: 120_000,
  close: 10_000,
};

/**
 * State after a client packet with TCP `flags` (RST > SYN > FIN > ACK, as IPVS ranks
 * them). `state` is the current state, or -1 for a packet that creates the entry. A SYN on
 * a closing or closed entry is a new connection on a reused port; callers check
 * `isReusable` first and reschedule it.
 */
export function nextState(state: ConnState | -1, flags: number): ConnState {
  if (flags & RST) return ConnState.Close;
  if (flags & SYN)
    return state === -1 ? ConnState.SynRecv : state === ConnState.Established ? state : ConnState.SynRecv;
  if (flags & FIN) {
    return state === ConnState.TimeWait || state === ConnState.Close ? state : ConnState.FinWait;
  }
  if (flags & ACK) {
    switch (state) {
      case -1:
      case ConnState.SynRecv:
        return ConnState.Established;
      case ConnState.FinWait:
        return ConnState.TimeWait;
      default:
        return state;
    }
  }
  return state === -1 ? ConnState.Close : state;
}

/** Entries in these states give way to a new SYN from the same client port (IPVS conn_reuse_mode). */
export function isReusable(state: ConnState): boolean {
  return state === ConnState.FinWait || state === ConnState.TimeWait || state === ConnState.Close;
}

export interface ConnTableOptions {
  /** Maximum number of entries. */
  capacity: number;
  /** Maximum number of unconfirmed entries, SYN_RECV included (default capacity / 8). */
  maxHalfOpen?: number;
  timeouts?: Partial<ConnTimeouts>;
  /** Node slots are 0 .. nodeSlots-1 (sizes the per-node counters). */
  nodeSlots: number;
}

/**
 * Queues a full table takes room from for a new (always unconfirmed) entry, least valuable
 * first: finished connections, then unconfirmed ones. Never FIN_WAIT or ESTABLISHED ones the
 * client confirmed.
 */
const EVICTION_ORDER: readonly Queue[] = [Queue.Close, Queue.TimeWait, Queue.Unconfirmed];

export class ConnTable {
  readonly capacity: number;
  readonly maxHalfOpen: number;
  readonly timeouts: ConnTimeouts;

  /** Entries removed by expiry. */
  expired = 0;
  /** Entries evicted because the half-open (unconfirmed) budget was used up. */
  evictedHalfOpen = 0;
  /** Entries evicted because the table was full. */
  evictedFull = 0;
  /** New entries refused: the table was full of confirmed connections. */
  refusedFull = 0;

  private readonly srcAddr: Uint32Array;
  private readonly dstAddr: Uint32Array;
  private readonly ports: Uint32Array;
  private readonly nodeOf: Int32Array;
  private readonly stateOf: Uint8Array;
  /** 1 once the client sent payload on the entry after its first packet. */
  private readonly confirmedOf: Uint8Array;
  private readonly lastSeen: Float64Array;
  /** Hash chain link, or free-list link for free entries. */
  private readonly chain: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly buckets: Int32Array;
  private readonly bucketMask: number;
  /** Queue lists (expiry and eviction order). */
  private readonly head = new Int32Array(NQUEUES).fill(-1);
  private readonly tail = new Int32Array(NQUEUES).fill(-1);
  private readonly inQueue = new Int32Array(NQUEUES);
  private readonly inState = new Int32Array(NSTATES);
  private readonly activeByNode: Int32Array;
  private readonly inactiveByNode: Int32Array;
  private freeHead: number;
  private count = 0;
  private confirmedCount = 0;

  constructor(opts: ConnTableOptions) {
    const cap = opts.capacity;
    if (!Number.isInteger(cap) || cap < 1)
      throw new RangeError(`capacity must be a positive integer, got ${cap}`);
    this.capacity = cap;
    this.maxHalfOpen = Math.max(1, Math.min(cap, opts.maxHalfOpen ?? Math.ceil(cap / 8)));
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.srcAddr = new Uint32Array(cap);
    this.dstAddr = new Uint32Array(cap);
    this.ports = new Uint32Array(cap);
    this.nodeOf = new Int32Array(cap);
    this.stateOf = new Uint8Array(cap).fill(FREE);
    this.confirmedOf = new Uint8Array(cap);
    this.lastSeen = new Float64Array(cap);
    this.chain = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.chain[i] = i + 1 < cap ? i + 1 : -1;
    this.freeHead = 0;
    let nb = 1;
    while (nb < cap) nb *= 2;
    this.buckets = new Int32Array(nb).fill(-1);
    this.bucketMask = nb - 1;
    this.activeByNode = new Int32Array(opts.nodeSlots);
    this.inactiveByNode = new Int32Array(opts.nodeSlots);
  }

  get size(): number {
    return this.count;
  }

  /** Unconfirmed entries (SYN_RECV, and the others the client has sent no payload on yet). */
  get halfOpen(): number {
    return this.inQueue[Queue.Unconfirmed]!;
  }

  /** True while unconfirmed entries use more than half their budget; they then time out sooner. */
  get underSynLoad(): boolean {
    return this.inQueue[Queue.Unconfirmed]! * 2 > this.maxHalfOpen;
  }

  /** Entries the client confirmed by sending payload. */
  get confirmed(): number {
    return this.confirmedCount;
  }

  countInState(state: ConnState): number {
    return this.inState[state]!;
  }

  /** Established connections on a node. */
  active(slot: number): number {
    return this.activeByNode[slot]!;
  }

  /** Connections on a node in any other state. */
  inactive(slot: number): number {
    return this.inactiveByNode[slot]!;
  }

  connections(slot: number): number {
    return this.activeByNode[slot]! + this.inactiveByNode[slot]!;
  }

  /** Idle timeout of a confirmed entry in `state`; SYN_RECV: that of unconfirmed entries. */
  timeoutOf(state: ConnState): number {
    const t = this.timeouts;
    switch (state) {
      case ConnState.SynRecv:
        return this.underSynLoad ? Math.min(t.synRecv, t.synRecvUnderLoad) : t.synRecv;
      case ConnState.Established:
        return t.established;
      case ConnState.FinWait:
        return t.finWait;
      case ConnState.TimeWait:
        return t.timeWait;
      case ConnState.Close:
        return t.close;
    }
  }

  private queueTimeout(q: Queue): number {
    return this.timeoutOf(q === Queue.Unconfirmed ? ConnState.SynRecv : q);
  }

  /** The entry for a 4-tuple, or -1. */
  lookup(srcAddr: number, srcPort: number, dstAddr: number, dstPort: number): number {
    const ports = ((srcPort << 16) | dstPort) >>> 0;
    for (
      let i = this.buckets[hashTuple(srcAddr, srcPort, dstAddr, dstPort) & this.bucketMask]!;
      i >= 0;
      i = this.chain[i]!
    ) {
      if (this.srcAddr[i] === srcAddr && this.ports[i] === ports && this.dstAddr[i] === dstAddr) return i;
    }
    return -1;
  }

  node(entry: number): number {
    return this.nodeOf[entry]!;
  }

  state(entry: number): ConnState {
    return this.stateOf[entry] as ConnState;
  }

  /** Whether the client has sent payload on the entry (after the packet that created it). */
  isConfirmed(entry: number): boolean {
    return this.confirmedOf[entry] === 1;
  }

  /** ms timestamp of the entry's last packet. */
  seenAt(entry: number): number {
    return this.lastSeen[entry]!;
  }

  /** Client endpoint of an entry (for reports and tests). */
  tuple(entry: number): { srcAddr: number; srcPort: number; dstAddr: number; dstPort: number } {
    const p = this.ports[entry]!;
    return {
      srcAddr: this.srcAddr[entry]!,
      srcPort: p >>> 16,
      dstAddr: this.dstAddr[entry]!,
      dstPort: p & 0xffff,
    };
  }

  /**
   * Adds an unconfirmed entry for a tuple that has none, first evicting (and counting) to stay
   * within the half-open budget and the capacity. Returns the entry number, or -1 when the
   * table is full of confirmed connections (counted in refusedFull): they are never evicted
   * for a new entry.
   */
  insert(
    srcAddr: number,
    srcPort: number,
    dstAddr: number,
    dstPort: number,
    node: number,
    state: ConnState,
    now: number,
  ): number {
    if (this.inQueue[Queue.Unconfirmed]! >= this.maxHalfOpen) {
      this.remove(this.head[Queue.Unconfirmed]!);
      this.evictedHalfOpen++;
    }
    if (this.count >= this.capacity) {
      const q = EVICTION_ORDER.find((q) => this.head[q]! >= 0);
      if (q === undefined) {
        this.refusedFull++;
        return -1;
      }
      this.remove(this.head[q]!);
      this.evictedFull++;
    }
    const i = this.freeHead;
    this.freeHead = this.chain[i]!;
    this.srcAddr[i] = srcAddr;
    this.dstAddr[i] = dstAddr;
    this.ports[i] = ((srcPort << 16) | dstPort) >>> 0;
    this.nodeOf[i] = node;
    this.lastSeen[i] = now;
    this.confirmedOf[i] = 0;
    const b = hashTuple(srcAddr, srcPort, dstAddr, dstPort) & this.bucketMask;
    this.chain[i] = this.buckets[b]!;
    this.buckets[b] = i;
    this.count++;
    this.link(i, state);
    return i;
  }

  /**
   * Records a client packet with TCP `flags` and `payloadBytes` of data on an entry: new
   * state, last-seen time, and confirmation by payload (not on a SYN: a SYN starts over).
   */
  update(entry: number, flags: number, now: number, payloadBytes = 0): ConnState {
    const old = this.stateOf[entry] as ConnState;
    const s = nextState(old, flags);
    this.lastSeen[entry] = now;
    this.unlink(entry);
    if (s === ConnState.SynRecv) this.setConfirmed(entry, false);
    else if (payloadBytes > 0 && (flags & SYN) === 0) this.setConfirmed(entry, true);
    this.link(entry, s);
    return s;
  }

  /** Removes an entry (connection closed, node dead, port reused). */
  remove(entry: number): void {
    const b =
      hashTuple(
        this.srcAddr[entry]!,
        this.ports[entry]! >>> 16,
        this.dstAddr[entry]!,
        this.ports[entry]! & 0xffff,
      ) & this.bucketMask;
    let i = this.buckets[b]!;
    if (i === entry) {
      this.buckets[b] = this.chain[entry]!;
    } else {
      while (this.chain[i] !== entry) i = this.chain[i]!;
      this.chain[i] = this.chain[entry]!;
    }
    this.unlink(entry);
    this.setConfirmed(entry, false);
    this.stateOf[entry] = FREE;
    this.nodeOf[entry] = -1;
    this.chain[entry] = this.freeHead;
    this.freeHead = entry;
    this.count--;
  }

  /**
   * Removes entries idle for longer than their state's timeout; at most `max` of them, so a
   * caller can spread a large expiry over several calls. Returns how many were removed.
   */
  expire(now: number, max = Infinity): number {
    let removed = 0;
    for (let q = 0; q < NQUEUES; q++) {
      const timeout = this.queueTimeout(q as Queue);
      for (
        let h = this.head[q]!;
        h >= 0 && removed < max && this.lastSeen[h]! + timeout <= now;
        h = this.head[q]!
      ) {
        this.remove(h);
        removed++;
      }
    }
    this.expired += removed;
    return removed;
  }

  /** ms until the next entry expires as things stand (Infinity when empty). */
  nextExpiry(now: number): number {
    let t = Infinity;
    for (let q = 0; q < NQUEUES; q++) {
      const h = this.head[q]!;
      if (h >= 0) t = Math.min(t, this.lastSeen[h]! + this.queueTimeout(q as Queue) - now);
    }
    return Math.max(0, t);
  }

  /** Calls fn for every entry of a node (oldest first within each queue). */
  forEachOfNode(slot: number, fn: (entry: number) => void): void {
    for (let q = 0; q < NQUEUES; q++) {
      for (let i = this.head[q]!; i >= 0;) {
        const nxt = this.next[i]!;
        if (this.nodeOf[i] === slot) fn(i);
        i = nxt;
      }
    }
  }

  private setConfirmed(i: number, yes: boolean): void {
    const v = yes ? 1 : 0;
    if (this.confirmedOf[i] === v) return;
    this.confirmedOf[i] = v;
    this.confirmedCount += yes ? 1 : -1;
  }

  /** Puts an entry in state `s` at the tail of its queue (its confirmation is already set). */
  private link(i: number, s: ConnState): void {
    this.stateOf[i] = s;
    const q = queueOf(s, this.confirmedOf[i] === 1);
    this.prev[i] = this.tail[q]!;
    this.next[i] = -1;
    if (this.tail[q]! >= 0) this.next[this.tail[q]!] = i;
    else this.head[q] = i;
    this.tail[q] = i;
    this.inQueue[q]!++;
    this.inState[s]!++;
    if (s === ConnState.Established) this.activeByNode[this.nodeOf[i]!]!++;
    else this.inactiveByNode[this.nodeOf[i]!]!++;
  }

  private unlink(i: number): void {
    const s = this.stateOf[i] as ConnState;
    const q = queueOf(s, this.confirmedOf[i] === 1);
    const p = this.prev[i]!;
    const n = this.next[i]!;
    if (p >= 0) this.next[p] = n;
    else this.head[q] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail[q] = p;
    this.inQueue[q]!--;
    this.inState[s]!--;
    if (s === ConnState.Established) this.activeByNode[this.nodeOf[i]!]!--;
    else this.inactiveByNode[this.nodeOf[i]!]!--;
  }
}
