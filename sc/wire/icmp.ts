// ICMP for IPv4 (RFC 792; fragmentation needed: RFC 1191).
//
// Echo request (8) / reply (0):         Destination unreachable (3):
// |  Type  |  Code  |   Checksum    |   |  Type  |  Code  |   Checksum    |
// |   Identifier    | Sequence Num  |   |     unused      | Next-hop MTU  |  (MTU: code 4 only)
// |  Data ...                       |   |  Original IP header + >= 8 bytes of its payload  |
//
// The checksum covers the whole ICMP message (no pseudo-header).

import { readIpv4 } from "./addr.js";
import { checksumAdd, internetChecksum } from "./checksum.js";
import { WireError } from "./error.js";
import { fits, isUint16, isUint8 } from "./fields.js";
import {
  IPV4_HEADER_LEN,
  IPV4_MAX_TOTAL_LEN,
  IP_PROTO_ICMP,
  checkIpv4SendParams,
  writeIpv4Header,
  type Ipv4SendParams,
} from "./ipv4.js";

export const ICMP_HEADER_LEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;

export const ICMP_UNREACH_NET = 0;
export const ICMP_UNREACH_HOST = 1;
export const ICMP_UNREACH_PROTOCOL = 2;
export const ICMP_UNREACH_PORT = 3;
export const ICMP_UNREACH_FRAG_NEEDED = 4;

/** RFC 1812 4.3.2.3: quote as much as fits in a 576-byte datagram (576 - 20 - 8). */
export const ICMP_MAX_QUOTE_LEN = 548;

export interface IcmpEcho {
  kind: "echo-request" | "echo-reply";
  id: number;
  seq: number;
  /** On parse: a view. */
  data: Uint8Array;
}

export interface IcmpDestUnreachable {
  kind: "dest-unreachable";
  /** ICMP_UNREACH_* */
  code: number;
  /** Next-hop MTU for code 4 (fragmentation needed, RFC 1191); 0 for other codes. */
  nextHopMtu: number;
  /** The original IPv4 header and the start of its payload (a view; see parseIcmpQuote). */
  quoted: Uint8Array;
}

export type IcmpRepr = IcmpEcho | IcmpDestUnreachable;

export interface IcmpParseOptions {
  /** Verify the checksum (default true). */
  verifyChecksum?: boolean;
}

/**
 * Parses an ICMP message (`msg` = the IPv4 payload). Echo and destination unreachable are
 * understood; other types are "unsupported". The echo code field is ignored (as Linux does).
 */
export function parseIcmp(msg: Uint8Array, opts?: IcmpParseOptions): IcmpRepr | WireError {
  if (msg.length < ICMP_HEADER_LEN) return new WireError("truncated", `icmp: ${msg.length} bytes < 8`);
  if (opts?.verifyChecksum !== false && checksumAdd(msg, 0, msg.length) !== 0xffff) {
    return new WireError("bad-checksum", "icmp: checksum");
  }
  const type = msg[0];
  if (type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY) {
    return {
      kind: type === ICMP_ECHO_REQUEST ? "echo-request" : "echo-reply",
      id: (msg[4] << 8) | msg[5],
      seq: (msg[6] << 8) | msg[7],
      data: msg.subarray(ICMP_HEADER_LEN),
    };
  }
  if (type === ICMP_DEST_UNREACHABLE) {
    const code = msg[1];
    return {
      kind: "dest-unreachable",
      code,
      nextHopMtu: code === ICMP_UNREACH_FRAG_NEEDED ? (msg[6] << 8) | msg[7] : 0,
      quoted: msg.subarray(ICMP_HEADER_LEN),
    };
  }
  return new WireError("unsupported", `icmp: type ${type} code ${msg[1]}`);
}

/** What a destination-unreachable quote tells about the packet that caused it. */
export interface IcmpQuote {
  src: number;
  dst: number;
  protocol: number;
  /** TCP/UDP ports (the first 4 bytes after the quoted IP header). */
  srcPort: number;
  dstPort: number;
  /** The quoted transport bytes (>= 8: for TCP the sequence number is in bytes 4..8). */
  transport: Uint8Array;
}

/**
 * Reads the quoted original datagram: it must hold an IPv4 header and at least 8 bytes of
 * its payload (RFC 792). The quoted header's checksum and total length are not checked (the
 * quote is usually truncated).
 */
export function parseIcmpQuote(quoted: Uint8Array): IcmpQuote | WireError {
  if (quoted.length < IPV4_HEADER_LEN + 8) return new WireError("truncated", "icmp quote: < 28 bytes");
  if (quoted[0] >>> 4 !== 4) return new WireError("bad-version", `icmp quote: IP version ${quoted[0] >>> 4}`);
  const headerLength = (quoted[0] & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LEN) return new WireError("bad-header-length", "icmp quote: IHL < 5");
  if (headerLength + 8 > quoted.length) return new WireError("truncated", "icmp quote: < header + 8 bytes");
  return {
    src: readIpv4(quoted, 12),
    dst: readIpv4(quoted, 16),
    protocol: quoted[9],
    srcPort: (quoted[headerLength] << 8) | quoted[headerLength + 1],
    dstPort: (quoted[headerLength + 2] << 8) | quoted[headerLength + 3],
    transport: quoted.subarray(headerLength),
  };
}

