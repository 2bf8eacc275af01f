// The TCP stack: binds TcpConnection state machines to a packet device. It parses IPv4+TCP
// packets (sc/wire), demultiplexes them by 4-tuple to connections or listeners, answers
// segments for no socket with RST, runs ONE timer heap for all connections, and emits full
// IPv4+TCP packets through an output callback. Still pure: time comes from an injected
// clock (input/flush) or an argument (poll), and output is a callback; the runtime
// (runtime.ts) wires it to a TUN device and a single JS timer.
//
// Events for the application go through a small interface (ConnectionOwner) that the socket
// layer (socket.ts) implements, so this file does not depend on it.

import { randomInt } from "node:crypto";
import { makeConfig, windowScaleFor, type TcpConfig } from "./config.js";
import { TcpConnection, type ConnectionSnapshot } from "./connection.js";
import { EV_ESTABLISHED, type CloneBehaviour, type ConnectionEnv, type FourTuple } from "./types.js";
import { TimerHeap } from "./timer-heap.js";
import { implausibleRemote } from "../wire/addr.js";
import { ChallengeAckBudget, type RandomBelow } from "./challenge-ack.js";
import { TcpSecret, checkSynCookie, initialSequenceNumber, makeSynCookie } from "./isn.js";
import { seqAdd, seqGt } from "./seq.js";
import { endpointKey, ipv4FromString, ipv4ToString } from "../wire/addr.js";
import { checksumFold, pseudoHeaderSum } from "../wire/checksum.js";
import { isWireError, type WireError } from "../wire/error.js";
import { IP_PROTO_TCP, checkIpv4, type Ipv4SendParams } from "../wire/ipv4.js";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  emitIpv4Tcp,
  emitIpv4TcpHeaders,
  ipv4TcpLength,
  parseTcpInto,
  pooledTcpRepr,
  type TcpRepr,
} from "../wire/tcp.js";
import { TcpError } from "./errors.js";

/** Receives a connection's events (conn.events bits). Implemented by TcpSocket. */
export interface ConnectionOwner {
  onConnectionEvents(conn: TcpConnection): void;
}

/** A passive open endpoint. `accept` is called when a connection reaches ESTABLISHED. */
export interface ListenerHooks {
  accept(conn: TcpConnection): ConnectionOwner;
}

export interface TcpListener {
  readonly addr: number;
  readonly port: number;
  /** Half-open connections (SYN-RECEIVED) of this listener. */
  halfOpen: number;
  /** Last time a SYN cookie was sent (ACKs to the listener are checked for cookies after). */
  lastCookieAt: number;
  readonly hooks: ListenerHooks;
  closed: boolean;
}

export interface TcpStackOptions {
  /** Local addresses this stack answers for (uint32 or dotted string), e.g. the VIP. */
  addresses: Array<number | string>;
  /**
   * Receives every outgoing IPv4+TCP packet. It owns the buffer, unless reuseOutputBuffer.
   * `gsoSize` > 0 (only with config.gsoMaxBytes): a packet of several segments to cut into
   * gsoSize-byte payloads; its TCP checksum field holds the pseudo-header sum (folded, not
   * complemented) as a TUN vnet header write expects.
   */
  output: (packet: Uint8Array, gsoSize: number) => void;
  /** Build every packet in one scratch buffer: `output` must copy it before returning (as
   *  TunDevice.write does). Saves an allocation per packet. */
  reuseOutputBuffer?: boolean;
  /** Milliseconds; default performance.now(). */
  clock?: () => number;
  config?: Partial<TcpConfig>;
  /** 16 bytes keying ISNs and SYN cookies; random by default. */
  secret?: Uint8Array;
  /** How to run a deferred flush (app writes outside input()): default queueMicrotask. */
  scheduleFlush?: (flush: () => void) => void;
  /** Called after a flush or poll, when the earliest timer may have changed. */
  onTimersChanged?: () => void;
  /** IPv4 TTL of our packets (default 64). */
  ttl?: number;
  /** Answer SYNs with cookies when a listener's backlog is full (default true). */
  synCookies?: boolean;
  /** Uniform integer in [0, n): the per-second draw of the challenge-ACK budget (default
   *  node:crypto randomInt; it must be unpredictable to an attacker). */
  random?: RandomBelow;
}

