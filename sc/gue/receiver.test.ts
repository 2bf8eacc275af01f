import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { fileURLToPath } from "node:url";
import { Ipv4Packet } from "../wire/index.js";
import { fromHex, toHex } from "../wire/testing.js";
import { GUE_DROP_REASONS, GueReceiver, decapsulate, type GueDropReason } from "./receiver.js";

const PYTHON = "/usr/bin/python3";
// One scapy generator serves both ends of the tunnel (the dispatcher's tests use it too).
const SCRIPT = fileURLToPath(new URL("../../../dispatcher/testdata/gue_reference.py", import.meta.url));

interface Payload {
  name: string;
  hex: string;
  inner: string | null;
  error: string | null;
}

function payloads(): Payload[] {
  const r = spawnSync(PYTHON, [SCRIPT, "payloads"], { encoding: "utf8", timeout: 120_000 });
  if (r.error !== undefined || r.status !== 0) {
    assert.fail(
      `cannot run ${PYTHON} ${SCRIPT}: ${r.error?.message ?? ""} ${r.stderr}\nInstall python3-scapy.`,
    );
  }
  return (JSON.parse(r.stdout) as { payloads: Payload[] }).payloads;
}

// sc/wire error kinds (what scapy's cases name) -> the receiver's drop reasons.
const REASON: Record<string, GueDropReason> = {
  truncated: "truncated",
  "bad-version": "bad_version",
  "gue-control": "control",
  unsupported: "unsupported",
  "bad-checksum": "bad_inner",
};

const cases = payloads();

test("decapsulate accepts variant 0 (with flags and extensions) and variant 1, and rejects the rest by reason", () => {
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    const d = decapsulate(fromHex(c.hex));
    if (c.inner !== null) {
      assert.ok(typeof d !== "string", `${c.name}: dropped as ${String(d)}`);
      assert.equal(toHex(fromHex(c.hex).subarray(d.offset, d.offset + d.length)), c.inner, c.name);
      assert.equal(d.variant, c.name.startsWith("variant 1") ? 1 : 0, c.name);
    } else {
      assert.equal(d, REASON[c.error!], c.name);
    }
  }
});

test("an inner fragment and trailing bytes after the inner packet", () => {
  const valid = fromHex(cases.find((c) => c.name === "variant 0")!.hex);
  const padded = new Uint8Array(valid.length + 6);
  padded.set(valid);
  const d = decapsulate(padded);
  assert.ok(typeof d !== "string");
  assert.equal(d.length, valid.length - 4, "inner packet trimmed to its total length");
  const frag = valid.slice();
  frag[4 + 6] |= 0x20; // MF
  const ip = new Ipv4Packet();
  assert.equal(ip.wrap(frag, 4, frag.length - 4, { verifyChecksum: false, allowFragments: true }), null);
  ip.fillChecksum();
  assert.equal(decapsulate(frag), "fragment");
});

test("random datagrams never throw", () => {
  let seed = 99;
  for (let i = 0; i < 50_000; i++) {
    const buf = new Uint8Array(i % 90);
    for (let j = 0; j < buf.length; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      buf[j] = seed >>> 24;
    }
    if (buf.length > 4 && i % 3 === 0) buf.set([0, 4, 0, 0, 0x45]);
    const d = decapsulate(buf);
    if (typeof d !== "string") assert.ok(d.offset + d.length <= buf.length);
  }
});

test("GueReceiver on a loopback socket passes valid inner packets on and counts the rest", async () => {
  const got: string[] = [];
  let sentinel: () => void = () => {};
  const done = new Promise<void>((resolve) => (sentinel = resolve));
  const SENTINEL = cases.find((c) => c.name === "variant 1 (bare IPv4)")!.inner!;
  const rx = await GueReceiver.open({
    port: 0,
    address: "127.0.0.1",
    allowFrom: ["127.0.0.1"],
    onPacket: (p, from) => {
      assert.equal(from, "127.0.0.1");
      got.push(toHex(p));
      if (got.length === cases.filter((c) => c.inner !== null).length + 1) sentinel();
    },
  });
  const tx = createSocket("udp4");
  try {
    const { port } = rx.address();
    for (const c of cases) tx.send(fromHex(c.hex), port, "127.0.0.1");
    tx.send(fromHex(SENTINEL), port, "127.0.0.1"); // loopback keeps order: last one in
    await done;
    assert.deepEqual(got, [...cases.filter((c) => c.inner !== null).map((c) => c.inner), SENTINEL]);
    const s = rx.stats();
    assert.equal(s.datagrams, cases.length + 1);
    assert.equal(s.packets, got.length);
    const expectedDrops = Object.fromEntries(GUE_DROP_REASONS.map((r) => [r, 0]));
    for (const c of cases) if (c.error !== null) expectedDrops[REASON[c.error]!]!++;
    assert.deepEqual(s.drops, expectedDrops);
  } finally {
    tx.close();
    await rx.close();
  }
});

