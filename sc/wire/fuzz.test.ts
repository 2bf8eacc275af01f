// Fuzz: >= 100k random and mutated packets into every parser. Nothing may throw, every
// failure must be a typed WireError, successes must hold only in-range integers, and no
// parser may read outside the bytes it was given:
//  - each input is parsed twice, alone in its own ArrayBuffer and as a view inside a larger
//    buffer of random bytes: any read past the view (e.g. through .buffer) changes results;
//  - a sample is parsed through a Proxy that records every index read outside the view.
// A failure prints the seed; replay it with WIRE_SEED=<seed>.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ipv4FromString } from "./addr.js";
import { WIRE_ERROR_KINDS, WireError } from "./error.js";
import { emitGueEncap, gueInnerOffset, parseGue, type GueEncapParams } from "./gue.js";
import { emitIcmp, emitIpv4Icmp, encodeIpv4Icmp, parseIcmp, parseIcmpQuote, type IcmpRepr } from "./icmp.js";
import {
  IP_PROTO_ICMP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  Ipv4Packet,
  emitIpv4,
  encodeIpv4,
  parseIpv4,
  type Ipv4Header,
} from "./ipv4.js";
import {
  TcpPacket,
  emitIpv4Tcp,
  emitTcp,
  encodeIpv4Tcp,
  parseTcp,
  parseTcpOptions,
  type TcpRepr,
} from "./tcp.js";
import {
  Prng,
  randomGueVariant,
  randomIcmp,
  randomIpv4Header,
  randomSendParams,
  randomTcp,
  randomUdp,
  testSeed,
  toHex,
} from "./testing.js";
import { UdpPacket, emitIpv4Udp, emitUdp, encodeIpv4Udp, parseUdp, type UdpRepr } from "./udp.js";
import { encodeGueEncap } from "./gue.js";

const INPUTS = 100_000;
const PROXY_EVERY = 10;
const KINDS = new Set<string>(WIRE_ERROR_KINDS);

function withSeed(name: string, body: (r: Prng) => void): void {
  const seed = testSeed();
  try {
    body(new Prng(seed));
  } catch (err) {
    throw new Error(`${name} failed with WIRE_SEED=${seed}: ${(err as Error).message}`, { cause: err });
  }
}

function must<T>(x: T | WireError): T {
  if (x instanceof WireError) throw new Error(`corpus: ${x.kind} ${x.detail}`);
  return x;
}

/** A valid packet of some kind: whole IPv4 packets and bare transport payloads. */
function validPacket(r: Prng): Uint8Array {
  const ip = randomSendParams(r);
  switch (r.below(9)) {
    case 0:
      return must(encodeIpv4({ ...randomIpv4Header(r), payload: r.bytes(r.below(64)) }));
    case 1:
    case 2:
      return must(encodeIpv4Tcp(ip, randomTcp(r, 64)));
    case 3:
      return must(encodeIpv4Udp(ip, randomUdp(r, 64), { checksum: r.bool() }));
    case 4: {
      const inner = must(encodeIpv4Tcp(randomSendParams(r), randomTcp(r, 32)));
      const outer: GueEncapParams = {
        ...ip,
        srcPort: r.below(65536),
        dstPort: 6080,
        variant: randomGueVariant(r),
      };
      return must(encodeGueEncap(outer, inner));
    }
    case 5: {
      const icmp = randomIcmp(r);
      if (icmp.kind === "dest-unreachable" && r.bool()) {
        icmp.quoted = must(encodeIpv4Tcp(randomSendParams(r), randomTcp(r, 16))).subarray(
          0,
          28 + r.below(40),
        );
      }
      return must(encodeIpv4Icmp(ip, icmp));
    }
    case 6: // a TCP segment alone
      return must(encodeIpv4Tcp(ip, randomTcp(r, 32))).subarray(20);
    case 7: // a GUE payload alone (variant 0 with extension words)
      return Uint8Array.from([r.below(4), 4, r.below(256), r.below(256), ...r.bytes(4 * r.below(4))]);
    default:
      return r.bytes(r.below(80));
  }
}