/** Counters; `drops` maps a reason to the number of packets or segments dropped for it. */
export interface TcpCounters {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  segmentsRetransmitted: number;
  connectionsOpened: number;
  connectionsAccepted: number;
  connectionsClosed: number;
  resetsSent: number;
  synCookiesSent: number;
  synCookiesAccepted: number;
  /** Connections aborted because the peer kept its window closed (config zeroWindowTimeout). */
  zeroWindowAborts: number;
  drops: Record<string, number>;
}

/** One local (address, port) of the stack. */
export interface LocalEndpoint {
  addr: number;
  port: number;
}

export interface ImportOptions {
  /** Socket Cloning clone behaviour (see CloneBehaviour); omit for a plain migrated socket. */
  clone?: Partial<CloneBehaviour>;
}

/**
 * The stack's bookkeeping for one connection, kept out of the state machine: the table,
 * the timer heap and the dirty list hold these. `touch(conn)` finds it again by 4-tuple.
 */
class StackEntry {
  /** Deadline of this connection's live timer-heap entry (older entries are stale). */
  heapAt = Infinity;
  /** On the dirty list (dispatch at the next flush). */
  dirty = false;
  inTable = false;
  /** Counted in timeWaitCount. */
  countedTimeWait = false;
  /** The listener of a half-open (SYN-RECEIVED) connection, until it is accepted. */
  listener: TcpListener | undefined = undefined;
  constructor(
    readonly conn: TcpConnection,
    readonly stack: TcpStack,
  ) {}
}

const ONE_SECOND = 1000;
/** A clone's behaviour unless importState's options say otherwise (types.ts CloneBehaviour). */
export const CLONE_DEFAULTS: Readonly<CloneBehaviour> = {
  capWindow: true,
  discardNewData: true,
  dropWhenAcked: true,
  finWithLastSegment: false,
  tailProbeMinMs: 0,
};

/** Longest IPv4 header (60) plus longest TCP header (60): room for any socket seed. */
export const SEED_MAX = 120;

export class TcpStack {
  readonly cfg: TcpConfig;
  readonly counters: TcpCounters;
  private readonly output: (packet: Uint8Array, gsoSize: number) => void;
  private readonly clock: () => number;
  private readonly secret: TcpSecret;
  private readonly scheduleFlushFn: (flush: () => void) => void;
  private readonly onTimersChanged: (() => void) | undefined;
  private readonly ttl: number;
  private readonly synCookies: boolean;
  private readonly scratch: Uint8Array | undefined;
  private readonly local = new Set<number>();

  /** localEndpointKey -> (remoteEndpointKey -> connection). */
  private readonly table = new Map<number, Map<number, StackEntry>>();
  private lastHit: StackEntry | undefined = undefined;
  private connectionCount = 0;
  private timeWaitCount = 0;
  /** port -> address (0 = any) -> listener */
  private readonly listeners = new Map<number, Map<number, TcpListener>>();
  private readonly timers = new TimerHeap<StackEntry>();
  private dirty: StackEntry[] = [];
  private flushScheduled = false;
  private flushing = false;
  private ipId = 0;
  private nextEphemeral = 49152;
  private readonly env: ConnectionEnv;
  private currentConn: TcpConnection | undefined = undefined;
  // Per-packet objects reused instead of allocated (docs/tcp.md "Per-packet costs"): the
  // parsed segment of the packet being received (a nested receive gets its own) and the IP
  // fields of the packet being emitted (read only inside emitIpv4Tcp).
  private readonly rxSeg: TcpRepr = pooledTcpRepr();
  private receiving = false;
  private readonly txIp: Ipv4SendParams = { src: 0, dst: 0, ttl: 64, tos: 0, id: 0, dontFrag: true };
  private readonly emitSegment = (seg: TcpRepr): void => this.sendSegment(this.currentConn!, seg);