test("allowFrom takes CIDR prefixes: other senders are dropped as not_allowed before decapsulation", async () => {
  const valid = fromHex(cases.find((c) => c.name === "variant 0")!.hex);
  const from: string[] = [];
  const rx = await GueReceiver.open({
    port: 0,
    address: "127.0.0.1",
    allowFrom: ["198.18.0.1", "10.9.0.0/16"],
    onPacket: (_p, f) => from.push(f),
  });
  try {
    for (const sender of ["198.18.0.1", "10.9.255.254", "198.18.0.101", "10.8.0.1", "198.18.0.11"]) {
      rx.receive(valid, sender);
    }
    // Garbage from a stranger is refused for its sender, not parsed.
    rx.receive(new Uint8Array([0xff, 0xff]), "198.18.0.101");
    assert.deepEqual(from, ["198.18.0.1", "10.9.255.254"]);
    assert.equal(rx.drops.not_allowed, 4);
    assert.equal(rx.drops.bad_version + rx.drops.truncated, 0);
    assert.equal(rx.stats().drops.not_allowed, 4);
    assert.equal(rx.stats().datagrams, 6);
    assert.deepEqual(rx.allow.toStrings(), ["198.18.0.1", "10.9.0.0/16"]);
  } finally {
    await rx.close();
  }
  // No allow-list, an empty one or a bad entry: refused before a socket is opened.
  for (const allowFrom of [[], ["nope"], ["198.18.0.1/24"]]) {
    await assert.rejects(GueReceiver.open({ port: 0, onPacket: () => {}, allowFrom }), RangeError);
  }
});

test("allowFrom on a real socket: a stranger's datagram is dropped, a member's passes", async () => {
  const valid = fromHex(cases.find((c) => c.name === "variant 0")!.hex);
  let resolve: () => void = () => {};
  const arrived = new Promise<void>((r) => (resolve = r));
  const from: string[] = [];
  const rx = await GueReceiver.open({
    port: 0,
    address: "127.0.0.1",
    allowFrom: ["127.0.0.2/32"],
    onPacket: (_p, f) => {
      from.push(f);
      resolve();
    },
  });
  const stranger = createSocket("udp4");
  const friend = createSocket("udp4");
  try {
    await new Promise<void>((r) => friend.bind(0, "127.0.0.2", r));
    const { port } = rx.address();
    await new Promise<void>((r) => stranger.send(valid, port, "127.0.0.1", () => r()));
    // The stranger's datagram was sent first and loopback delivers in order per receiver.
    friend.send(valid, port, "127.0.0.1");
    await arrived;
    assert.deepEqual(from, ["127.0.0.2"]);
    assert.equal(rx.drops.not_allowed, 1);
  } finally {
    stranger.close();
    friend.close();
    await rx.close();
  }
});

test("a burst is handed over in batches: onBatchEnd once per batch, after its packets", async () => {
  const valid = fromHex(cases.find((c) => c.name === "variant 0")!.hex);
  const N = 200;
  const events: string[] = [];
  let packets = 0;
  let resolve: () => void = () => {};
  const all = new Promise<void>((r) => (resolve = r));
  const rx = await GueReceiver.open({
    port: 0,
    address: "127.0.0.1",
    allowFrom: ["127.0.0.1"],
    onPacket: (_p, from) => {
      assert.equal(from, "127.0.0.1");
      events.push("p");
      packets++;
    },
    onBatchEnd: () => {
      events.push("end");
      if (packets === N) resolve();
    },
  });
  const tx = createSocket("udp4");
  try {
    const { port } = rx.address();
    // Queue the whole burst in the kernel before the receiver's loop turn comes.
    await new Promise<void>((r) => {
      let sent = 0;
      for (let i = 0; i < N; i++) tx.send(valid, port, "127.0.0.1", () => ++sent === N && r());
    });
    await all;
    const ends = events.filter((e) => e === "end").length;
    assert.ok(ends < N / 4, `${ends} batch ends for ${N} datagrams: not one per datagram`);
    assert.equal(events.at(-1), "end", "the last packets are followed by a flush");
    assert.equal(events[0], "p", "no empty batch");
    const s = rx.stats();
    assert.equal(s.packets, N);
    assert.equal(s.batches, ends);
  } finally {
    tx.close();
    await rx.close();
  }
});
