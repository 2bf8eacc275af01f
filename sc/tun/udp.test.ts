// The batched UDP socket (udp.c) on loopback, without privileges: its GUE decapsulation
// against sc/wire's (through sc/gue decapsulate), its GUE encapsulation and GSO grouping
// against sc/wire's emitGueHeader as node:dgram receives them, and GRO trains split back
// into datagrams.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import {
  Ipv4Packet,
  TCP_ACK,
  emitGueHeader,
  encodeIpv4Tcp,
  ipv4FromString,
  isWireError,
} from "../wire/index.js";
import { GUE_DROP_REASONS, decapsulate } from "../gue/receiver.js";
import { loadAddon } from "./addon.js";
import { UdpBatchSocket, type DatagramBatch } from "./udp.js";

const LOOPBACK = ipv4FromString("127.0.0.1") as number;

/** A valid client TCP packet with `payload` bytes of data (id makes packets distinct). */
function innerPacket(id: number, payload: number): Uint8Array {
  const p = encodeIpv4Tcp(
    { src: 0xc6120065, dst: 0xc6126401, ttl: 64, tos: 0, id: id & 0xffff, dontFrag: true },
    {
      srcPort: 10_000 + (id % 50_000),
      dstPort: 80,
      seq: id,
      ack: 1,
      flags: TCP_ACK,
      window: 65535,
      urgent: 0,
      options: {},
      payload: new Uint8Array(payload).fill(id & 0xff),
    },
  );
  if (isWireError(p)) throw new Error(p.detail);
  return p;
}

function gueV0(inner: Uint8Array, extWords = 0): Uint8Array {
  const out = new Uint8Array(4 + extWords * 4 + inner.length);
  emitGueHeader(out, 0);
  out[0] |= extWords;
  out.set(inner, 4 + extWords * 4);
  return out;
}

test("the C GUE decapsulation agrees with sc/wire's on valid, mutated, truncated and padded datagrams", () => {
  const base: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const inner = innerPacket(i, (i * 37) % 300);
    base.push(gueV0(inner, i % 4), inner.slice()); // variant 0 (with extensions) and variant 1
    if (i % 8 === 0) {
      // A fragment with a valid header checksum (MF set, or an offset).
      const frag = inner.slice();
      frag[6] |= i % 16 === 0 ? 0x20 : 0x01;
      const ip = new Ipv4Packet();
      assert.equal(ip.wrap(frag, 0, frag.length, { verifyChecksum: false, allowFragments: true }), null);
      ip.fillChecksum();
      base.push(gueV0(frag));
    }
  }
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const inputs: Uint8Array[] = [...base, new Uint8Array(0), new Uint8Array([0x45])];
  for (let k = 0; k < 20_000; k++) {
    const src = base[rnd(base.length)]!;
    let d = src.slice();
    const kind = rnd(4);
    if (kind === 0) for (let j = rnd(3) + 1; j > 0; j--) d[rnd(Math.min(d.length, 48))] = rnd(256);
    else if (kind === 1) d = d.subarray(0, rnd(d.length));
    else if (kind === 2) {
      const p = new Uint8Array(d.length + rnd(20));
      p.set(d);
      d = p;
    } else d[rnd(Math.min(d.length, 8))] ^= 1 << rnd(8);
    inputs.push(d);
  }
  // Packed at odd offsets: the codec assumes no alignment.
  const total = inputs.reduce((n, d) => n + d.length + 8, 0);
  const ab = new ArrayBuffer(total);
  const bytes = new Uint8Array(ab);
  const meta = new Int32Array(4 * inputs.length);
  const at: number[] = [];
  let off = 1;
  inputs.forEach((d, i) => {
    bytes.set(d, off);
    at.push(off);
    meta[4 * i] = off;
    meta[4 * i + 1] = d.length;
    off += d.length + 3;
  });
  loadAddon().gueDecapBatch(ab, meta, inputs.length);
  let valid = 0;
  const seen = new Set<number>();
  inputs.forEach((d, i) => {
    const ts = decapsulate(d);
    const code = meta[4 * i + 3]!;
    seen.add(code);
    if (typeof ts === "string") {
      assert.equal(code, GUE_DROP_REASONS.indexOf(ts) + 1, `datagram ${i}: ${ts} vs code ${code}`);
    } else {
      valid++;
      assert.equal(code, 0, `datagram ${i}: valid in sc/wire, code ${code} in C`);
      assert.equal(meta[4 * i]! - at[i]!, ts.offset, `datagram ${i}: inner offset`);
      assert.equal(meta[4 * i + 1]!, ts.length, `datagram ${i}: inner length`);
    }
  });
  assert.ok(valid > 1000, `${valid} valid`);
  // Every reason the C side can give came up (not_allowed is the caller's).
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5, 6]);
});

function bindDgram(): Promise<Socket> {
  const s = createSocket("udp4");
  return new Promise((resolve) => s.bind(0, "127.0.0.1", () => resolve(s)));
}

function collect(s: Socket, n: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  return new Promise((resolve) => {
    s.on("message", (m) => {
      got.push(new Uint8Array(m));
      if (got.length === n) resolve(got);
    });
  });
}

