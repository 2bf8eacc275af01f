import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CloneStatus,
  CLONE_STATUS_NAMES,
  decodeScMessage,
  encodeScMessage,
  ScAuth,
  ScDecodeError,
  ScFramer,
  ScType,
  SC_HEADER_LEN,
  SC_MAX_MESSAGE,
  SC_VERSION,
  DONE_MAX_IDS,
  type ScFrame,
  type ScMessage,
} from "./message.js";
import { assertLinearTime } from "../testing/linear-time.js";
import { cpuClockMs } from "../testing/cpu-clock.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(r: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function randomMessage(r: () => number): ScMessage {
  const id = Math.floor(r() * 0xffffffff) >>> 0;
  switch (Math.floor(r() * 7)) {
    case 0: {
      const auth = r() < 0.5 ? ScAuth.Secret : ScAuth.Insecure;
      const mac = auth === ScAuth.Secret ? bytes(r, 32) : new Uint8Array(32);
      return { type: ScType.Hello, auth, nonce: bytes(r, 32), mac, nodeId: `node${Math.floor(r() * 1000)}` };
    }
    case 4:
      return {
        type: ScType.Challenge,
        auth: r() < 0.5 ? ScAuth.Secret : ScAuth.Insecure,
        nonce: bytes(r, 32),
        nodeId: `n-${Math.floor(r() * 1000)}`,
      };
    case 5:
      return { type: ScType.HelloAck, mac: bytes(r, 32) };
    case 6:
      return { type: ScType.Keepalive };
    case 1:
      return {
        type: ScType.Clone,
        cloneId: id,
        startDeadline: Math.floor(r() * 2 ** 45),
        state: bytes(r, Math.floor(r() * 120)),
        seed: bytes(r, 40 + Math.floor(r() * 60)),
        asf: bytes(r, 1 + Math.floor(r() * 2000)),
        ...(r() < 0.3
          ? {
              tls: {
                suite: 0x1301 + Math.floor(r() * 3),
                secret: bytes(r, r() < 0.5 ? 32 : 48),
                seq: Math.floor(r() * 2 ** 40),
                fragment: 1 + Math.floor(r() * 16384),
              },
            }
          : {}),
      };
    case 2: {
      const head = bytes(r, Math.floor(r() * 300));
      return {
        type: ScType.CloneAck,
        cloneId: id,
        status: CloneStatus.Accepted,
        responseLength: head.length + Math.floor(r() * 2 ** 40),
        head,
      };
    }
    default:
      return { type: ScType.Cancel, cloneId: id };
  }
}

test("every message type round-trips", () => {
  const r = rng(1);
  for (let i = 0; i < 2000; i++) {
    const m = randomMessage(r);
    const enc = encodeScMessage(m);
    const dec = decodeScMessage(enc);
    assert.ok(!(dec instanceof ScDecodeError), `decode failed: ${JSON.stringify(dec)}`);
    assert.deepEqual(dec, m);
  }
});

