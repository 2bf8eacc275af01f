// Per-packet cost of the sc/wire hot paths, in ns, for 1500-byte packets.
//   npm run build && node dist/bench/wire-checksum.js [--iterations N]
// Prints one line per operation. Figures are recorded in docs/wire.md.

import { checksumAdd, internetChecksum } from "../sc/wire/checksum.js";
import { emitGueEncap, gueInnerOffset } from "../sc/wire/gue.js";
import { Ipv4Packet, parseIpv4 } from "../sc/wire/ipv4.js";
import {
  TCP_ACK,
  TcpPacket,
  emitIpv4Tcp,
  encodeIpv4Tcp,
  parseTcp,
  parseTcpInto,
  pooledTcpRepr,
  type TcpRepr,
} from "../sc/wire/tcp.js";

const argIndex = process.argv.indexOf("--iterations");
const ITERATIONS = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 200_000;
const ROUNDS = 5;

/** The obvious RFC 1071 loop (big-endian byte pairs), for comparison. */
function naiveSum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  const end = off + len - 1;
  let i = off;
  for (; i < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if (i === end) s += b[i] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

let sink = 0;

/** Best of ROUNDS runs of ITERATIONS calls, in ns per call. */
function measure(name: string, fn: (i: number) => number): void {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) sink += fn(i);
    const ns = Number(process.hrtime.bigint() - start) / ITERATIONS;
    if (ns < best) best = ns;
  }
  console.log(`${name.padEnd(52)} ${best.toFixed(1).padStart(8)} ns/packet`);
}

const buf = new Uint8Array(1 << 16);
for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;

const ip = { src: 0xc6120002, dst: 0xc6126401, ttl: 64, tos: 0, id: 1, dontFrag: true };
const tcp: TcpRepr = {
  srcPort: 80,
  dstPort: 40000,
  seq: 1,
  ack: 2,
  flags: TCP_ACK,
  window: 65535,
  urgent: 0,
  options: { timestamp: { tsval: 1, tsecr: 2 } },
  payload: buf.subarray(0, 1448), // 20 + 32 + 1448 = 1500
};
const packet = encodeIpv4Tcp(ip, tcp);
if (!(packet instanceof Uint8Array) || packet.length !== 1500) throw new Error("bench setup");
const out = new Uint8Array(4096);
const ipView = new Ipv4Packet();
const tcpView = new TcpPacket();

console.log(`sc/wire per-packet costs (node ${process.version}, best of ${ROUNDS} x ${ITERATIONS})`);
measure("checksum 1500 B, naive byte pairs", (i) => naiveSum(buf, i & 6, 1500));
measure("checksum 1500 B, internetChecksum (even offset)", (i) => internetChecksum(buf, i & 6, 1500));
measure("checksum 1500 B, internetChecksum (odd offset)", (i) => internetChecksum(buf, 1 + (i & 6), 1500));
measure("checksum 20 B IPv4 header", (i) => checksumAdd(buf, i & 6, 20));
measure("emitIpv4Tcp 1500 B (copy + both checksums)", (i) => {
  ip.id = i & 0xffff;
  return emitIpv4Tcp(ip, tcp, out, 0) as number;
});
measure("parseIpv4 + parseTcp 1500 B (checksums verified)", () => {
  const r = parseIpv4(packet);
  if (r instanceof Uint8Array || !("payload" in r)) return 0;
  const t = parseTcp(r.payload, r.src, r.dst);
  return "seq" in t ? t.seq : 0;
});
measure("Ipv4Packet+TcpPacket views 1500 B (checksums)", () => {
  if (ipView.wrap(packet) !== null) return 0;
  if (tcpView.wrap(packet, ipView.payloadOffset, ipView.payloadLength, ipView.src, ipView.dst) !== null)
    return 0;
  return tcpView.dstPort;
});
measure("Ipv4Packet+TcpPacket views 1500 B (no L4 checksum)", () => {
  if (ipView.wrap(packet) !== null) return 0;
  const noVerify = { verifyChecksum: false };
  if (tcpView.wrap(packet, ipView.payloadOffset, ipView.payloadLength, 0, 0, noVerify) !== null) return 0;
  return tcpView.dstPort;
});
// What the node's stack receives per keep-alive request: a 100-byte request segment (no
// options after the handshake, as our SYN-ACK offers no timestamps) and a pure ACK.
const small = [100, 0].map((n) => {
  const p = encodeIpv4Tcp(ip, { ...tcp, options: {}, payload: buf.subarray(0, n) });
  if (!(p instanceof Uint8Array)) throw new Error("bench setup");
  return p;
});
const pooled = pooledTcpRepr();
measure("parseTcp 140 B / 40 B segments (a new TcpRepr each)", (i) => {
  const p = small[i & 1]!;
  const t = parseTcp(p.subarray(20), ip.src, ip.dst);
  return "seq" in t ? t.payload.length : 0;
});
measure("parseTcpInto 140 B / 40 B segments (one pooled TcpRepr)", (i) => {
  const p = small[i & 1]!;
  return parseTcpInto(p, 20, p.length - 20, ip.src, ip.dst, pooled) === null ? pooled.payload.length : 0;
});
measure("parseTcpInto 140 B / 40 B, checksum not verified", (i) => {
  const p = small[i & 1]!;
  const noVerify = { verifyChecksum: false };
  return parseTcpInto(p, 20, p.length - 20, ip.src, ip.dst, pooled, noVerify) === null
    ? pooled.payload.length
    : 0;
});
const outer = { ...ip, srcPort: 50000, dstPort: 6080 };
measure(
  "emitGueEncap 1500 B inner (copy, no UDP checksum)",
  () => emitGueEncap(outer, packet, out, 0) as number,
);
measure("gueInnerOffset", () => gueInnerOffset(out, 28, 1504) as number);
console.log(`(sink ${sink % 10})`);
