// The Packet Router (paper sections 2.1 and 2.3): on the ORIGINAL node, a table of the
// connections currently cloned to another node. Client packets of such a connection are
// forwarded to the clone's node; the original's stack sees them too (in shadow mode), so
// every client ACK first advances the original's send state (snd_una, snd_nxt) before it is
// forwarded: the triangular implicit state synchronisation. The clone's response is done
// when the client has acknowledged `start + responseLength` (paper section 3.1).
//
// Pure: no I/O; time is passed in. The node's glue (server/modes/sc.ts) feeds it packets,
// sends what it says to forward, and acts on completions and expiries.
import { seqDiff, seqGt } from "../tcp/seq.js";
import { Ipv4Packet, IP_PROTO_TCP } from "../wire/ipv4.js";
import { TCP_HEADER_LEN, TCPOPT_SACK, TcpPacket } from "../wire/tcp.js";

/** A quick look at an IPv4+TCP packet: enough to find its router entry and judge it. */
export interface TcpPeek {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  /** The raw window field (unscaled). */
  window: number;
  /** TCP payload bytes. */
  payloadLength: number;
  /** A SACK option is present. */
  sack: boolean;
}

/** A zeroed TcpPeek, for the one reused per packet loop (peekTcp fills it in place). */
export function newTcpPeek(): TcpPeek {
  return {
    src: 0,
    dst: 0,
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    payloadLength: 0,
    sack: false,
  };
}

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

const ipView = new Ipv4Packet();
const tcpView = new TcpPacket();

/**
 * Reads the 4-tuple, sequence numbers, flags and window of an IPv4+TCP packet through the
 * sc/wire views (no checksum check: the stack verifies what it receives); undefined if it is
 * not an unfragmented IPv4+TCP packet.
 */
export function peekTcp(p: Uint8Array, out: TcpPeek): TcpPeek | undefined {
  if (ipView.wrap(p, 0, p.length, NO_CHECKSUM) !== null || ipView.protocol !== IP_PROTO_TCP) return undefined;
  const off = ipView.payloadOffset;
  const len = ipView.totalLength - ipView.headerLength;
  if (tcpView.wrap(p, off, len, 0, 0, NO_CHECKSUM) !== null) return undefined;
  out.src = ipView.src;
  out.dst = ipView.dst;
  out.srcPort = tcpView.srcPort;
  out.dstPort = tcpView.dstPort;
  out.seq = tcpView.seq;
  out.ack = tcpView.ack;
  out.flags = tcpView.flags;
  out.window = tcpView.window;
  out.payloadLength = tcpView.payloadLength;
  out.sack = tcpView.headerLength > TCP_HEADER_LEN && tcpView.hasOption(TCPOPT_SACK);
  return out;
}

const NO_CHECKSUM = { verifyChecksum: false } as const;

export type EntryState =
  /** CLONE sent, no SC-ACK yet: forward (the clone may already exist), length unknown. */
  | "pending"
  /** SC-ACK received: forwarding until the client acknowledges start + length. */
  | "active";

export interface RouterEntry<P> {
  readonly remoteAddr: number;
  readonly remotePort: number;
  readonly localAddr: number;
  readonly localPort: number;
  /** Where the clone lives. */
  readonly peer: P;
  /** The original's snd_nxt when it cloned: the first sequence number of the response. */
  readonly start: number;
  state: EntryState;
  /** Response length in bytes, once known (responses may exceed 2^31: counted, not compared). */
  length: number;
  /** Highest acknowledgement seen from the client (the synchronised snd_una). */
  acked: number;
  /** Response bytes the client has acknowledged so far (acked - start, without wrapping). */
  ackedBytes: number;
  /** When the acknowledged point last moved (or the entry was made). */
  lastProgress: number;
  /** When the client's FIN was first seen, or -1. */
  finAt: number;
  /** The last window field seen from the client, or -1. */
  window: number;
  packetsForwarded: number;
}

export type RouterVerdict =
  /** Not a cloned connection, or nothing the clone needs: to the local stack only. */
  | "local"
  /** Forward to the clone's node and give to the local stack (shadow). */
  | "forward"
  /**
   * The ACK that completes the response: the local stack takes it and the caller ends routing
   * with complete(); it tells the clone by a message (countNotRelayed) or, when it cannot,
   * forwards the ACK (countForwarded).
   */
  | "complete";

export interface RouterOptions {
  /** After the client's FIN, the entry goes once no progress was seen for this long (paper 2.3). */
  finLingerMs: number;
  /** An active entry with no acknowledgement progress for this long is reported as stalled. */
  stallMs: number;
}

export const ROUTER_DEFAULTS: RouterOptions = { finLingerMs: 10_000, stallMs: 5_000 };

export type Expiry<P> = { entry: RouterEntry<P>; why: "fin-timeout" | "stalled" };

function keyOf(remoteAddr: number, remotePort: number): number {
  // 48 bits: exact in a double.
  return remoteAddr * 65536 + remotePort;
}

export class PacketRouter<P> {
  private readonly table = new Map<number, RouterEntry<P>>();
  private readonly opts: RouterOptions;
  forwarded = 0;
  /** Client packets of cloned connections the clone did not need (kept local only). */
  notRelayed = 0;
  completed = 0;
  expired = 0;

