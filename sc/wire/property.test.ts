// parse(emit(x)) deep-equals x for thousands of random valid representations, per format.
// A failure prints the seed; replay it with WIRE_SEED=<seed>.

import assert from "node:assert/strict";
import { test } from "node:test";

import { endpointKey, fourTupleKey, ipv4FromString, ipv4ToString } from "./addr.js";
import { WireError } from "./error.js";
import {
  emitGueEncap,
  emitGueEncapHeaders,
  encodeGueEncap,
  gueEncapHeaderLength,
  gueInnerOffset,
  parseGue,
} from "./gue.js";
import { encodeIcmp, encodeIpv4Icmp, parseIcmp } from "./icmp.js";
import { IP_PROTO_TCP, emitIpv4, encodeIpv4, parseIpv4, type Ipv4Repr } from "./ipv4.js";
import {
  emitIpv4Tcp,
  emitIpv4TcpHeaders,
  encodeIpv4Tcp,
  encodeTcp,
  fillIpv4TcpChecksum,
  ipv4TcpLength,
  parseTcp,
  parseTcpInto,
  pooledTcpRepr,
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
} from "./testing.js";
import { encodeIpv4Udp, encodeUdp, parseUdp } from "./udp.js";

const N = 3000;

function withSeed(name: string, body: (r: Prng) => void): void {
  const seed = testSeed();
  try {
    body(new Prng(seed));
  } catch (err) {
    throw new Error(`${name} failed with WIRE_SEED=${seed}: ${(err as Error).message}`, { cause: err });
  }
}

function ok<T>(result: T | WireError): T {
  if (result instanceof WireError) assert.fail(`unexpected ${result.kind}: ${result.detail}`);
  return result;
}

/** A parsed segment with absent options dropped, as parseTcp returns it. */
function plainTcp(t: TcpRepr): TcpRepr {
  const options = Object.fromEntries(Object.entries(t.options).filter(([, v]) => v !== undefined));
  return { ...t, options, payload: Uint8Array.from(t.payload) };
}

test("TCP: parseTcpInto reusing one object == parseTcp, also after a corrupted segment", () => {
  withSeed("tcp-into", (r) => {
    const out = pooledTcpRepr();
    for (let i = 0; i < N; i++) {
      const ip = randomSendParams(r);
      const packet = ok(encodeIpv4Tcp(ip, randomTcp(r)));
      // Sometimes a byte flipped in the header or options (bad checksum, or with the checksum
      // unverified a different header), sometimes a segment in the middle of a larger buffer.
      const verify = r.below(2) === 0;
      if (r.below(4) === 0) packet[20 + r.below(Math.min(60, packet.length - 20))] ^= 1 << r.below(8);
      const pad = r.below(3);
      const buf = new Uint8Array(packet.length + pad * 2);
      buf.set(packet, pad);
      const want = parseTcp(packet.subarray(20), ip.src, ip.dst, { verifyChecksum: verify });
      const err = parseTcpInto(buf, pad + 20, packet.length - 20, ip.src, ip.dst, out, {
        verifyChecksum: verify,
      });
      if (want instanceof WireError) {
        assert.equal(err?.kind, want.kind);
        continue;
      }
      assert.equal(err, null);
      assert.deepEqual(plainTcp(out), { ...want, payload: Uint8Array.from(want.payload) });
    }
  });
});

test("IPv4: parse(emit(x)) == x", () => {
  withSeed("ipv4", (r) => {
    for (let i = 0; i < N; i++) {
      const header = randomIpv4Header(r);
      const payload = r.bytes(r.below(300));
      const bytes = ok(encodeIpv4({ ...header, payload }));
      const options = header.options ?? new Uint8Array(0);
      const expected: Ipv4Repr = {
        ...header,
        options,
        headerLength: 20 + options.length,
        totalLength: 20 + options.length + payload.length,
        payload,
      };
      assert.deepEqual(ok(parseIpv4(bytes, { allowFragments: true })), expected);
      // Emitting at an offset inside a larger buffer writes the same bytes.
      const off = r.below(32);
      const big = r.bytes(off + bytes.length + r.below(32));
      assert.equal(ok(emitIpv4({ ...header, payload }, big, off)), bytes.length);
      assert.deepEqual(big.subarray(off, off + bytes.length), bytes);
    }
  });
});

