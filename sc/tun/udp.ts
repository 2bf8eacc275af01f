// UdpBatchSocket: a UDP socket owned by the native addon (sc/tun/native/udp.c), read with
// recvmmsg and written with sendmmsg (+ UDP GSO), with GUE taken off on the way in and put on
// on the way out in C. The GUE data path's replacement for node:dgram (docs/tun.md,
// "Batched UDP"): one JS callback per batch of datagrams, no Buffer, rinfo or address string
// per datagram, one system call per batch of sends.
//
// Reading: onDatagrams(handler) gets one DatagramBatch per wake-up; entries are views into a
// buffer the next batch overwrites (copy what you keep before returning).
// Writing: send() copies a payload into a staging buffer; the queue goes out in one native
// call at the end of the current tick (process.nextTick), or at once by flush(). Failures
// are counted in stats (sendDrops*), never thrown.
import { EventEmitter } from "node:events";
import { constants as osConstants } from "node:os";
import { loadAddon, type NativeUdpHandle } from "./addon.js";
import { TunError } from "./errors.js";

/** Read counter slots (udp.c, enum UR_*). */
const UR_DATAGRAMS = 0;
const UR_CALLS = 1;
const UR_GRO_TRAINS = 2;
const UR_OVERFLOW = 3;
const UR_SLOTS = 4;
/** Send result slots (udp.c, enum US_*). */
const US_PACKETS = 0;
const US_BYTES = 1;
const US_AGAIN = 2;
const US_INVALID = 3;
const US_OTHER = 4;
const US_LAST_ERRNO = 5;
const US_CALLS = 6;
const US_GSO = 7;
const US_SLOTS = 8;

const SEND_FLAG_ENCAP = 1;
const SEND_FLAG_GSO = 2;

/** Bytes of the GUE variant-0 header the socket puts in front of each payload (encapsulate). */
export const GUE_ENCAP_HEADER_LEN = 4;
/** Largest UDP payload over IPv4. */
export const UDP_MAX_PAYLOAD = 65507;

export interface UdpBatchOptions {
  /** Local IPv4 address (uint32, host order) to bind; default 0 (all). */
  address?: number;
  /** Local port; 0 (default) lets the kernel pick one (see `port`). */
  port?: number;
  /** Datagrams per recvmmsg, 1..256 (default 64). Each gets a 64 KiB slot of the read buffer. */
  maxBatch?: number;
  /** SO_RCVBUF (default 4 MiB; capped by net.core.rmem_max). */
  receiveBufferSize?: number;
  /** SO_SNDBUF (default 4 MiB; capped by net.core.wmem_max). */
  sendBufferSize?: number;
  /** UDP_GRO: take trains of same-flow datagrams in one slot (split in C). Default true. */
  gro?: boolean;
  /** Check each datagram as GUE and report its inner IPv4 packet (default false: raw payloads). */
  decapsulate?: boolean;
  /** Put a GUE variant-0 header (inner IPv4) in front of every payload sent (default false). */
  encapsulate?: boolean;
  /**
   * Send with UDP GSO: the queue is grouped by destination (order kept per destination) and
   * runs of equal-sized payloads go out as one message. Default false.
   */
  gso?: boolean;
  /**
   * Largest datagram (UDP payload, GUE header included) sent as a GSO segment: segment plus
   * 28 header bytes must fit the path MTU or the kernel refuses the message (it is then sent
   * one datagram at a time). Default 1472 (MTU 1500).
   */
  gsoMaxSegment?: number;
  /**
   * An IPPROTO_RAW socket (IP_HDRINCL; needs CAP_NET_RAW) instead of UDP: sendIpv4() hands
   * whole IPv4 packets (e.g. outer IPv4/UDP/GUE built by the caller, which then chooses every
   * header field, such as a per-flow UDP source port) to the kernel's IP output, a batch per
   * sendmmsg. Not bound, nothing is read; encapsulate and gso do not apply.
   */
  raw?: boolean;
  /**
   * One socket of a SO_REUSEPORT group of this many (node --workers N), steered by a BPF
   * program on the inner packet's source address and port (udp.c attach_steering,
   * sc/gue/steering.ts): socket i of the group is the i-th bound. 0 (default): no reuseport.
   * Use gro: false with it (a GRO train of one outer flow may mix inner flows).
   */
  steerWorkers?: number;
}

export interface UdpBatchStats {
  /** Datagrams received (a GRO train counts per datagram in it). */
  datagramsIn: number;
  /** Callbacks made (datagramsIn / batchesIn = mean batch). */
  batchesIn: number;
  /** recvmmsg calls that returned data. */
  receiveCalls: number;
  /** Slots that held a GRO train of several datagrams. */
  groTrains: number;
  /** Datagrams dropped because a batch's entry array was full (bounded; never expected). */
  receiveOverflow: number;
  packetsOut: number;
  /** UDP payload bytes sent (GUE headers included). */
  bytesOut: number;
  /** sendmmsg/sendmsg calls (packetsOut / sendCalls = datagrams per system call). */
  sendCalls: number;
  /** Messages that carried several datagrams with UDP_SEGMENT. */
  gsoMessages: number;
  /** All payloads not sent: sendDropsAgain + sendDropsInvalid + sendDropsOther. */
  sendDrops: number;
  /** EAGAIN/ENOBUFS: the socket's send buffer was full. */
  sendDropsAgain: number;
  /** Bad length or port, EINVAL/EMSGSIZE. */
  sendDropsInvalid: number;
  /** Anything else (EHOSTUNREACH, ENETUNREACH, sent after close, ...). */
  sendDropsOther: number;
  lastSendErrno: number;
}

