// ESTABLISHED data transfer: receiving (in order, out of order, duplicates, old and future
// segments, window edges), delayed ACKs, sending (segmentation, windows, cwnd, Nagle), and
// the ACK field checks of RFC 9293 / RFC 5961.

import { test } from "node:test";
import assert from "node:assert/strict";
import { EV_ACKED, EV_DATA } from "./types.js";
import { Harness, L1, R1, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, pattern } from "./testing.js";

// ------------------------------------------------------------------ receiving

test("in-order data is acknowledged by the delayed-ACK timer (40 ms)", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_PSH, payload: "abc" });
  h.expectNothing();
  assert.ok(h.conn.events & EV_DATA);
  h.advanceTo(39);
  h.expectNothing();
  h.advanceTo(40);
  h.expect([{ seq: L1, ack: R1 + 3, flags: "ACK", window: 65532 }]);
  assert.equal(h.read(), "abc");
});

test("every second full-sized segment is acknowledged at once (RFC 5681 4.2)", () => {
  const h = new Harness().established();
  const data = pattern(2920);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: data.subarray(0, 1460) });
  h.expectNothing();
  h.input({ seq: R1 + 1460, ack: L1, flags: TCP_ACK, payload: data.subarray(1460) });
  h.expect([{ seq: L1, ack: R1 + 2920, flags: "ACK" }]);
  h.advance(100);
  h.expectNothing("the delayed ACK was satisfied");
});

test("small segments: ACK after two full-sized segments' worth, else by timer", () => {
  const h = new Harness().established();
  for (let i = 0; i < 3; i++) h.input({ seq: R1 + i * 100, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  h.expectNothing();
  h.advanceTo(40);
  h.expect([{ ack: R1 + 300 }]);
});

test("the delayed ACK is piggybacked on data we send", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "ping" });
  h.now = 5;
  h.write("pong");
  h.expect([{ seq: L1, ack: R1 + 4, flags: "PSH|ACK", payload: "pong" }]);
  h.advance(100);
  h.expectNothing();
});

test("out-of-order segment -> immediate duplicate ACK; the gap filler -> immediate ACK of all", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 5, ack: L1, flags: TCP_ACK, payload: "world" });
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
  assert.equal(h.read(), "");
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "hello" });
  h.expect([{ ack: R1 + 10 }]);
  assert.equal(h.read(), "helloworld");
});

test("reordering with several holes reassembles byte-exact", () => {
  const h = new Harness().established();
  const data = pattern(5000, 7);
  const cuts = [0, 700, 1400, 2100, 2800, 3500, 4200, 5000];
  const order = [3, 1, 6, 0, 5, 2, 4];
  for (const i of order) {
    h.input({ seq: R1 + cuts[i], ack: L1, flags: TCP_ACK, payload: data.subarray(cuts[i], cuts[i + 1]) });
  }
  assert.equal(h.conn.rcv.nxt, R1 + 5000);
  assert.deepEqual(Buffer.from(h.read(), "latin1"), Buffer.from(data));
});

test("overlapping out-of-order segments keep the first copy and reassemble exactly", () => {
  const h = new Harness().established();
  const data = pattern(300, 3);
  h.input({ seq: R1 + 100, ack: L1, flags: TCP_ACK, payload: data.subarray(100, 200) });
  h.input({ seq: R1 + 150, ack: L1, flags: TCP_ACK, payload: data.subarray(150, 300) });
  h.input({ seq: R1 + 50, ack: L1, flags: TCP_ACK, payload: data.subarray(50, 250) });
  assert.deepEqual(h.conn.ooo.ranges(), [[R1 + 50, R1 + 300]]);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: data.subarray(0, 120) });
  assert.deepEqual(Buffer.from(h.read(), "latin1"), Buffer.from(data));
  assert.equal(h.conn.ooo.bytes, 0);
});

test("a duplicate of already received data is acknowledged at once and not delivered twice", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "abcdef" });
  assert.equal(h.read(), "abcdef");
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "abcdef" });
  h.expect([{ seq: L1, ack: R1 + 6, flags: "ACK" }]);
  assert.equal(h.read(), "");
});

