// UDP (RFC 768) over IPv4.
//
//  0               1               2               3
// |          Source Port          |       Destination Port        |
// |            Length             |           Checksum            |
//
// A checksum field of 0 means "not computed" (allowed for IPv4). A computed checksum of 0 is
// sent as 0xffff.

import { checksumAdd, internetChecksum, pseudoHeaderSum } from "./checksum.js";
import { WireError } from "./error.js";
import { fits, isUint16, isUint32 } from "./fields.js";
import {
  IPV4_HEADER_LEN,
  IPV4_MAX_TOTAL_LEN,
  IP_PROTO_UDP,
  checkIpv4SendParams,
  writeIpv4Header,
  type Ipv4SendParams,
} from "./ipv4.js";

export const UDP_HEADER_LEN = 8;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  /** On parse: a view of the datagram's payload (up to the UDP length field). */
  payload: Uint8Array;
}

export interface UdpParseOptions {
  /** Verify a non-zero checksum (default true). A zero checksum is always accepted. */
  verifyChecksum?: boolean;
}

export interface UdpEmitOptions {
  /** Compute the checksum (default true); false sends 0 ("no checksum"). */
  checksum?: boolean;
}

/**
 * Validates the UDP datagram at buf[off, off+len) (len = the IP payload length). Returns null
 * when acceptable. Bytes after the UDP length field are ignored.
 */
export function checkUdp(
  buf: Uint8Array,
  off: number,
  len: number,
  src: number,
  dst: number,
  verifyChecksum: boolean,
): WireError | null {
  if (off < 0 || len < 0 || off + len > buf.length) return new WireError("truncated", "range outside buffer");
  if (len < UDP_HEADER_LEN) return new WireError("truncated", `udp: ${len} bytes < 8-byte header`);
  const length = (buf[off + 4] << 8) | buf[off + 5];
  if (length < UDP_HEADER_LEN) return new WireError("bad-length", `udp: length field ${length} < 8`);
  if (length > len) return new WireError("truncated", `udp: length field ${length} > ${len} bytes`);
  if (
    verifyChecksum &&
    (buf[off + 6] | buf[off + 7]) !== 0 &&
    checksumAdd(buf, off, length, pseudoHeaderSum(src, dst, IP_PROTO_UDP, length)) !== 0xffff
  ) {
    return new WireError("bad-checksum", "udp: checksum");
  }
  return null;
}

/** Parses a UDP datagram (`datagram` = the IP payload; src/dst for the pseudo-header). */
export function parseUdp(
  datagram: Uint8Array,
  src: number,
  dst: number,
  opts?: UdpParseOptions,
): UdpRepr | WireError {
  const err = checkUdp(datagram, 0, datagram.length, src, dst, opts?.verifyChecksum !== false);
  if (err !== null) return err;
  return {
    srcPort: (datagram[0] << 8) | datagram[1],
    dstPort: (datagram[2] << 8) | datagram[3],
    payload: datagram.subarray(UDP_HEADER_LEN, (datagram[4] << 8) | datagram[5]),
  };
}

const EMPTY = new Uint8Array(0);

/** A checked, reusable zero-copy view of a UDP datagram inside a larger buffer. */
export class UdpPacket {
  buffer: Uint8Array = EMPTY;
  offset = 0;

  wrap(
    buf: Uint8Array,
    off: number,
    len: number,
    src: number,
    dst: number,
    opts?: UdpParseOptions,
  ): WireError | null {
    const err = checkUdp(buf, off, len, src, dst, opts?.verifyChecksum !== false);
    if (err !== null) return err;
    this.buffer = buf;
    this.offset = off;
    return null;
  }

  get srcPort(): number {
    return (this.buffer[this.offset] << 8) | this.buffer[this.offset + 1];
  }
  get dstPort(): number {
    return (this.buffer[this.offset + 2] << 8) | this.buffer[this.offset + 3];
  }
  /** The UDP length field (header + payload). */
  get length(): number {
    return (this.buffer[this.offset + 4] << 8) | this.buffer[this.offset + 5];
  }
  get checksum(): number {
    return (this.buffer[this.offset + 6] << 8) | this.buffer[this.offset + 7];
  }
  get payloadOffset(): number {
    return this.offset + UDP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - UDP_HEADER_LEN;
  }
  payload(): Uint8Array {
    return this.buffer.subarray(this.payloadOffset, this.offset + this.length);
  }
}

