// One dispatcher data path: a TUN queue read in batches, a Forwarder, and the output the GUE
// packets leave by. The single-threaded service runs one on its main thread; with --workers N
// every worker thread (worker-main.ts) runs one on its own queue of a multi-queue TUN device,
// with its own connection table and its own batched UDP (or raw) socket.
//
// Outputs:
//   - "tun": whole outer IPv4/UDP/GUE packets written back into the same TUN queue, which
//     the kernel routes to the nodes (one batched write per read batch), or
//   - "udp": client packets handed to the addon's batched UDP socket, which puts the GUE
//     header on in C and sends a read batch's worth with one sendmmsg, grouped by node with
//     UDP GSO (sc/tun/udp.ts), or
//   - "raw": the same whole outer packets as "tun", sent from a raw IPv4 socket (IP_HDRINCL)
//     with one sendmmsg per read batch: the kernel's IP output only, no TUN receive path.
// RSTs to clients are always written to the TUN queue.
import { TunDevice, UdpBatchSocket, type PacketBatch } from "../sc/tun/index.js";
import type { GueVariant } from "../sc/wire/index.js";
import type { ConnTimeouts } from "./conn-table.js";
import { Forwarder, type ForwarderOutput } from "./forwarder.js";
import type { Node } from "./nodes.js";
import type { SchedulerName } from "./schedulers.js";

export type OutputMode = "tun" | "udp" | "raw";

/** Packets per TUN read wake-up: larger than the default 64 amortises each wake-up under load. */
export const READ_BATCH = 256;

/** What a data path needs (plain data: it is also handed to worker threads). */
export interface DataPathConfig {
  vip: number;
  port: number;
  /** More service ports on the VIP (e.g. 443 beside 80). */
  extraPorts?: readonly number[];
  scheduler: SchedulerName;
  output: OutputMode;
  /** Outer source address ("tun"/"raw": written into every outer header). */
  source: number;
  /** Address the GUE socket binds to ("udp"/"raw"; 0: any, the kernel picks the source). */
  bind: number;
  /** This host's addresses: client packets claiming one are spoofed. */
  localAddrs: number[];
  variant?: GueVariant;
  udpChecksum?: boolean;
  udpGso?: boolean;
  udpGsoMaxSegment?: number;
  maxConnections?: number;
  maxHalfOpen?: number;
  timeouts?: Partial<ConnTimeouts>;
  deadGraceMs?: number;
}

export class DataPath {
  readonly forwarder: Forwarder;

  private constructor(
    readonly config: DataPathConfig,
    readonly tun: TunDevice,
    readonly udp: UdpBatchSocket | undefined,
  ) {
    const out: ForwarderOutput =
      config.output === "tun"
        ? {
            toNode: (_node: Node, packet: Uint8Array) => void tun.write(packet),
            toClient: (packet: Uint8Array) => void tun.write(packet),
          }
        : config.output === "raw"
          ? {
              toNode: (_node: Node, packet: Uint8Array) => void udp?.sendIpv4(packet, 0, packet.length),
              toClient: (packet: Uint8Array) => void tun.write(packet),
            }
          : {
              toNode: (node: Node, packet: Uint8Array) => void udp?.send(node.addr, node.port, packet),
              toNodeRange: (node: Node, buf: Uint8Array, off: number, len: number) =>
                void udp?.sendRange(node.addr, node.port, buf, off, len),
              toClient: (packet: Uint8Array) => void tun.write(packet),
            };
    this.forwarder = new Forwarder(
      {
        vip: config.vip,
        port: config.port,
        ...(config.extraPorts ? { extraPorts: config.extraPorts } : {}),
        scheduler: config.scheduler,
        // udp: the socket puts on the variant-0 header in C; variant 1 has none to put on.
        encap: config.output === "udp" ? "inner" : "ipv4",
        localAddr: config.source,
        localAddrs: config.localAddrs,
        ...(config.deadGraceMs !== undefined ? { deadGraceMs: config.deadGraceMs } : {}),
        variant: config.variant,
        udpChecksum: config.udpChecksum,
        maxConnections: config.maxConnections,
        maxHalfOpen: config.maxHalfOpen,
        timeouts: config.timeouts,
      },
      out,
    );
  }

  /**
   * Opens the TUN queue (`multiQueue`: one more queue of a multi-queue device) and, for
   * --output udp/raw, the socket. Throws the TunError or socket error as it is.
   */
  static open(config: DataPathConfig, tunName: string, multiQueue: boolean): DataPath {
    // One thread: the device's only queue, or one queue of a multi-queue device (--workers 1).
    const tun = TunDevice.open({
      name: tunName,
      up: true,
      maxBatch: READ_BATCH,
      multiQueue: multiQueue || "auto",
    });
    let udp: UdpBatchSocket | undefined;
    try {
      if (config.output !== "tun") udp = openGueSocket(config);
    } catch (err) {
      tun.close();
      throw err;
    }
    return new DataPath(config, tun, udp);
  }

  /** Starts reading; onError: reading failed for good (the device was deleted, ...). */
  start(onError: (err: Error) => void): void {
    this.tun.on("error", onError);
    this.tun.onPackets(this.onBatch);
  }

  /** Transport counters for /stats (io). */
  ioStats(): { tun: TunDevice["stats"]; udp?: UdpBatchSocket["stats"] } {
    return { tun: this.tun.stats, ...(this.udp ? { udp: this.udp.stats } : {}) };
  }

  close(): void {
    this.tun.close();
    this.udp?.close();
  }

  private readonly onBatch = (batch: PacketBatch): void => {
    const now = performance.now();
    const f = this.forwarder;
    const buf = batch.buffer;
    for (let i = 0; i < batch.count; i++) f.input(buf, batch.offset(i), batch.length(i), now);
  };
}

function openGueSocket(config: DataPathConfig): UdpBatchSocket {
  try {
    return UdpBatchSocket.open({
      address: config.bind,
      raw: config.output === "raw",
      maxBatch: 1,
      gro: false,
      sendBufferSize: 4 << 20,
      receiveBufferSize: 0,
      encapsulate: (config.variant ?? 0) === 0,
      gso: config.udpGso !== false,
      gsoMaxSegment: config.udpGsoMaxSegment ?? 1472,
    });
  } catch (err) {
    throw new Error(`cannot open the GUE UDP socket: ${(err as Error).message}`, { cause: err });
  }
}