test("a partially old segment delivers only its new bytes", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "abcd" });
  h.input({ seq: R1 + 2, ack: L1, flags: TCP_ACK, payload: "cdefgh" });
  assert.equal(h.read(), "abcdefgh");
  assert.equal(h.conn.rcv.nxt, R1 + 8);
});

test("data beyond the window is cut at the right edge and the edge is ACKed at once", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1000 } }).established();
  assert.equal(h.conn.rcv.advEdge, R1 + 1000);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(1200) });
  assert.equal(h.conn.rcv.nxt, R1 + 1000);
  h.expect([{ ack: R1 + 1000, window: 0 }]);
  assert.equal(h.conn.rxQueued, 1000);
});

test("a segment entirely beyond the window is not accepted; we ACK rcv_nxt", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1000 } }).established();
  h.input({ seq: R1 + 1000, ack: L1, flags: TCP_ACK, payload: "late" });
  h.expect([{ ack: R1, window: 1000 }]);
  assert.equal(h.conn.ooo.bytes, 0);
});

test("with a zero window, data is refused and ACKed (zero-window probe reply, not rate-limited)", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1000 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(1000) });
  h.take();
  for (let i = 0; i < 3; i++) {
    h.now += 1;
    h.input({ seq: R1 + 1000, ack: L1, flags: TCP_ACK, payload: "x" });
    h.expect([{ ack: R1 + 1000, window: 0 }], `probe ${i}`);
  }
});

test("a Linux-style probe (seq = rcv_nxt - 1, no data) gets an ACK", () => {
  const h = new Harness().established();
  h.input({ seq: R1 - 1, ack: L1, flags: TCP_ACK });
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
});

test("after the app reads, a window update is sent once the window grew enough (receiver SWS)", () => {
  const h = new Harness({ cfg: { rcvBufSize: 4000 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(1460) });
  h.input({ seq: R1 + 1460, ack: L1, flags: TCP_ACK, payload: pattern(1460) });
  h.expect([{ ack: R1 + 2920, window: 1080 }]);
  h.input({ seq: R1 + 2920, ack: L1, flags: TCP_ACK, payload: pattern(1080) });
  h.expect([{ ack: R1 + 4000, window: 0 }], "window full: immediate ACK at the edge");
  h.read();
  h.expect([{ ack: R1 + 4000, window: 4000 }], "window update after reading");
});

test("the window field is scaled by our shift", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } }).established({
    syn: { options: { mss: 1460, wscale: 7 } },
  });
  assert.equal(h.conn.rcv.wscale, 5);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(1460) });
  h.input({ seq: R1 + 1460, ack: L1, flags: TCP_ACK, payload: pattern(1460) });
  // Free space (1 MiB - 2920) rounded up to the 32-byte unit: ceil(1045656 / 32) = 32677.
  h.expect([{ ack: R1 + 2920, window: 32677 }]);
  assert.equal(h.conn.rcv.advEdge, R1 + 2920 + 32677 * 32);
});

test("with a large scaled buffer the window opens beyond 64 KiB after reading", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } }).established({
    syn: { options: { mss: 1460, wscale: 7 } },
  });
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(1460) });
  h.read();
  h.advance(50);
  h.expect([{ ack: R1 + 1460, window: (1 << 20) / 32 }]);
});

test("out-of-order holes beyond maxOooRanges are refused and counted", () => {
  const h = new Harness({ cfg: { maxOooRanges: 2 } }).established();
  h.input({ seq: R1 + 10, ack: L1, flags: TCP_ACK, payload: "a" });
  h.input({ seq: R1 + 20, ack: L1, flags: TCP_ACK, payload: "b" });
  h.input({ seq: R1 + 30, ack: L1, flags: TCP_ACK, payload: "c" });
  assert.equal(h.conn.ooo.blockCount, 2);
  assert.equal(h.env.drops["ooo-full"], 1);
  h.input({ seq: R1 + 11, ack: L1, flags: TCP_ACK, payload: "x" });
  assert.equal(h.conn.ooo.blockCount, 2, "adjacent data extends a block");
});

