// IPv4 (RFC 791): a checked zero-copy view (Ipv4Packet) and parse/emit of Ipv4Repr.
//
//  0               1               2               3
//  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
// |Version|  IHL  |      TOS      |          Total Length         |
// |        Identification         |0|D|M|     Fragment Offset     |
// |      TTL      |    Protocol   |        Header Checksum        |
// |                        Source Address                         |
// |                     Destination Address                       |
// |                    Options (IHL*4 - 20 bytes)                 |
//
// Options are carried as raw bytes and otherwise skipped (IHL says how many). We do not
// reassemble: a fragment is reported as the "fragment" error kind so the caller counts and
// drops it (unless it asks for fragments explicitly).

import { readIpv4, writeIpv4 } from "./addr.js";
import { checksumAdd, checksumUpdate16, checksumUpdate32, internetChecksum } from "./checksum.js";
import { WireError } from "./error.js";
import { fits, isUint16, isUint32, isUint8 } from "./fields.js";

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_HEADER_LEN = 60;
export const IPV4_MAX_OPTIONS_LEN = 40;
export const IPV4_MAX_TOTAL_LEN = 65535;

export const IP_PROTO_ICMP = 1;
export const IP_PROTO_IPIP = 4;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;

const FLAG_DF = 0x40; // in byte 6
const FLAG_MF = 0x20;

const EMPTY = new Uint8Array(0);

/** The fields of an IPv4 header that a sender chooses. Lengths and the checksum are derived. */
export interface Ipv4Header {
  /** uint32, e.g. 0xc6120001 for 198.18.0.1 */
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** The whole second byte (DSCP << 2 | ECN). */
  tos: number;
  /** Identification, uint16. */
  id: number;
  dontFrag: boolean;
  moreFrags: boolean;
  /** Fragment offset in bytes (a multiple of 8; the wire field counts 8-byte units). */
  fragOffset: number;
  /** Raw option bytes, a multiple of 4 long, at most 40 (default none). */
  options?: Uint8Array;
}

/** A parsed IPv4 packet. `options` and `payload` are views into the parsed buffer. */
export interface Ipv4Repr extends Ipv4Header {
  /** IHL * 4 */
  headerLength: number;
  /** The total length field; bytes after it in the buffer are ignored. */
  totalLength: number;
  options: Uint8Array;
  payload: Uint8Array;
}

export interface Ipv4ParseOptions {
  /** Verify the header checksum (default true). */
  verifyChecksum?: boolean;
  /** Return fragments as packets instead of the "fragment" error (default false). */
  allowFragments?: boolean;
}

/** What a transport emitter needs for the IP header: no fragmentation, no options. */
export interface Ipv4SendParams {
  src: number;
  dst: number;
  ttl: number;
  tos: number;
  id: number;
  dontFrag: boolean;
}

/**
 * Validates the IPv4 header at buf[off, off+len). Returns null if it is a packet we accept.
 * Order: truncated, bad-version, bad-header-length, truncated, bad-length, truncated,
 * bad-checksum, fragment (checksum first, so corrupted headers are not counted as fragments).
 */
export function checkIpv4(
  buf: Uint8Array,
  off: number,
  len: number,
  verifyChecksum: boolean,
  allowFragments: boolean,
): WireError | null {
  if (off < 0 || len < 0 || off + len > buf.length) return new WireError("truncated", "range outside buffer");
  if (len < IPV4_HEADER_LEN) return new WireError("truncated", `ipv4: ${len} bytes < 20-byte header`);
  const b0 = buf[off];
  if (b0 >>> 4 !== 4) return new WireError("bad-version", `ipv4: version ${b0 >>> 4}`);
  const headerLength = (b0 & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LEN) return new WireError("bad-header-length", `ipv4: IHL ${b0 & 0x0f} < 5`);
  if (headerLength > len) return new WireError("truncated", `ipv4: header ${headerLength} > ${len} bytes`);
  const totalLength = (buf[off + 2] << 8) | buf[off + 3];
  if (totalLength < headerLength) {
    return new WireError("bad-length", `ipv4: total length ${totalLength} < header length ${headerLength}`);
  }
  if (totalLength > len)
    return new WireError("truncated", `ipv4: total length ${totalLength} > ${len} bytes`);
  if (verifyChecksum && checksumAdd(buf, off, headerLength) !== 0xffff) {
    return new WireError("bad-checksum", "ipv4: header checksum");
  }
  if (!allowFragments && ((buf[off + 6] & 0x3f) | buf[off + 7]) !== 0) {
    return new WireError("fragment", "ipv4: fragment (MF set or offset > 0)");
  }
  return null;
}

/**
 * A checked, reusable view of an IPv4 packet inside a larger buffer: no copy, no allocation
 * per packet (call wrap() again for the next one). Getters read the wire bytes directly.
 */
export class Ipv4Packet {
  buffer: Uint8Array = EMPTY;
  /** Where the IPv4 header starts in `buffer`. */
  offset = 0;