test("sendmmsg with GUE encapsulation and GSO: every receiver gets its datagrams byte-exact and in order", async () => {
  const rx = await Promise.all([bindDgram(), bindDgram(), bindDgram()]);
  const tx = UdpBatchSocket.open({ address: LOOPBACK, encapsulate: true, gso: true });
  try {
    // 300 packets round-robin over 3 receivers; sizes in runs so GSO has equal-sized runs
    // and shorter packets that end them.
    const sent: Uint8Array[][] = [[], [], []];
    for (let i = 0; i < 300; i++) {
      const inner = innerPacket(i, i % 17 === 16 ? 10 : 200);
      const k = i % 3;
      assert.ok(tx.send(LOOPBACK, rx[k]!.address().port, inner));
      sent[k]!.push(gueV0(inner));
    }
    const arrived = rx.map((s, k) => collect(s, sent[k]!.length));
    assert.equal(tx.flush(), 300);
    const got = await Promise.all(arrived);
    for (let k = 0; k < 3; k++) assert.deepEqual(got[k], sent[k]);
    const s = tx.stats;
    assert.equal(s.packetsOut, 300);
    assert.equal(s.sendDrops, 0);
    assert.ok(s.gsoMessages > 0, "runs went out with UDP_SEGMENT");
    assert.ok(s.sendCalls <= 2, `one sendmmsg for the batch, got ${s.sendCalls}`);
    assert.equal(
      s.bytesOut,
      sent.flat().reduce((n, d) => n + d.length, 0),
    );
  } finally {
    tx.close();
    for (const s of rx) s.close();
  }
});

test("bad sends are counted, not thrown: port 0, oversized, after close", () => {
  const tx = UdpBatchSocket.open({ address: LOOPBACK });
  tx.send(LOOPBACK, 0, new Uint8Array(10));
  assert.equal(tx.send(LOOPBACK, 9, new Uint8Array(65508)), false);
  tx.flush();
  assert.equal(tx.stats.sendDropsInvalid, 2);
  tx.close();
  assert.equal(tx.send(LOOPBACK, 9, new Uint8Array(10)), false);
  assert.equal(tx.stats.sendDropsOther, 1);
  assert.equal(tx.stats.sendDrops, 3);
});

test("recvmmsg with GRO and decapsulation: GSO trains are split, one callback per batch, drops coded", async () => {
  const rx = UdpBatchSocket.open({ address: LOOPBACK, decapsulate: true, gro: true, maxBatch: 16 });
  const tx = UdpBatchSocket.open({ address: LOOPBACK, encapsulate: true, gso: true });
  const raw = UdpBatchSocket.open({ address: LOOPBACK });
  const inners: string[] = [];
  const codes: number[] = [];
  let callbacks = 0;
  try {
    const want = 130;
    const done = new Promise<void>((resolve) => {
      rx.onDatagrams((b: DatagramBatch) => {
        callbacks++;
        for (let i = 0; i < b.count; i++) {
          assert.equal(b.address(i), LOOPBACK);
          const c = b.code(i);
          if (c === 0) {
            assert.equal(b.port(i), tx.port);
            inners.push(Buffer.from(b.view(i)).toString("hex"));
          } else codes.push(c);
        }
        if (inners.length + codes.length === want) resolve();
      });
    });
    const expected: string[] = [];
    for (let i = 0; i < 128; i++) {
      const inner = innerPacket(i, 100);
      tx.send(LOOPBACK, rx.port, inner);
      expected.push(Buffer.from(inner).toString("hex"));
    }
    tx.flush();
    raw.send(LOOPBACK, rx.port, new Uint8Array([0x20, 0, 0, 0])); // control message
    raw.send(LOOPBACK, rx.port, new Uint8Array([0x45, 0, 0])); // truncated variant 1
    raw.flush();
    await done;
    assert.deepEqual(inners, expected);
    assert.deepEqual(codes, [
      GUE_DROP_REASONS.indexOf("control") + 1,
      GUE_DROP_REASONS.indexOf("truncated") + 1,
    ]);
    const s = rx.stats;
    assert.equal(rx.gro, true);
    assert.equal(s.datagramsIn, want);
    assert.ok(s.groTrains > 0, "loopback handed GSO trains to the GRO socket whole");
    assert.ok(callbacks < 10, `${callbacks} callbacks for ${want} datagrams`);
    assert.equal(s.receiveOverflow, 0);
  } finally {
    rx.close();
    tx.close();
    raw.close();
  }
});

test("without GRO every datagram has its own slot and the raw payload is reported", async () => {
  const rx = UdpBatchSocket.open({ address: LOOPBACK, gro: false, maxBatch: 4 });
  const tx = UdpBatchSocket.open({ address: LOOPBACK, gso: true });
  try {
    const got: string[] = [];
    const done = new Promise<void>((resolve) =>
      rx.onDatagrams((b) => {
        for (let i = 0; i < b.count; i++) got.push(Buffer.from(b.view(i)).toString());
        if (got.length === 10) resolve();
      }),
    );
    for (let i = 0; i < 10; i++) tx.send(LOOPBACK, rx.port, Buffer.from(`datagram ${i}`));
    tx.flush();
    await done;
    assert.deepEqual(
      got,
      Array.from({ length: 10 }, (_, i) => `datagram ${i}`),
    );
    assert.equal(rx.stats.groTrains, 0);
    assert.ok(rx.stats.batchesIn >= 3, "maxBatch 4 bounds each callback");
  } finally {
    rx.close();
    tx.close();
  }
});

test("binding a taken port throws EADDRINUSE", () => {
  const a = UdpBatchSocket.open({ address: LOOPBACK });
  try {
    assert.throws(() => UdpBatchSocket.open({ address: LOOPBACK, port: a.port }), { code: "EADDRINUSE" });
  } finally {
    a.close();
  }
});