  constructor(opts: TcpStackOptions) {
    this.cfg = makeConfig(opts.config);
    this.output = opts.output;
    this.clock = opts.clock ?? (() => performance.now());
    this.secret = new TcpSecret(opts.secret);
    this.scheduleFlushFn = opts.scheduleFlush ?? queueMicrotask;
    this.onTimersChanged = opts.onTimersChanged;
    this.ttl = opts.ttl ?? 64;
    this.synCookies = opts.synCookies ?? true;
    this.scratch = opts.reuseOutputBuffer ? new Uint8Array(65536) : undefined;
    for (const a of opts.addresses) this.addAddress(a);
    this.counters = {
      packetsIn: 0,
      packetsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      segmentsRetransmitted: 0,
      connectionsOpened: 0,
      connectionsAccepted: 0,
      connectionsClosed: 0,
      resetsSent: 0,
      synCookiesSent: 0,
      synCookiesAccepted: 0,
      zeroWindowAborts: 0,
      drops: {},
    };
    const counters = this.counters;
    const cfg = this.cfg;
    const budget = new ChallengeAckBudget(cfg.challengeAckPerSecond, opts.random ?? randomInt);
    this.env = {
      cfg,
      takeChallengeAck: (now: number): boolean => budget.take(now),
      countDrop: (reason: string): void => {
        counters.drops[reason] = (counters.drops[reason] ?? 0) + 1;
      },
      countRetransmit: (): void => {
        counters.segmentsRetransmitted++;
      },
      countZeroWindowAbort: (): void => {
        counters.zeroWindowAborts++;
      },
    };
  }

  // ------------------------------------------------------------------ configuration

  addAddress(addr: number | string): void {
    this.local.add(toAddr(addr));
  }

  removeAddress(addr: number | string): void {
    this.local.delete(toAddr(addr));
  }

  hasAddress(addr: number): boolean {
    return this.local.has(addr);
  }

  now(): number {
    return this.clock();
  }

  /** Number of connections in the table (all states, TIME-WAIT included). */
  get connections(): number {
    return this.connectionCount;
  }

  /** Starts a passive open on (addr or any, port). Throws if the endpoint is taken. */
  listen(port: number, addr: number | string | undefined, hooks: ListenerHooks): TcpListener {
    if (!(Number.isInteger(port) && port > 0 && port < 65536)) throw new RangeError(`bad port ${port}`);
    const a = addr === undefined ? 0 : toAddr(addr);
    if (a !== 0 && !this.local.has(a)) {
      throw new TcpError(`listen EADDRNOTAVAIL ${ipv4ToString(a)}:${port}`, "EADDRNOTAVAIL", {
        syscall: "listen",
      });
    }
    let byAddr = this.listeners.get(port);
    if (byAddr === undefined) this.listeners.set(port, (byAddr = new Map()));
    if (byAddr.has(a)) {
      throw new TcpError(`listen EADDRINUSE ${ipv4ToString(a)}:${port}`, "EADDRINUSE", { syscall: "listen" });
    }
    const l: TcpListener = { addr: a, port, halfOpen: 0, lastCookieAt: -Infinity, hooks, closed: false };
    byAddr.set(a, l);
    return l;
  }

  /**
   * Every (address, port) a listener accepts connections on; a listener on any address
   * counts for each local address. What importState allows as an imported connection's
   * local side by default.
   */
  listeningEndpoints(): LocalEndpoint[] {
    const out: LocalEndpoint[] = [];
    for (const [port, byAddr] of this.listeners) {
      if (byAddr.has(0)) for (const addr of this.local) out.push({ addr, port });
      else for (const addr of byAddr.keys()) if (this.local.has(addr)) out.push({ addr, port });
    }
    return out;
  }

  /** Stops accepting on the listener; established connections are not affected. */
  unlisten(l: TcpListener): void {
    l.closed = true;
    const byAddr = this.listeners.get(l.port);
    if (byAddr?.get(l.addr) === l) byAddr.delete(l.addr);
    if (byAddr?.size === 0) this.listeners.delete(l.port);
  }