  constructor(opts: Partial<RouterOptions> = {}) {
    this.opts = { ...ROUTER_DEFAULTS, ...opts };
  }

  get size(): number {
    return this.table.size;
  }

  /** Starts routing a connection to `peer` (before the CLONE message is sent). */
  add(
    tuple: { remoteAddr: number; remotePort: number; localAddr: number; localPort: number },
    peer: P,
    start: number,
    now: number,
  ): RouterEntry<P> {
    const key = keyOf(tuple.remoteAddr, tuple.remotePort);
    if (this.table.has(key)) throw new Error("connection is already cloned");
    // Fields written out (no spread): one object shape for every entry.
    const e: RouterEntry<P> = {
      remoteAddr: tuple.remoteAddr,
      remotePort: tuple.remotePort,
      localAddr: tuple.localAddr,
      localPort: tuple.localPort,
      peer,
      start,
      state: "pending",
      length: 0,
      acked: start,
      ackedBytes: 0,
      lastProgress: now,
      finAt: -1,
      window: -1,
      packetsForwarded: 0,
    };
    this.table.set(key, e);
    return e;
  }

  /** The SC-ACK arrived: the response is `length` bytes from `start`. */
  activate(e: RouterEntry<P>, length: number, now: number): void {
    e.state = "active";
    e.length = length;
    e.lastProgress = now;
  }

  remove(e: RouterEntry<P>): void {
    const key = keyOf(e.remoteAddr, e.remotePort);
    if (this.table.get(key) === e) this.table.delete(key);
  }

  lookup(pk: TcpPeek): RouterEntry<P> | undefined {
    const e = this.table.get(keyOf(pk.src, pk.srcPort));
    if (e === undefined || e.localAddr !== pk.dst || e.localPort !== pk.dstPort) return undefined;
    return e;
  }

  /**
   * Decides what to do with a client packet; updates the entry's progress and FIN state. The
   * clone gets only what its sending side needs: ACKs that advance, duplicate ACKs (fast
   * retransmit), SACKs, window changes and RSTs; not retransmitted data, not the next
   * request's bytes (the original holds those and acknowledges them when it takes over).
   */
  route(pk: TcpPeek, now: number): { verdict: RouterVerdict; entry: RouterEntry<P> | undefined } {
    const e = this.lookup(pk);
    if (e === undefined) return { verdict: "local", entry: undefined };
    const flags = pk.flags;
    if (flags & (TCP_FIN | TCP_RST) && e.finAt < 0) e.finAt = now;
    let relay = (flags & TCP_RST) !== 0 || pk.sack;
    if (flags & TCP_ACK) {
      if (seqGt(pk.ack, e.acked)) {
        e.ackedBytes += seqDiff(pk.ack, e.acked);
        e.acked = pk.ack;
        e.lastProgress = now;
        relay = true;
      } else if (pk.window !== e.window) relay = true;
      else if (pk.ack === e.acked && pk.payloadLength === 0 && (flags & (TCP_SYN | TCP_FIN)) === 0)
        relay = true; // a duplicate ACK
    }
    e.window = pk.window;
    if (!relay) {
      this.notRelayed++;
      return { verdict: "local", entry: e };
    }
    if (this.isComplete(e) && (flags & TCP_RST) === 0) return { verdict: "complete", entry: e };
    e.packetsForwarded++;
    this.forwarded++;
    return { verdict: "forward", entry: e };
  }

  /** True once the client has acknowledged the whole response. */
  isComplete(e: RouterEntry<P>): boolean {
    return e.state === "active" && e.ackedBytes >= e.length;
  }

  /** The response is acknowledged: routing ends (no linger; the clone's node gets a DONE). */
  complete(e: RouterEntry<P>): void {
    this.remove(e);
    this.completed++;
  }

  /** Counts the completing packet when the caller ends the clone by a message instead. */
  countNotRelayed(): void {
    this.notRelayed++;
  }

  /** Counts the completing packet, which the caller forwards. */
  countForwarded(e: RouterEntry<P>): void {
    e.packetsForwarded++;
    this.forwarded++;
  }

  /** Earliest time an expiry check could report something, or Infinity. */
  pollAt(): number {
    let at = Infinity;
    for (const e of this.table.values()) {
      if (e.finAt >= 0) at = Math.min(at, Math.max(e.finAt, e.lastProgress) + this.opts.finLingerMs);
      if (e.state === "active") at = Math.min(at, e.lastProgress + this.opts.stallMs);
    }
    return at;
  }

  /**
   * Entries whose FIN linger ran out (removed: routing stops, paper 2.3) and active entries
   * that made no progress for stallMs (left in place; the caller decides, e.g. resumes).
   */
  expire(now: number): Expiry<P>[] {
    const out: Expiry<P>[] = [];
    for (const e of this.table.values()) {
      if (e.finAt >= 0 && now >= Math.max(e.finAt, e.lastProgress) + this.opts.finLingerMs) {
        this.remove(e);
        this.expired++;
        out.push({ entry: e, why: "fin-timeout" });
      } else if (e.state === "active" && now >= e.lastProgress + this.opts.stallMs) {
        e.lastProgress = now; // report a stall once per stallMs
        out.push({ entry: e, why: "stalled" });
      }
    }
    return out;
  }

  entries(): IterableIterator<RouterEntry<P>> {
    return this.table.values();
  }
}