/** The datagrams of one wake-up. Valid only during the onDatagrams callback. */
export class DatagramBatch {
  /** Number of entries; 0 once the callback has returned. */
  count = 0;

  constructor(
    /** The whole shared read buffer. */
    readonly buffer: Uint8Array,
    private readonly meta: Int32Array,
  ) {}

  /** Where entry i starts: the inner IPv4 packet when decapsulating, else the payload. */
  offset(i: number): number {
    return this.meta[4 * i]!;
  }

  length(i: number): number {
    return this.meta[4 * i + 1]!;
  }

  /** The sender's IPv4 address (uint32). */
  address(i: number): number {
    return this.meta[4 * i + 2]! >>> 0;
  }

  port(i: number): number {
    return this.meta[4 * i + 3]! & 0xffff;
  }

  /**
   * With decapsulate: 0 for a valid GUE datagram, else 1 + the index of its reason in
   * sc/gue/receiver.ts GUE_DROP_REASONS (offset/length are then the whole payload).
   */
  code(i: number): number {
    return this.meta[4 * i + 3]! >>> 16;
  }

  /** A view (no copy) of entry i. */
  view(i: number): Uint8Array {
    const off = this.offset(i);
    return this.buffer.subarray(off, off + this.length(i));
  }
}

export type DatagramHandler = (batch: DatagramBatch) => void;

const WRITE_BUFFER_BYTES = 512 * 1024;
const WRITE_SLOTS = 1024;

export class UdpBatchSocket extends EventEmitter {
  /** The bound port. */
  readonly port: number;
  readonly fd: number;
  /** Whether UDP_GRO is on (asked for and accepted by the kernel). */
  readonly gro: boolean;
  readonly maxBatch: number;

  private readonly native: NativeUdpHandle;
  private handler: DatagramHandler | undefined;
  private reading = false;
  private isClosed = false;
  private readonly rbuf: ArrayBuffer;
  private readonly rmeta: Int32Array;
  private readonly rstat = new Float64Array(UR_SLOTS);
  private readonly batch: DatagramBatch;
  private readonly decapsulate: boolean;
  private batchesIn = 0;

  private readonly raw: boolean;
  private readonly sendFlags: number;
  private readonly gsoMaxSegment: number;
  private readonly wbuf = new ArrayBuffer(WRITE_BUFFER_BYTES);
  private readonly wbytes = new Uint8Array(this.wbuf);
  private readonly wmeta = new Int32Array(4 * WRITE_SLOTS);
  private readonly wres = new Float64Array(US_SLOTS);
  private wcount = 0;
  private wused = 0;
  private flushScheduled = false;

  /** Opens and binds the socket; throws the bind error (EADDRINUSE, ...) with code and errno. */
  static open(options: UdpBatchOptions = {}): UdpBatchSocket {
    return new UdpBatchSocket(options);
  }

  private constructor(o: UdpBatchOptions) {
    super();
    const addon = loadAddon();
    const maxBatch = o.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > addon.UDP_MAX_READ_BATCH) {
      throw new RangeError(`maxBatch must be an integer in 1..${addon.UDP_MAX_READ_BATCH}, got ${maxBatch}`);
    }
    const gsoMax = o.gsoMaxSegment ?? 1472;
    if (!Number.isInteger(gsoMax) || gsoMax < 1 || gsoMax > UDP_MAX_PAYLOAD) {
      throw new RangeError(`gsoMaxSegment must be an integer in 1..${UDP_MAX_PAYLOAD}, got ${gsoMax}`);
    }
    this.native = new addon.UdpHandle(
      (o.address ?? 0) >>> 0,
      o.port ?? 0,
      o.receiveBufferSize ?? 4 << 20,
      o.sendBufferSize ?? 4 << 20,
      o.raw !== true && (o.gro ?? true),
      o.raw === true,
      o.steerWorkers ?? 0,
    );
    this.port = this.native.port;
    this.fd = this.native.fd;
    this.gro = this.native.gro;
    this.maxBatch = maxBatch;
    this.decapsulate = o.decapsulate === true;
    this.rbuf = new ArrayBuffer(maxBatch * addon.UDP_SLOT_BYTES);
    this.rmeta = new Int32Array(4 * maxBatch * (this.gro ? addon.UDP_GRO_MAX_SEGS : 1));
    this.batch = new DatagramBatch(new Uint8Array(this.rbuf), this.rmeta);
    this.raw = o.raw === true;
    this.sendFlags = this.raw ? 0 : (o.encapsulate ? SEND_FLAG_ENCAP : 0) | (o.gso ? SEND_FLAG_GSO : 0);
    this.gsoMaxSegment = gsoMax;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Sets the handler for every batch received (null: stop reading). */
  onDatagrams(handler: DatagramHandler | null): this {
    this.handler = handler ?? undefined;
    const want = !this.isClosed && this.handler !== undefined;
    if (want !== this.reading) {
      if (want)
        this.native.startReading(
          this.rbuf,
          this.rmeta,
          this.rstat,
          this.maxBatch,
          this.decapsulate,
          this.onBatch,
        );
      else this.native.stopReading();
      this.reading = want;
    }
    return this;
  }