test("clone layout is as documented (docs/sc-protocol.md)", () => {
  const enc = encodeScMessage({
    type: ScType.Clone,
    cloneId: 0x01020304,
    startDeadline: 0x0000_0102_0304_0506,
    state: Uint8Array.of(0xaa, 0xbb),
    seed: new Uint8Array(40).fill(0x45),
    asf: Uint8Array.of(0x47, 0x45, 0x54),
  });
  assert.deepEqual(
    [...enc.subarray(0, 28)],
    [0x53, 0x43, SC_VERSION, 2, 0, 0, 0, 85, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 5, 6, 0, 2, 0, 40, 0, 0, 0, 3],
  );
  assert.equal(enc.length, 85);
  assert.deepEqual([...enc.subarray(28, 40)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "not stamped, no flags");
  assert.deepEqual([...enc.subarray(40, 42)], [0xaa, 0xbb]);
  assert.deepEqual([...enc.subarray(82)], [0x47, 0x45, 0x54]);
});

test("version 3: DONE, the CLONE's send stamp and its last-response flag round-trip; unknown flags are refused", () => {
  const done = encodeScMessage({ type: ScType.Done, cloneIds: [42, 0xffffffff] });
  assert.deepEqual(
    [...done],
    [0x53, 0x43, SC_VERSION, 8, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 42, 255, 255, 255, 255],
  );
  assert.deepEqual(decodeScMessage(done), { type: ScType.Done, cloneIds: [42, 0xffffffff] });
  for (const [bad, kind] of [
    [Uint8Array.from([...done.subarray(0, 7), 21, ...done.subarray(8), 0]), "bad-length"], // not whole ids
    [Uint8Array.from([...done.subarray(0, 7), 12, ...done.subarray(8, 12)]), "bad-length"], // no id
    [Uint8Array.from([...done.subarray(0, 11), 1, ...done.subarray(12)]), "bad-field"], // header id
  ] as const) {
    const e = decodeScMessage(bad);
    assert.ok(e instanceof ScDecodeError && e.kind === kind, kind);
  }
  assert.throws(() => encodeScMessage({ type: ScType.Done, cloneIds: [] }), RangeError);
  assert.throws(
    () => encodeScMessage({ type: ScType.Done, cloneIds: new Array(DONE_MAX_IDS + 1).fill(1) }),
    RangeError,
  );
  const clone = {
    type: ScType.Clone,
    cloneId: 1,
    startDeadline: 5,
    sentAtUs: 2 ** 50 + 3,
    last: true,
    state: new Uint8Array(4),
    seed: new Uint8Array(40),
    asf: new Uint8Array(5),
  } as const;
  const enc = encodeScMessage(clone);
  assert.deepEqual([...enc.subarray(28, 40)], [0, 4, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0]);
  assert.deepEqual(decodeScMessage(enc), clone);
  for (const [at, v] of [
    [36, 0x04],
    [37, 1],
    [39, 1],
  ] as const) {
    const bad = Uint8Array.from(enc);
    bad[at] = v;
    const d = decodeScMessage(bad);
    assert.ok(d instanceof ScDecodeError && d.kind === "bad-field", `byte ${at} = ${v}`);
  }
});

test("version 5: a CLONE's TLS block round-trips after the ASF; every malformed block is refused", () => {
  const clone = {
    type: ScType.Clone,
    cloneId: 9,
    startDeadline: 5,
    state: new Uint8Array(4),
    seed: new Uint8Array(40),
    asf: Uint8Array.of(0x47),
    tls: { suite: 0x1302, secret: new Uint8Array(48).fill(0xab), seq: 2 ** 40 + 7, fragment: 16384 },
  } as const;
  const enc = encodeScMessage(clone);
  const at = SC_HEADER_LEN + 28 + 4 + 40 + 1;
  assert.equal(enc[36], 0x02, "the TLS flag");
  assert.equal(enc.length, at + 16 + 48);
  assert.deepEqual(
    [...enc.subarray(at, at + 16)],
    [0x13, 0x02, 48, 0, 0x40, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7],
  );
  assert.deepEqual(decodeScMessage(enc), clone);
  const mutate = (f: (b: Uint8Array) => Uint8Array) => decodeScMessage(f(Uint8Array.from(enc)));
  const setLength = (b: Uint8Array, n: number) => {
    b[6] = n >> 8;
    b[7] = n & 0xff;
    return b;
  };
  for (const [what, d, kind] of [
    [
      "secret length 40",
      mutate((b) => ((b[at + 2] = 40), setLength(b.subarray(0, at + 16 + 40), at + 56))),
      "bad-field",
    ],
    ["secret length says 32, 48 there", mutate((b) => ((b[at + 2] = 32), b)), "bad-length"],
    ["reserved byte", mutate((b) => ((b[at + 3] = 1), b)), "bad-field"],
    ["reserved u16", mutate((b) => ((b[at + 7] = 1), b)), "bad-field"],
    ["fragment 0", mutate((b) => ((b[at + 4] = 0), (b[at + 5] = 0), b)), "bad-field"],
    ["fragment 16385", mutate((b) => ((b[at + 4] = 0x40), (b[at + 5] = 1), b)), "bad-field"],
    ["sequence beyond 2^53", mutate((b) => ((b[at + 8] = 0xff), b)), "bad-field"],
    ["flag without the block", mutate((b) => setLength(b.subarray(0, at), at)), "bad-length"],
    ["block without the flag", mutate((b) => ((b[36] = 0), b)), "bad-length"],
    ["block cut short", mutate((b) => setLength(b.subarray(0, at + 10), at + 10)), "bad-length"],
  ] as const) {
    assert.ok(d instanceof ScDecodeError && d.kind === kind, `${what}: ${JSON.stringify(d)}`);
  }
  for (const tls of [
    { ...clone.tls, secret: new Uint8Array(31) },
    { ...clone.tls, fragment: 0 },
    { ...clone.tls, fragment: 16385 },
    { ...clone.tls, seq: -1 },
    { ...clone.tls, suite: 0x10000 },
  ]) {
    assert.throws(() => encodeScMessage({ ...clone, tls }), RangeError);
  }
});

test("clone-ack layout carries status, head length and a 64-bit response length", () => {
  const enc = encodeScMessage({
    type: ScType.CloneAck,
    cloneId: 7,
    status: CloneStatus.Accepted,
    responseLength: 2 ** 33 + 5,
    head: Uint8Array.of(1, 2, 3),
  });
  assert.deepEqual(
    [...enc],
    [0x53, 0x43, SC_VERSION, 3, 0, 0, 0, 27, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 5, 1, 2, 3],
  );
});

test("clone-ack statuses: every named refusal decodes, the next value is a bad field", () => {
  const ack = (status: number) =>
    encodeScMessage({
      type: ScType.CloneAck,
      cloneId: 1,
      status,
      responseLength: 0,
      head: new Uint8Array(0),
    });
  for (const s of [CloneStatus.Cancelled, CloneStatus.WrongWorker]) {
    const d = decodeScMessage(ack(s));
    assert.ok(!(d instanceof ScDecodeError) && d.type === ScType.CloneAck && d.status === s);
  }
  assert.equal(CLONE_STATUS_NAMES[CloneStatus.WrongWorker], "wrong-worker");
  const bad = ack(CloneStatus.Accepted);
  bad[12] = CloneStatus.WrongWorker + 1;
  const e = decodeScMessage(bad);
  assert.ok(e instanceof ScDecodeError && e.kind === "bad-field");
});

test("malformed headers and bodies are typed errors", () => {
  const good = encodeScMessage({ type: ScType.Cancel, cloneId: 9 });
  const cases: [Uint8Array, string][] = [
    [Uint8Array.from([0x00, ...good.subarray(1)]), "bad-magic"],
    [Uint8Array.from([...good.subarray(0, 2), 9, ...good.subarray(3)]), "bad-version"],
    [Uint8Array.from([...good.subarray(0, 3), 77, ...good.subarray(4)]), "bad-type"],
    [Uint8Array.from([...good.subarray(0, 4), 0, 0, 0, 5, ...good.subarray(8)]), "bad-length"],
    [Uint8Array.from([...good.subarray(0, 4), 0x7f, 0, 0, 0, ...good.subarray(8)]), "too-large"],
  ];
  for (const [buf, kind] of cases) {
    const d = decodeScMessage(buf);
    assert.ok(d instanceof ScDecodeError);
    assert.equal(d.kind, kind);
  }
  // A clone whose inner lengths disagree with the total.
  const clone = encodeScMessage({
    type: ScType.Clone,
    cloneId: 1,
    startDeadline: 1,
    state: new Uint8Array(4),
    seed: new Uint8Array(40),
    asf: new Uint8Array(5),
  });
  clone[27] = 6;
  const d = decodeScMessage(clone);
  assert.ok(d instanceof ScDecodeError && d.kind === "bad-length");
  // A socket seed shorter than an IPv4+TCP header.
  const short = encodeScMessage({
    type: ScType.Clone,
    cloneId: 1,
    startDeadline: 1,
    state: new Uint8Array(4),
    seed: new Uint8Array(40),
    asf: new Uint8Array(5),
  });
  short[23] = 39;
  short[27] = 6;
  const e = decodeScMessage(short);
  assert.ok(e instanceof ScDecodeError && e.kind === "bad-field");
});

test("encode refuses values a peer could not decode", () => {
  assert.throws(
    () =>
      encodeScMessage({
        type: ScType.Hello,
        auth: ScAuth.Secret,
        nonce: new Uint8Array(32),
        mac: new Uint8Array(32),
        nodeId: "",
      }),
    RangeError,
  );
  assert.throws(
    () =>
      encodeScMessage({
        type: ScType.Challenge,
        auth: ScAuth.Secret,
        nonce: new Uint8Array(31),
        nodeId: "a",
      }),
    RangeError,
  );
  assert.throws(() => encodeScMessage({ type: ScType.Cancel, cloneId: -1 }), RangeError);
  assert.throws(
    () =>
      encodeScMessage({
        type: ScType.Clone,
        cloneId: 1,
        startDeadline: 0,
        state: new Uint8Array(0),
        seed: new Uint8Array(40),
        asf: new Uint8Array(SC_MAX_MESSAGE),
      }),
    RangeError,
  );
});

/** Takes every whole frame the framer has, decoded; the error if the stream broke. */
function drain(f: ScFramer): ScMessage[] | ScDecodeError {
  const out: ScMessage[] = [];
  for (;;) {
    const fr: ScFrame | null | ScDecodeError = f.next();
    if (fr === null) return out;
    if (fr instanceof ScDecodeError) return fr;
    const m = decodeScMessage(fr.bytes);
    if (m instanceof ScDecodeError) return m;
    out.push(m);
  }
}

test("framer yields the same messages for a stream split at every byte boundary", () => {
  const r = rng(2);
  const msgs = Array.from({ length: 6 }, () => randomMessage(r));
  const stream = new Uint8Array(Buffer.concat(msgs.map((m) => encodeScMessage(m))));
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new ScFramer();
    f.push(stream.subarray(0, cut));
    const a = drain(f);
    f.push(stream.subarray(cut));
    const b = drain(f);
    assert.ok(Array.isArray(a) && Array.isArray(b));
    assert.deepEqual([...a, ...b], msgs);
    assert.equal(f.bufferedBytes, 0);
  }
  // One byte at a time.
  const f = new ScFramer();
  const out: ScMessage[] = [];
  for (const byte of stream) {
    f.push(Uint8Array.of(byte));
    const got = drain(f);
    assert.ok(Array.isArray(got));
    out.push(...got);
  }
  assert.deepEqual(out, msgs);
});

