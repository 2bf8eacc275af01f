// TunDevice: one queue of a Linux TUN device (IFF_TUN | IFF_NO_PI), read in batches and
// written in batches through the native addon (sc/tun/native/tun.c).
//
// Reading: onPackets(handler) gets one PacketBatch per wake-up (up to maxBatch packets).
// The packets are views into a buffer that the next batch overwrites: a handler must copy
// (or fully process) what it keeps before it returns.
// Writing: write() copies the packet into a staging buffer and the queue is written with
// one native call at the end of the current tick (process.nextTick), or at once by flush().
// Failed writes are counted in stats (writeDrops*), never thrown.
import { EventEmitter } from "node:events";
import { constants as osConstants } from "node:os";
import {
  loadAddon,
  type NativeTunHandle,
  WR_AGAIN,
  WR_BYTES,
  WR_INVALID,
  WR_LAST_ERRNO,
  WR_OTHER,
  WR_PACKETS,
  WR_SLOTS,
} from "./addon.js";
import { checkInterfaceName, explainTunError, type SystemErrorLike, TunError } from "./errors.js";

/** TUNSETOFFLOAD bits (linux/if_tun.h): what the reader accepts from the kernel. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
/** Bytes of the virtio header in front of every packet when vnetHdr is on. */
export const VNET_HDR_LEN = 10;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
/** Largest packet: an IPv4 packet's total length is 16 bits. */
export const MAX_PACKET_BYTES = 65535;

export interface TunOpenOptions {
  /**
   * Interface name: an existing persistent TUN device (`ip tuntap add mode tun name X`) is
   * attached to, otherwise a new device is created and removed again on close. May hold
   * "%d" (the kernel picks the number). Leave out to let the kernel pick tunN.
   */
  name?: string;
  /** Set this MTU (only if it differs, so an already configured device needs no privilege). */
  mtu?: number;
  /** Bring the link up (only if it is down). */
  up?: boolean;
  /**
   * IFF_MULTI_QUEUE: several fds (TunDevices) on one device; must match how it was created.
   * "auto": one queue of an existing device whichever kind it is (a plain open, and on
   * EINVAL a multi-queue one), for a single reader that does not care.
   */
  multiQueue?: boolean | "auto";
  /** IFF_TUN_EXCL: fail with EBUSY if a device with this name exists. */
  exclusive?: boolean;
  /**
   * IFF_VNET_HDR: lets write() hand the kernel large TCP segments (gsoSize) whose checksums
   * it completes. Reads still return plain, checksummed packets unless `offload` says otherwise.
   */
  vnetHdr?: boolean;
  /** TUNSETOFFLOAD bits (TUN_F_*), only with vnetHdr; default 0. */
  offload?: number;
  /** Packets read per wake-up, 1..1024; default 64. */
  maxBatch?: number;
  /**
   * Read through io_uring: the reads of a wake-up go to the kernel in one system call instead
   * of one read(2) each (default true; only without `offload`, since each read then has an
   * MTU-sized slot; falls back to read(2) where io_uring is unavailable). The environment
   * variable SC_TUN_IO_URING=0 turns it off for a whole process (measurements).
   */
  ioUring?: boolean;
}

export interface TunStats {
  packetsIn: number;
  bytesIn: number;
  /** Wake-ups that delivered packets (packetsIn / batchesIn = mean batch size). */
  batchesIn: number;
  packetsOut: number;
  bytesOut: number;
  /** All packets not written: writeDropsAgain + writeDropsInvalid + writeDropsOther. */
  writeDrops: number;
  /** EAGAIN/ENOBUFS: the TUN socket's send buffer was full. */
  writeDropsAgain: number;
  /** EINVAL: not an IPv4/IPv6 packet, bad GSO request, empty or oversized. */
  writeDropsInvalid: number;
  /** Anything else: EIO (link down), EBADFD (device deleted), written after close. */
  writeDropsOther: number;
  /** errno of the last failed write (0: none). */
  lastWriteErrno: number;
  /** Reading goes through io_uring (asked for, allowed and working). */
  ioUring: boolean;
  /** io_uring reads that filled their MTU-sized slot (the MTU grew under the reader): dropped. */
  readsTruncated: number;
}

