// The node's end of the GUE tunnel (DESIGN.md sections 3-4): a UDP socket on port 6080 that
// takes the client packets the dispatcher (or Linux IPVS, or Katran) encapsulated, checks
// them, and hands each inner IPv4 packet to the node's TCP stack. Replies do not come back
// this way: the stack writes them to its own TUN device with the VIP as source (direct
// return).
//
// It lives in sc/ because it is the node stack's packet input; the dispatcher only sends.
// decapsulate() is the pure part (the reference for the C codec in sc/tun/native/udp.c);
// GueReceiver adds the socket: the addon's batched UDP socket (recvmmsg + GRO, GUE checked in
// C), so a burst of datagrams is one callback, and the caller flushes its stack once per
// batch (onBatchEnd), not once per datagram.
import { UdpBatchSocket, type DatagramBatch } from "../tun/udp.js";
import {
  GUE_PORT,
  Ipv4CidrSet,
  checkIpv4,
  gueInnerOffset,
  ipv4FromString,
  ipv4ToString,
  isWireError,
} from "../wire/index.js";
import { steerWorker } from "./steering.js";

/** Why a datagram was not passed on. */
export const GUE_DROP_REASONS = [
  /** Shorter than its GUE header, or than the inner packet's length field says. */
  "truncated",
  /** GUE version 2 or 3, or a variant-1 payload that is not IP. */
  "bad_version",
  /** A GUE control message (C bit): nothing here uses them. */
  "control",
  /** Inner protocol is not IPv4 (e.g. IPv6). */
  "unsupported",
  /** The inner IPv4 header is invalid (lengths, version, checksum). */
  "bad_inner",
  /** The inner packet is an IP fragment: the stack does not reassemble. */
  "fragment",
  /** From an address outside allowFrom (GUE has no authentication: the sender's address is all it has). */
  "not_allowed",
] as const;
export type GueDropReason = (typeof GUE_DROP_REASONS)[number];

export interface Decapsulated {
  /** Offset and length of the inner IPv4 packet in the datagram (trimmed to its total length). */
  offset: number;
  length: number;
  /** 0: 4-byte GUE header (plus extensions) before it; 1: bare IPv4. */
  variant: 0 | 1;
}

/** Checks a GUE UDP payload and finds the inner IPv4 packet in it. Pure, never throws. */
export function decapsulate(datagram: Uint8Array): Decapsulated | GueDropReason {
  const at = gueInnerOffset(datagram, 0, datagram.length);
  if (isWireError(at)) {
    switch (at.kind) {
      case "bad-version":
        return "bad_version";
      case "gue-control":
        return "control";
      case "unsupported":
        return "unsupported";
      default:
        return "truncated";
    }
  }
  const err = checkIpv4(datagram, at, datagram.length - at, true, false);
  if (err !== null) {
    if (err.kind === "truncated") return "truncated";
    if (err.kind === "fragment") return "fragment";
    return "bad_inner";
  }
  const length = (datagram[at + 2]! << 8) | datagram[at + 3]!;
  return { offset: at, length, variant: at === 0 ? 1 : 0 };
}

export interface GueReceiverOptions {
  /** UDP port (default 6080; 0: the kernel picks one, see address()). */
  port?: number;
  /** Local address to bind (default all: 0.0.0.0). */
  address?: string;
  /**
   * Called with each valid inner IPv4 packet: a view into the shared read buffer, valid only
   * during the call. `from` is the sender's address (one cached string per sender).
   */
  onPacket: (packet: Uint8Array, from: string) => void;
  /** Called once after the packets of each received batch (flush the stack here). */
  onBatchEnd?: () => void;
  /**
   * Accept datagrams only from these senders: IPv4 prefixes ("198.18.0.1", "198.18.0.0/24"),
   * normally the dispatcher (or IPVS/Katran front) and the cluster's members. Required: GUE
   * has no authentication, and whoever reaches the port injects packets with any client
   * source into the stack. Accepting everyone takes an explicit "0.0.0.0/0".
   */
  allowFrom: readonly string[] | Ipv4CidrSet;
  /** SO_RCVBUF in bytes (default 4 MiB), so bursts queue in the kernel instead of dropping. */
  receiveBufferSize?: number;
  /** Datagrams per recvmmsg (1..256, default 64). */
  maxBatch?: number;
  /** UDP_GRO: the kernel may pass trains of same-flow datagrams whole (default true). */
  gro?: boolean;
  /**
   * Node --workers N: this is worker `index`'s socket of a SO_REUSEPORT group of `workers`,
   * which the kernel steers by the inner packet's source (steering.ts); bound in worker
   * order. GRO is then off (a train of one outer flow may carry several inner flows), and
   * packets that reach this socket but belong to another worker are counted (wrongWorker).
   */
  steering?: { workers: number; index: number };
}

export interface GueReceiverStats {
  datagrams: number;
  packets: number;
  bytes: number;
  /** Callbacks from the socket (datagrams / batches = mean batch). */
  batches: number;
  /** GRO trains the kernel handed over whole (split in C). */
  groTrains: number;
  /** With steering: valid packets that belong to another worker (must stay 0). */
  wrongWorker: number;
  drops: Record<GueDropReason, number>;
}

/** Sender address strings kept (the allow-list bounds who gets here; cleared when full). */
const SENDER_NAMES_MAX = 1024;