  ref(): this {
    this.native.ref();
    return this;
  }

  /** Reading no longer keeps the event loop alive. */
  unref(): this {
    this.native.unref();
    return this;
  }

  /**
   * Queues a copy of `payload` for address:port (a GUE header goes in front if the socket
   * encapsulates); the queue is sent at the end of the current tick. Returns false if it was
   * dropped at once (closed, too large); send errors found later are counted in stats.
   */
  send(address: number, port: number, payload: Uint8Array): boolean {
    return this.sendRange(address, port, payload, 0, payload.length);
  }

  /** send() of buf[off, off+len) (for callers that hold a packet as a range of a larger buffer). */
  sendRange(address: number, port: number, buf: Uint8Array, off: number, len: number): boolean {
    if (this.isClosed) return this.dropNow(US_OTHER, osConstants.errno.EBADF);
    const head = this.sendFlags & SEND_FLAG_ENCAP ? GUE_ENCAP_HEADER_LEN : 0;
    if (len + head > (this.raw ? 65535 : UDP_MAX_PAYLOAD))
      return this.dropNow(US_INVALID, osConstants.errno.EMSGSIZE);
    if (this.wcount === WRITE_SLOTS || this.wused + len > WRITE_BUFFER_BYTES) this.flush();
    const i = 4 * this.wcount;
    this.wbytes.set(len === buf.length && off === 0 ? buf : buf.subarray(off, off + len), this.wused);
    const m = this.wmeta;
    m[i] = this.wused;
    m[i + 1] = len;
    m[i + 2] = address | 0;
    m[i + 3] = port;
    this.wcount++;
    this.wused += (len + 7) & ~7;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.scheduledFlush);
    }
    return true;
  }

  /**
   * Raw sockets: queues a copy of the IPv4 packet buf[off, off+len) for its destination
   * address (bytes 16-19). Returns false if dropped at once (not raw, closed, too short).
   */
  sendIpv4(buf: Uint8Array, off: number, len: number): boolean {
    if (!this.raw || len < 20) return this.dropNow(US_INVALID, osConstants.errno.EINVAL);
    const dst = (buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!;
    return this.sendRange(dst, 0, buf, off, len);
  }

  /** Sends the queue now; returns how many datagrams went out. */
  flush(): number {
    const count = this.wcount;
    if (count === 0) return 0;
    this.wcount = 0;
    this.wused = 0;
    const before = this.wres[US_PACKETS]!;
    this.native.sendBatch(this.wbuf, this.wmeta, count, this.sendFlags, this.gsoMaxSegment, this.wres);
    return this.wres[US_PACKETS]! - before;
  }

  get stats(): UdpBatchStats {
    const w = this.wres;
    const r = this.rstat;
    return {
      datagramsIn: r[UR_DATAGRAMS]!,
      batchesIn: this.batchesIn,
      receiveCalls: r[UR_CALLS]!,
      groTrains: r[UR_GRO_TRAINS]!,
      receiveOverflow: r[UR_OVERFLOW]!,
      packetsOut: w[US_PACKETS]!,
      bytesOut: w[US_BYTES]!,
      sendCalls: w[US_CALLS]!,
      gsoMessages: w[US_GSO]!,
      sendDrops: w[US_AGAIN]! + w[US_INVALID]! + w[US_OTHER]!,
      sendDropsAgain: w[US_AGAIN]!,
      sendDropsInvalid: w[US_INVALID]!,
      sendDropsOther: w[US_OTHER]!,
      lastSendErrno: w[US_LAST_ERRNO]!,
    };
  }

  /** Sends what is queued, stops reading and closes the socket. Closing twice is harmless. */
  close(): void {
    if (this.isClosed) return;
    this.flush();
    this.isClosed = true;
    this.reading = false;
    this.handler = undefined;
    this.native.close();
    this.emit("close");
  }

  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    if (!this.isClosed) this.flush();
  };

  private dropNow(slot: number, errno: number): false {
    this.wres[slot]!++;
    this.wres[US_LAST_ERRNO] = errno;
    return false;
  }

  private readonly onBatch = (count: number, errno: number): void => {
    if (count > 0) {
      this.batchesIn++;
      const batch = this.batch;
      batch.count = count;
      try {
        this.handler?.(batch);
      } finally {
        batch.count = 0;
      }
    }
    if (errno !== 0 && !this.isClosed) {
      this.reading = false;
      const err = new TunError(`reading the UDP socket failed: errno ${errno}`, {
        code: "ERR_UDP_READ",
        errno,
        syscall: "recvmmsg",
      });
      this.emit("error", err);
    }
  };
}