test("data that arrives in many in-order segments after one hole stays one block", () => {
  const h = new Harness({ cfg: { maxOooRanges: 2, rcvBufSize: 1 << 20 } }).established();
  for (let i = 1; i <= 100; i++)
    h.input({ seq: R1 + i * 100, ack: L1, flags: TCP_ACK, payload: pattern(100, i) });
  assert.equal(h.conn.ooo.blockCount, 1);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(100, 0) });
  assert.equal(h.conn.rcv.nxt, R1 + 10100);
  assert.equal(h.read().length, 10100);
});

test("receive sequence numbers wrap around 2^32", () => {
  const h = new Harness().established({ syn: { seq: 0xffffff00 } });
  const r1 = 0xffffff01;
  const data = pattern(600, 9);
  h.input({ seq: r1 + 300, ack: L1, flags: TCP_ACK, payload: data.subarray(300) });
  h.input({ seq: r1, ack: L1, flags: TCP_ACK, payload: data.subarray(0, 300) });
  assert.equal(h.conn.rcv.nxt, (r1 + 600) >>> 0);
  assert.deepEqual(Buffer.from(h.read(), "latin1"), Buffer.from(data));
});

// ------------------------------------------------------------------ ACK field checks

test("an ACK of data never sent is answered with an ACK and the segment dropped", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1 + 10, flags: TCP_ACK, payload: "data" });
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
  assert.equal(h.conn.rcv.nxt, R1, "its data is not accepted");
});

test("an ACK below snd_una - max window is challenged and dropped (RFC 5961 5.2)", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1 - 70_000, flags: TCP_ACK, payload: "data" });
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
  assert.equal(h.conn.rcv.nxt, R1);
});

test("an old (duplicate) ACK within the window does not stop data processing", () => {
  const h = new Harness().established();
  h.write("hello");
  h.input({ seq: R1, ack: L1 + 5, flags: TCP_ACK });
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "data" });
  assert.equal(h.read(), "data");
});

test("segment without ACK in ESTABLISHED is dropped", () => {
  const h = new Harness().established();
  h.input({ seq: R1, flags: TCP_PSH, payload: "data" });
  assert.equal(h.conn.rcv.nxt, R1);
  h.expectNothing();
});

test("window update rule: an older segment (wl1/wl2) does not overwrite the window", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "a", window: 5000 });
  assert.equal(h.conn.snd.wnd, 5000);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 100 }); // reordered older ACK
  assert.equal(h.conn.snd.wnd, 5000);
});

// ------------------------------------------------------------------ sending

test("a write goes out as one PSH segment; the ACK stops the timer", () => {
  const h = new Harness().established();
  h.write("hello");
  h.expect([{ seq: L1, ack: R1, flags: "PSH|ACK", len: 5, payload: "hello" }]);
  assert.equal(h.conn.timers.rtxAt, 200);
  h.conn.events = 0;
  h.input({ seq: R1, ack: L1 + 5, flags: TCP_ACK });
  assert.ok(h.conn.events & EV_ACKED);
  assert.equal(h.conn.timers.rtxAt, Infinity);
  assert.equal(h.conn.txQueue.length, 0);
  h.expectNothing();
});

test("large writes are cut at the MSS and limited by the initial window (RFC 6928)", () => {
  const h = new Harness().established();
  h.write(pattern(20_000));
  const segs = h.take();
  assert.equal(segs.length, 10);
  assert.ok(segs.every((s, i) => s.len === 1460 && s.seq === L1 + i * 1460 && s.flags === "ACK"));
  h.input({ seq: R1, ack: L1 + 2920, flags: TCP_ACK });
  const more = h.take();
  assert.deepEqual(
    more.map((s) => [s.seq - L1, s.len, s.flags]),
    [
      [14600, 1460, "ACK"],
      [16060, 1460, "ACK"],
      [17520, 1460, "ACK"],
      [18980, 1020, "PSH|ACK"],
    ],
  );
});

test("the peer's MSS bounds our segments", () => {
  const h = new Harness().established({ syn: { options: { mss: 500 } } });
  h.write(pattern(1200));
  assert.deepEqual(
    h.take().map((s) => s.len),
    [500, 500, 200],
  );
});