/** Offsets of length-ish fields in an IPv4 packet, to corrupt them on purpose. */
function lengthFieldSpots(p: Uint8Array): number[] {
  const ihl = p.length > 0 ? (p[0] & 0x0f) * 4 : 20;
  return [0, 2, 3, ihl + 12, ihl + 4, ihl + 5, 28, 29, ihl + 20, ihl + 21, ihl + 22, 13].filter(
    (i) => i < p.length,
  );
}

function mutate(r: Prng, input: Uint8Array): Uint8Array {
  let p: Uint8Array = input.slice();
  const rounds = 1 + r.below(3);
  for (let k = 0; k < rounds; k++) {
    switch (r.below(7)) {
      case 0: // flip bits
        for (let n = 1 + r.below(4); n > 0 && p.length > 0; n--) p[r.below(p.length)] ^= 1 << r.below(8);
        break;
      case 1: // boundary values into a random byte
        if (p.length > 0)
          p[r.below(p.length)] = r.pick([0, 1, 2, 3, 4, 5, 0x0f, 0x10, 0x40, 0x45, 0x7f, 0x80, 0xff]);
        break;
      case 2: // truncate
        p = p.subarray(0, r.below(p.length + 1)).slice();
        break;
      case 3: {
        // extend with junk
        const q = new Uint8Array(p.length + 1 + r.below(40));
        q.set(p);
        q.set(r.bytes(q.length - p.length), p.length);
        p = q;
        break;
      }
      case 4: {
        // corrupt a header/datagram length field
        const spots = lengthFieldSpots(p);
        if (spots.length > 0) p[r.pick(spots)] = r.u32() & 0xff;
        break;
      }
      case 5: // corrupt an option length byte somewhere after the fixed headers
        if (p.length > 22) p[20 + r.below(p.length - 20)] = r.pick([0, 1, 2, 3, 4, 8, 10, 18, 34, 40, 255]);
        break;
      default:
        p = r.bytes(r.below(100));
    }
  }
  return p;
}

// ------------------------------------------------------------------ running every parser

const ipView = new Ipv4Packet();
const tcpView = new TcpPacket();
const udpView = new UdpPacket();
const SRC = 0xc6120002;
const DST = 0xc6126401;

/** Runs every parser on `b`, returning one comparable outcome per parser. */
function parseAll(b: Uint8Array): unknown[] {
  const out: unknown[] = [];
  out.push(parseIpv4(b));
  const ip = parseIpv4(b, { allowFragments: true, verifyChecksum: false });
  out.push(ip);
  const wrapped = ipView.wrap(b, 0, b.length, { allowFragments: true, verifyChecksum: false });
  out.push(wrapped);
  if (wrapped === null) {
    out.push([
      ipView.headerLength,
      ipView.totalLength,
      ipView.src,
      ipView.dst,
      ipView.protocol,
      ipView.fragOffset,
      ipView.payloadLength,
      ipView.verifyChecksum(),
      ipView.payload(),
      ipView.options(),
    ]);
  }
  out.push(parseTcp(b, SRC, DST), parseTcp(b, SRC, DST, { verifyChecksum: false }));
  out.push(parseTcpOptions(b, 0, b.length));
  const t = tcpView.wrap(b, 0, b.length, SRC, DST, { verifyChecksum: false });
  out.push(t);
  if (t === null)
    out.push([tcpView.srcPort, tcpView.seq, tcpView.flags, tcpView.payload(), tcpView.options()]);
  out.push(parseUdp(b, SRC, DST), parseUdp(b, SRC, DST, { verifyChecksum: false }));
  const u = udpView.wrap(b, 0, b.length, SRC, DST, { verifyChecksum: false });
  out.push(u);
  if (u === null) out.push([udpView.srcPort, udpView.length, udpView.payload()]);
  out.push(parseGue(b), gueInnerOffset(b, 0, b.length));
  out.push(parseIcmp(b), parseIcmp(b, { verifyChecksum: false }), parseIcmpQuote(b));
  // The chain a receiver runs: IPv4 -> transport -> GUE inner / ICMP quote.
  if (!(ip instanceof WireError)) {
    if (ip.protocol === IP_PROTO_TCP) out.push(parseTcp(ip.payload, ip.src, ip.dst));
    if (ip.protocol === IP_PROTO_UDP) {
      const udp = parseUdp(ip.payload, ip.src, ip.dst);
      out.push(udp);
      if (!(udp instanceof WireError)) {
        const gue = parseGue(udp.payload);
        out.push(gue);
        if (!(gue instanceof WireError)) out.push(parseIpv4(gue.inner));
      }
    }
    if (ip.protocol === IP_PROTO_ICMP) {
      const icmp = parseIcmp(ip.payload, { verifyChecksum: false });
      out.push(icmp);
      if (!(icmp instanceof WireError) && icmp.kind === "dest-unreachable")
        out.push(parseIcmpQuote(icmp.quoted));
    }
  }
  return out;
}