  /**
   * Points the view at buf[off, off+len) and validates it (see checkIpv4). On error the view
   * is left unchanged and must not be used for this packet.
   */
  wrap(buf: Uint8Array, off = 0, len = buf.length - off, opts?: Ipv4ParseOptions): WireError | null {
    const err = checkIpv4(buf, off, len, opts?.verifyChecksum !== false, opts?.allowFragments === true);
    if (err !== null) return err;
    this.buffer = buf;
    this.offset = off;
    return null;
  }

  get headerLength(): number {
    return (this.buffer[this.offset] & 0x0f) * 4;
  }
  get tos(): number {
    return this.buffer[this.offset + 1];
  }
  get totalLength(): number {
    return (this.buffer[this.offset + 2] << 8) | this.buffer[this.offset + 3];
  }
  get id(): number {
    return (this.buffer[this.offset + 4] << 8) | this.buffer[this.offset + 5];
  }
  get dontFrag(): boolean {
    return (this.buffer[this.offset + 6] & FLAG_DF) !== 0;
  }
  get moreFrags(): boolean {
    return (this.buffer[this.offset + 6] & FLAG_MF) !== 0;
  }
  /** In bytes. */
  get fragOffset(): number {
    return (((this.buffer[this.offset + 6] & 0x1f) << 8) | this.buffer[this.offset + 7]) * 8;
  }
  get ttl(): number {
    return this.buffer[this.offset + 8];
  }
  get protocol(): number {
    return this.buffer[this.offset + 9];
  }
  get checksum(): number {
    return (this.buffer[this.offset + 10] << 8) | this.buffer[this.offset + 11];
  }
  get src(): number {
    return readIpv4(this.buffer, this.offset + 12);
  }
  get dst(): number {
    return readIpv4(this.buffer, this.offset + 16);
  }
  /** Offset of the payload (the transport header) in `buffer`. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }
  /** The payload as a view (allocates the view object, not the bytes). */
  payload(): Uint8Array {
    return this.buffer.subarray(this.payloadOffset, this.offset + this.totalLength);
  }
  options(): Uint8Array {
    return this.buffer.subarray(this.offset + IPV4_HEADER_LEN, this.payloadOffset);
  }
  verifyChecksum(): boolean {
    return checksumAdd(this.buffer, this.offset, this.headerLength) === 0xffff;
  }
  /** Recomputes the header checksum in place. */
  fillChecksum(): void {
    const b = this.buffer;
    const o = this.offset;
    b[o + 10] = 0;
    b[o + 11] = 0;
    const c = internetChecksum(b, o, this.headerLength);
    b[o + 10] = c >>> 8;
    b[o + 11] = c;
  }

  // Rewrites with RFC 1624 incremental checksum update. A transport checksum that covers the
  // pseudo-header (TCP, UDP) must be updated by the caller as well (checksumUpdate32).
  setTtl(ttl: number): void {
    const b = this.buffer;
    const o = this.offset;
    const oldWord = (b[o + 8] << 8) | b[o + 9];
    b[o + 8] = ttl;
    this.updateChecksum16(oldWord, (b[o + 8] << 8) | b[o + 9]);
  }
  setSrc(addr: number): void {
    this.setAddress(12, addr);
  }
  setDst(addr: number): void {
    this.setAddress(16, addr);
  }

  private setAddress(at: number, addr: number): void {
    const old = readIpv4(this.buffer, this.offset + at);
    writeIpv4(this.buffer, this.offset + at, addr);
    this.setChecksum(checksumUpdate32(this.checksum, old, addr >>> 0));
  }
  private updateChecksum16(oldWord: number, newWord: number): void {
    this.setChecksum(checksumUpdate16(this.checksum, oldWord, newWord));
  }
  private setChecksum(c: number): void {
    this.buffer[this.offset + 10] = c >>> 8;
    this.buffer[this.offset + 11] = c;
  }
}

/** Parses an IPv4 packet that starts at buf[0]. Trailing bytes after total length are ignored. */
export function parseIpv4(buf: Uint8Array, opts?: Ipv4ParseOptions): Ipv4Repr | WireError {
  const err = checkIpv4(buf, 0, buf.length, opts?.verifyChecksum !== false, opts?.allowFragments === true);
  if (err !== null) return err;
  const headerLength = (buf[0] & 0x0f) * 4;
  const totalLength = (buf[2] << 8) | buf[3];
  return {
    src: readIpv4(buf, 12),
    dst: readIpv4(buf, 16),
    protocol: buf[9],
    ttl: buf[8],
    tos: buf[1],
    id: (buf[4] << 8) | buf[5],
    dontFrag: (buf[6] & FLAG_DF) !== 0,
    moreFrags: (buf[6] & FLAG_MF) !== 0,
    fragOffset: (((buf[6] & 0x1f) << 8) | buf[7]) * 8,
    headerLength,
    totalLength,
    options: buf.subarray(IPV4_HEADER_LEN, headerLength),
    payload: buf.subarray(headerLength, totalLength),
  };
}

