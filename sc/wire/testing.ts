// Helpers shared by the tests that build packets (hex, a seeded PRNG, random valid
// representations, a client's SYN). Not used by production code.

import type { GueVariant } from "./gue.js";
import type { IcmpRepr } from "./icmp.js";
import type { Ipv4Header, Ipv4SendParams } from "./ipv4.js";
import { encodeIpv4Tcp, TCP_SYN, type TcpOptions, type TcpRepr } from "./tcp.js";
import { isWireError } from "./error.js";
import type { UdpRepr } from "./udp.js";

/** Hex to a plain Uint8Array (not a Buffer: parsed views must deep-equal plain arrays). */
export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

/** mulberry32: small, fast, seeded; good enough to drive property and fuzz tests. */
export class Prng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  /** uint32 */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** integer in [0, n) */
  below(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
  bool(p = 0.5): boolean {
    return this.u32() / 0x100000000 < p;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
}

/** A seed from the environment (WIRE_SEED) to replay a failure, else a fresh one. */
export function testSeed(): number {
  const env = process.env.WIRE_SEED;
  return env !== undefined && env !== ""
    ? Number(env) >>> 0
    : (Date.now() ^ (Math.random() * 0x100000000)) >>> 0;
}

export function randomSendParams(r: Prng): Ipv4SendParams {
  return {
    src: r.u32(),
    dst: r.u32(),
    ttl: r.below(256),
    tos: r.below(256),
    id: r.below(65536),
    dontFrag: r.bool(),
  };
}

export function randomIpv4Header(r: Prng): Ipv4Header {
  const fragment = r.bool(0.2);
  return {
    src: r.u32(),
    dst: r.u32(),
    protocol: r.below(256),
    ttl: r.below(256),
    tos: r.below(256),
    id: r.below(65536),
    dontFrag: r.bool(),
    moreFrags: fragment && r.bool(),
    fragOffset: fragment ? r.below(8192) * 8 : 0,
    options: r.bytes(4 * r.below(11)),
  };
}

export function randomTcpOptions(r: Prng): TcpOptions {
  const o: TcpOptions = {};
  let room = 40;
  if (r.bool()) {
    o.mss = r.below(65536);
    room -= 4;
  }
  if (r.bool()) {
    o.wscale = r.below(15);
    room -= 4;
  }
  if (r.bool()) o.sackPermitted = true;
  if (r.bool()) {
    o.timestamp = { tsval: r.u32(), tsecr: r.u32() };
    room -= 12;
  } else if (o.sackPermitted) {
    room -= 4;
  }
  const maxBlocks = Math.min(4, Math.floor((room - 4) / 8));
  if (maxBlocks > 0 && r.bool()) {
    const n = 1 + r.below(maxBlocks);
    o.sack = [];
    for (let i = 0; i < n; i++) o.sack.push([r.u32(), r.u32()]);
  }
  return o;
}

export function randomTcp(r: Prng, maxPayload = 1500): TcpRepr {
  return {
    srcPort: r.below(65536),
    dstPort: r.below(65536),
    seq: r.u32(),
    ack: r.u32(),
    flags: r.below(256),
    window: r.below(65536),
    urgent: r.below(65536),
    options: randomTcpOptions(r),
    payload: r.bytes(r.below(maxPayload + 1)),
  };
}

export function randomUdp(r: Prng, maxPayload = 1500): UdpRepr {
  return { srcPort: r.below(65536), dstPort: r.below(65536), payload: r.bytes(r.below(maxPayload + 1)) };
}

export function randomIcmp(r: Prng): IcmpRepr {
  if (r.bool()) {
    return {
      kind: r.bool() ? "echo-request" : "echo-reply",
      id: r.below(65536),
      seq: r.below(65536),
      data: r.bytes(r.below(200)),
    };
  }
  const code = r.bool() ? 4 : r.below(16);
  return {
    kind: "dest-unreachable",
    code,
    nextHopMtu: code === 4 ? r.below(65536) : 0,
    quoted: r.bytes(r.below(600)),
  };
}

export function randomGueVariant(r: Prng): GueVariant {
  return r.bool() ? 0 : 1;
}

/** A client's SYN from `src` to `dst`:80 as a whole IPv4 packet (`over` changes TCP fields). */
export function synPacket(src: number, dst: number, over: Partial<TcpRepr> = {}): Uint8Array {
  const p = encodeIpv4Tcp(
    { src, dst, ttl: 64, tos: 0, id: 1, dontFrag: true },
    {
      srcPort: 40_000,
      dstPort: 80,
      seq: 1,
      ack: 0,
      flags: TCP_SYN,
      window: 65535,
      urgent: 0,
      options: { mss: 1460 },
      payload: new Uint8Array(0),
      ...over,
    },
  );
  if (isWireError(p)) throw new Error(`synPacket: ${p.kind}`);
  return p;
}