/** Canonical text of an outcome; also checks it is well-formed (typed error or in-range ints). */
function describe(v: unknown, path: string): string {
  if (v === null) return "null";
  if (v instanceof WireError) {
    if (!KINDS.has(v.kind)) throw new Error(`${path}: unknown error kind ${v.kind}`);
    return `E(${v.kind}:${v.detail})`;
  }
  if (v instanceof Uint8Array) return `B(${toHex(v)})`;
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${path}: bad number ${v}`);
    return String(v);
  }
  if (typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x, i) => describe(x, `${path}[${i}]`)).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    // Same code path, same key order: no need to sort.
    return `{${Object.keys(o)
      .map((k) => `${k}:${describe(o[k], `${path}.${k}`)}`)
      .join(",")}}`;
  }
  throw new Error(`${path}: unexpected ${typeof v}`);
}

/** A view that logs every read of an index outside it. */
function guarded(target: Uint8Array, log: string[]): Uint8Array {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === "string" && prop.length > 0) {
        const c = prop.charCodeAt(0);
        if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
          const i = Number(prop);
          if (!(Number.isInteger(i) && i >= 0 && i < t.length)) log.push(`read [${prop}] of ${t.length}`);
          return t[i];
        }
      }
      if (prop === "subarray") return (a?: number, b?: number) => guarded(t.subarray(a, b), log);
      const value: unknown = Reflect.get(t, prop, t);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

test(`fuzz: ${INPUTS} random and mutated inputs into every parser`, () => {
  withSeed("fuzz", (r) => {
    const kinds = new Map<string, number>();
    let accepted = 0;
    for (let i = 0; i < INPUTS; i++) {
      const input = r.bool(0.9) ? mutate(r, validPacket(r)) : validPacket(r);
      let tight: string;
      try {
        const results = parseAll(input.slice());
        tight = describe(results, "result");
        for (const x of results) {
          if (x instanceof WireError) kinds.set(x.kind, (kinds.get(x.kind) ?? 0) + 1);
          else if (x !== null && typeof x === "object") accepted++;
        }
        // The same bytes as a view inside a bigger buffer of random junk.
        const before = r.below(9);
        const host = r.bytes(before + input.length + r.below(9));
        host.set(input, before);
        const embedded = describe(parseAll(host.subarray(before, before + input.length)), "result");
        assert.equal(embedded, tight, "results depend on bytes outside the view");
        if (i % PROXY_EVERY === 0) {
          const log: string[] = [];
          parseAll(guarded(input.slice(), log));
          assert.deepEqual(log, [], "read outside the view");
        }
      } catch (err) {
        throw new Error(`input #${i} ${toHex(input)}: ${(err as Error).message}`, { cause: err });
      }
    }
    // The corpus must exercise both success and every parse-side error kind.
    assert.ok(accepted > INPUTS, `only ${accepted} accepted parses`);
    for (const kind of [
      "truncated",
      "bad-version",
      "bad-header-length",
      "bad-length",
      "bad-checksum",
      "fragment",
      "bad-option",
      "unsupported",
      "gue-control",
    ]) {
      assert.ok((kinds.get(kind) ?? 0) > 0, `fuzz never produced ${kind}`);
    }
  });
});

// ------------------------------------------------------------------ emitters with bad input

function junkNumber(r: Prng): number {
  return r.pick([-1, 0.5, Number.NaN, Infinity, 256, 65536, 2 ** 32, -(2 ** 31), 15, 41, 1e9, 0, 1, 255]);
}

