// Targeted cases: addresses, emit errors, options edge cases, views, GUE/ICMP helpers.

import assert from "node:assert/strict";
import { test } from "node:test";

import { endpointKey, fourTupleKey, ipv4FromString, ipv4ToString } from "./addr.js";
import { WireError, isWireError } from "./error.js";
import { GUE_PORT, emitGueEncapHeaders, gueEncapHeaderLength, gueInnerOffset } from "./gue.js";
import { encodeIcmp, encodeIpv4Icmp, icmpQuoteOf, parseIcmp, parseIcmpQuote } from "./icmp.js";
import { Ipv4Packet, encodeIpv4, parseIpv4, type Ipv4SendParams } from "./ipv4.js";
import {
  TCP_ACK,
  TCP_SYN,
  TCPOPT_MSS,
  TCPOPT_SACK,
  TCPOPT_TIMESTAMP,
  TCPOPT_WSCALE,
  TcpPacket,
  emitIpv4Tcp,
  encodeIpv4Tcp,
  parseTcp,
  parseTcpOptions,
  tcpHeaderLength,
  tcpOptionsLength,
  type TcpRepr,
} from "./tcp.js";
import { fromHex, toHex } from "./testing.js";
import { parseUdp } from "./udp.js";

const A = 0xc6120002; // 198.18.0.2
const VIP = 0xc6126401; // 198.18.100.1
const IP: Ipv4SendParams = { src: A, dst: VIP, ttl: 64, tos: 0, id: 1, dontFrag: true };

function syn(options: TcpRepr["options"] = {}): TcpRepr {
  return {
    srcPort: 40000,
    dstPort: 80,
    seq: 1,
    ack: 0,
    flags: TCP_SYN,
    window: 65535,
    urgent: 0,
    options,
    payload: new Uint8Array(0),
  };
}

function errorKind(x: unknown): string | undefined {
  return x instanceof WireError ? x.kind : undefined;
}

test("dotted quads", () => {
  assert.equal(ipv4FromString("198.18.100.1"), VIP);
  assert.equal(ipv4FromString("0.0.0.0"), 0);
  assert.equal(ipv4FromString("255.255.255.255"), 0xffffffff);
  assert.equal(ipv4ToString(VIP), "198.18.100.1");
  assert.equal(ipv4ToString(0xffffffff), "255.255.255.255");
  for (const bad of [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.256",
    "01.2.3.4",
    "1..3.4",
    "1.2.3.4.",
    " 1.2.3.4",
    "a.b.c.d",
    "1.2.3.-4",
    "1234.1.1.1",
  ]) {
    const r = ipv4FromString(bad);
    assert.ok(isWireError(r), JSON.stringify(bad));
    assert.equal(r.kind, "bad-address");
  }
});

test("connection keys", () => {
  assert.notEqual(fourTupleKey(A, 1, VIP, 80), fourTupleKey(VIP, 80, A, 1));
  assert.equal(fourTupleKey(A, 1, VIP, 80), fourTupleKey(A, 1, VIP, 80));
  assert.equal(fourTupleKey(A, 1, VIP, 80).length, 6);
  assert.equal(endpointKey(0xffffffff, 0xffff), 2 ** 48 - 1);
  assert.notEqual(endpointKey(A, 1), endpointKey(A, 2));
});

test("TCP option lengths and the 40-byte limit", () => {
  assert.equal(tcpOptionsLength({}), 0);
  const linuxSyn = { mss: 1460, sackPermitted: true, timestamp: { tsval: 1, tsecr: 0 }, wscale: 7 };
  assert.equal(tcpOptionsLength(linuxSyn), 20);
  assert.equal(tcpHeaderLength(linuxSyn), 40);
  assert.equal(tcpOptionsLength({ sackPermitted: true }), 4);
  const threeWithTs = {
    timestamp: { tsval: 1, tsecr: 2 },
    sack: [
      [1, 2],
      [3, 4],
      [5, 6],
    ] as Array<[number, number]>,
  };
  assert.equal(tcpOptionsLength(threeWithTs), 40);
  assert.ok(encodeIpv4Tcp(IP, syn(threeWithTs)) instanceof Uint8Array);
  const fourWithTs = { ...threeWithTs, sack: [...threeWithTs.sack, [7, 8]] as Array<[number, number]> };
  assert.equal(errorKind(encodeIpv4Tcp(IP, syn(fourWithTs))), "bad-field");
  assert.equal(errorKind(encodeIpv4Tcp(IP, syn({ wscale: 15 }))), "bad-field");
  assert.equal(errorKind(encodeIpv4Tcp(IP, syn({ mss: 65536 }))), "bad-field");
  assert.equal(errorKind(encodeIpv4Tcp(IP, { ...syn(), seq: -1 })), "bad-field");
  assert.equal(errorKind(encodeIpv4Tcp({ ...IP, ttl: 256 }, syn())), "bad-field");
});