  /** Active open. The SYN goes out on the next flush. */
  connect(
    remoteAddr: number | string,
    remotePort: number,
    owner: ConnectionOwner,
    localAddr?: number | string,
    localPort?: number,
  ): TcpConnection {
    const la = localAddr === undefined ? this.firstAddress() : toAddr(localAddr);
    const ra = toAddr(remoteAddr);
    const lp = localPort ?? this.ephemeralPort(la, ra, remotePort);
    const tuple: FourTuple = { localAddr: la, localPort: lp, remoteAddr: ra, remotePort };
    if (this.lookup(la, lp, ra, remotePort) !== undefined) {
      throw new TcpError("connect EADDRINUSE", "EADDRINUSE", { syscall: "connect" });
    }
    const now = this.clock();
    const conn = TcpConnection.connect(this.env, tuple, initialSequenceNumber(this.secret, tuple, now), now);
    this.markDirty(this.adopt(conn, owner));
    return conn;
  }

  /**
   * Creates an ESTABLISHED (or CLOSE-WAIT) connection from exported state (Socket Cloning,
   * state.ts). The caller attaches an owner and delivers the synthetic request itself.
   */
  importConnection(
    snap: ConnectionSnapshot,
    owner: ConnectionOwner,
    opts: ImportOptions = {},
  ): TcpConnection {
    const t = snap.tuple;
    if (!this.local.has(t.localAddr)) {
      throw new TcpError(`import EADDRNOTAVAIL ${ipv4ToString(t.localAddr)}`, "EADDRNOTAVAIL");
    }
    const old = this.entry(t.localAddr, t.localPort, t.remoteAddr, t.remotePort);
    if (old !== undefined) {
      if (old.conn.state !== "TIME-WAIT" && !old.conn.isClosed()) {
        throw new TcpError("import EADDRINUSE: the 4-tuple has a live connection", "EADDRINUSE");
      }
      this.remove(old);
    }
    const now = this.clock();
    const conn = TcpConnection.restore(this.env, snap, now);
    if (opts.clone !== undefined) {
      conn.setClone({ ...CLONE_DEFAULTS, ...opts.clone });
    }
    this.schedule(this.adopt(conn, owner));
    return conn;
  }

  /** Enters a connection opened here (connect) or imported (a clone) into the tables, owned. */
  private adopt(conn: TcpConnection, owner: ConnectionOwner): StackEntry {
    conn.socket = owner;
    const e = this.insert(conn);
    this.counters.connectionsOpened++;
    return e;
  }

  /** Looks up a connection by 4-tuple. */
  lookup(
    localAddr: number,
    localPort: number,
    remoteAddr: number,
    remotePort: number,
  ): TcpConnection | undefined {
    return this.entry(localAddr, localPort, remoteAddr, remotePort)?.conn;
  }

  private entry(
    localAddr: number,
    localPort: number,
    remoteAddr: number,
    remotePort: number,
  ): StackEntry | undefined {
    return this.table.get(endpointKey(localAddr, localPort))?.get(endpointKey(remoteAddr, remotePort));
  }

  /** The entry of a connection in the table (the last one hit first: the usual case). */
  private entryOf(conn: TcpConnection): StackEntry | undefined {
    const e = conn.stackEntry;
    return e instanceof StackEntry && e.stack === this && e.inTable && e.conn === conn ? e : undefined;
  }

  // ------------------------------------------------------------------ input

  /** Processes one IPv4 packet (the buffer is only read during the call), then flushes. */
  input(packet: Uint8Array): void {
    this.receive(packet);
    this.flush();
  }

