// Byte-for-byte checks against packets built by scapy (testdata/reference.py), both ways:
// our parser must read scapy's bytes as the recorded fields, and our emitter must write the
// recorded fields as scapy's bytes.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { WireError } from "./error.js";
import { gueInnerOffset, parseGue, encodeGueEncap, type GueEncapParams } from "./gue.js";
import { encodeIpv4Icmp, parseIcmp, parseIcmpQuote, type IcmpRepr } from "./icmp.js";
import { Ipv4Packet, encodeIpv4, parseIpv4, type Ipv4Repr, type Ipv4SendParams } from "./ipv4.js";
import { TcpPacket, encodeIpv4Tcp, parseTcp, type TcpOptions, type TcpRepr } from "./tcp.js";
import { fromHex, toHex } from "./testing.js";
import { encodeIpv4Udp, parseUdp } from "./udp.js";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../../../sc/wire/testdata/reference.py", import.meta.url));

/* eslint-disable @typescript-eslint/no-explicit-any -- JSON cases from the generator */
type Case = { layer: string; name: string; hex: string; error?: string; emit?: boolean } & Record<
  string,
  any
>;

function loadCases(): Case[] {
  assert.ok(existsSync(SCRIPT), `reference generator missing: ${SCRIPT}`);
  const r = spawnSync(PYTHON, [SCRIPT], { encoding: "utf8", maxBuffer: 64 << 20, timeout: 120_000 });
  if (r.error !== undefined || r.status !== 0) {
    assert.fail(
      `cannot run the scapy reference generator (${PYTHON} ${SCRIPT}): ${r.error?.message ?? ""} ` +
        `status ${r.status} ${r.stderr}\nInstall Debian's python3-scapy (scripts/setup-host.sh).`,
    );
  }
  const data = JSON.parse(r.stdout) as { scapy: string; cases: Case[] };
  return data.cases;
}

const cases = loadCases();

function expectError(result: unknown, kind: string, name: string): void {
  assert.ok(result instanceof WireError, `${name}: expected error ${kind}, got ${JSON.stringify(result)}`);
  assert.equal(result.kind, kind, `${name}: ${result.detail}`);
}

function ok<T>(result: T | WireError, name: string): T {
  if (result instanceof WireError) assert.fail(`${name}: unexpected ${result.kind}: ${result.detail}`);
  return result;
}

function sendParams(j: any): Ipv4SendParams {
  return { src: j.src, dst: j.dst, ttl: j.ttl, tos: j.tos, id: j.id, dontFrag: j.dontFrag };
}

function byLayer(layer: string): Case[] {
  const list = cases.filter((c) => c.layer === layer);
  assert.ok(list.length >= 9, `too few ${layer} reference cases (${list.length}): generator broken?`);
  return list;
}

test("IPv4 against scapy", () => {
  let emitted = 0;
  for (const c of byLayer("ipv4")) {
    const bytes = fromHex(c.hex);
    if (c.error !== undefined) {
      expectError(parseIpv4(bytes), c.error, c.name);
      expectError(new Ipv4Packet().wrap(bytes), c.error, c.name);
      continue;
    }
    const f = c.fields;
    const expected: Ipv4Repr = { ...f, options: fromHex(f.options), payload: fromHex(f.payload) };
    assert.deepEqual(ok(parseIpv4(bytes, { allowFragments: true }), c.name), expected, c.name);
    if (c.fragment === true) expectError(parseIpv4(bytes), "fragment", c.name);
    else assert.deepEqual(parseIpv4(bytes), expected, c.name);

    const view = new Ipv4Packet();
    assert.equal(view.wrap(bytes, 0, bytes.length, { allowFragments: true }), null, c.name);
    for (const k of [
      "src",
      "dst",
      "protocol",
      "ttl",
      "tos",
      "id",
      "dontFrag",
      "moreFrags",
      "fragOffset",
    ] as const) {
      assert.equal(view[k], expected[k], `${c.name}: view.${k}`);
    }
    assert.deepEqual(view.payload(), expected.payload, c.name);
    assert.ok(view.verifyChecksum(), c.name);

    if (c.emit === true) {
      assert.equal(toHex(ok(encodeIpv4(expected), c.name)), c.hex, `${c.name}: emit`);
      emitted++;
    }
  }
  assert.ok(emitted >= 40);
});

