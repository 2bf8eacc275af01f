// The sending end of a node's GUE tunnel: the socket that relays client packets to the node
// serving a clone (Socket Cloning) or a handed-off connection. It is the addon's batched UDP
// socket with the GUE variant-0 header put on in C, so the packets relayed in one event-loop
// turn leave in one sendmmsg instead of one node:dgram send (a Buffer, a copy and a syscall)
// each. Peer addresses are strings in the cluster's configuration; their uint32 form is
// cached, since a node has a handful of peers.
import { UdpBatchSocket, type UdpBatchStats } from "../tun/udp.js";
import { ipv4FromString, isWireError } from "../wire/index.js";

export interface GueSenderStats {
  /** Packets handed to the socket. */
  queued: number;
  /** Packets refused at once (socket closed, packet too large, peer address invalid). */
  refused: number;
  /** The socket's own counters (send calls, kernel-side drops). */
  socket: UdpBatchStats;
}

export class GueSender {
  private readonly udp: UdpBatchSocket;
  private readonly addrs = new Map<string, number>();
  private queued = 0;
  private refused = 0;

  /** Binds an ephemeral port on `localAddress` (the node's member address). Throws bind errors. */
  constructor(localAddress: string) {
    const addr = ipv4FromString(localAddress);
    if (isWireError(addr)) throw new RangeError(`GUE sender: bad local address ${localAddress}`);
    this.udp = UdpBatchSocket.open({
      address: addr,
      encapsulate: true,
      gro: false,
      maxBatch: 1,
      receiveBufferSize: 0,
    });
  }

  /** The socket's file descriptor (for traffic marking). */
  get fd(): number {
    return this.udp.fd;
  }

  /** Queues `packet` (an IPv4 packet) in GUE to addr:port; sent at the end of this tick. */
  forward(packet: Uint8Array, addr: string, port: number): boolean {
    let a = this.addrs.get(addr);
    if (a === undefined) {
      const parsed = ipv4FromString(addr);
      if (isWireError(parsed)) {
        this.refused++;
        return false;
      }
      a = parsed;
      if (this.addrs.size >= 4096) this.addrs.clear();
      this.addrs.set(addr, a);
    }
    if (!this.udp.send(a, port, packet)) {
      this.refused++;
      return false;
    }
    this.queued++;
    return true;
  }

  get stats(): GueSenderStats {
    return { queued: this.queued, refused: this.refused, socket: this.udp.stats };
  }

  /** Sends what is queued and closes the socket. */
  close(): void {
    this.udp.close();
  }
}
