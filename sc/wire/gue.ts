// Generic UDP Encapsulation (draft-ietf-intarea-gue) as used between the dispatcher and the
// nodes (DESIGN.md section 4): UDP to port 6080 carrying a client's IPv4 packet.
//
// Variant 0: a 4-byte header, then optional extension fields, then the inner packet.
//  0               1               2               3
//  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
// |0 0|C|  Hlen   |  Proto/ctype  |             Flags             |
// |              Extension fields (Hlen * 4 bytes)                |
// Hlen counts 32-bit words of extension fields; Proto 4 = IPv4; C=1 marks a control message.
//
// Variant 1: no GUE header; the UDP payload is the IP packet itself. The GUE version bits
// "01" coincide with the first bits of the IPv4 version nibble (0100).
//
// Linux IPVS (`--tun-type gue`) sends variant 0 with proto 4 and no extensions; Katran sends
// variant 1 (IPv4 straight after the UDP header). We accept both and emit variant 0 by default.

import { WireError } from "./error.js";
import { fits, isUint16 } from "./fields.js";
import {
  IPV4_HEADER_LEN,
  IPV4_MAX_TOTAL_LEN,
  IP_PROTO_IPIP,
  IP_PROTO_UDP,
  checkIpv4SendParams,
  writeIpv4Header,
  type Ipv4SendParams,
} from "./ipv4.js";
import { UDP_HEADER_LEN, fillUdpChecksum, writeUdpHeader } from "./udp.js";

export const GUE_PORT = 6080;
export const GUE_HEADER_LEN = 4;

export type GueVariant = 0 | 1;

export interface GueRepr {
  variant: GueVariant;
  /** Variant 0: the Proto field (always 4 here, others are rejected); variant 1: 4. */
  proto: number;
  /** Variant 0: the Flags field; variant 1: 0. */
  flags: number;
  /** Bytes before the inner packet: 4 + Hlen*4 for variant 0, 0 for variant 1. */
  headerLength: number;
  /** The inner IPv4 packet (a view, not checked: parse it with parseIpv4). */
  inner: Uint8Array;
}

/**
 * Finds the inner IPv4 packet in the UDP payload buf[off, off+len) without copying: returns
 * its offset in `buf` (it runs to off+len). Errors: "truncated", "bad-version" (GUE version
 * 2/3, or variant 1 not IPv4/IPv6), "gue-control" (C bit), "unsupported" (proto != 4, or
 * variant 1 carrying IPv6).
 */
export function gueInnerOffset(buf: Uint8Array, off: number, len: number): number | WireError {
  if (off < 0 || len < 0 || off + len > buf.length) return new WireError("truncated", "range outside buffer");
  if (len < 1) return new WireError("truncated", "gue: empty payload");
  const b0 = buf[off];
  const version = b0 >>> 6;
  if (version === 1) {
    const nibble = b0 >>> 4;
    if (nibble === 4) return off;
    if (nibble === 6) return new WireError("unsupported", "gue: variant 1 carries IPv6");
    return new WireError("bad-version", `gue: variant 1 with IP version ${nibble}`);
  }
  if (version !== 0) return new WireError("bad-version", `gue: version ${version}`);
  if (len < GUE_HEADER_LEN) return new WireError("truncated", `gue: ${len} bytes < 4-byte header`);
  if ((b0 & 0x20) !== 0) return new WireError("gue-control", `gue: control message type ${buf[off + 1]}`);
  const headerLength = GUE_HEADER_LEN + (b0 & 0x1f) * 4;
  if (headerLength > len) return new WireError("truncated", `gue: header ${headerLength} > ${len} bytes`);
  if (buf[off + 1] !== IP_PROTO_IPIP)
    return new WireError("unsupported", `gue: inner protocol ${buf[off + 1]}`);
  return off + headerLength;
}

/** Parses a GUE UDP payload (e.g. UdpRepr.payload or a datagram from a kernel socket). */
export function parseGue(payload: Uint8Array): GueRepr | WireError {
  const inner = gueInnerOffset(payload, 0, payload.length);
  if (typeof inner !== "number") return inner;
  if (inner === 0) return { variant: 1, proto: IP_PROTO_IPIP, flags: 0, headerLength: 0, inner: payload };
  return {
    variant: 0,
    proto: payload[1],
    flags: (payload[2] << 8) | payload[3],
    headerLength: inner,
    inner: payload.subarray(inner),
  };
}

/** Bytes in front of the inner packet in a GUE UDP payload we emit (4 or 0). */
export function gueHeaderLength(variant: GueVariant): number {
  return variant === 0 ? GUE_HEADER_LEN : 0;
}

