// Reuseport steering (node --workers N) on loopback, without privileges: the kernel, running
// udp.c's BPF program over a SO_REUSEPORT group of GueReceivers, hands every GUE datagram to
// the receiver that steerWorker() names, for variant 0 (with and without extensions) and
// variant 1, so the wrong-worker counters stay 0; a receiver that claims another index
// counts every packet it gets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { TCP_ACK, emitGueHeader, encodeIpv4Tcp, isWireError } from "../wire/index.js";
import { GueReceiver } from "./receiver.js";
import { steerClient, steerWorker } from "./steering.js";

function inner(src: number, port: number): Uint8Array {
  const p = encodeIpv4Tcp(
    { src, dst: 0xc6126401, ttl: 64, tos: 0, id: port & 0xffff, dontFrag: true },
    {
      srcPort: port,
      dstPort: 80,
      seq: 1,
      ack: 1,
      flags: TCP_ACK,
      window: 65535,
      urgent: 0,
      options: {},
      payload: new Uint8Array(8),
    },
  );
  if (isWireError(p)) throw new Error(p.detail);
  return p;
}

/** A GUE datagram: variant 0 with `extWords` words of extensions, or variant 1 (bare IPv4). */
function gue(packet: Uint8Array, variant: 0 | 1, extWords = 0): Uint8Array {
  if (variant === 1) return packet;
  const d = new Uint8Array(4 + 4 * extWords + packet.length);
  const n = emitGueHeader(d, 0);
  if (isWireError(n)) throw new Error(n.detail);
  d[0] = extWords; // test fixture: hlen (version 0, no C bit) with zeroed extension words
  d.set(packet, 4 + 4 * extWords);
  return d;
}

async function group(workers: number, claim: (i: number) => number) {
  const got: { port: number; src: number }[][] = [];
  const receivers: GueReceiver[] = [];
  let port = 0;
  // Bound in order: socket i of the reuseport group is receiver i.
  for (let i = 0; i < workers; i++) {
    const seen: { port: number; src: number }[] = [];
    got.push(seen);
    const r = await GueReceiver.open({
      address: "127.0.0.1",
      port,
      allowFrom: ["127.0.0.1"],
      steering: { workers, index: claim(i) },
      onPacket: (p) =>
        seen.push({
          src: (p[12]! << 24) | (p[13]! << 16) | (p[14]! << 8) | p[15]!,
          port: (p[20]! << 8) | p[21]!,
        }),
    });
    port = r.address().port;
    receivers.push(r);
  }
  return { got, receivers, port };
}

async function sendAll(port: number, datagrams: Uint8Array[]): Promise<void> {
  const s = createSocket("udp4");
  for (const d of datagrams)
    await new Promise<void>((res, rej) => s.send(d, port, "127.0.0.1", (e) => (e ? rej(e) : res())));
  s.close();
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("datagrams did not arrive within 5 s");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("the kernel steers each GUE datagram to the socket steerWorker() names (3 workers, all variants)", async () => {
  const { got, receivers, port } = await group(3, (i) => i);
  const packets: Uint8Array[] = [];
  const datagrams: Uint8Array[] = [];
  // One client address with even ports only (as Linux picks them for connect()), and others.
  for (let k = 0; k < 150; k++) {
    const p = inner(k < 100 ? 0xc6120065 : 0xc6120000 + k, 32768 + 2 * k);
    packets.push(p);
    datagrams.push(gue(p, k % 3 === 0 ? 1 : 0, k % 3 === 2 ? 2 : 0));
  }
  await sendAll(port, datagrams);
  await until(() => got.reduce((s, g) => s + g.length, 0) === packets.length);
  const expected = packets.map((p) => steerWorker(p, 0, 3));
  for (let w = 0; w < 3; w++) {
    const want = packets.filter((_, k) => expected[k] === w).length;
    assert.equal(got[w]!.length, want, `worker ${w}`);
    assert.ok(want > 20, `worker ${w} got ${want} of 150: the hash spreads one client's even ports`);
    assert.equal(receivers[w]!.stats().wrongWorker, 0);
  }
  for (const r of receivers) await r.close();
});

test("a receiver that is not the socket the kernel steers to counts wrong-worker packets", async () => {
  // Indexes swapped: receiver 0 claims to be worker 1 and the other way round.
  const { got, receivers, port } = await group(2, (i) => 1 - i);
  const datagrams = Array.from({ length: 40 }, (_, k) => gue(inner(0xc6120065, 40000 + k), 0));
  await sendAll(port, datagrams);
  await until(() => got[0]!.length + got[1]!.length === 40);
  assert.equal(receivers[0]!.stats().wrongWorker + receivers[1]!.stats().wrongWorker, 40);
  for (const r of receivers) await r.close();
});

test("steerWorker matches the BPF program's arithmetic on known values", () => {
  const p = inner(0x01020304, 0x0506);
  // (0x01020304 ^ 0x0506) * 0x9e3779b1 mod 2^32, >>> 16, mod N
  const x = (0x01020304 ^ 0x0506) >>> 0;
  const h = Number((BigInt(x) * 0x9e3779b1n) & 0xffffffffn) >>> 16;
  for (const n of [1, 2, 3, 7]) {
    assert.equal(steerWorker(p, 0, n), h % n);
    // A clone's node checks its connection by address and port alone: the same worker.
    assert.equal(steerClient(0x01020304, 0x0506, n), h % n);
  }
});