test("framer splits off a tag after each message once tagLength is set, and not before", () => {
  const hello = encodeScMessage({ type: ScType.Keepalive });
  const cancel = encodeScMessage({ type: ScType.Cancel, cloneId: 5 });
  const tag = new Uint8Array(16).fill(0xee);
  const f = new ScFramer();
  f.push(Buffer.concat([hello, cancel, tag, cancel.subarray(0, 5)]));
  const first = f.next();
  assert.ok(first !== null && !(first instanceof ScDecodeError));
  assert.deepEqual([...first.bytes], [...hello]);
  assert.equal(first.tag.length, 0);
  f.tagLength = 16;
  const second = f.next();
  assert.ok(second !== null && !(second instanceof ScDecodeError));
  assert.deepEqual([...second.bytes], [...cancel]);
  assert.deepEqual([...second.tag], [...tag]);
  // A message without its tag yet is not a frame.
  f.push(cancel.subarray(5));
  assert.equal(f.next(), null);
  f.push(tag.subarray(0, 15));
  assert.equal(f.next(), null);
  f.push(tag.subarray(15));
  assert.ok(f.next() !== null);
  assert.equal(f.bufferedBytes, 0);
});

test("framer stops at the first framing error and stays failed; a too-large header fails at once", () => {
  const f = new ScFramer();
  f.push(new Uint8Array(SC_HEADER_LEN).fill(0xff));
  assert.ok(f.next() instanceof ScDecodeError);
  f.push(encodeScMessage({ type: ScType.Cancel, cloneId: 1 }));
  assert.ok(f.next() instanceof ScDecodeError);
  assert.equal(f.bufferedBytes, 0);
  // 12 bytes announcing SC_MAX_MESSAGE + 1: refused before any of the body is buffered.
  const big = encodeScMessage({ type: ScType.Cancel, cloneId: 1 });
  big.set([0, 0, (SC_MAX_MESSAGE + 1) >> 8, (SC_MAX_MESSAGE + 1) & 0xff], 4);
  const g = new ScFramer();
  g.push(big);
  const e = g.next();
  assert.ok(e instanceof ScDecodeError && e.kind === "too-large");
});