  /**
   * Processes one IPv4 packet without flushing: call flush() after a batch so ACKs for
   * several segments of a connection coalesce (what a TUN read batch does).
   */
  receive(packet: Uint8Array): void {
    const c = this.counters;
    c.packetsIn++;
    c.bytesIn += packet.length;
    const ipErr = checkIpv4(packet, 0, packet.length, true, false);
    if (ipErr !== null) return this.countDrop(`ip-${ipErr.kind}`);
    if (packet[9] !== IP_PROTO_TCP) return this.countDrop("not-tcp");
    const src = ((packet[12] << 24) | (packet[13] << 16) | (packet[14] << 8) | packet[15]) >>> 0;
    const dst = ((packet[16] << 24) | (packet[17] << 16) | (packet[18] << 8) | packet[19]) >>> 0;
    if (!this.local.has(dst)) return this.countDrop("not-local");
    // Spoofed or martian sources: ourselves (a LAND-style loop), 0/8, 127/8, multicast,
    // 240/4 and broadcast. An answer would go nowhere or to ourselves.
    if (this.local.has(src) || implausibleRemote(src) !== undefined) return this.countDrop("bad-source");
    const ihl = (packet[0] & 0x0f) * 4;
    const total = (packet[2] << 8) | packet[3];
    // Nothing keeps the parsed segment past this call (payload bytes are copied where kept).
    const nested = this.receiving;
    const seg = nested ? pooledTcpRepr() : this.rxSeg;
    const err = parseTcpInto(packet, ihl, total - ihl, src, dst, seg);
    if (err !== null) return this.countDrop(`tcp-${err.kind}`);
    // A SYN with FIN or RST is no valid segment in any state (scanners, stack fingerprinting,
    // evasion); taken as a SYN it would open a connection. Dropped, never answered.
    if (seg.flags & TCP_SYN && seg.flags & (TCP_FIN | TCP_RST))
      return this.countDrop(seg.flags & TCP_RST ? "syn-rst" : "syn-fin");
    const now = this.clock();
    this.receiving = true;
    try {
      this.segmentArrives(packet, ihl, src, dst, seg, now);
    } finally {
      this.receiving = nested;
    }
  }

  private segmentArrives(
    packet: Uint8Array,
    ihl: number,
    src: number,
    dst: number,
    seg: TcpRepr,
    now: number,
  ): void {
    let e = this.lastHit;
    if (e !== undefined) {
      const c = e.conn;
      if (
        c.remotePort !== seg.srcPort ||
        c.localPort !== seg.dstPort ||
        c.remoteAddr !== src ||
        c.localAddr !== dst
      )
        e = this.entry(dst, seg.dstPort, src, seg.srcPort);
    } else {
      e = this.entry(dst, seg.dstPort, src, seg.srcPort);
    }
    if (e !== undefined) {
      const c = e.conn;
      if (c.state === "TIME-WAIT" && seg.flags & TCP_SYN && !(seg.flags & (TCP_ACK | TCP_RST))) {
        // RFC 9293 3.10.7.4 / RFC 6191: a new SYN above the old sequence space reuses the tuple.
        if (seqGt(seg.seq, c.rcv.nxt)) {
          this.remove(e);
          e = undefined;
        }
      }
    }
    if (e === undefined) {
      this.lastHit = undefined;
      this.toListener(packet, ihl, src, dst, seg, now);
      return;
    }
    this.lastHit = e;
    const conn = e.conn;
    conn.process(now, seg);
    if (!(seg.flags & TCP_RST)) this.keepSeed(conn, packet, ihl, seg);
    this.afterProcess(e);
  }

  private afterProcess(e: StackEntry): void {
    if (e.conn.events !== 0) this.notify(e);
    this.markDirty(e);
  }

  /** Keeps a copy of the last IPv4+TCP header from the peer (the cloning "socket seed"). */
  private keepSeed(conn: TcpConnection, packet: Uint8Array, ihl: number, seg: TcpRepr): void {
    const len = ihl + ((packet[ihl + 12] >>> 4) << 2);
    void seg;
    let s = conn.seed;
    // Reuse only a buffer this connection owns whole (SEED_MAX bytes at offset 0): an
    // imported seed may be a view into a shared pool, and growing such a view would write
    // over whatever lies next to it (it once overwrote an HTTP response head).
    if (s === undefined || s.byteOffset !== 0 || s.buffer.byteLength !== SEED_MAX) {
      conn.seed = s = new Uint8Array(SEED_MAX).subarray(0, len);
    } else if (s.length !== len) {
      conn.seed = s = new Uint8Array(s.buffer, 0, len);
    }
    // A byte loop: at most 120 bytes, and no subarray object per packet (set() needs one).
    for (let i = 0; i < len; i++) s[i] = packet[i];
  }

