// Generic segmentation offload for IPv4/TCP, in software: cuts one large packet (as the stack
// emits it for a GSO-capable TUN, see stack.ts) into gsoSize-byte segments exactly as the
// kernel does (sequence numbers advanced, IP id incremented, FIN/PSH only on the last
// segment, CWR only on the first, both checksums computed). Used by the virtual network in
// tests; the TUN path lets the kernel do it (or hand the big packet on as is).

import { internetChecksum, pseudoHeaderSum } from "../wire/checksum.js";
import { TCP_CWR, TCP_FIN, TCP_PSH } from "../wire/tcp.js";

export function gsoSegment(packet: Uint8Array, gsoSize: number): Uint8Array[] {
  const ihl = (packet[0] & 0x0f) * 4;
  const total = (packet[2] << 8) | packet[3];
  const thl = (packet[ihl + 12] >>> 4) * 4;
  const hdr = ihl + thl;
  const payload = total - hdr;
  if (gsoSize <= 0 || payload <= gsoSize) return [packet.subarray(0, total)];
  const out: Uint8Array[] = [];
  const view = new DataView(packet.buffer, packet.byteOffset, total);
  const id0 = view.getUint16(4);
  const seq0 = view.getUint32(ihl + 4);
  const flags0 = packet[ihl + 13];
  const src = view.getUint32(12);
  const dst = view.getUint32(16);
  for (let off = 0, i = 0; off < payload; off += gsoSize, i++) {
    const len = Math.min(gsoSize, payload - off);
    const last = off + len >= payload;
    const seg = new Uint8Array(hdr + len);
    seg.set(packet.subarray(0, hdr));
    seg.set(packet.subarray(hdr + off, hdr + off + len), hdr);
    const v = new DataView(seg.buffer);
    v.setUint16(2, hdr + len);
    v.setUint16(4, (id0 + i) & 0xffff);
    v.setUint16(10, 0);
    v.setUint16(10, internetChecksum(seg, 0, ihl));
    v.setUint32(ihl + 4, (seq0 + off) >>> 0);
    let f = flags0;
    if (!last) f &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= ~TCP_CWR;
    seg[ihl + 13] = f;
    v.setUint16(ihl + 16, 0);
    const tcpLen = thl + len;
    v.setUint16(ihl + 16, internetChecksum(seg, ihl, tcpLen, pseudoHeaderSum(src, dst, 6, tcpLen)));
    out.push(seg);
  }
  return out;
}