test("a version 1 message is a bad-version error, told apart from garbage", () => {
  // A version 1 HELLO ("node1") as a version 1 node sends it first.
  const v1 = Uint8Array.from([0x53, 0x43, 1, 1, 0, 0, 0, 18, 0, 0, 0, 0, 5, ...Buffer.from("node1")]);
  const f = new ScFramer();
  f.push(v1);
  const e = f.next();
  assert.ok(e instanceof ScDecodeError && e.kind === "bad-version");
});

test("handshake messages: insecure HELLO must carry a zero MAC; no clone id outside clones", () => {
  const hello = encodeScMessage({
    type: ScType.Hello,
    auth: ScAuth.Insecure,
    nonce: new Uint8Array(32),
    mac: new Uint8Array(32),
    nodeId: "n1",
  });
  assert.ok(!(decodeScMessage(hello) instanceof ScDecodeError));
  const withMac = Uint8Array.from(hello);
  withMac[50] = 1;
  const e = decodeScMessage(withMac);
  assert.ok(e instanceof ScDecodeError && e.kind === "bad-field");
  const keep = encodeScMessage({ type: ScType.Keepalive });
  keep[11] = 1;
  const k = decodeScMessage(keep);
  assert.ok(k instanceof ScDecodeError && k.kind === "bad-field");
  const badAuth = Uint8Array.from(hello);
  badAuth[12] = 2;
  const b = decodeScMessage(badAuth);
  assert.ok(b instanceof ScDecodeError && b.kind === "bad-field");
});