  private toListener(
    packet: Uint8Array,
    ihl: number,
    src: number,
    dst: number,
    seg: TcpRepr,
    now: number,
  ): void {
    const flags = seg.flags;
    if (flags & TCP_RST) return this.countDrop("rst-no-socket");
    const l = this.findListener(dst, seg.dstPort);
    const tuple: FourTuple = {
      localAddr: dst,
      localPort: seg.dstPort,
      remoteAddr: src,
      remotePort: seg.srcPort,
    };
    if (l === undefined) {
      this.countDrop("no-socket");
      return this.sendResetFor(tuple, seg);
    }
    if (flags & TCP_SYN && !(flags & TCP_ACK)) {
      if (this.connectionCount >= this.cfg.maxConnections) return this.countDrop("max-connections");
      if (l.halfOpen >= this.cfg.synBacklog) {
        if (!this.synCookies) return this.countDrop("backlog-full");
        return this.sendCookie(l, tuple, seg, now);
      }
      const conn = TcpConnection.accept(
        this.env,
        tuple,
        seg,
        initialSequenceNumber(this.secret, tuple, now),
        now,
      );
      const e = this.insert(conn);
      e.listener = l;
      l.halfOpen++;
      this.keepSeed(conn, packet, ihl, seg);
      this.markDirty(e);
      return;
    }
    if (flags & TCP_ACK && !(flags & (TCP_SYN | TCP_FIN)) && now - l.lastCookieAt < 2 * 64_000 + ONE_SECOND) {
      const info = checkSynCookie(this.secret, tuple, seg.seq, seg.ack, now);
      if (info !== undefined) {
        if (this.connectionCount >= this.cfg.maxConnections) return this.countDrop("max-connections");
        const conn = TcpConnection.fromCookie(this.env, tuple, seg, info, now);
        this.counters.synCookiesAccepted++;
        const e = this.insert(conn);
        this.keepSeed(conn, packet, ihl, seg);
        this.establish(l, e);
        if (seg.payload.length > 0) conn.process(now, seg);
        this.afterProcess(e);
        return;
      }
      this.countDrop("syn-cookie-invalid");
    } else {
      this.countDrop("no-socket");
    }
    this.sendResetFor(tuple, seg);
  }

  private findListener(addr: number, port: number): TcpListener | undefined {
    const byAddr = this.listeners.get(port);
    if (byAddr === undefined) return undefined;
    return byAddr.get(addr) ?? byAddr.get(0);
  }

  private sendCookie(l: TcpListener, tuple: FourTuple, syn: TcpRepr, now: number): void {
    const o = syn.options;
    const iss = makeSynCookie(this.secret, tuple, syn.seq, o.mss, o.wscale, now);
    l.lastCookieAt = now;
    this.counters.synCookiesSent++;
    const reply: TcpRepr = {
      srcPort: tuple.localPort,
      dstPort: tuple.remotePort,
      seq: iss,
      ack: seqAdd(syn.seq, 1),
      flags: TCP_SYN | TCP_ACK,
      window: Math.min(this.cfg.rcvBufSize, 0xffff),
      urgent: 0,
      options:
        o.wscale !== undefined
          ? { mss: this.cfg.mtu - 40, wscale: windowScaleFor(this.cfg.rcvBufSize) }
          : { mss: this.cfg.mtu - 40 },
      payload: EMPTY,
    };
    this.emitPacket(tuple.localAddr, tuple.remoteAddr, reply);
  }

  /** RFC 9293 3.10.7.1: the reply to a segment for no connection (never to an RST). */
  private sendResetFor(tuple: FourTuple, seg: TcpRepr): void {
    const segLen = seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
    const ackFlag = (seg.flags & TCP_ACK) !== 0;
    const rst: TcpRepr = {
      srcPort: tuple.localPort,
      dstPort: tuple.remotePort,
      seq: ackFlag ? seg.ack : 0,
      ack: ackFlag ? 0 : seqAdd(seg.seq, segLen),
      flags: ackFlag ? TCP_RST : TCP_RST | TCP_ACK,
      window: 0,
      urgent: 0,
      options: {},
      payload: EMPTY,
    };
    this.counters.resetsSent++;
    this.emitPacket(tuple.localAddr, tuple.remoteAddr, rst);
  }

