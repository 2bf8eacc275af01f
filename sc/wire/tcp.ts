// TCP segment representation (RFC 9293 section 3.1). This file is the contract between
// sc/wire (parse/emit) and sc/tcp (the state machine): sc/tcp only sees TcpRepr values.

import { checksumAdd, internetChecksum, pseudoHeaderSum } from "./checksum.js";
import { WireError } from "./error.js";
import { fits, isUint16, isUint32, isUint8 } from "./fields.js";
import {
  IPV4_HEADER_LEN,
  IPV4_MAX_TOTAL_LEN,
  IP_PROTO_TCP,
  checkIpv4SendParams,
  writeIpv4Header,
  type Ipv4SendParams,
} from "./ipv4.js";

/** Flag bits as they sit in byte 13 of the TCP header. */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export interface TcpTimestamp {
  tsval: number; // uint32
  tsecr: number; // uint32
}

/** Options the stack understands; unknown options are skipped by the parser. */
const EMPTY = new Uint8Array(0);

export interface TcpOptions {
  mss?: number;
  /** Window scale shift count as sent (0..14; larger values are clamped to 14 per RFC 7323). */
  wscale?: number;
  sackPermitted?: boolean;
  /** SACK blocks as [left, right) uint32 sequence pairs, at most 4. */
  sack?: Array<[number, number]>;
  timestamp?: TcpTimestamp;
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  /** uint32 */
  seq: number;
  /** uint32; meaningful only when TCP_ACK is set. */
  ack: number;
  /** Bitmask of TCP_* flags. */
  flags: number;
  /** The raw 16-bit window field (not scaled). */
  window: number;
  urgent: number;
  options: TcpOptions;
  /** On parse: a view into the packet buffer (no copy). */
  payload: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Parse and emit (RFC 9293 3.1; options: RFC 9293 MSS, RFC 7323 window scale + timestamps,
// RFC 2018 SACK).
//
//  0               1               2               3
// |          Source Port          |       Destination Port        |
// |                        Sequence Number                        |
// |                    Acknowledgment Number                      |
// | DOff  | Rsrvd |     Flags     |            Window             |
// |           Checksum            |         Urgent Pointer        |
// |                 Options (DOff*4 - 20 bytes)                   |

export const TCP_HEADER_LEN = 20;
export const TCP_MAX_OPTIONS_LEN = 40;
export const TCP_MAX_HEADER_LEN = 60;
/** RFC 7323: shift counts above 14 are treated as 14. */
export const TCP_MAX_WSCALE = 14;
/** Most SACK blocks that fit next to timestamps (12 + 4 + 8n <= 40). */
export const TCP_MAX_SACK_BLOCKS_WITH_TIMESTAMPS = 3;
export const TCP_MAX_SACK_BLOCKS = 4;

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WSCALE = 3;
export const TCPOPT_SACK_PERMITTED = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;

export interface TcpParseOptions {
  /** Verify the checksum over the pseudo-header and the segment (default true). */
  verifyChecksum?: boolean;
}

function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

/**
 * Parses the option bytes buf[off, end). Only options present are set on the result; unknown
 * kinds are skipped by their length; EOL ends the list. Impossible lengths (< 2, past the end)
 * and known kinds with the wrong length are "bad-option".
 */
export function parseTcpOptions(buf: Uint8Array, off: number, end: number): TcpOptions | WireError {
  const options: TcpOptions = {};
  return fillTcpOptions(buf, off, end, options) ?? options;
}

/** parseTcpOptions into `options`, which holds no option yet (fields absent or undefined). */
function fillTcpOptions(buf: Uint8Array, off: number, end: number, options: TcpOptions): WireError | null {
  if (end > buf.length) end = buf.length;
  let i = off;
  while (i < end) {
    const kind = buf[i];
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return new WireError("bad-option", `tcp: option ${kind} has no length byte`);
    const len = buf[i + 1];
    if (len < 2 || i + len > end) return new WireError("bad-option", `tcp: option ${kind} length ${len}`);
    switch (kind) {
      case TCPOPT_MSS:
        if (len !== 4) return new WireError("bad-option", `tcp: MSS length ${len}`);
        options.mss = (buf[i + 2] << 8) | buf[i + 3];
        break;
      case TCPOPT_WSCALE:
        if (len !== 3) return new WireError("bad-option", `tcp: window scale length ${len}`);
        options.wscale = buf[i + 2] > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : buf[i + 2];
        break;
      case TCPOPT_SACK_PERMITTED:
        if (len !== 2) return new WireError("bad-option", `tcp: SACK-permitted length ${len}`);
        options.sackPermitted = true;
        break;
      case TCPOPT_SACK: {
        if (len < 10 || (len - 2) % 8 !== 0) return new WireError("bad-option", `tcp: SACK length ${len}`);
        const blocks: Array<[number, number]> = [];
        for (let j = i + 2; j < i + len; j += 8) blocks.push([readU32(buf, j), readU32(buf, j + 4)]);
        options.sack = blocks;
        break;
      }
      case TCPOPT_TIMESTAMP:
        if (len !== 10) return new WireError("bad-option", `tcp: timestamp length ${len}`);
        options.timestamp = { tsval: readU32(buf, i + 2), tsecr: readU32(buf, i + 6) };
        break;
      default:
        break; // unknown: skipped by length
    }
    i += len;
  }
  return null;
}

/** Checks the fixed TCP header of buf[off, off+len) and, if asked, the checksum. */
function checkTcp(
  buf: Uint8Array,
  off: number,
  len: number,
  src: number,
  dst: number,
  verifyChecksum: boolean,
): WireError | null {
  if (off < 0 || len < 0 || off + len > buf.length) return new WireError("truncated", "range outside buffer");
  if (len < TCP_HEADER_LEN) return new WireError("truncated", `tcp: ${len} bytes < 20-byte header`);
  const headerLength = (buf[off + 12] >>> 4) * 4;
  if (headerLength < TCP_HEADER_LEN) {
    return new WireError("bad-header-length", `tcp: data offset ${headerLength >>> 2} < 5`);
  }
  if (headerLength > len) return new WireError("truncated", `tcp: header ${headerLength} > ${len} bytes`);
  if (verifyChecksum && checksumAdd(buf, off, len, pseudoHeaderSum(src, dst, IP_PROTO_TCP, len)) !== 0xffff) {
    return new WireError("bad-checksum", "tcp: checksum");
  }
  return null;
}

/**
 * Parses a TCP segment: `segment` is exactly the IP payload (e.g. Ipv4Repr.payload);
 * src/dst are the IP addresses for the pseudo-header checksum. The payload is a view.
 */
export function parseTcp(
  segment: Uint8Array,
  src: number,
  dst: number,
  opts?: TcpParseOptions,
): TcpRepr | WireError {
  const err = checkTcp(segment, 0, segment.length, src, dst, opts?.verifyChecksum !== false);
  if (err !== null) return err;
  const headerLength = (segment[12] >>> 4) * 4;
  const options = parseTcpOptions(segment, TCP_HEADER_LEN, headerLength);
  if (options instanceof WireError) return options;
  return {
    srcPort: (segment[0] << 8) | segment[1],
    dstPort: (segment[2] << 8) | segment[3],
    seq: readU32(segment, 4),
    ack: readU32(segment, 8),
    flags: segment[13],
    window: (segment[14] << 8) | segment[15],
    urgent: (segment[18] << 8) | segment[19],
    options,
    payload: segment.subarray(headerLength),
  };
}

/**
 * A TcpRepr for parseTcpInto to overwrite, its options object with every field present
 * (undefined when absent) so that its shape never changes.
 */
export function pooledTcpRepr(): TcpRepr {
  return {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    urgent: 0,
    options: {
      mss: undefined,
      wscale: undefined,
      sackPermitted: undefined,
      sack: undefined,
      timestamp: undefined,
    },
    payload: EMPTY,
  };
}

/**
 * parseTcp of the segment buf[off, off+len) into `out` (from pooledTcpRepr), allocating
 * nothing but the payload view (none for an empty payload) and a SACK or timestamp option's
 * values: for a receive path that is done with the result when the next packet arrives.
 * On error `out` holds garbage.
 */
export function parseTcpInto(
  buf: Uint8Array,
  off: number,
  len: number,
  src: number,
  dst: number,
  out: TcpRepr,
  opts?: TcpParseOptions,
): WireError | null {
  const err = checkTcp(buf, off, len, src, dst, opts?.verifyChecksum !== false);
  if (err !== null) return err;
  const headerLength = (buf[off + 12] >>> 4) * 4;
  const o = out.options;
  o.mss = o.wscale = undefined;
  o.sackPermitted = undefined;
  o.sack = undefined;
  o.timestamp = undefined;
  if (headerLength > TCP_HEADER_LEN) {
    const optErr = fillTcpOptions(buf, off + TCP_HEADER_LEN, off + headerLength, o);
    if (optErr !== null) return optErr;
  }
  out.srcPort = (buf[off] << 8) | buf[off + 1];
  out.dstPort = (buf[off + 2] << 8) | buf[off + 3];
  out.seq = readU32(buf, off + 4);
  out.ack = readU32(buf, off + 8);
  out.flags = buf[off + 13];
  out.window = (buf[off + 14] << 8) | buf[off + 15];
  out.urgent = (buf[off + 18] << 8) | buf[off + 19];
  out.payload = len > headerLength ? buf.subarray(off + headerLength, off + len) : EMPTY;
  return null;
}

/**
 * A checked, reusable zero-copy view of a TCP segment inside a larger buffer (the dispatcher
 * needs ports and flags without building a TcpRepr).
 */
export class TcpPacket {
  buffer: Uint8Array = EMPTY;
  offset = 0;
  /** Segment length (header + payload), from the IP header. */
  length = 0;

  /** Points the view at the segment buf[off, off+len); verifies the checksum unless told not to. */
  wrap(
    buf: Uint8Array,
    off: number,
    len: number,
    src: number,
    dst: number,
    opts?: TcpParseOptions,
  ): WireError | null {
    const err = checkTcp(buf, off, len, src, dst, opts?.verifyChecksum !== false);
    if (err !== null) return err;
    this.buffer = buf;
    this.offset = off;
    this.length = len;
    return null;
  }

  get srcPort(): number {
    return (this.buffer[this.offset] << 8) | this.buffer[this.offset + 1];
  }
  get dstPort(): number {
    return (this.buffer[this.offset + 2] << 8) | this.buffer[this.offset + 3];
  }
  get seq(): number {
    return readU32(this.buffer, this.offset + 4);
  }
  get ack(): number {
    return readU32(this.buffer, this.offset + 8);
  }
  get headerLength(): number {
    return (this.buffer[this.offset + 12] >>> 4) * 4;
  }
  get flags(): number {
    return this.buffer[this.offset + 13];
  }
  get window(): number {
    return (this.buffer[this.offset + 14] << 8) | this.buffer[this.offset + 15];
  }
  get checksum(): number {
    return (this.buffer[this.offset + 16] << 8) | this.buffer[this.offset + 17];
  }
  get urgent(): number {
    return (this.buffer[this.offset + 18] << 8) | this.buffer[this.offset + 19];
  }
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  get payloadLength(): number {
    return this.length - this.headerLength;
  }
  payload(): Uint8Array {
    return this.buffer.subarray(this.payloadOffset, this.offset + this.length);
  }
  options(): TcpOptions | WireError {
    return parseTcpOptions(this.buffer, this.offset + TCP_HEADER_LEN, this.payloadOffset);
  }
  /**
   * Whether an option of this kind is present (walks the option list without building it; a
   * malformed list ends the walk: the option is then reported absent).
   */
  hasOption(kind: number): boolean {
    const b = this.buffer;
    const end = this.payloadOffset;
    let i = this.offset + TCP_HEADER_LEN;
    while (i < end) {
      const k = b[i];
      if (k === TCPOPT_EOL) return false;
      if (k === TCPOPT_NOP) {
        i++;
        continue;
      }
      if (k === kind) return true;
      if (i + 1 >= end || b[i + 1] < 2) return false;
      i += b[i + 1];
    }
    return false;
  }
}

/** Bytes the emitter writes for `options` (always a multiple of 4; may exceed 40 = invalid). */
export function tcpOptionsLength(options: TcpOptions): number {
  let n = 0;
  if (options.mss !== undefined) n += 4;
  if (options.timestamp !== undefined) n += 12;
  else if (options.sackPermitted === true) n += 4;
  if (options.wscale !== undefined) n += 4;
  if (options.sack !== undefined && options.sack.length > 0) n += 4 + 8 * options.sack.length;
  return n;
}

/** TCP header length (20 + options) for these options. */
export function tcpHeaderLength(options: TcpOptions): number {
  return TCP_HEADER_LEN + tcpOptionsLength(options);
}

/** Size of the IPv4+TCP packet emitIpv4Tcp writes for `tcp`. */
export function ipv4TcpLength(tcp: TcpRepr): number {
  return IPV4_HEADER_LEN + tcpHeaderLength(tcp.options) + tcp.payload.length;
}

function checkTcpFields(tcp: TcpRepr): WireError | null {
  if (!isUint16(tcp.srcPort) || !isUint16(tcp.dstPort)) return new WireError("bad-field", "tcp: port");
  if (!isUint32(tcp.seq) || !isUint32(tcp.ack)) return new WireError("bad-field", "tcp: seq/ack not uint32");
  if (!isUint8(tcp.flags)) return new WireError("bad-field", "tcp: flags not uint8");
  if (!isUint16(tcp.window) || !isUint16(tcp.urgent)) {
    return new WireError("bad-field", "tcp: window/urgent not uint16");
  }
  const o = tcp.options;
  if (o.mss !== undefined && !isUint16(o.mss)) return new WireError("bad-field", "tcp: mss not uint16");
  if (o.wscale !== undefined && !(isUint8(o.wscale) && o.wscale <= TCP_MAX_WSCALE)) {
    return new WireError("bad-field", `tcp: window scale ${o.wscale} not 0..14`);
  }
  if (o.timestamp !== undefined && !(isUint32(o.timestamp.tsval) && isUint32(o.timestamp.tsecr))) {
    return new WireError("bad-field", "tcp: timestamp not uint32");
  }
  if (o.sack !== undefined) {
    if (o.sack.length > TCP_MAX_SACK_BLOCKS)
      return new WireError("bad-field", "tcp: more than 4 SACK blocks");
    for (const [left, right] of o.sack) {
      if (!isUint32(left) || !isUint32(right)) return new WireError("bad-field", "tcp: SACK edge not uint32");
    }
  }
  if (tcpOptionsLength(o) > TCP_MAX_OPTIONS_LEN) {
    return new WireError(
      "bad-field",
      `tcp: options need ${tcpOptionsLength(o)} > 40 bytes (trim SACK blocks)`,
    );
  }
  return null;
}

/**
 * Writes the option bytes in Linux's layout (every option 4-byte aligned, NOP padded):
 * MSS | SACK-permitted+timestamps or NOP NOP timestamps | NOP wscale | NOP NOP SACK-permitted
 * (without timestamps) | NOP NOP SACK blocks. Returns the offset after them.
 */
function writeTcpOptions(o: TcpOptions, buf: Uint8Array, p: number): number {
  if (o.mss !== undefined) {
    buf[p] = TCPOPT_MSS;
    buf[p + 1] = 4;
    buf[p + 2] = o.mss >>> 8;
    buf[p + 3] = o.mss;
    p += 4;
  }
  if (o.timestamp !== undefined) {
    if (o.sackPermitted === true) {
      buf[p] = TCPOPT_SACK_PERMITTED;
      buf[p + 1] = 2;
    } else {
      buf[p] = TCPOPT_NOP;
      buf[p + 1] = TCPOPT_NOP;
    }
    buf[p + 2] = TCPOPT_TIMESTAMP;
    buf[p + 3] = 10;
    writeU32(buf, p + 4, o.timestamp.tsval);
    writeU32(buf, p + 8, o.timestamp.tsecr);
    p += 12;
  }
  if (o.wscale !== undefined) {
    buf[p] = TCPOPT_NOP;
    buf[p + 1] = TCPOPT_WSCALE;
    buf[p + 2] = 3;
    buf[p + 3] = o.wscale;
    p += 4;
  }
  if (o.sackPermitted === true && o.timestamp === undefined) {
    buf[p] = TCPOPT_NOP;
    buf[p + 1] = TCPOPT_NOP;
    buf[p + 2] = TCPOPT_SACK_PERMITTED;
    buf[p + 3] = 2;
    p += 4;
  }
  if (o.sack !== undefined && o.sack.length > 0) {
    buf[p] = TCPOPT_NOP;
    buf[p + 1] = TCPOPT_NOP;
    buf[p + 2] = TCPOPT_SACK;
    buf[p + 3] = 2 + 8 * o.sack.length;
    p += 4;
    for (const [left, right] of o.sack) {
      writeU32(buf, p, left);
      writeU32(buf, p + 4, right);
      p += 8;
    }
  }
  return p;
}

/** Writes the TCP header (checksum field zero) at buf[off]; fields already checked. */
function writeTcpHeader(tcp: TcpRepr, headerLength: number, buf: Uint8Array, off: number): void {
  buf[off] = tcp.srcPort >>> 8;
  buf[off + 1] = tcp.srcPort;
  buf[off + 2] = tcp.dstPort >>> 8;
  buf[off + 3] = tcp.dstPort;
  writeU32(buf, off + 4, tcp.seq);
  writeU32(buf, off + 8, tcp.ack);
  buf[off + 12] = (headerLength >>> 2) << 4;
  buf[off + 13] = tcp.flags;
  buf[off + 14] = tcp.window >>> 8;
  buf[off + 15] = tcp.window;
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  buf[off + 18] = tcp.urgent >>> 8;
  buf[off + 19] = tcp.urgent;
  writeTcpOptions(tcp.options, buf, off + TCP_HEADER_LEN);
}

/**
 * Writes a TCP segment (header, options, payload, checksum over the pseudo-header for
 * src/dst) at buf[off]. Returns the segment length.
 */
export function emitTcp(
  tcp: TcpRepr,
  src: number,
  dst: number,
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const fieldErr = checkTcpFields(tcp);
  if (fieldErr !== null) return fieldErr;
  if (!isUint32(src) || !isUint32(dst)) return new WireError("bad-field", "tcp: address not a uint32");
  const headerLength = tcpHeaderLength(tcp.options);
  const length = headerLength + tcp.payload.length;
  if (length > IPV4_MAX_TOTAL_LEN - IPV4_HEADER_LEN)
    return new WireError("bad-field", "tcp: segment too long");
  if (!fits(buf, off, length)) return new WireError("no-space", "tcp: segment");
  writeTcpHeader(tcp, headerLength, buf, off);
  buf.set(tcp.payload, off + headerLength);
  const c = internetChecksum(buf, off, length, pseudoHeaderSum(src, dst, IP_PROTO_TCP, length));
  buf[off + 16] = c >>> 8;
  buf[off + 17] = c;
  return length;
}

/** emitTcp into a new buffer of the segment's size. */
export function encodeTcp(tcp: TcpRepr, src: number, dst: number): Uint8Array | WireError {
  const buf = new Uint8Array(tcpHeaderLength(tcp.options) + tcp.payload.length);
  const r = emitTcp(tcp, src, dst, buf, 0);
  return typeof r === "number" ? buf : r;
}

/**
 * The stack's output path, first half: writes the IPv4 header (final, with checksum) and the
 * TCP header + options for a payload of `payloadLength` bytes at buf[off]; `tcp.payload` is
 * ignored. Returns the number of header bytes (the payload goes at off + that). Then write
 * the payload and call fillIpv4TcpChecksum(buf, off). Lets a sender copy payload straight
 * from its send buffer (e.g. both halves of a ring) into the packet.
 */
export function emitIpv4TcpHeaders(
  ip: Ipv4SendParams,
  tcp: TcpRepr,
  payloadLength: number,
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const ipErr = checkIpv4SendParams(ip);
  if (ipErr !== null) return ipErr;
  const tcpErr = checkTcpFields(tcp);
  if (tcpErr !== null) return tcpErr;
  const tcpHeader = tcpHeaderLength(tcp.options);
  const total = IPV4_HEADER_LEN + tcpHeader + payloadLength;
  if (!isUint16(payloadLength) || total > IPV4_MAX_TOTAL_LEN) {
    return new WireError("bad-field", `ipv4+tcp: total length ${total} > 65535`);
  }
  if (!fits(buf, off, total)) return new WireError("no-space", "ipv4+tcp: packet");
  writeIpv4Header(ip, IP_PROTO_TCP, total, buf, off);
  writeTcpHeader(tcp, tcpHeader, buf, off + IPV4_HEADER_LEN);
  return IPV4_HEADER_LEN + tcpHeader;
}

/**
 * Computes and stores the TCP checksum of the option-less IPv4+TCP packet at buf[off] (as
 * written by emitIpv4TcpHeaders), reading addresses and lengths from the IPv4 header.
 */
export function fillIpv4TcpChecksum(buf: Uint8Array, off = 0): void {
  const ipHeader = (buf[off] & 0x0f) * 4;
  const total = (buf[off + 2] << 8) | buf[off + 3];
  const t = off + ipHeader;
  const length = total - ipHeader;
  const src = readU32(buf, off + 12);
  const dst = readU32(buf, off + 16);
  buf[t + 16] = 0;
  buf[t + 17] = 0;
  const c = internetChecksum(buf, t, length, pseudoHeaderSum(src, dst, IP_PROTO_TCP, length));
  buf[t + 16] = c >>> 8;
  buf[t + 17] = c;
}

/**
 * The stack's output path in one call: IPv4 header, TCP header, options, payload and both
 * checksums at buf[off]. Returns the packet length (ipv4TcpLength(tcp)).
 */
export function emitIpv4Tcp(ip: Ipv4SendParams, tcp: TcpRepr, buf: Uint8Array, off = 0): number | WireError {
  const headers = emitIpv4TcpHeaders(ip, tcp, tcp.payload.length, buf, off);
  if (typeof headers !== "number") return headers;
  buf.set(tcp.payload, off + headers);
  fillIpv4TcpChecksum(buf, off);
  return headers + tcp.payload.length;
}

/** emitIpv4Tcp into a new buffer of the packet's size. */
export function encodeIpv4Tcp(ip: Ipv4SendParams, tcp: TcpRepr): Uint8Array | WireError {
  const buf = new Uint8Array(ipv4TcpLength(tcp));
  const r = emitIpv4Tcp(ip, tcp, buf, 0);
  return typeof r === "number" ? buf : r;
}