test("the peer's window bounds what is in flight; more goes out as it opens", () => {
  const h = new Harness().established({ syn: { window: 3000 }, ackWindow: 3000 });
  h.write(pattern(10_000));
  // The 80 bytes left in the window wait (sender SWS avoidance: < half the max window).
  assert.deepEqual(
    h.take().map((s) => s.len),
    [1460, 1460],
  );
  h.input({ seq: R1, ack: L1 + 2920, flags: TCP_ACK, window: 3000 });
  assert.deepEqual(
    h.take().map((s) => [s.seq - L1, s.len]),
    [
      [2920, 1460],
      [4380, 1460],
    ],
  );
});

test("with nothing in flight, a window smaller than the MSS is used", () => {
  const h = new Harness().established({ syn: { window: 3000 }, ackWindow: 100 });
  h.write(pattern(1000));
  h.expect([{ len: 100 }]);
});

test("sender SWS avoidance: no tiny segment while data is in flight and the window is small", () => {
  const h = new Harness().established({ ackWindow: 10_000 });
  h.write(pattern(8760));
  h.take();
  // The peer's window shrinks to leave 100 bytes beyond what is in flight: wait, don't send 100.
  h.write(pattern(5000));
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 8860 });
  h.expectNothing();
});

test("a shrinking peer window stops new data, data in flight stays", () => {
  const h = new Harness().established();
  h.write(pattern(4380));
  h.take();
  h.input({ seq: R1, ack: L1 + 1460, flags: TCP_ACK, window: 1460 });
  h.write(pattern(1000));
  h.expectNothing();
  assert.equal(h.conn.snd.max, L1 + 4380);
});

test("send sequence numbers wrap around 2^32", () => {
  const h = new Harness({ iss: 0xfffffff0 }).established();
  h.write(pattern(3000));
  const segs = h.take();
  assert.deepEqual(
    segs.map((s) => s.seq),
    [0xfffffff1, (0xfffffff1 + 1460) >>> 0, (0xfffffff1 + 2920) >>> 0],
  );
  h.input({ seq: R1, ack: (0xfffffff1 + 3000) >>> 0, flags: TCP_ACK });
  assert.equal(h.conn.txQueue.length, 0);
  assert.equal(h.conn.timers.rtxAt, Infinity);
});

test("Nagle (noDelay off): a small tail waits until outstanding data is ACKed", () => {
  const h = new Harness({ cfg: { noDelay: false } }).established();
  h.write("a");
  h.expect([{ len: 1 }]);
  h.write("b");
  h.write("c");
  h.expectNothing();
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK });
  h.expect([{ seq: L1 + 1, len: 2, payload: "bc" }]);
});

test("Nagle does not hold back full-sized segments nor the last segment before FIN", () => {
  const h = new Harness({ cfg: { noDelay: false } }).established();
  h.write("a");
  h.take();
  h.write(pattern(1500));
  h.expect([{ len: 1460 }]);
  h.close();
  h.expect([{ len: 40, flags: "FIN|PSH|ACK" }]);
});

test("data written in several calls is coalesced into full segments across chunks", () => {
  const h = new Harness().established();
  h.conn.send(pattern(1000, 1), 0);
  h.conn.send(pattern(1000, 2), 0);
  h.conn.send(pattern(1000, 3), 0);
  h.dispatch();
  const raw = h.takeRaw();
  assert.deepEqual(
    raw.map((s) => s.payload.length),
    [1460, 1460, 80],
  );
  const all = Buffer.concat(raw.map((s) => Buffer.from(s.payload)));
  assert.deepEqual(all, Buffer.concat([pattern(1000, 1), pattern(1000, 2), pattern(1000, 3)]));
});

test("SYN in ESTABLISHED -> challenge ACK, no reset (RFC 5961 4)", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 100, flags: TCP_SYN });
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
  assert.equal(h.conn.state, "ESTABLISHED");
});

test("challenge ACKs are rate-limited per connection", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 100, flags: TCP_SYN });
  h.expect([{ flags: "ACK" }]);
  h.now = 100;
  h.input({ seq: R1 + 100, flags: TCP_SYN });
  h.expectNothing();
  h.now = 200;
  h.input({ seq: R1 + 100, flags: TCP_SYN });
  h.expect([{ flags: "ACK" }]);
  assert.equal(h.env.drops["challenge-ack-limited"], 1);
});