/** The packets of one read wake-up. Valid only during the onPackets callback. */
export class PacketBatch {
  /** Number of packets; 0 once the callback has returned. */
  count = 0;

  constructor(
    /** The whole shared read buffer; packet i is buffer[offset(i), offset(i) + length(i)). */
    readonly buffer: Uint8Array,
    private readonly meta: Int32Array,
    private readonly skip: number,
  ) {}

  offset(i: number): number {
    return this.meta[2 * i]! + this.skip;
  }

  length(i: number): number {
    return Math.max(0, this.meta[2 * i + 1]! - this.skip);
  }

  /** A view (no copy) of packet i. */
  packet(i: number): Uint8Array {
    const off = this.offset(i);
    return this.buffer.subarray(off, off + this.length(i));
  }

  *[Symbol.iterator](): IterableIterator<Uint8Array> {
    for (let i = 0; i < this.count; i++) yield this.packet(i);
  }
}

export type PacketHandler = (batch: PacketBatch) => void;

const WRITE_BUFFER_BYTES = 512 * 1024;
const WRITE_SLOTS = 1024;
const ROOM_PER_SMALL_PACKET = 2048;

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

/**
 * One open TUN queue. Events: 'error' (TunError; reading failed, e.g. the device was
 * deleted; reading has stopped), 'close'.
 */
export class TunDevice extends EventEmitter {
  /** The real interface name (the kernel's choice when a template or nothing was given). */
  readonly name: string;
  readonly fd: number;
  readonly multiQueue: boolean;
  readonly vnetHdr: boolean;
  readonly maxBatch: number;

  private readonly native: NativeTunHandle;
  private readonly ioUring: boolean;
  private handler: PacketHandler | undefined;
  private paused = false;
  private reading = false;
  private isClosed = false;

  private readonly rbuf: ArrayBuffer;
  private readonly rmeta: Int32Array;
  private readonly batch: PacketBatch;
  private packetsIn = 0;
  private bytesIn = 0;
  private batchesIn = 0;

  private readonly wbuf = new ArrayBuffer(WRITE_BUFFER_BYTES);
  private readonly wbytes = new Uint8Array(this.wbuf);
  private readonly wmeta = new Int32Array(4 * WRITE_SLOTS);
  private readonly wres = new Float64Array(WR_SLOTS);
  private wcount = 0;
  private wused = 0;
  private flushScheduled = false;

  /** Opens (attaches to or creates) a TUN device; throws a TunError that says what to do. */
  static open(options: TunOpenOptions = {}): TunDevice {
    if (options.multiQueue !== "auto") return new TunDevice({ ...options, multiQueue: options.multiQueue });
    try {
      return new TunDevice({ ...options, multiQueue: false });
    } catch (err) {
      if (!(err instanceof TunError && err.code === "EINVAL")) throw err;
      return new TunDevice({ ...options, multiQueue: true });
    }
  }

