// The dispatcher's data path, as pure logic: one client packet in, at most one packet out
// (the encapsulated packet for its node, or a RST for the client). No I/O: packets come
// from and go to the caller (dispatcher.ts wires it to a TUN device and a UDP socket),
// time is a parameter.
//
// Per packet: validate IPv4 (no fragments, header checksum), source plausible, destination
// VIP, TCP, port, TCP checksum; find the connection or schedule a new one; update the
// connection's state from the client's flags; encapsulate in GUE for the node. Nothing is
// sent back to the client, except a RST when its connection cannot continue (its node is
// gone, was removed while down or stayed down past the grace; no node at all; no entry and a
// scheduler that cannot recover it) so that it retries at once instead of retransmitting
// into a void. A node that merely fails its health checks keeps its established
// connections (IPVS's expire_nodest_conn=0): a GC pause or a slow moment must not reset them.
//
// When a node is lost (gone, removed while down, down past the grace), a client that sends
// nothing would never learn it: one waiting for the answer to a request its node had
// acknowledged hangs until its own timeout. So each of the node's connections gets a "tickle"
// (as CTDB does on IP take-over): two bare ACKs with sequence numbers 2^31 apart, at least one
// outside any receive window, which the client's TCP answers with an ACK of where it stands
// (RFC 9293 3.10.7.4); that ACK meets the lost node's entry and gets an exact RST.
import {
  Ipv4Packet,
  TcpPacket,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  checksumAdd,
  emitIpv4Tcp,
  implausibleRemote,
  pseudoHeaderSum,
  IP_PROTO_TCP,
  emitGueEncap,
  gueHeaderLength,
  type GueEncapParams,
  type GueVariant,
  type WireError,
  type TcpRepr,
} from "../sc/wire/index.js";
import { ConnState, ConnTable, isReusable, nextState, type ConnTimeouts } from "./conn-table.js";
import { DisplacedSet, type DisplacedConnection } from "./handover.js";
import { hashEndpoint } from "./hash.js";
import { NodePool, type Node, type NodeHealthState, type NodeSpec } from "./nodes.js";
import { createScheduler, type Scheduler, type SchedulerName, type SchedulerOptions } from "./schedulers.js";