test("challenge ACKs respect the stack-wide budget", () => {
  const h = new Harness().established();
  h.env.challengeBudget = 0;
  h.input({ seq: R1 + 100, flags: TCP_SYN });
  h.expectNothing();
  assert.equal(h.env.drops["challenge-ack-global-limited"], 1);
});

test("out-of-window bare ACKs get a rate-limited ACK; data segments are always answered", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 100_000, ack: L1, flags: TCP_ACK });
  h.expect([{ ack: R1 }]);
  h.input({ seq: R1 + 100_000, ack: L1, flags: TCP_ACK });
  h.expectNothing();
  h.input({ seq: R1 - 10, ack: L1, flags: TCP_ACK, payload: "old" });
  h.expect([{ ack: R1 }]);
});

test("the ACK of our data arriving with a FIN is processed before the FIN", () => {
  const h = new Harness().established();
  h.write("bye");
  h.take();
  h.input({ seq: R1, ack: L1 + 3, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.snd.una, L1 + 3);
  assert.equal(h.conn.state, "CLOSE-WAIT");
  h.expect([{ seq: L1 + 3, ack: R1 + 1, flags: "ACK" }]);
});

test("PSH is set on the segment that empties the queue", () => {
  const h = new Harness().established();
  h.write(pattern(3000));
  assert.deepEqual(
    h.take().map((s) => s.flags),
    ["ACK", "ACK", "PSH|ACK"],
  );
});

// ------------------------------------------------------------------ SACK (RFC 2018), receiver side

test("SACK-permitted is echoed only when the SYN offered it", () => {
  const h = new Harness();
  assert.deepEqual(h.listen({ options: { mss: 1460, sackPermitted: true } }).options, {
    mss: 1460,
    sackPermitted: true,
  });
  assert.equal(h.conn.opts.sackOk, true);
  const h2 = new Harness();
  assert.deepEqual(h2.listen({ options: { mss: 1460 } }).options, { mss: 1460 });
  assert.equal(h2.conn.opts.sackOk, false);
  const h3 = new Harness({ cfg: { sack: false } });
  assert.deepEqual(h3.listen({ options: { mss: 1460, sackPermitted: true } }).options, { mss: 1460 });
});

test("duplicate ACKs carry SACK blocks, the most recent block first, at most four", () => {
  const h = new Harness().established({ syn: { options: { mss: 1460, sackPermitted: true } } });
  h.input({ seq: R1 + 100, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  h.expect([{ ack: R1, options: { sack: [[R1 + 100, R1 + 200]] } }]);
  h.input({ seq: R1 + 300, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  h.expect([
    {
      ack: R1,
      options: {
        sack: [
          [R1 + 300, R1 + 400],
          [R1 + 100, R1 + 200],
        ],
      },
    },
  ]);
  for (const off of [500, 700, 900])
    h.input({ seq: R1 + off, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  const [last] = h.take().slice(-1);
  assert.equal(last.options?.sack?.length, 4);
  assert.deepEqual(last.options?.sack?.[0], [R1 + 900, R1 + 1000]);
  // Filling the first hole: the blocks that remain are still reported.
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  h.expect([
    {
      ack: R1 + 200,
      options: {
        sack: [
          [R1 + 300, R1 + 400],
          [R1 + 500, R1 + 600],
          [R1 + 700, R1 + 800],
          [R1 + 900, R1 + 1000],
        ],
      },
    },
  ]);
});

test("no SACK option once everything is in order, nor without SACK-permitted", () => {
  const h = new Harness().established({ syn: { options: { mss: 1460, sackPermitted: true } } });
  h.input({ seq: R1 + 100, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  const [ack] = h.take();
  assert.equal(ack.ack, R1 + 200);
  assert.equal(ack.options, undefined);
  const h2 = new Harness().established();
  h2.input({ seq: R1 + 100, ack: L1, flags: TCP_ACK, payload: pattern(100) });
  assert.equal(h2.take()[0].options, undefined);
});