  private constructor(options: TunOpenOptions & { multiQueue?: boolean }) {
    super();
    const name = options.name ?? "";
    if (options.name !== undefined) {
      const bad = checkInterfaceName(name);
      if (bad) throw bad;
    }
    const addon = loadAddon();
    const maxBatch = options.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > addon.MAX_BATCH) {
      throw new TunError(`maxBatch must be an integer in 1..${addon.MAX_BATCH}, got ${maxBatch}`, {
        code: "ERR_TUN_BAD_OPTION",
      });
    }
    if (options.offload && !options.vnetHdr) {
      throw new TunError("offload needs vnetHdr: true", { code: "ERR_TUN_BAD_OPTION" });
    }
    try {
      this.native = new addon.TunHandle(name, !!options.multiQueue, !!options.vnetHdr, !!options.exclusive);
    } catch (err) {
      throw explainTunError(err as SystemErrorLike, name);
    }
    this.name = this.native.name;
    this.fd = this.native.fd;
    this.multiQueue = !!options.multiQueue;
    this.vnetHdr = !!options.vnetHdr;
    this.maxBatch = maxBatch;
    this.ioUring = (options.ioUring ?? true) && !options.offload && process.env.SC_TUN_IO_URING !== "0";
    this.rbuf = new ArrayBuffer(maxBatch * ROOM_PER_SMALL_PACKET + addon.MAX_PACKET);
    this.rmeta = new Int32Array(2 * maxBatch);
    this.batch = new PacketBatch(new Uint8Array(this.rbuf), this.rmeta, this.vnetHdr ? VNET_HDR_LEN : 0);
    try {
      // Always set: offloads stick to a persistent device, and a plain reader that inherits
      // TSO from an earlier user would be handed unsegmented, unchecksummed packets.
      this.native.setOffload(options.offload ?? 0);
      if (options.mtu !== undefined) this.setMtu(options.mtu);
      if (options.up) this.setUp(true);
    } catch (err) {
      this.native.close();
      throw err instanceof TunError ? err : explainTunError(err as SystemErrorLike, this.name);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get mtu(): number {
    return this.call(() => this.native.getMtu());
  }

  get ifindex(): number {
    return this.call(() => this.native.getIfindex());
  }

  isUp(): boolean {
    return (this.call(() => this.native.getFlags()) & IFF_UP) !== 0;
  }

  /**
   * Up, attached and switched on by the kernel: packets routed to the device now reach this
   * reader. The kernel turns a freshly attached device's queue on asynchronously (linkwatch,
   * usually well under a millisecond); until then it drops what is routed to it.
   */
  isRunning(): boolean {
    return (this.call(() => this.native.getFlags()) & (IFF_UP | IFF_RUNNING)) === (IFF_UP | IFF_RUNNING);
  }

  /** Resolves once isRunning(); rejects at once if the link is down, or after timeoutMs. */
  async whenRunning(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // No netlink here: the flag flips within milliseconds, a 1 ms poll is the simplest wait.
    while (!this.isRunning()) {
      if (!this.isUp()) {
        throw new TunError(
          `TUN device '${this.name}' is down: open it with up: true or run ip link set ${this.name} up`,
          { code: "ERR_TUN_DOWN" },
        );
      }
      if (Date.now() > deadline) {
        throw new TunError(`TUN device '${this.name}' did not start running within ${timeoutMs} ms`, {
          code: "ERR_TUN_NOT_RUNNING",
        });
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  setMtu(mtu: number): void {
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > MAX_PACKET_BYTES) {
      throw new TunError(`MTU must be an integer in 68..65535, got ${mtu}`, { code: "ERR_TUN_BAD_OPTION" });
    }
    this.call(() => this.native.setMtu(mtu));
  }

  setUp(up = true): void {
    this.call(() => this.native.setUp(up));
  }

  /**
   * Multi-queue devices: a detached queue (false) receives no packets, the kernel spreads them
   * over the attached queues only, but it keeps a device this process created alive.
   */
  setQueueAttached(attached: boolean): void {
    if (!this.multiQueue) {
      throw new TunError(`${this.name}: only a multiQueue queue can be detached`, {
        code: "ERR_TUN_BAD_OPTION",
      });
    }
    this.call(() => this.native.setQueueAttached(attached));
  }

  /**
   * Sets the handler that receives every batch of packets read (null: stop reading). Reading
   * starts when a handler is set; the handler runs once per wake-up.
   */
  onPackets(handler: PacketHandler | null): this {
    this.handler = handler ?? undefined;
    this.updateReading();
    return this;
  }

  /** Stops reading (packets queue in the kernel, up to the device's txqueuelen). */
  pause(): this {
    this.paused = true;
    this.updateReading();
    return this;
  }

  resume(): this {
    this.paused = false;
    this.updateReading();
    return this;
  }

  /** Reading keeps the event loop alive (the default). */
  ref(): this {
    this.native.ref();
    return this;
  }

  /** Reading no longer keeps the event loop alive: an otherwise idle process may exit. */
  unref(): this {
    this.native.unref();
    return this;
  }

  /**
   * Queues a copy of one IP packet; the queue is written at the end of the current tick.
   * `gsoSize` > 0 (vnetHdr only): an IPv4/TCP packet larger than the MTU that the kernel cuts
   * into gsoSize-byte segments, completing their TCP checksums; the checksum field must hold
   * the pseudo-header sum (not complemented) over the whole TCP length.
   * Returns false if the packet was dropped at once (closed, empty, too large); write errors
   * found later are counted in stats.
   */
  write(packet: Uint8Array, gsoSize = 0): boolean {
    const len = packet.length;
    if (this.isClosed) return this.dropNow(WR_OTHER, osConstants.errno.EBADF);
    if (len === 0 || len > MAX_PACKET_BYTES) return this.dropNow(WR_INVALID, osConstants.errno.EINVAL);
    if (this.wcount === WRITE_SLOTS || this.wused + len > WRITE_BUFFER_BYTES) this.flush();
    const i = 4 * this.wcount;
    this.wbytes.set(packet, this.wused);
    this.wmeta[i] = this.wused;
    this.wmeta[i + 1] = len;
    this.wmeta[i + 2] = gsoSize;
    this.wcount++;
    this.wused += (len + 7) & ~7;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.scheduledFlush);
    }
    return true;
  }

  /**
   * Writes the queue, then `packets`, now, without copying them. Returns how many of
   * `packets` were written; failures are counted in stats.
   */
  writeBatch(packets: readonly Uint8Array[]): number {
    this.flush();
    if (this.isClosed) {
      for (let i = 0; i < packets.length; i++) this.dropNow(WR_OTHER, osConstants.errno.EBADF);
      return 0;
    }
    const before = this.wres[WR_PACKETS]!;
    this.native.writeList(packets, this.wres);
    return this.wres[WR_PACKETS]! - before;
  }

  /** Writes the queued packets now; returns how many were written. */
  flush(): number {
    const count = this.wcount;
    if (count === 0) return 0;
    this.wcount = 0;
    this.wused = 0;
    const before = this.wres[WR_PACKETS]!;
    this.native.writePackets(this.wbuf, this.wmeta, count, this.wres);
    return this.wres[WR_PACKETS]! - before;
  }

  get stats(): TunStats {
    const w = this.wres;
    return {
      packetsIn: this.packetsIn,
      bytesIn: this.bytesIn,
      batchesIn: this.batchesIn,
      packetsOut: w[WR_PACKETS]!,
      bytesOut: w[WR_BYTES]!,
      writeDrops: w[WR_AGAIN]! + w[WR_INVALID]! + w[WR_OTHER]!,
      writeDropsAgain: w[WR_AGAIN]!,
      writeDropsInvalid: w[WR_INVALID]!,
      writeDropsOther: w[WR_OTHER]!,
      lastWriteErrno: w[WR_LAST_ERRNO]!,
      ...this.readStats(),
    };
  }

  private readStats(): { ioUring: boolean; readsTruncated: number } {
    const [uring, truncated] = this.native.readStats();
    return { ioUring: uring === 1, readsTruncated: truncated };
  }

  /**
   * Writes what is queued, stops reading and closes the fd; a device this process created
   * disappears, a persistent one stays. Nothing of it keeps the process alive afterwards.
   * Closing twice is harmless.
   */
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
    this.wres[WR_LAST_ERRNO] = errno;
    return false;
  }