export class GueReceiver {
  datagrams = 0;
  packets = 0;
  bytes = 0;
  /** With steering: valid packets the steering function gives to another worker. */
  wrongWorker = 0;
  readonly drops: Record<GueDropReason, number> = Object.fromEntries(
    GUE_DROP_REASONS.map((r) => [r, 0]),
  ) as Record<GueDropReason, number>;
  private readonly senderNames = new Map<number, string>();

  private constructor(
    private readonly socket: UdpBatchSocket,
    private readonly bound: string,
    private readonly onPacket: (packet: Uint8Array, from: string) => void,
    private readonly onBatchEnd: (() => void) | undefined,
    /** Who may send (checked on every datagram before anything else). */
    readonly allow: Ipv4CidrSet,
    private readonly steering: { workers: number; index: number } | undefined,
  ) {
    socket.onDatagrams(this.onBatch);
  }

  /** Binds the socket; rejects with the socket error (e.g. EADDRINUSE) if it cannot. */
  static open(opts: GueReceiverOptions): Promise<GueReceiver> {
    try {
      const allow = allowSet(opts.allowFrom);
      const bound = opts.address ?? "0.0.0.0";
      const addr = ipv4FromString(bound);
      if (isWireError(addr)) throw new RangeError(`address '${bound}': ${addr.detail}`);
      const st = opts.steering;
      if (
        st &&
        (!Number.isInteger(st.workers) ||
          st.workers < 1 ||
          !Number.isInteger(st.index) ||
          st.index < 0 ||
          st.index >= st.workers)
      ) {
        throw new RangeError(`steering: index ${st.index} of ${st.workers} workers`);
      }
      const socket = UdpBatchSocket.open({
        address: addr,
        port: opts.port ?? GUE_PORT,
        maxBatch: opts.maxBatch ?? 64,
        receiveBufferSize: opts.receiveBufferSize ?? 4 << 20,
        sendBufferSize: 0,
        gro: st ? false : (opts.gro ?? true),
        decapsulate: true,
        ...(st ? { steerWorkers: st.workers } : {}),
      });
      return Promise.resolve(new GueReceiver(socket, bound, opts.onPacket, opts.onBatchEnd, allow, st));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** The bound address and port (port 0 asks the kernel to pick one). */
  address(): { address: string; port: number } {
    return { address: this.bound, port: this.socket.port };
  }

  stats(): GueReceiverStats {
    const s = this.socket.stats;
    return {
      datagrams: this.datagrams,
      packets: this.packets,
      bytes: this.bytes,
      batches: s.batchesIn,
      groTrains: s.groTrains,
      wrongWorker: this.wrongWorker,
      drops: { ...this.drops },
    };
  }

  /** One batch from the socket: GUE already checked in C (code 0: valid). */
  private readonly onBatch = (b: DatagramBatch): void => {
    const allow = this.allow;
    const buf = b.buffer;
    for (let i = 0; i < b.count; i++) {
      this.datagrams++;
      const addr = b.address(i);
      if (!allow.has(addr)) {
        this.drops.not_allowed++;
        continue;
      }
      const code = b.code(i);
      if (code !== 0) {
        this.drops[GUE_DROP_REASONS[code - 1] ?? "truncated"]++;
        continue;
      }
      const off = b.offset(i);
      const len = b.length(i);
      const st = this.steering;
      if (st && steerWorker(buf, off, st.workers) !== st.index) this.wrongWorker++;
      this.packets++;
      this.bytes += len;
      this.onPacket(buf.subarray(off, off + len), this.senderName(addr));
    }
    this.onBatchEnd?.();
  };

  private senderName(addr: number): string {
    let name = this.senderNames.get(addr);
    if (name === undefined) {
      if (this.senderNames.size >= SENDER_NAMES_MAX) this.senderNames.clear();
      name = ipv4ToString(addr);
      this.senderNames.set(addr, name);
    }
    return name;
  }

  /** Handles one datagram in TypeScript (other transports and tests; the socket uses onBatch). */
  receive(datagram: Uint8Array, from: string): void {
    this.datagrams++;
    const src = ipv4FromString(from);
    if (isWireError(src) || !this.allow.has(src)) {
      this.drops.not_allowed++;
      return;
    }
    const d = decapsulate(datagram);
    if (typeof d === "string") {
      this.drops[d]++;
      return;
    }
    const st = this.steering;
    if (st && steerWorker(datagram, d.offset, st.workers) !== st.index) this.wrongWorker++;
    this.packets++;
    this.bytes += d.length;
    this.onPacket(datagram.subarray(d.offset, d.offset + d.length), from);
  }

  close(): Promise<void> {
    this.socket.close();
    return Promise.resolve();
  }
}
/** The allow-list as a set; a bad or empty list is a RangeError (an empty list would drop everything). */
export function allowSet(allowFrom: readonly string[] | Ipv4CidrSet): Ipv4CidrSet {
  const set = allowFrom instanceof Ipv4CidrSet ? allowFrom : Ipv4CidrSet.parse(allowFrom);
  if (isWireError(set)) throw new RangeError(`allowFrom: ${set.detail}`);
  if (set.size === 0) throw new RangeError("allowFrom is empty: no sender could reach the stack");
  return set;
}