/** Writes a variant-0 header for an inner IPv4 packet (no extensions) at buf[off]. Returns 4. */
export function emitGueHeader(buf: Uint8Array, off = 0): number | WireError {
  if (!fits(buf, off, GUE_HEADER_LEN)) return new WireError("no-space", "gue: header");
  buf[off] = 0;
  buf[off + 1] = IP_PROTO_IPIP;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  return GUE_HEADER_LEN;
}

/** The outer packet of a GUE tunnel: IPv4 + UDP fields. */
export interface GueEncapParams extends Ipv4SendParams {
  srcPort: number;
  /** Normally GUE_PORT. */
  dstPort: number;
  /** Default 0 (what IPVS sends; Katran sends 1). */
  variant?: GueVariant;
  /**
   * Compute the outer UDP checksum (default false: 0 = none, as IPVS's default --tun-nocsum;
   * the inner packet carries its own checksums, so this saves summing every packet twice).
   */
  udpChecksum?: boolean;
}

/** Bytes of outer headers in front of the inner packet: 20 + 8 + (4 for variant 0). */
export function gueEncapHeaderLength(variant: GueVariant = 0): number {
  return IPV4_HEADER_LEN + UDP_HEADER_LEN + gueHeaderLength(variant);
}

/** Validates the outer fields and the space; returns the outer header length (28 or 32). */
function checkGueEncap(
  outer: GueEncapParams,
  innerLength: number,
  buf: Uint8Array,
  off: number,
): number | WireError {
  const ipErr = checkIpv4SendParams(outer);
  if (ipErr !== null) return ipErr;
  if (!isUint16(outer.srcPort) || !isUint16(outer.dstPort))
    return new WireError("bad-field", "gue: udp port");
  const variant = outer.variant ?? 0;
  if (variant !== 0 && variant !== 1) return new WireError("bad-field", `gue: variant ${String(variant)}`);
  const headers = gueEncapHeaderLength(variant);
  const total = headers + innerLength;
  if (!isUint16(innerLength) || total > IPV4_MAX_TOTAL_LEN) {
    return new WireError("bad-field", `gue: outer packet ${total} > 65535 bytes`);
  }
  if (!fits(buf, off, total)) return new WireError("no-space", "gue: outer packet");
  return headers;
}

function writeGueEncapHeaders(outer: GueEncapParams, total: number, buf: Uint8Array, off: number): void {
  writeIpv4Header(outer, IP_PROTO_UDP, total, buf, off);
  const u = off + IPV4_HEADER_LEN;
  const udpLength = total - IPV4_HEADER_LEN;
  writeUdpHeader(outer.srcPort, outer.dstPort, udpLength, buf, u);
  if (outer.variant !== 1) emitGueHeader(buf, u + UDP_HEADER_LEN);
  if (outer.udpChecksum === true) fillUdpChecksum(buf, u, udpLength, outer.src, outer.dst);
}

/**
 * Writes outer IPv4 + UDP (+ GUE) headers at buf[off], for an inner packet of `innerLength`
 * bytes that is ALREADY at buf[off + gueEncapHeaderLength(variant)] (encapsulation in place,
 * no copy: receive into a buffer with that much headroom). Returns the outer packet length.
 */
export function emitGueEncapHeaders(
  outer: GueEncapParams,
  innerLength: number,
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const headers = checkGueEncap(outer, innerLength, buf, off);
  if (typeof headers !== "number") return headers;
  writeGueEncapHeaders(outer, headers + innerLength, buf, off);
  return headers + innerLength;
}

/**
 * The dispatcher's hot path: outer IPv4 + UDP + GUE around `inner` (copied once) at
 * buf[off]. Returns the outer packet length. `inner` must not overlap the header area.
 */
export function emitGueEncap(
  outer: GueEncapParams,
  inner: Uint8Array,
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const headers = checkGueEncap(outer, inner.length, buf, off);
  if (typeof headers !== "number") return headers;
  buf.set(inner, off + headers);
  writeGueEncapHeaders(outer, headers + inner.length, buf, off);
  return headers + inner.length;
}

export function encodeGueEncap(outer: GueEncapParams, inner: Uint8Array): Uint8Array | WireError {
  const buf = new Uint8Array(gueEncapHeaderLength(outer.variant === 1 ? 1 : 0) + inner.length);
  const r = emitGueEncap(outer, inner, buf, 0);
  return typeof r === "number" ? buf : r;
}