  private updateReading(): void {
    const want = !this.isClosed && !this.paused && this.handler !== undefined;
    if (want === this.reading) return;
    if (want) this.native.startReading(this.rbuf, this.rmeta, this.maxBatch, this.onBatch, this.ioUring);
    else this.native.stopReading();
    this.reading = want;
  }

  private readonly onBatch = (count: number, errno: number): void => {
    if (count > 0) {
      const batch = this.batch;
      const meta = this.rmeta;
      let bytes = 0;
      for (let i = 1; i < 2 * count; i += 2) bytes += meta[i]!;
      this.packetsIn += count;
      this.bytesIn += bytes - count * (this.vnetHdr ? VNET_HDR_LEN : 0);
      this.batchesIn++;
      batch.count = count;
      try {
        this.handler?.(batch);
      } finally {
        batch.count = 0;
      }
    }
    if (errno !== 0 && !this.isClosed) {
      // The addon has stopped polling this fd already.
      this.reading = false;
      const code = errnoNames.get(errno) ?? `errno ${errno}`;
      const err = new TunError(
        `reading from TUN device '${this.name}' failed: ${code}` +
          (code === "EBADFD" || code === "EBADF" ? " (the device was deleted while open)" : ""),
        { code, errno, syscall: "read" },
      );
      this.emit("error", err);
    }
  };

  private call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw explainTunError(err as SystemErrorLike, this.name);
    }
  }
}