function tcpRepr(j: any): TcpRepr {
  const options: TcpOptions = { ...j.options };
  if (j.options.sack !== undefined) options.sack = j.options.sack.map((b: number[]) => [b[0], b[1]]);
  return { ...j, options, payload: fromHex(j.payload) };
}

test("TCP against scapy", () => {
  let emitted = 0;
  for (const c of byLayer("tcp")) {
    const bytes = fromHex(c.hex);
    const ip = ok(parseIpv4(bytes), c.name);
    if (c.error !== undefined) {
      expectError(parseTcp(ip.payload, ip.src, ip.dst), c.error, c.name);
      continue;
    }
    const expected = tcpRepr(c.tcp);
    assert.deepEqual(ok(parseTcp(ip.payload, ip.src, ip.dst), c.name), expected, c.name);

    const view = new TcpPacket();
    assert.equal(view.wrap(bytes, ip.headerLength, ip.payload.length, ip.src, ip.dst), null, c.name);
    for (const k of ["srcPort", "dstPort", "seq", "ack", "flags", "window", "urgent"] as const) {
      assert.equal(view[k], expected[k], `${c.name}: view.${k}`);
    }
    assert.deepEqual(view.options(), expected.options, c.name);
    assert.deepEqual(view.payload(), expected.payload, c.name);

    if (c.emit === true) {
      assert.equal(toHex(ok(encodeIpv4Tcp(sendParams(c.ip), expected), c.name)), c.hex, `${c.name}: emit`);
      emitted++;
    }
  }
  assert.ok(emitted >= 60);
});

test("UDP against scapy", () => {
  for (const c of byLayer("udp")) {
    const bytes = fromHex(c.hex);
    const ip = ok(parseIpv4(bytes), c.name);
    if (c.error !== undefined) {
      expectError(parseUdp(ip.payload, ip.src, ip.dst), c.error, c.name);
      continue;
    }
    const expected = { ...c.udp, payload: fromHex(c.udp.payload) };
    assert.deepEqual(ok(parseUdp(ip.payload, ip.src, ip.dst), c.name), expected, c.name);
    if (c.emit === true) {
      const out = ok(encodeIpv4Udp(sendParams(c.ip), expected, { checksum: c.checksum }), c.name);
      assert.equal(toHex(out), c.hex, `${c.name}: emit`);
    }
  }
});

test("GUE against scapy-built UDP", () => {
  for (const c of byLayer("gue")) {
    const bytes = fromHex(c.hex);
    const ip = ok(parseIpv4(bytes), c.name);
    const udp = ok(parseUdp(ip.payload, ip.src, ip.dst), c.name);
    if (c.error !== undefined) {
      expectError(parseGue(udp.payload), c.error, c.name);
      expectError(gueInnerOffset(bytes, 28, udp.payload.length), c.error, c.name);
      continue;
    }
    const inner = fromHex(c.inner);
    assert.deepEqual(ok(parseGue(udp.payload), c.name), { ...c.gue, inner }, c.name);
    assert.equal(gueInnerOffset(bytes, 28, udp.payload.length), 28 + c.gue.headerLength, c.name);
    ok(parseIpv4(inner), `${c.name}: inner`);
    if (c.emit === true) {
      const outer: GueEncapParams = { ...c.outer, variant: c.gue.variant };
      assert.equal(toHex(ok(encodeGueEncap(outer, inner), c.name)), c.hex, `${c.name}: emit`);
    }
  }
});

test("ICMP against scapy", () => {
  for (const c of byLayer("icmp")) {
    const bytes = fromHex(c.hex);
    const ip = ok(parseIpv4(bytes), c.name);
    if (c.error !== undefined) {
      expectError(parseIcmp(ip.payload), c.error, c.name);
      continue;
    }
    const j = c.icmp;
    const expected: IcmpRepr =
      j.kind === "dest-unreachable" ? { ...j, quoted: fromHex(j.quoted) } : { ...j, data: fromHex(j.data) };
    const parsed = ok(parseIcmp(ip.payload), c.name);
    assert.deepEqual(parsed, expected, c.name);
    if (c.quote !== undefined && parsed.kind === "dest-unreachable") {
      const quote = ok(parseIcmpQuote(parsed.quoted), c.name);
      assert.deepEqual(quote, { ...c.quote, transport: fromHex(c.quote.transport) }, c.name);
    }
    if (c.emit === true) {
      assert.equal(toHex(ok(encodeIpv4Icmp(sendParams(c.ip), expected), c.name)), c.hex, `${c.name}: emit`);
    }
  }
});
