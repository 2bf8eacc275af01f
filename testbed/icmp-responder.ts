// First proof of the packet path: a process that owns a TUN device answers ICMP echo
// requests for one address (the VIP) with sc/wire, in user space. Every other packet is
// counted by reason and dropped.
import {
  IP_PROTO_ICMP,
  emitIpv4Icmp,
  ipv4FromString,
  isWireError,
  parseIcmp,
  parseIpv4,
  type WireErrorKind,
} from "../sc/wire/index.js";
import { TunDevice, MAX_PACKET_BYTES, type TunOpenOptions } from "../sc/tun/index.js";

export type EchoDropReason =
  | WireErrorKind
  | "not-for-us"
  | "not-icmp"
  | "not-echo-request"
  | "icmp-unsupported"
  /** The TUN refused the reply at once (closed, oversized); later failures are in tun.stats. */
  | "write-failed";

export interface EchoStats {
  received: number;
  replied: number;
  drops: Partial<Record<EchoDropReason, number>>;
}

/**
 * Writes the echo reply for `packet` into `out` (from `addr` back to the sender, same id,
 * sequence and data) and returns its length, or says why there is none. Pure.
 */
export function echoReply(
  packet: Uint8Array,
  addr: number,
  out: Uint8Array,
  ipId: number,
): number | EchoDropReason {
  const ip = parseIpv4(packet);
  if (isWireError(ip)) return ip.kind;
  if (ip.dst !== addr) return "not-for-us";
  if (ip.protocol !== IP_PROTO_ICMP) return "not-icmp";
  const icmp = parseIcmp(ip.payload);
  if (isWireError(icmp)) return icmp.kind === "unsupported" ? "icmp-unsupported" : icmp.kind;
  if (icmp.kind !== "echo-request") return "not-echo-request";
  const n = emitIpv4Icmp(
    { src: addr, dst: ip.src, ttl: 64, tos: ip.tos, id: ipId & 0xffff, dontFrag: false },
    { kind: "echo-reply", id: icmp.id, seq: icmp.seq, data: icmp.data },
    out,
  );
  return isWireError(n) ? n.kind : n;
}

/** Answers echo requests for `addr` on a TUN device until closed. */
export class IcmpResponder {
  readonly stats: EchoStats = { received: 0, replied: 0, drops: {} };
  private readonly out = new Uint8Array(MAX_PACKET_BYTES);
  private nextId = 1;

  private constructor(
    readonly tun: TunDevice,
    readonly addr: number,
  ) {
    tun.onPackets((batch) => {
      for (let i = 0; i < batch.count; i++) this.handle(batch.packet(i));
    });
  }

  /** Attaches to (or creates) the TUN device `options.name` and starts answering for `addr`. */
  static open(addr: string, options: TunOpenOptions): IcmpResponder {
    const a = ipv4FromString(addr);
    if (isWireError(a)) throw new Error(`not an IPv4 address: '${addr}'`);
    return new IcmpResponder(TunDevice.open(options), a);
  }

  private handle(packet: Uint8Array): void {
    this.stats.received++;
    const r = echoReply(packet, this.addr, this.out, this.nextId);
    if (typeof r === "number") {
      this.nextId = (this.nextId + 1) & 0xffff;
      // write() copies into the device's batch, so `out` is free again for the next packet.
      if (this.tun.write(this.out.subarray(0, r))) this.stats.replied++;
      else this.stats.drops["write-failed"] = (this.stats.drops["write-failed"] ?? 0) + 1;
    } else {
      this.stats.drops[r] = (this.stats.drops[r] ?? 0) + 1;
    }
  }

  close(): void {
    this.tun.close();
  }
}