  private establish(l: TcpListener, e: StackEntry): void {
    const conn = e.conn;
    e.listener = undefined;
    conn.events &= ~EV_ESTABLISHED;
    this.counters.connectionsAccepted++;
    this.counters.connectionsOpened++;
    if (l.closed) {
      conn.abort();
      return;
    }
    conn.socket = l.hooks.accept(conn);
  }

  // ------------------------------------------------------------------ events, output, timers

  /** Delivers conn.events to its owner (or to the listener on ESTABLISHED). */
  private notify(e: StackEntry): void {
    const conn = e.conn;
    const l = e.listener;
    if (l !== undefined && (conn.events & EV_ESTABLISHED || conn.isClosed())) {
      l.halfOpen--;
      if (conn.events & EV_ESTABLISHED) {
        this.establish(l, e);
      } else {
        e.listener = undefined;
        conn.events = 0;
        return;
      }
    }
    const owner = conn.socket as ConnectionOwner | undefined;
    if (owner === undefined) {
      conn.events = 0;
      return;
    }
    owner.onConnectionEvents(conn);
  }

  /** Asks for a flush of this connection (app write, close, window update). */
  private markDirty(e: StackEntry): void {
    if (e.dirty) return;
    e.dirty = true;
    this.dirty.push(e);
    if (!this.flushScheduled && !this.flushing) {
      this.flushScheduled = true;
      this.scheduleFlushFn(this.flushCallback);
    }
  }

