// Loads the native addon (sc/tun/native, built by `npm install` through
// scripts/build-addon.mjs) and describes its interface. sc/tun/tun.ts uses the TUN part,
// sc/net/priority.ts the socket marking (sockopt.c), sc/tun/udp.ts the batched UDP (udp.c),
// sc/auth/link.ts the SC links' AEAD contexts (aead.c).
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TunError } from "./errors.js";

/** The native handle: one open TUN queue (fd). All sizes and slots are documented in tun.c. */
export interface NativeTunHandle {
  readonly name: string;
  readonly fd: number;
  getMtu(): number;
  setMtu(mtu: number): void;
  /** SIOCGIFFLAGS: IFF_UP = 0x1, IFF_RUNNING = 0x40, ... */
  getFlags(): number;
  setUp(up: boolean): void;
  getIfindex(): number;
  setOffload(flags: number): void;
  /** TUNSETQUEUE (multi-queue devices): a detached queue receives nothing but keeps the device. */
  setQueueAttached(attached: boolean): void;
  /** meta gets [offset, length] per packet; onBatch(count, errno) runs once per wake-up. */
  startReading(
    buffer: ArrayBuffer,
    meta: Int32Array,
    maxBatch: number,
    onBatch: (count: number, errno: number) => void,
    /** Read through io_uring (several reads per system call); only without offloads. */
    ioUring?: boolean,
  ): void;
  /** [io_uring reads in use (0/1), reads dropped for filling their MTU-sized slot]. */
  readStats(): [number, number];
  stopReading(): void;
  ref(): void;
  unref(): void;
  /** meta holds [offset, length, gsoSize, 0] per packet; adds to result (WR_* slots). */
  writePackets(buffer: ArrayBuffer, meta: Int32Array, count: number, result: Float64Array): void;
  writeList(packets: readonly Uint8Array[], result: Float64Array): void;
  close(): void;
}

/** The native batched UDP socket (udp.c): bound at construction; slots documented there. */
export interface NativeUdpHandle {
  readonly fd: number;
  /** The bound port. */
  readonly port: number;
  /** UDP_GRO accepted by the kernel. */
  readonly gro: boolean;
  /** meta gets [offset, length, address, port | code << 16] per datagram; stats the UR_* slots. */
  startReading(
    buffer: ArrayBuffer,
    meta: Int32Array,
    stats: Float64Array,
    maxBatch: number,
    decapsulate: boolean,
    onBatch: (count: number, errno: number) => void,
  ): void;
  stopReading(): void;
  ref(): void;
  unref(): void;
  /** meta holds [offset, length, address, port] per payload; flags 1 = GUE encap, 2 = GSO. */
  sendBatch(
    buffer: ArrayBuffer,
    meta: Int32Array,
    count: number,
    flags: number,
    gsoMaxSegment: number,
    result: Float64Array,
  ): void;
  close(): void;
}

/** aead.c: one AEAD key's OpenSSL context (12-byte nonces; sizes checked natively). */
export interface NativeAeadHandle {
  /** Encrypts message[aadLength..] in place (message[0..aadLength) authenticated) and fills tag. */
  seal(nonce: Uint8Array, aadLength: number, message: Uint8Array, tag: Uint8Array): void;
  /** Decrypts message[aadLength..] in place if the tag verifies; false leaves it as it was. */
  open(nonce: Uint8Array, aadLength: number, message: Uint8Array, tag: Uint8Array): boolean;
  /** Frees the context and its key schedule now (later calls throw). */
  destroy(): void;
}

export type AeadCipher = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

export interface NativeAddon {
  TunHandle: new (name: string, multiQueue: boolean, vnetHdr: boolean, exclusive: boolean) => NativeTunHandle;
  /** Room every read gets: the largest packet (65535) plus a virtio header. */
  MAX_PACKET: number;
  MAX_BATCH: number;
  VNET_HDR_LEN: number;
  TUN_F_CSUM: number;
  TUN_F_TSO4: number;
  /**
   * udp.c: new UdpHandle(address uint32, port, rcvbuf, sndbuf, gro, raw, steerWorkers):
   * steerWorkers > 0 sets SO_REUSEPORT, > 1 also attaches the steering program (udp.c).
   */
  UdpHandle: new (
    address: number,
    port: number,
    rcvbuf: number,
    sndbuf: number,
    gro: boolean,
    raw: boolean,
    steerWorkers?: number,
  ) => NativeUdpHandle;
  /** udp.c's GUE decapsulation on packed payloads: meta [off, len, _, _] in, [off, len, _, code] out. */
  gueDecapBatch(buffer: ArrayBuffer, meta: Int32Array, count: number): void;
  /** Read slot per datagram (64 KiB). */
  UDP_SLOT_BYTES: number;
  UDP_MAX_READ_BATCH: number;
  /** Most datagrams in one GRO train. */
  UDP_GRO_MAX_SEGS: number;
  /** sockopt.c: IP_TOS (IPV6_TCLASS) and SO_PRIORITY on a socket fd; 0 or the errno. */
  setSocketPriority(fd: number, tos: number, priority: number): number;
  /** [tos, priority], or [-errno, 0]. */
  getSocketPriority(fd: number): [number, number];
  /** aead.c: new AeadHandle(cipher, key, encrypt, tagLength). */
  AeadHandle: new (
    cipher: AeadCipher,
    key: Uint8Array,
    encrypt: boolean,
    tagLength: number,
  ) => NativeAeadHandle;
}

/** Slots of the write result array (tun.c, enum WR_*). */
export const WR_PACKETS = 0;
export const WR_BYTES = 1;
export const WR_AGAIN = 2;
export const WR_INVALID = 3;
export const WR_OTHER = 4;
export const WR_LAST_ERRNO = 5;
export const WR_SLOTS = 6;

/** The checkout/package root: the nearest directory above this module with our package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (
      existsSync(pkg) &&
      (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "sc-cluster"
    ) {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("sc/tun: package root (package.json of sc-cluster) not found");
    dir = up;
  }
}

export function addonPath(): string {
  return join(packageRoot(), "sc", "tun", "native", "build", "Release", "sc_tun.node");
}

let cached: NativeAddon | undefined;

/** The addon, loaded once; throws a TunError that says how to build it. */
export function loadAddon(): NativeAddon {
  cached ??= loadAddonFrom(addonPath());
  return cached;
}

export function loadAddonFrom(path: string): NativeAddon {
  if (!existsSync(path)) {
    throw new TunError(
      `the TUN addon is not built (${path} is missing): run \`npm run install\` (or \`npm ci\`) in ` +
        `${packageRoot()}; building it needs g++, make and python3 (scripts/setup-host.sh installs them)`,
      { code: "ERR_TUN_ADDON_MISSING" },
    );
  }
  try {
    return createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    throw new TunError(
      `the TUN addon at ${path} could not be loaded (${(err as Error).message}): rebuild it with ` +
        "`node scripts/build-addon.mjs --force`",
      { code: "ERR_TUN_ADDON_LOAD", cause: err },
    );
  }
}