/** The part of an offending packet to quote in an error: at most `max` bytes (default 548). */
export function icmpQuoteOf(packet: Uint8Array, max = ICMP_MAX_QUOTE_LEN): Uint8Array {
  return packet.subarray(0, Math.min(packet.length, max));
}

/** Length of the ICMP message emitIcmp writes. */
export function icmpLength(icmp: IcmpRepr): number {
  return ICMP_HEADER_LEN + (icmp.kind === "dest-unreachable" ? icmp.quoted.length : icmp.data.length);
}

function checkIcmpFields(icmp: IcmpRepr): WireError | null {
  if (icmp.kind === "dest-unreachable") {
    if (!isUint8(icmp.code)) return new WireError("bad-field", "icmp: code not uint8");
    if (!isUint16(icmp.nextHopMtu)) return new WireError("bad-field", "icmp: next-hop MTU not uint16");
    if (icmp.code !== ICMP_UNREACH_FRAG_NEEDED && icmp.nextHopMtu !== 0) {
      return new WireError("bad-field", "icmp: next-hop MTU is only sent with code 4");
    }
  } else if (icmp.kind === "echo-request" || icmp.kind === "echo-reply") {
    if (!isUint16(icmp.id) || !isUint16(icmp.seq))
      return new WireError("bad-field", "icmp: id/seq not uint16");
  } else {
    return new WireError("bad-field", "icmp: unknown kind");
  }
  if (icmpLength(icmp) > IPV4_MAX_TOTAL_LEN - IPV4_HEADER_LEN) {
    return new WireError("bad-field", "icmp: message too long");
  }
  return null;
}

function writeIcmp(icmp: IcmpRepr, buf: Uint8Array, off: number, length: number): void {
  if (icmp.kind === "dest-unreachable") {
    buf[off] = ICMP_DEST_UNREACHABLE;
    buf[off + 1] = icmp.code;
    buf[off + 4] = 0;
    buf[off + 5] = 0;
    buf[off + 6] = icmp.nextHopMtu >>> 8;
    buf[off + 7] = icmp.nextHopMtu;
    buf.set(icmp.quoted, off + ICMP_HEADER_LEN);
  } else {
    buf[off] = icmp.kind === "echo-request" ? ICMP_ECHO_REQUEST : ICMP_ECHO_REPLY;
    buf[off + 1] = 0;
    buf[off + 4] = icmp.id >>> 8;
    buf[off + 5] = icmp.id;
    buf[off + 6] = icmp.seq >>> 8;
    buf[off + 7] = icmp.seq;
    buf.set(icmp.data, off + ICMP_HEADER_LEN);
  }
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  const c = internetChecksum(buf, off, length);
  buf[off + 2] = c >>> 8;
  buf[off + 3] = c;
}

/** Writes the ICMP message with its checksum at buf[off]. Returns its length. */
export function emitIcmp(icmp: IcmpRepr, buf: Uint8Array, off = 0): number | WireError {
  const err = checkIcmpFields(icmp);
  if (err !== null) return err;
  const length = icmpLength(icmp);
  if (!fits(buf, off, length)) return new WireError("no-space", "icmp: message");
  writeIcmp(icmp, buf, off, length);
  return length;
}

export function encodeIcmp(icmp: IcmpRepr): Uint8Array | WireError {
  const err = checkIcmpFields(icmp);
  if (err !== null) return err;
  const buf = new Uint8Array(icmpLength(icmp));
  writeIcmp(icmp, buf, 0, buf.length);
  return buf;
}

/** Writes an IPv4+ICMP packet at buf[off] (e.g. an echo reply). Returns its length. */
export function emitIpv4Icmp(
  ip: Ipv4SendParams,
  icmp: IcmpRepr,
  buf: Uint8Array,
  off = 0,
): number | WireError {
  const ipErr = checkIpv4SendParams(ip);
  if (ipErr !== null) return ipErr;
  const err = checkIcmpFields(icmp);
  if (err !== null) return err;
  const length = icmpLength(icmp);
  const total = IPV4_HEADER_LEN + length;
  if (!fits(buf, off, total)) return new WireError("no-space", "ipv4+icmp: packet");
  writeIpv4Header(ip, IP_PROTO_ICMP, total, buf, off);
  writeIcmp(icmp, buf, off + IPV4_HEADER_LEN, length);
  return total;
}

export function encodeIpv4Icmp(ip: Ipv4SendParams, icmp: IcmpRepr): Uint8Array | WireError {
  const err = checkIcmpFields(icmp);
  if (err !== null) return err;
  const buf = new Uint8Array(IPV4_HEADER_LEN + icmpLength(icmp));
  const r = emitIpv4Icmp(ip, icmp, buf, 0);
  return typeof r === "number" ? buf : r;
}