/** Why a client packet was not forwarded. */
export const DROP_REASONS = [
  /** Not IPv4 (e.g. IPv6 neighbour discovery on the TUN device). */
  "not_ipv4",
  /** Truncated or inconsistent IPv4/TCP headers. */
  "malformed",
  /** IPv4 header or TCP checksum wrong. */
  "bad_checksum",
  /**
   * A source no client can have: 0/8, 127/8, 224/4 (multicast), 240/4 (reserved, broadcast),
   * the VIP, this host's own addresses. Spoofed; never answered.
   */
  "bad_src",
  /** An IPv4 fragment: the dispatcher does not reassemble. */
  "fragment",
  /** Destination is not the VIP. */
  "wrong_dst",
  /** Not TCP. */
  "not_tcp",
  /** TCP to a port other than the service port. */
  "wrong_port",
  /** Not a SYN and no connection entry (the scheduler cannot recover it): answered with RST. */
  "no_conn",
  /** A new connection but no node can take it: answered with RST. */
  "no_node",
  /** The connection's node has been down longer than the grace (deadGraceMs): RST, entry removed. */
  "node_dead",
  /** The connection's node is gone (its admin port refuses connections): RST, entry removed. */
  "node_gone",
  /** The connection's node was removed (admin DELETE) and is down: RST, entry removed. */
  "node_removed",
  /** A new connection, but the table is full of confirmed ones: answered with RST. */
  "table_full",
  /** The encapsulated packet would exceed 65535 bytes. */
  "too_big",
  /**
   * Needed a scheduling decision before every node's first health verdict (just after a
   * start): a mid-connection packet under mh/sh, or a SYN no node is known for yet. Dropped
   * unanswered; the client retransmits once the node set is known (no RST for a connection
   * a restarted dispatcher can still pick up).
   */
  "warming_up",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
const DROP = Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as Record<DropReason, number>;

/**
 * How packets for nodes are handed out:
 * - "ipv4": whole outer IPv4 + UDP + GUE packets, to write into the TUN device for the
 *   kernel to route (batched writes, no socket call per packet);
 * - "gue": the UDP payload only (GUE header + client packet), for a UDP socket;
 * - "inner": the client packet itself, a view into the input buffer (no copy here), for an
 *   output that puts the GUE header on itself (the addon's batched UDP socket does, in C).
 */
export type EncapMode = "ipv4" | "gue" | "inner";

export interface ForwarderOptions {
  vip: number;
  /** Service port (80). */
  port: number;
  /** Further service ports balanced like `port` (443 for HTTPS); a connection is keyed by its port. */
  extraPorts?: readonly number[];
  scheduler: SchedulerName;
  schedulerOptions?: SchedulerOptions;
  encap: EncapMode;
  /** Outer source address ("ipv4" mode): the dispatcher's own LAN address. */
  localAddr?: number;
  /** This host's other addresses: a client packet from one is spoofed (bad_src). */
  localAddrs?: readonly number[];
  /**
   * How long a node may fail its health checks before its established connections are reset
   * (ms, default 60 s). Within it they keep flowing to the node, which may be only slow.
   */
  deadGraceMs?: number;
  /** GUE variant to emit (default 0: 4-byte header, what IPVS and Katran send). */
  variant?: GueVariant;
  /** Compute outer UDP checksums (default false, IPVS's default). */
  udpChecksum?: boolean;
  /** Outer TTL (default 64). */
  ttl?: number;
  /** Connection table size (default 1M). */
  maxConnections?: number;
  /** Half-open entries allowed (default maxConnections / 8). */
  maxHalfOpen?: number;
  timeouts?: Partial<ConnTimeouts>;
  maxNodes?: number;
  /** Most entries one tick() expires (bounds the pause a mass expiry can cause). */
  expireBatch?: number;
  /** Most displaced connections recorded for a restart (handover.ts; default 65536). */
  maxDisplaced?: number;
  /** Most tickles (connections of lost nodes prompted to answer) sent per setHealth()/tick(); default 20,000. */
  tickleBatch?: number;
}

export interface ForwarderOutput {
  /** A packet for `node` (format per EncapMode). The view is valid only during the call. */
  toNode(node: Node, packet: Uint8Array): void;
  /** An IPv4 packet for a client (a RST), to be written to the TUN device. Valid during the call. */
  toClient(packet: Uint8Array): void;
  /**
   * Encap "inner" (required there, unused otherwise): the client packet buf[off, off+len)
   * for `node`, to be encapsulated by the output. Valid only during the call.
   */
  toNodeRange?(node: Node, buf: Uint8Array, off: number, len: number): void;
}

/** The connection table as the control plane reads it (counts only, no entries). */
export type ConnTableCounts = Pick<
  ConnTable,
  | "size"
  | "capacity"
  | "halfOpen"
  | "maxHalfOpen"
  | "underSynLoad"
  | "confirmed"
  | "countInState"
  | "expired"
  | "evictedHalfOpen"
  | "evictedFull"
  | "refusedFull"
  | "active"
  | "inactive"
>;

/**
 * What the control plane (control.ts, metrics.ts) drives and reads: a Forwarder on this
 * thread, or the aggregate of the forwarders of several worker threads (workers.ts).
 */
export interface ForwarderModel {
  readonly nodes: NodePool;
  readonly table: ConnTableCounts;
  readonly vip: number;
  readonly port: number;
  readonly encap: EncapMode;
  readonly deadGraceMs: number;
  readonly schedulerName: SchedulerName;
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
  readonly connectionsScheduled: number;
  readonly connectionsRecovered: number;
  /** Connections taken over from a previous dispatcher's state file (handover.ts). */
  readonly connectionsAdopted: number;
  /** Displaced connections recorded for the next restart. */
  readonly displaced: { readonly size: number };
  readonly rstsSent: number;
  /** Connections of lost nodes prompted to answer (so that their answer can be reset). */
  readonly ticklesSent: number;
  readonly downForwarded: number;
  dropCount(reason: DropReason): number;
  setScheduler(name: SchedulerName): void;
  upsertNode(spec: NodeSpec): { node: Node; created: boolean };
  removeNode(id: string): boolean;
  setHealth(id: string, state: NodeHealthState, now: number): boolean;
}

const NO_CHECKSUM = { verifyChecksum: false } as const;

export const DEFAULT_DEAD_GRACE_MS = 60_000;

/** Largest UDP payload over IPv4 (65535 - 20 - 8): the "inner" output's GUE datagram limit. */
const UDP_MAX_GUE_PAYLOAD = 65507;

/** Largest client packet we accept: leaves room for the outer headers within 65535. */
const ARENA_BYTES = 65535;

export class Forwarder implements ForwarderModel {
  readonly table: ConnTable;
  readonly nodes: NodePool;
  readonly vip: number;
  readonly port: number;
  readonly extraPorts: readonly number[];
  readonly encap: EncapMode;

  /** Client packets read and their bytes. */
  packetsIn = 0;
  bytesIn = 0;
  /** Packets and bytes forwarded to nodes (inner packet sizes). */
  packetsOut = 0;
  bytesOut = 0;
  /** New connections scheduled (SYN), and connections picked up mid-stream (no entry, consistent scheduler). */
  connectionsScheduled = 0;
  connectionsRecovered = 0;
  /** Connections taken over from the previous dispatcher's state file (adopt()). */
  connectionsAdopted = 0;
  /**
   * sh/mh: connections placed elsewhere than the home placement (a node was out when they
   * were opened); what a restart must be told (handover.ts).
   */
  readonly displaced: DisplacedSet;
  /** Drops by reason, indexed like DROP_REASONS. */
  readonly drops = new Float64Array(DROP_REASONS.length);
  /** RSTs sent to clients. */
  rstsSent = 0;
  /** Connections of lost nodes tickled (two bare ACKs each). */
  ticklesSent = 0;
  /** Client packets of existing connections forwarded to nodes that were down (within the grace). */
  downForwarded = 0;
  readonly deadGraceMs: number;

  private readonly toNodeRange: ForwarderOutput["toNodeRange"];
  private scheduler: Scheduler;
  /**
   * sh/mh: the same scheduler over every configured node, health ignored (NodePool.home):
   * where a connection opened with every node up lives, so where a packet without an entry
   * goes (its node may be down for a moment; a new dispatcher knows nothing of the past).
   */
  private home: Scheduler | undefined;
  /** The eligible nodes are fewer than the home ones: new connections may be displaced. */
  private partial = false;
  private readonly schedulerOptions: SchedulerOptions;
  private schedulerVersion = -1;
  /** Some node's first health verdict is not in yet (NodePool.awaitingFirstVerdict). */
  private warmingUp = false;
  private readonly ip = new Ipv4Packet();
  private readonly tcp = new TcpPacket();
  private readonly arena = new Uint8Array(ARENA_BYTES);
  private readonly outer: GueEncapParams;
  private readonly variant: GueVariant;
  private readonly expireBatch: number;
  private readonly tickleBatch: number;
  /** Lost nodes whose connections are (being) tickled, with the downSince of that outage. */
  private readonly tickled = new Map<Node, number>();
  /** Entries still to tickle, as (client address, client port, VIP port, node slot) quads. */
  private tickleQueue: number[] = [];
  private tickleHead = 0;
  private readonly tickle = bareSegment(TCP_ACK);
  /** Addresses of this host (and the VIP): never a client's. */
  private readonly ownAddrs: Set<number>;
  private ipId = 0;
  private readonly rst = bareSegment(TCP_RST);

  constructor(
    opts: ForwarderOptions,
    private readonly out: ForwarderOutput,
  ) {
    this.vip = opts.vip >>> 0;
    this.port = opts.port;
    this.extraPorts = [...(opts.extraPorts ?? [])];
    this.encap = opts.encap;
    this.variant = opts.variant ?? 0;
    this.expireBatch = opts.expireBatch ?? 100_000;
    this.tickleBatch = opts.tickleBatch ?? 20_000;
    this.deadGraceMs = opts.deadGraceMs ?? DEFAULT_DEAD_GRACE_MS;
    this.ownAddrs = new Set([this.vip, ...(opts.localAddr !== undefined ? [opts.localAddr >>> 0] : [])]);
    for (const a of opts.localAddrs ?? []) this.ownAddrs.add(a >>> 0);
    if (opts.encap === "inner") {
      if (out.toNodeRange === undefined)
        throw new RangeError("encap 'inner' needs an output with toNodeRange");
      this.toNodeRange = out.toNodeRange.bind(out);
    }
    if (opts.encap === "ipv4" && opts.localAddr === undefined) {
      throw new RangeError("encap 'ipv4' needs localAddr (the outer source address)");
    }
    this.nodes = new NodePool(opts.maxNodes ?? 256);
    const capacity = opts.maxConnections ?? 1 << 20;
    this.table = new ConnTable({
      capacity,
      maxHalfOpen: opts.maxHalfOpen,
      timeouts: opts.timeouts,
      nodeSlots: this.nodes.maxNodes,
    });
    this.schedulerOptions = opts.schedulerOptions ?? {};
    this.scheduler = createScheduler(opts.scheduler, this.table, this.schedulerOptions);
    this.home = this.homeScheduler();
    this.displaced = new DisplacedSet(opts.maxDisplaced);
    this.outer = {
      src: (opts.localAddr ?? 0) >>> 0,
      dst: 0,
      ttl: opts.ttl ?? 64,
      tos: 0,
      id: 0,
      // Outer DF clear: a client packet near the MTU still gets through (fragmented by the
      // kernel, reassembled by the node's), instead of an ICMP error only we would see.
      dontFrag: false,
      srcPort: 0,
      dstPort: 0,
      variant: this.variant,
      udpChecksum: opts.udpChecksum === true,
    };
    this.syncScheduler();
  }

  get schedulerName(): SchedulerName {
    return this.scheduler.name;
  }

  /** Switches the scheduler; existing connections stay where they are. */
  setScheduler(name: SchedulerName): void {
    this.scheduler = createScheduler(name, this.table, this.schedulerOptions);
    this.home = this.homeScheduler();
    this.schedulerVersion = -1;
    this.syncScheduler();
  }

  dropCount(reason: DropReason): number {
    return this.drops[DROP[reason]]!;
  }

  // Membership: every change rebuilds the scheduler; the table is never touched.
  upsertNode(spec: NodeSpec): { node: Node; created: boolean } {
    const r = this.nodes.upsert(spec);
    this.syncScheduler();
    return r;
  }

  removeNode(id: string): boolean {
    const r = this.nodes.remove(id);
    this.reap();
    this.syncScheduler();
    return r;
  }

  /** A health-check verdict at `now` (the clock input() gets, ms). */
  setHealth(id: string, state: NodeHealthState, now: number): boolean {
    const r = this.nodes.setHealth(id, state, now);
    this.syncScheduler();
    this.tickleLost(now);
    return r;
  }

  /** Periodic housekeeping: expire idle connections, forget drained nodes and displaced entries. */
  tick(now: number): void {
    this.tickleLost(now);
    this.table.expire(now, this.expireBatch);
    this.reap();
    this.displaced.prune((c) => {
      const e = this.table.lookup(c.src, c.srcPort, this.vip, this.port);
      return e >= 0 && this.nodes.bySlot(this.table.node(e))?.id === c.node;
    });
  }

  /**
   * Takes over the previous dispatcher's displaced connections (its state file): each gets an
   * entry on its node, so its packets do not follow the home placement. Call before the
   * first input(); connections of unknown nodes are skipped. Returns how many were taken.
   */
  adopt(list: readonly DisplacedConnection[], now: number): number {
    let n = 0;
    for (const c of list) {
      const node = this.nodes.get(c.node);
      if (node === undefined || node.removed) continue;
      if (this.table.lookup(c.src, c.srcPort, this.vip, this.port) >= 0) continue;
      if (
        this.table.insert(c.src, c.srcPort, this.vip, this.port, node.slot, ConnState.Established, now) < 0
      ) {
        break;
      }
      // Still displaced here: the next restart needs it too.
      this.displaced.record(c.src, c.srcPort, c.node);
      n++;
    }
    this.connectionsAdopted += n;
    return n;
  }

  /**
   * Handles one packet read from the TUN device: buf[off, off+len) is an IPv4 packet.
   * `now` is in ms.
   */
  input(buf: Uint8Array, off: number, len: number, now: number): void {
    this.packetsIn++;
    this.bytesIn += len;
    if (!this.accept(buf, off, len)) return;
    const ip = this.ip;
    const tcp = this.tcp;
    const src = ip.src;
    const sport = tcp.srcPort;
    const dport = tcp.dstPort;
    const flags = tcp.flags;
    const table = this.table;
    let e = table.lookup(src, sport, this.vip, dport);
    const isSyn = (flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN;
    if (e >= 0 && isSyn) {
      const state = table.state(e);
      // A SYN on a finished connection reuses its port (IPVS conn_reuse_mode); a SYN still
      // in handshake with a node that went down is retried elsewhere. Both start afresh.
      if (
        isReusable(state) ||
        (state === ConnState.SynRecv && this.nodes.bySlot(table.node(e))?.healthy !== true)
      ) {
        table.remove(e);
        e = -1;
      }
    }
    const node =
      e >= 0
        ? this.routeTracked(e, flags, now, tcp.payloadLength)
        : this.routeNew(src, sport, dport, flags, isSyn, now);
    if (node !== undefined) this.forward(node, buf, off, ip.totalLength, ip.tos, src, sport);
  }

  /**
   * Checks a packet for the VIP (IPv4, plausible source, TCP to one of our ports, checksum);
   * counts a drop and returns false otherwise. On true, this.ip and this.tcp view it.
   */
  private accept(buf: Uint8Array, off: number, len: number): boolean {
    const ip = this.ip;
    const err = ip.wrap(buf, off, len);
    if (err !== null) return this.dropped(ipDropReason(err));
    if (ip.dst !== this.vip) return this.dropped("wrong_dst");
    const src = ip.src;
    if (implausibleRemote(src) !== undefined || this.ownAddrs.has(src)) return this.dropped("bad_src");
    if (ip.protocol !== IP_PROTO_TCP) return this.dropped("not_tcp");
    const segOff = ip.payloadOffset;
    const segLen = ip.payloadLength;
    // Port first, checksum after: traffic for other ports is dropped without summing it.
    if (this.tcp.wrap(buf, segOff, segLen, src, this.vip, NO_CHECKSUM) !== null)
      return this.dropped("malformed");
    const dport = this.tcp.dstPort;
    if (dport !== this.port && !this.extraPorts.includes(dport)) return this.dropped("wrong_port");
    if (checksumAdd(buf, segOff, segLen, pseudoHeaderSum(src, this.vip, IP_PROTO_TCP, segLen)) !== 0xffff)
      return this.dropped("bad_checksum");
    return true;
  }

  private dropped(reason: DropReason): false {
    this.drop(reason);
    return false;
  }

  /** A packet of a connection in the table: its node, unless that node's connections are reset now. */
  private routeTracked(e: number, flags: number, now: number, payloadLength: number): Node | undefined {
    const node = this.nodes.bySlot(this.table.node(e));
    // (A node's slot outlives its last entry: undefined is for the type checker.)
    if (node === undefined) {
      this.resetConn(e, flags, "node_gone");
      return undefined;
    }
    const reset = this.resetReason(node, now);
    if (reset !== null) {
      node.rsts++;
      this.resetConn(e, flags, reset);
      return undefined;
    }
    if (!node.healthy) {
      node.downForwarded++;
      this.downForwarded++;
    }
    this.table.update(e, flags, now, payloadLength);
    return node;
  }

  /** A packet with no table entry: a SYN is scheduled; anything else is picked up where it most likely lives, or refused. */
  private routeNew(
    src: number,
    sport: number,
    dport: number,
    flags: number,
    isSyn: boolean,
    now: number,
  ): Node | undefined {
    if (!isSyn && !this.scheduler.consistent) {
      this.refuse(flags);
      return this.routeDropped("no_conn");
    }
    // A partial node set would pick up a connection where it does not live (and pin it
    // there), or refuse a SYN that a moment later has a node.
    if (this.warmingUp && !isSyn) return this.routeDropped("warming_up");
    const slot = (isSyn ? this.scheduler : (this.home ?? this.scheduler)).pick(src, sport);
    const node = slot >= 0 ? this.nodes.bySlot(slot) : undefined;
    if (node === undefined) {
      if (this.warmingUp) return this.routeDropped("warming_up");
      this.refuse(flags);
      return this.routeDropped("no_node");
    }
    const table = this.table;
    if (isSyn) {
      if (table.insert(src, sport, this.vip, dport, slot, ConnState.SynRecv, now) < 0) {
        this.refuse(flags);
        return this.routeDropped("table_full");
      }
      this.connectionsScheduled++;
      node.scheduled++;
      if (this.partial && this.home !== undefined && this.home.pick(src, sport) !== slot) {
        this.displaced.record(src, sport, node.id);
      }
    } else if ((flags & TCP_RST) === 0) {
      // The home node of a connection may be down (within the grace: forward) or gone.
      const reset = this.resetReason(node, now);
      if (reset !== null) {
        node.rsts++;
        this.refuse(flags);
        return this.routeDropped(reset);
      }
      if (!node.healthy) {
        node.downForwarded++;
        this.downForwarded++;
      }
      // Sloppy pick-up: sh/mh send the packet where the connection most likely lives. Its
      // entry starts unconfirmed like any other; without room it goes on untracked (the
      // next packet hashes to the same node).
      if (table.insert(src, sport, this.vip, dport, slot, nextState(-1, flags), now) >= 0) {
        this.connectionsRecovered++;
      }
    }
    return node;
  }

  private routeDropped(reason: DropReason): undefined {
    this.drop(reason);
    return undefined;
  }

  /**
   * Whether the connections of a down node are reset now, and why: it was removed while
   * down, its process is gone, or it has been down longer than the grace. null: keep
   * forwarding (it may be only slow).
   */
  private resetReason(node: Node, now: number): DropReason | null {
    // No verdict yet (just started, its connections adopted from the state file): not down.
    if (node.healthy || !node.checked) return null;
    if (node.removed) return "node_removed";
    if (node.gone) return "node_gone";
    if (now - node.downSince >= this.deadGraceMs) return "node_dead";
    return null;
  }

  private forward(
    node: Node,
    buf: Uint8Array,
    off: number,
    len: number,
    tos: number,
    src: number,
    sport: number,
  ): void {
    if (this.toNodeRange !== undefined) {
      // "inner": no copy and no view object here; the output copies buf[off, off+len).
      if (len + gueHeaderLength(this.variant) > UDP_MAX_GUE_PAYLOAD) return this.drop("too_big");
      this.countForward(node, len);
      this.toNodeRange(node, buf, off, len);
      return;
    }
    const inner = buf.subarray(off, off + len);
    let n: number | WireError;
    if (this.encap === "ipv4") {
      const o = this.outer;
      o.dst = node.addr;
      o.dstPort = node.port;
      o.tos = tos;
      o.id = this.ipId = (this.ipId + 1) & 0xffff;
      // Flow entropy in the source port, as Linux FOU/IPVS do, so a node can spread
      // receive work over queues or SO_REUSEPORT sockets.
      o.srcPort = 0xc000 | (hashEndpoint(src, sport) & 0x3fff);
      n = emitGueEncap(o, inner, this.arena, 0);
    } else {
      const h = gueHeaderLength(this.variant);
      if (h + len > this.arena.length) return this.drop("too_big");
      if (h > 0) {
        const a = this.arena;
        a[0] = 0;
        a[1] = 4; // proto: IPv4
        a[2] = 0;
        a[3] = 0;
      }
      this.arena.set(inner, h);
      n = h + len;
    }
    if (typeof n !== "number") return this.drop("too_big");
    this.countForward(node, len);
    this.out.toNode(node, this.arena.subarray(0, n));
  }

  private countForward(node: Node, len: number): void {
    node.packets++;
    node.bytes += len;
    this.packetsOut++;
    this.bytesOut += len;
  }

  /** Ends a connection the dispatcher cannot carry on: entry removed, RST to the client, counted. */
  private resetConn(entry: number, flags: number, why: DropReason): void {
    this.table.remove(entry);
    this.refuse(flags);
    this.drop(why);
  }

  /**
   * Answers the client's packet with a RST (RFC 9293 3.10.7.1): never to a RST; with
   * seq = its ACK if it has one, else seq 0 and an ACK of everything it sent.
   */
  private refuse(flags: number): void {
    if (flags & TCP_RST) return;
    const ip = this.ip;
    const tcp = this.tcp;
    const r = this.rst;
    r.srcPort = tcp.dstPort;
    r.dstPort = tcp.srcPort;
    if (flags & TCP_ACK) {
      r.seq = tcp.ack;
      r.ack = 0;
      r.flags = TCP_RST;
    } else {
      const segLen = tcp.payloadLength + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
      r.seq = 0;
      r.ack = (tcp.seq + segLen) >>> 0;
      r.flags = TCP_RST | TCP_ACK;
    }
    const n = emitIpv4Tcp(
      { src: this.vip, dst: ip.src, ttl: 64, tos: 0, id: 0, dontFrag: true },
      r,
      this.arena,
      0,
    );
    if (typeof n !== "number") return;
    this.rstsSent++;
    this.out.toClient(this.arena.subarray(0, n));
  }

  /**
   * Queues the connections of nodes lost since the last call (once per outage) and sends up to
   * tickleBatch tickles from the queue. An entry is tickled only if it still belongs to a
   * lost node when its turn comes (the node may be back).
   */
  private tickleLost(now: number): void {
    const nodes = this.nodes.list();
    // Forget the outages of nodes that are gone from the pool (removed and reaped).
    for (const n of this.tickled.keys()) if (!nodes.includes(n)) this.tickled.delete(n);
    for (const node of nodes) {
      if (this.resetReason(node, now) === null) {
        this.tickled.delete(node);
        continue;
      }
      if (this.tickled.get(node) === node.downSince) continue;
      this.tickled.set(node, node.downSince);
      const q = this.tickleQueue;
      this.table.forEachOfNode(node.slot, (e) => {
        const st = this.table.state(e);
        if (st !== ConnState.Established && st !== ConnState.FinWait) return;
        const t = this.table.tuple(e);
        q.push(t.srcAddr, t.srcPort, t.dstPort, node.slot);
      });
    }
    let budget = this.tickleBatch;
    const q = this.tickleQueue;
    while (this.tickleHead < q.length && budget > 0) {
      const i = this.tickleHead;
      this.tickleHead += 4;
      const e = this.table.lookup(q[i]!, q[i + 1]!, this.vip, q[i + 2]!);
      if (e < 0 || this.table.node(e) !== q[i + 3]) continue;
      const node = this.nodes.bySlot(q[i + 3]!);
      if (node !== undefined && this.resetReason(node, now) === null) continue;
      this.sendTickle(q[i]!, q[i + 1]!, q[i + 2]!);
      budget--;
    }
    if (this.tickleHead >= q.length && q.length > 0) {
      this.tickleQueue = [];
      this.tickleHead = 0;
    }
  }

  private sendTickle(client: number, clientPort: number, port: number): void {
    const t = this.tickle;
    t.srcPort = port;
    t.dstPort = clientPort;
    for (const seq of [0, 0x80000000]) {
      t.seq = seq;
      const n = emitIpv4Tcp(
        { src: this.vip, dst: client, ttl: 64, tos: 0, id: 0, dontFrag: true },
        t,
        this.arena,
        0,
      );
      if (typeof n !== "number") return;
      this.out.toClient(this.arena.subarray(0, n));
    }
    this.ticklesSent++;
  }

  private drop(reason: DropReason): void {
    this.drops[DROP[reason]]!++;
  }

  private reap(): void {
    if (this.nodes.reap((slot) => this.table.connections(slot)).length > 0) this.syncScheduler();
  }

  private homeScheduler(): Scheduler | undefined {
    if (!this.scheduler.consistent) return undefined;
    return createScheduler(this.scheduler.name, this.table, this.schedulerOptions);
  }

  private syncScheduler(): void {
    if (this.schedulerVersion === this.nodes.version) return;
    const eligible = this.nodes.eligible();
    this.scheduler.setNodes(eligible);
    if (this.home !== undefined) {
      const home = this.nodes.home();
      this.home.setNodes(home);
      this.partial = eligible.length < home.length;
    }
    this.warmingUp = this.nodes.awaitingFirstVerdict();
    this.schedulerVersion = this.nodes.version;
  }
}

/** A segment without options or payload, reused for every packet the dispatcher writes itself. */
function bareSegment(flags: number): TcpRepr {
  return {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags,
    window: 0,
    urgent: 0,
    options: {},
    payload: new Uint8Array(0),
  };
}

function ipDropReason(err: WireError): DropReason {
  switch (err.kind) {
    case "bad-version":
      return "not_ipv4";
    case "bad-checksum":
      return "bad_checksum";
    case "fragment":
      return "fragment";
    default:
      return "malformed";
  }
}