test("IPv4+TCP: parse(emit(x)) == x, and the two-step emit writes the same bytes", () => {
  withSeed("tcp", (r) => {
    for (let i = 0; i < N; i++) {
      const ip = randomSendParams(r);
      const tcp = randomTcp(r);
      const bytes = ok(encodeIpv4Tcp(ip, tcp));
      assert.equal(bytes.length, ipv4TcpLength(tcp));
      const parsedIp = ok(parseIpv4(bytes));
      assert.deepEqual(
        { src: parsedIp.src, dst: parsedIp.dst, ttl: parsedIp.ttl, tos: parsedIp.tos, id: parsedIp.id },
        { src: ip.src, dst: ip.dst, ttl: ip.ttl, tos: ip.tos, id: ip.id },
      );
      assert.equal(parsedIp.dontFrag, ip.dontFrag);
      assert.equal(parsedIp.protocol, IP_PROTO_TCP);
      assert.deepEqual(ok(parseTcp(parsedIp.payload, ip.src, ip.dst)), tcp);
      // Segment-only encoding is the IP payload of the full packet.
      assert.deepEqual(ok(encodeTcp(tcp, ip.src, ip.dst)), parsedIp.payload);

      const off = r.below(16);
      const buf = r.bytes(off + bytes.length + r.below(16));
      const headers = ok(emitIpv4TcpHeaders(ip, tcp, tcp.payload.length, buf, off));
      buf.set(tcp.payload, off + headers);
      fillIpv4TcpChecksum(buf, off);
      assert.deepEqual(buf.subarray(off, off + bytes.length), bytes);
      const again = r.bytes(off + bytes.length);
      assert.equal(ok(emitIpv4Tcp(ip, tcp, again, off)), bytes.length);
      assert.deepEqual(again.subarray(off), bytes);
    }
  });
});

test("IPv4+UDP: parse(emit(x)) == x with and without checksum", () => {
  withSeed("udp", (r) => {
    for (let i = 0; i < N; i++) {
      const ip = randomSendParams(r);
      const udp = randomUdp(r);
      const checksum = r.bool();
      const bytes = ok(encodeIpv4Udp(ip, udp, { checksum }));
      const parsedIp = ok(parseIpv4(bytes));
      assert.deepEqual(ok(parseUdp(parsedIp.payload, ip.src, ip.dst)), udp);
      assert.equal(bytes[26] !== 0 || bytes[27] !== 0, checksum);
      assert.deepEqual(ok(encodeUdp(udp, ip.src, ip.dst, { checksum })), parsedIp.payload);
    }
  });
});

test("GUE: the inner packet survives encapsulation, copied or in place", () => {
  withSeed("gue", (r) => {
    for (let i = 0; i < N; i++) {
      const inner = ok(encodeIpv4Tcp(randomSendParams(r), randomTcp(r, 1400)));
      const variant = randomGueVariant(r);
      const outer = {
        ...randomSendParams(r),
        srcPort: r.below(65536),
        dstPort: r.below(65536),
        variant,
        udpChecksum: r.bool(),
      };
      const bytes = ok(encodeGueEncap(outer, inner));
      const ip = ok(parseIpv4(bytes));
      const udp = ok(parseUdp(ip.payload, ip.src, ip.dst));
      assert.equal(udp.srcPort, outer.srcPort);
      assert.equal(udp.dstPort, outer.dstPort);
      const gue = ok(parseGue(udp.payload));
      assert.deepEqual(gue, {
        variant,
        proto: 4,
        flags: 0,
        headerLength: variant === 0 ? 4 : 0,
        inner,
      });
      assert.equal(gueInnerOffset(bytes, 28, udp.payload.length), gueEncapHeaderLength(variant));

      // In place: the inner packet already sits behind enough headroom.
      const off = r.below(8);
      const buf = r.bytes(off + bytes.length);
      buf.set(inner, off + gueEncapHeaderLength(variant));
      assert.equal(ok(emitGueEncapHeaders(outer, inner.length, buf, off)), bytes.length);
      assert.deepEqual(buf.subarray(off), bytes);
      const copy = r.bytes(bytes.length);
      assert.equal(ok(emitGueEncap(outer, inner, copy)), bytes.length);
      assert.deepEqual(copy, bytes);
    }
  });
});

test("ICMP: parse(emit(x)) == x", () => {
  withSeed("icmp", (r) => {
    for (let i = 0; i < N; i++) {
      const ip = randomSendParams(r);
      const icmp = randomIcmp(r);
      const bytes = ok(encodeIpv4Icmp(ip, icmp));
      const parsedIp = ok(parseIpv4(bytes));
      assert.deepEqual(ok(parseIcmp(parsedIp.payload)), icmp);
      assert.deepEqual(ok(encodeIcmp(icmp)), parsedIp.payload);
    }
  });
});

test("addresses: string round trip and exact keys", () => {
  withSeed("addr", (r) => {
    const keys = new Map<string, string>();
    const endpoints = new Map<number, string>();
    for (let i = 0; i < N * 10; i++) {
      const a = r.bool(0.1) ? r.pick([0, 0xffffffff, 0x7fffffff, 0x80000000]) : r.u32();
      assert.equal(ipv4FromString(ipv4ToString(a)), a);
      // Small value ranges so that collisions between different tuples would show up.
      const t = [r.below(4) * 0x40000001, r.below(4) * 0x4001, r.below(4) * 0x40000001, r.below(4) * 0x4001];
      const plain = t.join(",");
      const key = fourTupleKey(t[0], t[1], t[2], t[3]);
      assert.equal(keys.get(key) ?? plain, plain);
      keys.set(key, plain);
      const ek = endpointKey(t[0], t[1]);
      assert.ok(Number.isSafeInteger(ek));
      assert.equal(endpoints.get(ek) ?? `${t[0]},${t[1]}`, `${t[0]},${t[1]}`);
      endpoints.set(ek, `${t[0]},${t[1]}`);
    }
    assert.equal(keys.size, 256);
    assert.equal(endpoints.size, 16);
  });
});