test("TCP option parsing corner cases", () => {
  // NOPs only; EOL with garbage after it; unknown option of exactly the remaining length.
  assert.deepEqual(parseTcpOptions(fromHex("01010101"), 0, 4), {});
  assert.deepEqual(parseTcpOptions(fromHex("0000ff02"), 0, 4), {});
  assert.deepEqual(parseTcpOptions(fromHex("fe04aabb"), 0, 4), {});
  assert.deepEqual(parseTcpOptions(fromHex("020405b4"), 0, 4), { mss: 1460 });
  // The end bound is respected: the MSS option would need bytes past `end`.
  assert.equal(errorKind(parseTcpOptions(fromHex("020405b4"), 0, 3)), "bad-option");
  // Duplicates: the last one wins (as Linux does).
  assert.deepEqual(parseTcpOptions(fromHex("02040001020400020103030e"), 0, 12), { mss: 2, wscale: 14 });
});

test("emit into a caller's buffer: offsets and space", () => {
  const packet = encodeIpv4Tcp(IP, { ...syn(), flags: TCP_ACK, payload: new Uint8Array(100) });
  assert.ok(packet instanceof Uint8Array);
  const buf = new Uint8Array(200);
  assert.equal(emitIpv4Tcp(IP, { ...syn(), flags: TCP_ACK, payload: new Uint8Array(100) }, buf, 60), 140);
  assert.equal(toHex(buf.subarray(60)), toHex(packet));
  assert.equal(errorKind(emitIpv4Tcp(IP, syn(), buf, 181)), "no-space");
  assert.equal(errorKind(emitIpv4Tcp(IP, syn(), buf, -1)), "no-space");
  assert.equal(errorKind(emitIpv4Tcp(IP, syn(), buf, 1.5)), "no-space");
  // Nothing was written on failure.
  assert.ok(buf.subarray(0, 60).every((b) => b === 0));
});

test("IPv4 options, fragments and trailing bytes", () => {
  const options = fromHex("94040000"); // router alert
  const packet = encodeIpv4({
    src: A,
    dst: VIP,
    protocol: 17,
    ttl: 1,
    tos: 0,
    id: 5,
    dontFrag: false,
    moreFrags: true,
    fragOffset: 0,
    options,
    payload: fromHex("aabb"),
  });
  assert.ok(packet instanceof Uint8Array);
  assert.equal(packet[0], 0x46);
  assert.equal(errorKind(parseIpv4(packet)), "fragment");
  const repr = parseIpv4(packet, { allowFragments: true });
  assert.ok(!isWireError(repr));
  assert.deepEqual(repr.options, options);
  const padded = new Uint8Array(packet.length + 10);
  padded.set(packet);
  const again = parseIpv4(padded, { allowFragments: true });
  assert.ok(!isWireError(again));
  assert.deepEqual(again.payload, fromHex("aabb"));
  assert.equal(errorKind(encodeIpv4({ ...repr, options: fromHex("940400") })), "bad-field");
  assert.equal(errorKind(encodeIpv4({ ...repr, fragOffset: 12 })), "bad-field");
  // A bad checksum is reported before the fragment.
  packet[10] ^= 1;
  assert.equal(errorKind(parseIpv4(packet)), "bad-checksum");
  assert.ok(!isWireError(parseIpv4(packet, { verifyChecksum: false, allowFragments: true })));
});

test("views read the same fields as the parsers without copying", () => {
  const payload = fromHex("0102030405");
  const packet = encodeIpv4Tcp(IP, { ...syn({ mss: 1400 }), payload });
  assert.ok(packet instanceof Uint8Array);
  const batch = new Uint8Array(packet.length + 7);
  batch.set(packet, 7);
  const ip = new Ipv4Packet();
  assert.equal(ip.wrap(batch, 7, packet.length), null);
  assert.equal(ip.src, A);
  assert.equal(ip.dst, VIP);
  const tcp = new TcpPacket();
  assert.equal(tcp.wrap(batch, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst), null);
  assert.equal(tcp.dstPort, 80);
  assert.equal(tcp.flags, TCP_SYN);
  assert.deepEqual(tcp.options(), { mss: 1400 });
  assert.equal(tcp.hasOption(TCPOPT_MSS), true);
  assert.equal(tcp.hasOption(TCPOPT_SACK), false);
  assert.deepEqual(tcp.payload(), payload);
  assert.equal(tcp.payload().buffer, batch.buffer, "a view, not a copy");
  // Wrong pseudo-header address: checksum error.
  assert.equal(
    errorKind(tcp.wrap(batch, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst + 1)),
    "bad-checksum",
  );
  assert.equal(errorKind(ip.wrap(batch, 7, packet.length - 1)), "truncated");
  assert.equal(errorKind(ip.wrap(batch, 8, packet.length)), "truncated");
});