/** @internal Writes the 8-byte UDP header (checksum zero) at buf[off]. */
export function writeUdpHeader(
  srcPort: number,
  dstPort: number,
  length: number,
  buf: Uint8Array,
  off: number,
): void {
  buf[off] = srcPort >>> 8;
  buf[off + 1] = srcPort;
  buf[off + 2] = dstPort >>> 8;
  buf[off + 3] = dstPort;
  buf[off + 4] = length >>> 8;
  buf[off + 5] = length;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
}

/** @internal Computes and stores the UDP checksum of the datagram at buf[off, off+length). */
export function fillUdpChecksum(
  buf: Uint8Array,
  off: number,
  length: number,
  src: number,
  dst: number,
): void {
  let c = internetChecksum(buf, off, length, pseudoHeaderSum(src, dst, IP_PROTO_UDP, length));
  if (c === 0) c = 0xffff;
  buf[off + 6] = c >>> 8;
  buf[off + 7] = c;
}

function checkUdpFields(udp: UdpRepr): WireError | null {
  if (!isUint16(udp.srcPort) || !isUint16(udp.dstPort)) return new WireError("bad-field", "udp: port");
  if (UDP_HEADER_LEN + udp.payload.length > IPV4_MAX_TOTAL_LEN - IPV4_HEADER_LEN) {
    return new WireError("bad-field", "udp: datagram too long");
  }
  return null;
}

/** Writes a UDP datagram at buf[off]. Returns its length. */
export function emitUdp(
  udp: UdpRepr,
  src: number,
  dst: number,
  buf: Uint8Array,
  off = 0,
  opts?: UdpEmitOptions,
): number | WireError {
  const err = checkUdpFields(udp);
  if (err !== null) return err;
  if (!isUint32(src) || !isUint32(dst)) return new WireError("bad-field", "udp: address not a uint32");
  const length = UDP_HEADER_LEN + udp.payload.length;
  if (!fits(buf, off, length)) return new WireError("no-space", "udp: datagram");
  writeUdpHeader(udp.srcPort, udp.dstPort, length, buf, off);
  buf.set(udp.payload, off + UDP_HEADER_LEN);
  if (opts?.checksum !== false) fillUdpChecksum(buf, off, length, src, dst);
  return length;
}

export function encodeUdp(
  udp: UdpRepr,
  src: number,
  dst: number,
  opts?: UdpEmitOptions,
): Uint8Array | WireError {
  const buf = new Uint8Array(UDP_HEADER_LEN + udp.payload.length);
  const r = emitUdp(udp, src, dst, buf, 0, opts);
  return typeof r === "number" ? buf : r;
}

/** Writes an IPv4+UDP packet at buf[off]. Returns its length (28 + payload). */
export function emitIpv4Udp(
  ip: Ipv4SendParams,
  udp: UdpRepr,
  buf: Uint8Array,
  off = 0,
  opts?: UdpEmitOptions,
): number | WireError {
  const ipErr = checkIpv4SendParams(ip);
  if (ipErr !== null) return ipErr;
  const udpErr = checkUdpFields(udp);
  if (udpErr !== null) return udpErr;
  const length = UDP_HEADER_LEN + udp.payload.length;
  const total = IPV4_HEADER_LEN + length;
  if (!fits(buf, off, total)) return new WireError("no-space", "ipv4+udp: packet");
  writeIpv4Header(ip, IP_PROTO_UDP, total, buf, off);
  const u = off + IPV4_HEADER_LEN;
  writeUdpHeader(udp.srcPort, udp.dstPort, length, buf, u);
  buf.set(udp.payload, u + UDP_HEADER_LEN);
  if (opts?.checksum !== false) fillUdpChecksum(buf, u, length, ip.src, ip.dst);
  return total;
}

export function encodeIpv4Udp(
  ip: Ipv4SendParams,
  udp: UdpRepr,
  opts?: UdpEmitOptions,
): Uint8Array | WireError {
  const buf = new Uint8Array(IPV4_HEADER_LEN + UDP_HEADER_LEN + udp.payload.length);
  const r = emitIpv4Udp(ip, udp, buf, 0, opts);
  return typeof r === "number" ? buf : r;
}