test("fuzz: 100k random and mutated inputs never throw", () => {
  const r = rng(3);
  const seeds = Array.from({ length: 50 }, () => encodeScMessage(randomMessage(r)));
  let errors = 0;
  let decoded = 0;
  for (let i = 0; i < 100_000; i++) {
    let buf: Uint8Array;
    if (i % 4 === 0) {
      buf = bytes(r, Math.floor(r() * 64));
    } else {
      const base = seeds[i % seeds.length]!;
      buf = Uint8Array.from(base);
      const flips = 1 + Math.floor(r() * 4);
      for (let k = 0; k < flips; k++) buf[Math.floor(r() * buf.length)] = Math.floor(r() * 256);
      if (r() < 0.3) buf = buf.subarray(0, Math.floor(r() * buf.length));
    }
    const d = decodeScMessage(buf);
    if (d instanceof ScDecodeError) errors++;
    else decoded++;
    const f = new ScFramer();
    f.push(buf);
    drain(f);
  }
  assert.ok(errors > 0 && decoded > 0, `errors=${errors} decoded=${decoded}`);
});

test("framer: a largest message in one-byte reads is taken in linear time", () => {
  // A header (this version, CLONE) announcing n bytes, then the rest, each byte its own read.
  const frameOf = (n: number): Uint8Array[] => {
    const b = new Uint8Array(n);
    b.set([0x53, 0x43, SC_VERSION, ScType.Clone]);
    new DataView(b.buffer).setUint32(4, n);
    return Array.from(b, (x) => Uint8Array.of(x));
  };
  assertLinearTime(
    {
      name: "SC_MAX_MESSAGE bytes in one-byte chunks",
      make: (n) => frameOf(Math.max(SC_HEADER_LEN, n)),
      run: (reads) => {
        const f = new ScFramer();
        for (const r of reads) f.push(r);
        return f.next();
      },
    },
    { limit: SC_MAX_MESSAGE, clock: cpuClockMs },
  );
  const f = new ScFramer();
  for (const r of frameOf(SC_MAX_MESSAGE)) f.push(r);
  const fr = f.next();
  assert.ok(fr !== null && !(fr instanceof ScDecodeError));
  assert.equal(fr.bytes.length, SC_MAX_MESSAGE);
  assert.equal(f.bufferedBytes, 0);
});