test("TcpPacket.hasOption finds an option among others and stops at a malformed list", () => {
  const sack = encodeIpv4Tcp(IP, {
    ...syn(),
    flags: TCP_ACK,
    options: { timestamp: { tsval: 1, tsecr: 2 }, sack: [[5, 9]] },
  });
  assert.ok(sack instanceof Uint8Array);
  const ip = new Ipv4Packet();
  assert.equal(ip.wrap(sack), null);
  const tcp = new TcpPacket();
  assert.equal(tcp.wrap(sack, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst), null);
  assert.equal(tcp.hasOption(TCPOPT_SACK), true);
  assert.equal(tcp.hasOption(TCPOPT_TIMESTAMP), true);
  assert.equal(tcp.hasOption(TCPOPT_WSCALE), false);
  // A zero length byte before the SACK block: the walk stops there, no endless loop.
  const bad = Uint8Array.from(sack);
  const opt = ip.payloadOffset + 20;
  bad[opt] = 0x22;
  bad[opt + 1] = 0;
  assert.equal(
    tcp.wrap(bad, ip.payloadOffset, ip.payloadLength, ip.src, ip.dst, { verifyChecksum: false }),
    null,
  );
  assert.equal(tcp.hasOption(TCPOPT_SACK), false);
});

test("GUE encapsulation in place and the receive side", () => {
  const inner = encodeIpv4Tcp(IP, syn());
  assert.ok(inner instanceof Uint8Array);
  const head = gueEncapHeaderLength(0);
  assert.equal(head, 32);
  const buf = new Uint8Array(head + inner.length);
  buf.set(inner, head);
  const outer = { ...IP, src: 0xc612000a, dst: 0xc612000b, srcPort: 50000, dstPort: GUE_PORT };
  assert.equal(emitGueEncapHeaders(outer, inner.length, buf), buf.length);
  const ip = parseIpv4(buf);
  assert.ok(!isWireError(ip));
  const udp = parseUdp(ip.payload, ip.src, ip.dst);
  assert.ok(!isWireError(udp));
  assert.equal(udp.dstPort, GUE_PORT);
  assert.equal(toHex(buf.subarray(20 + 6, 20 + 8)), "0000", "no outer UDP checksum by default");
  assert.equal(gueInnerOffset(buf, 28, buf.length - 28), head);
  assert.equal(toHex(buf.subarray(head)), toHex(inner));
  assert.equal(errorKind(emitGueEncapHeaders({ ...outer, srcPort: 70000 }, inner.length, buf)), "bad-field");
  assert.equal(errorKind(emitGueEncapHeaders(outer, inner.length, buf, 1)), "no-space");
});

test("ICMP echo reply from a request, and a frag-needed about our own packet", () => {
  const request = encodeIpv4Icmp(
    { ...IP, src: A, dst: VIP },
    { kind: "echo-request", id: 7, seq: 9, data: fromHex("00112233") },
  );
  assert.ok(request instanceof Uint8Array);
  const ip = parseIpv4(request);
  assert.ok(!isWireError(ip));
  const echo = parseIcmp(ip.payload);
  assert.ok(!isWireError(echo) && echo.kind === "echo-request");
  const reply = encodeIpv4Icmp({ ...IP, src: ip.dst, dst: ip.src }, { ...echo, kind: "echo-reply" });
  assert.ok(reply instanceof Uint8Array);
  const replyIp = parseIpv4(reply);
  assert.ok(!isWireError(replyIp));
  assert.deepEqual(parseIcmp(replyIp.payload), {
    kind: "echo-reply",
    id: 7,
    seq: 9,
    data: fromHex("00112233"),
  });

  const big = encodeIpv4Tcp(IP, { ...syn(), flags: TCP_ACK, seq: 0x01020304, payload: new Uint8Array(1400) });
  assert.ok(big instanceof Uint8Array);
  const quoted = icmpQuoteOf(big);
  assert.equal(quoted.length, 548);
  const msg = encodeIcmp({ kind: "dest-unreachable", code: 4, nextHopMtu: 1280, quoted });
  assert.ok(msg instanceof Uint8Array);
  const parsed = parseIcmp(msg);
  assert.ok(!isWireError(parsed) && parsed.kind === "dest-unreachable");
  assert.equal(parsed.nextHopMtu, 1280);
  const q = parseIcmpQuote(parsed.quoted);
  assert.ok(!isWireError(q));
  assert.deepEqual([q.src, q.dst, q.protocol, q.srcPort, q.dstPort], [A, VIP, 6, 40000, 80]);
  assert.equal(toHex(q.transport.subarray(4, 8)), "01020304");
  assert.equal(errorKind(parseIcmpQuote(quoted.subarray(0, 27))), "truncated");
  assert.equal(
    errorKind(encodeIcmp({ kind: "dest-unreachable", code: 3, nextHopMtu: 1280, quoted })),
    "bad-field",
    "MTU only with code 4",
  );
});

test("errors are values with a kind, never thrown", () => {
  const e = parseTcp(new Uint8Array(3), A, VIP);
  assert.ok(e instanceof WireError);
  assert.equal(e.kind, "truncated");
  assert.match(String(e), /^truncated: /);
  assert.ok(!(e instanceof Error), "no stack trace captured per dropped packet");
});