/** Header length the emitter will write for `h` (20 + options). */
export function ipv4HeaderLength(h: Pick<Ipv4Header, "options">): number {
  return IPV4_HEADER_LEN + (h.options === undefined ? 0 : h.options.length);
}

/** Checks the fields an emitter writes; null when they all fit their wire fields. */
export function checkIpv4SendParams(h: Ipv4SendParams): WireError | null {
  if (!isUint32(h.src) || !isUint32(h.dst)) return new WireError("bad-field", "ipv4: address not a uint32");
  if (!isUint8(h.ttl) || !isUint8(h.tos)) return new WireError("bad-field", "ipv4: ttl/tos not a uint8");
  if (!isUint16(h.id)) return new WireError("bad-field", "ipv4: id not a uint16");
  return null;
}

/**
 * Writes the 20-byte option-less IPv4 header and its checksum at buf[off]. Fields must be
 * checked already (checkIpv4SendParams) and 20 bytes available. Used by the one-call emitters.
 */
export function writeIpv4Header(
  h: Ipv4SendParams,
  protocol: number,
  totalLength: number,
  buf: Uint8Array,
  off: number,
): void {
  buf[off] = 0x45;
  buf[off + 1] = h.tos;
  buf[off + 2] = totalLength >>> 8;
  buf[off + 3] = totalLength;
  buf[off + 4] = h.id >>> 8;
  buf[off + 5] = h.id;
  buf[off + 6] = h.dontFrag ? FLAG_DF : 0;
  buf[off + 7] = 0;
  buf[off + 8] = h.ttl;
  buf[off + 9] = protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeIpv4(buf, off + 12, h.src);
  writeIpv4(buf, off + 16, h.dst);
  const c = internetChecksum(buf, off, IPV4_HEADER_LEN);
  buf[off + 10] = c >>> 8;
  buf[off + 11] = c;
}

/**
 * Writes the IPv4 header for `h` (with options and checksum) at buf[off]; the payload of
 * `payloadLength` bytes is the caller's to write after it. Returns the header length.
 */
export function emitIpv4Header(
  h: Ipv4Header,
  payloadLength: number,
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const options = h.options ?? EMPTY;
  if (options.length > IPV4_MAX_OPTIONS_LEN || (options.length & 3) !== 0) {
    return new WireError("bad-field", `ipv4: options length ${options.length} not a multiple of 4 <= 40`);
  }
  const headerLength = IPV4_HEADER_LEN + options.length;
  const totalLength = headerLength + payloadLength;
  if (!isUint16(payloadLength) || totalLength > IPV4_MAX_TOTAL_LEN) {
    return new WireError("bad-field", `ipv4: total length ${totalLength} > 65535`);
  }
  const fieldErr = checkIpv4SendParams(h);
  if (fieldErr !== null) return fieldErr;
  if (!isUint8(h.protocol)) return new WireError("bad-field", "ipv4: protocol not a uint8");
  if ((h.fragOffset & 0xfff8) !== h.fragOffset) {
    return new WireError("bad-field", `ipv4: fragment offset ${h.fragOffset} not a multiple of 8 < 65536`);
  }
  if (!fits(buf, off, headerLength)) return new WireError("no-space", "ipv4: header");
  const frag = h.fragOffset >>> 3;
  buf[off] = 0x40 | (headerLength >>> 2);
  buf[off + 1] = h.tos;
  buf[off + 2] = totalLength >>> 8;
  buf[off + 3] = totalLength;
  buf[off + 4] = h.id >>> 8;
  buf[off + 5] = h.id;
  buf[off + 6] = (h.dontFrag ? FLAG_DF : 0) | (h.moreFrags ? FLAG_MF : 0) | (frag >>> 8);
  buf[off + 7] = frag;
  buf[off + 8] = h.ttl;
  buf[off + 9] = h.protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeIpv4(buf, off + 12, h.src);
  writeIpv4(buf, off + 16, h.dst);
  if (options.length > 0) buf.set(options, off + IPV4_HEADER_LEN);
  const c = internetChecksum(buf, off, headerLength);
  buf[off + 10] = c >>> 8;
  buf[off + 11] = c;
  return headerLength;
}

/** Writes header and payload at buf[off]. Returns the total length written. */
export function emitIpv4(
  repr: Ipv4Header & { payload: Uint8Array },
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const headerLength = ipv4HeaderLength(repr);
  if (!fits(buf, off, headerLength + repr.payload.length)) {
    return new WireError("no-space", "ipv4: packet");
  }
  const r = emitIpv4Header(repr, repr.payload.length, buf, off);
  if (typeof r !== "number") return r;
  buf.set(repr.payload, off + r);
  return r + repr.payload.length;
}

/** emitIpv4 into a new buffer of exactly the packet's size. */
export function encodeIpv4(repr: Ipv4Header & { payload: Uint8Array }): Uint8Array | WireError {
  const buf = new Uint8Array(ipv4HeaderLength(repr) + repr.payload.length);
  const r = emitIpv4(repr, buf, 0);
  return typeof r === "number" ? buf : r;
}
