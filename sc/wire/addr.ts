// IPv4 address helpers and connection-table keys. Addresses are uint32 numbers
// (198.18.0.1 === 0xc6120001), never strings, on the packet path.

import { WireError } from "./error.js";

/** "198.18.0.1" -> 0xc6120001. Strict: four decimal parts 0..255, no leading zeros ("010" is
 *  ambiguous: octal to inet_aton), no spaces, no other forms. */
export function ipv4FromString(text: string): number | WireError {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // a virtual "." ends the last part
    if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && part === 0) return badAddress(text);
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return badAddress(text);
    } else if (c === 0x2e) {
      if (digits === 0 || parts === 4) return badAddress(text);
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else {
      return badAddress(text);
    }
  }
  return parts === 4 ? value : badAddress(text);
}

function badAddress(text: string): WireError {
  return new WireError("bad-address", `not a dotted-quad IPv4 address: ${JSON.stringify(text.slice(0, 64))}`);
}

/** 0xc6120001 -> "198.18.0.1". */
export function ipv4ToString(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Reads a big-endian uint32 address at buf[off]. The caller guarantees off+4 <= buf.length. */
export function readIpv4(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/** Writes a uint32 address big-endian at buf[off]. */
export function writeIpv4(buf: Uint8Array, off: number, addr: number): void {
  buf[off] = addr >>> 24;
  buf[off + 1] = addr >>> 16;
  buf[off + 2] = addr >>> 8;
  buf[off + 3] = addr;
}

/**
 * Exact numeric key of one endpoint (address, port): 48 bits, a safe integer. Use it for
 * tables whose other endpoint is fixed (one listener, one VIP:port): numbers are the fastest
 * Map keys we measured (bench/wire-tuple-key.ts, docs/wire.md).
 */
export function endpointKey(addr: number, port: number): number {
  return (addr >>> 0) * 0x10000 + (port & 0xffff);
}

/**
 * Exact key of a TCP/UDP 4-tuple for Map lookups. 96 bits do not fit a number, so this is a
 * 6-character string (one UTF-16 unit per 16 bits): the fastest exact string form we measured,
 * about 1.5-2x slower than a numeric endpointKey, about 5x faster than a template string.
 */
export function fourTupleKey(srcAddr: number, srcPort: number, dstAddr: number, dstPort: number): string {
  return String.fromCharCode(
    srcAddr >>> 16,
    srcAddr & 0xffff,
    srcPort & 0xffff,
    dstAddr >>> 16,
    dstAddr & 0xffff,
    dstPort & 0xffff,
  );
}

/** An IPv4 prefix: `addr` with its host bits zero, `prefix` 0..32 leading bits. */
export interface Ipv4Cidr {
  addr: number;
  prefix: number;
}

/** The netmask of a prefix length: 24 -> 0xffffff00 (0 -> 0). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * "198.18.0.0/24" -> {addr, prefix}; a bare address is a /32. Strict like ipv4FromString; host
 * bits must be zero ("198.18.0.1/24" is refused: it reads like a typo for a /32 or a /24).
 */
export function ipv4CidrFromString(text: string): Ipv4Cidr | WireError {
  const slash = text.indexOf("/");
  const addr = ipv4FromString(slash < 0 ? text : text.slice(0, slash));
  if (addr instanceof WireError) return addr;
  if (slash < 0) return { addr, prefix: 32 };
  const len = text.slice(slash + 1);
  if (!/^(?:0|[1-9]\d?)$/.test(len) || Number(len) > 32) {
    return new WireError("bad-address", `prefix length must be 0..32: ${JSON.stringify(text.slice(0, 64))}`);
  }
  const prefix = Number(len);
  if ((addr & ~prefixMask(prefix)) >>> 0 !== 0) {
    return new WireError(
      "bad-address",
      `host bits set in ${JSON.stringify(text.slice(0, 64))}: write ${ipv4ToString((addr & prefixMask(prefix)) >>> 0)}/${prefix}, or the address alone for one host`,
    );
  }
  return { addr, prefix };
}

export function ipv4CidrToString(c: Ipv4Cidr): string {
  return c.prefix === 32 ? ipv4ToString(c.addr) : `${ipv4ToString(c.addr)}/${c.prefix}`;
}

/**
 * A set of IPv4 prefixes to test addresses against (allow-lists). Single hosts are a hash
 * lookup, wider prefixes a scan (allow-lists hold a handful of them). Pure.
 */
export class Ipv4CidrSet {
  private readonly hosts = new Set<number>();
  private readonly nets: { net: number; mask: number }[] = [];

  constructor(readonly cidrs: readonly Ipv4Cidr[]) {
    for (const c of cidrs) {
      if (c.prefix === 32) this.hosts.add(c.addr >>> 0);
      else this.nets.push({ net: c.addr >>> 0, mask: prefixMask(c.prefix) });
    }
  }

  /** Parses CIDR texts; the first bad one is returned as the WireError. */
  static parse(texts: readonly string[]): Ipv4CidrSet | WireError {
    const cidrs: Ipv4Cidr[] = [];
    for (const t of texts) {
      const c = ipv4CidrFromString(t);
      if (c instanceof WireError) return c;
      cidrs.push(c);
    }
    return new Ipv4CidrSet(cidrs);
  }

  get size(): number {
    return this.cidrs.length;
  }

  /** True when some prefix is 0.0.0.0/0 (every address matches). */
  get matchesAll(): boolean {
    return this.nets.some((n) => n.mask === 0);
  }

  has(addr: number): boolean {
    if (this.hosts.has(addr >>> 0)) return true;
    for (const n of this.nets) if ((addr & n.mask) >>> 0 === n.net) return true;
    return false;
  }

  toStrings(): string[] {
    return [...this.cidrs, ...this.added].map(ipv4CidrToString);
  }

  /** Hosts added at run time (a member that joined the cluster). */
  private readonly added: Ipv4Cidr[] = [];

  /** Adds one host (runtime membership: a new member may send GUE); true if it was new. */
  addHost(addr: number): boolean {
    if (this.has(addr)) return false;
    this.hosts.add(addr >>> 0);
    this.added.push({ addr: addr >>> 0, prefix: 32 });
    return true;
  }
}

// Which IPv4 addresses can be the remote end of a connection. A packet "from" one of the
// others is spoofed or misrouted (RFC 1122 3.2.1.3, RFC 1812 5.3.7 "martian" addresses):
// the TCP stack and the dispatcher drop it at input, and imported connection state naming
// one is refused (sc/tcp/state.ts).

/** Why `addr` cannot be a unicast TCP peer, or undefined if it can. */
export type ImplausibleAddress = "this-network" | "loopback" | "multicast" | "reserved";

/**
 * Classifies a remote address: 0.0.0.0/8 (this network; only a source while booting, never
 * for TCP), 127.0.0.0/8 (loopback, never on a wire), 224.0.0.0/4 (multicast: TCP is
 * unicast), 240.0.0.0/4 (reserved, including the limited broadcast 255.255.255.255).
 * The stack's own addresses are checked by the caller, which knows them.
 */
export function implausibleRemote(addr: number): ImplausibleAddress | undefined {
  const top = addr >>> 24;
  if (top === 0) return "this-network";
  if (top === 127) return "loopback";
  if (top >= 240) return "reserved";
  if (top >= 224) return "multicast";
  return undefined;
}