function maybeJunk<T extends object>(r: Prng, repr: T): T {
  const o = { ...repr } as Record<string, unknown>;
  for (const key of Object.keys(o)) if (typeof o[key] === "number" && r.bool(0.1)) o[key] = junkNumber(r);
  return o as T;
}

test("emitters never throw and only write packets that parse", () => {
  withSeed("emit fuzz", (r) => {
    for (let i = 0; i < 20_000; i++) {
      const buf = new Uint8Array(r.below(2200));
      const off = r.bool(0.9) ? r.below(64) : junkNumber(r);
      const ip = maybeJunk(r, randomSendParams(r));
      const tcp: TcpRepr = maybeJunk(r, randomTcp(r, 1500));
      if (r.bool(0.2)) tcp.options = maybeJunk(r, { ...tcp.options, mss: 1, wscale: 3 });
      if (r.bool(0.05))
        tcp.options = {
          ...tcp.options,
          sack: [
            [1, 2],
            [3, 4],
            [5, 6],
            [7, 8],
            [9, 10],
          ],
        };
      const udp: UdpRepr = maybeJunk(r, randomUdp(r, 1500));
      const icmp: IcmpRepr = maybeJunk(r, randomIcmp(r));
      const header: Ipv4Header = maybeJunk(r, randomIpv4Header(r));
      if (r.bool(0.05)) header.options = r.bytes(r.below(48));
      const outer: GueEncapParams = maybeJunk(r, {
        ...ip,
        srcPort: 1,
        dstPort: 6080,
        variant: randomGueVariant(r),
      });
      const payload = r.bytes(r.below(1500));
      const attempts: Array<[string, () => number | WireError, (n: number) => unknown]> = [
        [
          "ipv4",
          () => emitIpv4({ ...header, payload }, buf, off),
          (n) => parseIpv4(buf.subarray(off, off + n), { allowFragments: true }),
        ],
        ["ipv4+tcp", () => emitIpv4Tcp(ip, tcp, buf, off), (n) => parseIpv4(buf.subarray(off, off + n))],
        [
          "tcp",
          () => emitTcp(tcp, ip.src, ip.dst, buf, off),
          (n) => parseTcp(buf.subarray(off, off + n), ip.src, ip.dst),
        ],
        ["ipv4+udp", () => emitIpv4Udp(ip, udp, buf, off), (n) => parseIpv4(buf.subarray(off, off + n))],
        [
          "udp",
          () => emitUdp(udp, ip.src, ip.dst, buf, off),
          (n) => parseUdp(buf.subarray(off, off + n), ip.src, ip.dst),
        ],
        ["icmp", () => emitIcmp(icmp, buf, off), (n) => parseIcmp(buf.subarray(off, off + n))],
        ["ipv4+icmp", () => emitIpv4Icmp(ip, icmp, buf, off), (n) => parseIpv4(buf.subarray(off, off + n))],
        ["gue", () => emitGueEncap(outer, payload, buf, off), (n) => parseIpv4(buf.subarray(off, off + n))],
      ];
      for (const [name, emit, parse] of attempts) {
        let n: number | WireError;
        try {
          n = emit();
        } catch (err) {
          throw new Error(`${name} emit threw: ${(err as Error).message}`, { cause: err });
        }
        if (n instanceof WireError) {
          assert.ok(n.kind === "bad-field" || n.kind === "no-space", `${name}: ${n.kind}`);
          continue;
        }
        const parsed = parse(n);
        assert.ok(!(parsed instanceof WireError), `${name}: emitted bytes do not parse: ${String(parsed)}`);
      }
    }
  });
});

test("address strings from fuzz bytes never throw", () => {
  withSeed("addr fuzz", (r) => {
    const alphabet = "0123456789.. x-+0";
    for (let i = 0; i < 20_000; i++) {
      let s = "";
      for (let n = r.below(20); n > 0; n--) s += alphabet[r.below(alphabet.length)];
      const a = ipv4FromString(s);
      if (typeof a === "number") {
        assert.ok(a >>> 0 === a);
        assert.match(s, /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/);
      } else {
        assert.equal(a.kind, "bad-address");
      }
    }
  });
});