  private readonly flushCallback = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Dispatches every connection with pending work; removes closed ones. */
  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      const now = this.clock();
      for (let i = 0; i < this.dirty.length; i++) {
        const e = this.dirty[i];
        e.dirty = false;
        this.runConnection(e, now);
      }
      this.dirty.length = 0;
    } finally {
      this.flushing = false;
    }
    this.onTimersChanged?.();
  }

  private runConnection(e: StackEntry, now: number): void {
    const conn = e.conn;
    this.currentConn = conn;
    conn.dispatch(now, this.emitSegment);
    this.currentConn = undefined;
    if (conn.events !== 0) this.notify(e);
    if (conn.isClosed()) {
      this.remove(e);
      return;
    }
    if (conn.state === "TIME-WAIT" && !e.countedTimeWait) this.enteredTimeWait(e);
    this.schedule(e);
  }

  private enteredTimeWait(e: StackEntry): void {
    this.timeWaitCount++;
    e.countedTimeWait = true;
    if (this.timeWaitCount > this.cfg.maxTimeWait) this.remove(e);
  }

  private schedule(e: StackEntry): void {
    const at = e.conn.pollAt();
    if (at < e.heapAt) {
      e.heapAt = at;
      this.timers.push(at, e);
    }
  }

  /** Earliest deadline of any connection (ms, same clock), or undefined when none. */
  pollAt(): number | undefined {
    for (;;) {
      const top = this.timers.peek();
      if (top === undefined) return undefined;
      if (top.item.heapAt !== top.at || !top.item.inTable) {
        this.timers.pop();
        continue;
      }
      return top.at;
    }
  }

  /** Runs every timer due at `now`. */
  poll(now: number): void {
    this.flushing = true;
    try {
      for (;;) {
        const top = this.timers.peek();
        if (top === undefined || top.at > now) break;
        this.timers.pop();
        const e = top.item;
        if (e.heapAt !== top.at || !e.inTable) continue;
        e.heapAt = Infinity;
        e.dirty = false;
        this.runConnection(e, now);
      }
      // App calls made from event handlers above.
      for (let i = 0; i < this.dirty.length; i++) {
        const e = this.dirty[i];
        e.dirty = false;
        this.runConnection(e, now);
      }
      this.dirty.length = 0;
    } finally {
      this.flushing = false;
    }
    this.onTimersChanged?.();
  }

  private sendSegment(conn: TcpConnection, seg: TcpRepr): void {
    if (seg.flags & TCP_RST) this.counters.resetsSent++;
    const gso = seg.payload.length > conn.snd.mss ? conn.snd.mss : 0;
    this.emitPacket(conn.localAddr, conn.remoteAddr, seg, gso);
  }

  private emitPacket(src: number, dst: number, seg: TcpRepr, gsoSize = 0): void {
    const len = ipv4TcpLength(seg);
    const buf =
      this.scratch !== undefined && len <= 65536 ? this.scratch.subarray(0, len) : new Uint8Array(len);
    const ip = this.txIp;
    ip.src = src;
    ip.dst = dst;
    ip.ttl = this.ttl;
    ip.id = this.ipId;
    let n: number | WireError;
    if (gsoSize === 0) {
      this.ipId = (this.ipId + 1) & 0xffff;
      n = emitIpv4Tcp(ip, seg, buf, 0);
    } else {
      // The kernel numbers the segments' IP ids on from this one.
      this.ipId = (this.ipId + Math.ceil(seg.payload.length / gsoSize)) & 0xffff;
      n = emitIpv4TcpHeaders(ip, seg, seg.payload.length, buf, 0);
      if (!isWireError(n)) {
        buf.set(seg.payload, n);
        const partial = checksumFold(pseudoHeaderSum(src, dst, IP_PROTO_TCP, len - 20));
        buf[36] = partial >>> 8;
        buf[37] = partial & 0xff;
        n = len;
      }
    }
    if (isWireError(n)) {
      this.countDrop(`emit-${n.kind}`);
      return;
    }
    this.counters.packetsOut++;
    this.counters.bytesOut += n;
    this.output(buf, gsoSize);
  }

  private countDrop(reason: string): void {
    const d = this.counters.drops;
    d[reason] = (d[reason] ?? 0) + 1;
  }

  // ------------------------------------------------------------------ table

  private insert(conn: TcpConnection): StackEntry {
    const e = new StackEntry(conn, this);
    const lk = endpointKey(conn.localAddr, conn.localPort);
    let inner = this.table.get(lk);
    if (inner === undefined) this.table.set(lk, (inner = new Map()));
    inner.set(endpointKey(conn.remoteAddr, conn.remotePort), e);
    e.inTable = true;
    conn.stackEntry = e;
    this.connectionCount++;
    return e;
  }

  private remove(e: StackEntry): void {
    if (!e.inTable) return;
    const conn = e.conn;
    const lk = endpointKey(conn.localAddr, conn.localPort);
    const inner = this.table.get(lk);
    if (inner !== undefined && inner.get(endpointKey(conn.remoteAddr, conn.remotePort)) === e) {
      inner.delete(endpointKey(conn.remoteAddr, conn.remotePort));
      if (inner.size === 0) this.table.delete(lk);
    }
    e.inTable = false;
    conn.stackEntry = undefined;
    this.connectionCount--;
    this.counters.connectionsClosed++;
    if (e.countedTimeWait) {
      e.countedTimeWait = false;
      this.timeWaitCount--;
    }
    if (e.listener !== undefined) {
      e.listener.halfOpen--;
      e.listener = undefined;
    }
    if (this.lastHit === e) this.lastHit = undefined;
    if (!conn.isClosed()) conn.dropSilently();
  }

  private firstAddress(): number {
    for (const a of this.local) return a;
    throw new Error("the stack has no local address");
  }

  private ephemeralPort(la: number, ra: number, rp: number): number {
    for (let i = 0; i < 16384; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p >= 65535 ? 49152 : p + 1;
      if (this.lookup(la, p, ra, rp) === undefined) return p;
    }
    throw new TcpError("connect EADDRNOTAVAIL: no free port", "EADDRNOTAVAIL", { syscall: "connect" });
  }

  /** Marks a connection for dispatch (after an app call) — used by the socket layer. A
   *  connection no longer in the table is closed and has nothing left to send. */
  touch(conn: TcpConnection): void {
    const e = this.entryOf(conn);
    if (e !== undefined) this.markDirty(e);
  }
}

const EMPTY = new Uint8Array(0);

function toAddr(a: number | string): number {
  if (typeof a === "number") return a >>> 0;
  const v = ipv4FromString(a);
  if (isWireError(v)) throw new TypeError(`not an IPv4 address: ${a}`);
  return v;
}
