// Reliability and congestion control: RFC 6298 RTO (estimator, Karn, backoff, give-up),
// go-back-N after a timeout, fast retransmit and NewReno recovery (RFC 5681, RFC 6582),
// limited transmit (RFC 3042), slow start / congestion avoidance, restart after idle.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Harness, L1, R1, TCP_ACK, TCP_FIN, pattern } from "./testing.js";

/** Peer ACK of everything up to L1 + n. */
function ackTo(h: Harness, n: number, window = 65535): void {
  h.input({ seq: R1, ack: L1 + n, flags: TCP_ACK, window });
}

test("RTO: the first unacknowledged segment is retransmitted with exponential backoff", () => {
  const h = new Harness().established();
  assert.equal(h.conn.rto(), 200);
  h.write("hello");
  h.take();
  h.advanceTo(10_000);
  const got = h.takeTimed().map((e) => [e.at, e.seg.seq, e.seg.len]);
  assert.deepEqual(got, [
    [200, L1, 5],
    [600, L1, 5],
    [1400, L1, 5],
    [3000, L1, 5],
    [6200, L1, 5],
  ]);
  assert.equal(h.env.retransmits, 5);
});

test("RTO backoff is capped at rtoMax", () => {
  const h = new Harness({ cfg: { rtoMax: 1000, maxRetransmits: 20 } }).established();
  h.write("x");
  h.take();
  h.advanceTo(5000);
  const times = h.takeTimed().map((e) => e.at);
  assert.deepEqual(times, [200, 600, 1400, 2400, 3400, 4400]);
});

test("give-up bound: after maxRetransmits the connection aborts with RST (ETIMEDOUT)", () => {
  const h = new Harness({ cfg: { maxRetransmits: 3 } }).established();
  h.write("hello");
  h.take();
  h.advanceTo(100_000);
  const got = h.takeTimed().map((e) => [e.at, e.seg.flags]);
  assert.deepEqual(got, [
    [200, "PSH|ACK"],
    [600, "PSH|ACK"],
    [1400, "PSH|ACK"],
    [3000, "RST|ACK"],
  ]);
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "timeout");
});

test("no progress is bounded in total time: duplicate ACKs, window updates and data from the peer do not reset the give-up count", () => {
  const h = new Harness().established(); // defaults: maxRetransmits 12, rtoMax 60 s
  h.write("response");
  h.take();
  let peerSeq = R1;
  const rtxTimes: number[] = [];
  while (h.conn.state !== "CLOSED" && h.now < 3_600_000) {
    h.advanceTo(h.conn.pollAt());
    for (const e of h.takeTimed()) if (e.seg.len > 0) rtxTimes.push(e.at);
    // The peer stays busy without ever acknowledging: a duplicate ACK, a window update, data.
    h.input({ seq: peerSeq, ack: L1, flags: TCP_ACK, window: 1000 + rtxTimes.length });
    h.input({ seq: peerSeq, ack: L1, flags: TCP_ACK, window: 1000 + rtxTimes.length, payload: "x" });
    peerSeq++;
    h.read();
    h.take();
  }
  // 200 ms doubling up to 60 s: 9 backed-off timeouts (102.2 s), 3 more of 60 s, the last wait.
  const cfg = h.cfg;
  let t = 0;
  const expected: number[] = [];
  for (let i = 0; i < cfg.maxRetransmits; i++) {
    t += Math.min(200 * 2 ** i, cfg.rtoMax);
    expected.push(t);
  }
  assert.deepEqual(rtxTimes, expected);
  assert.equal(h.conn.closeReason, "timeout");
  const rst = h.log.find((e) => e.seg.flags.includes("RST"));
  assert.equal(rst?.at, t + cfg.rtoMax);
  assert.equal(rst?.at, 342_200);
});

test("a new ACK resets the backoff and restarts the timer from the current RTO", () => {
  const h = new Harness().established();
  h.write(pattern(2920));
  h.take();
  h.advanceTo(200); // first timeout: backoff 1
  h.take();
  assert.equal(h.conn.rto(), 400);
  h.now = 250;
  ackTo(h, 1460);
  assert.equal(h.conn.rto(), 200);
  assert.equal(h.conn.timers.rtxAt, 450);
});

test("after a timeout: cwnd = 1 MSS, ssthresh = flight/2, go-back-N in slow start", () => {
  const h = new Harness().established();
  h.write(pattern(7300));
  assert.equal(h.take().length, 5);
  h.advanceTo(200);
  h.expect([{ seq: L1, len: 1460 }], "only one segment: the loss window");
  assert.equal(h.conn.cc.cwnd, 1460);
  assert.equal(h.conn.cc.ssthresh, 3650);
  h.now = 210;
  ackTo(h, 1460);
  // Slow start: cwnd 2920, two more segments (retransmissions of already-sent data).
  h.expect([
    { seq: L1 + 1460, len: 1460 },
    { seq: L1 + 2920, len: 1460 },
  ]);
});

test("Karn: an ACK for retransmitted data gives no RTT sample", () => {
  const h = new Harness().established();
  h.write("hello");
  h.advanceTo(200);
  h.now = 260;
  ackTo(h, 5);
  assert.equal(h.conn.rtt.srtt, 0, "unchanged from the handshake sample");
});

test("RTT estimator follows RFC 6298 (2.2, 2.3) with the minimum RTO clamp", () => {
  const h = new Harness({ cfg: { rtoMin: 1 } });
  h.listen();
  h.now = 40;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  assert.equal(h.conn.rtt.srtt, 40);
  assert.equal(h.conn.rtt.rttvar, 20);
  assert.equal(h.conn.rto(), 120);
  h.write("a");
  h.now = 140;
  ackTo(h, 1);
  // R = 100: rttvar = 3/4*20 + 1/4*|40-100| = 30; srtt = 7/8*40 + 1/8*100 = 47.5.
  assert.equal(h.conn.rtt.rttvar, 30);
  assert.equal(h.conn.rtt.srtt, 47.5);
  assert.equal(h.conn.rto(), 167.5);
});

test("only one segment is timed at a time; the sample is taken when it is covered", () => {
  const h = new Harness({ cfg: { rtoMin: 1 } });
  h.listen();
  h.now = 40;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  h.write("a"); // timed (t=40)
  h.now = 50;
  h.write("b"); // not timed
  h.now = 100;
  ackTo(h, 1); // sample 60 for "a"
  assert.equal(h.conn.rtt.srtt, 0.875 * 40 + 0.125 * 60);
  const srtt = h.conn.rtt.srtt;
  h.now = 105;
  ackTo(h, 2); // "b" was not timed: no sample
  assert.equal(h.conn.rtt.srtt, srtt);
});

// ------------------------------------------------------------------ fast retransmit / NewReno

/** 20 segments queued; the first 12 sent (IW 10 + 2 after the first ACK). */
function lossSetup(): Harness {
  const h = new Harness().established();
  h.write(pattern(29_200));
  assert.equal(h.take().length, 10);
  h.now = 10;
  ackTo(h, 1460);
  assert.equal(h.take().length, 2);
  assert.equal(h.conn.snd.max, L1 + 17_520);
  return h;
}

function dupAck(h: Harness, n = 1460): void {
  ackTo(h, n);
}

test("limited transmit: each of the first two duplicate ACKs releases one new segment (RFC 3042)", () => {
  const h = lossSetup();
  dupAck(h);
  h.expect([{ seq: L1 + 17_520, len: 1460 }]);
  dupAck(h);
  h.expect([{ seq: L1 + 18_980, len: 1460 }]);
  assert.equal(h.conn.cc.dupAcks, 2);
  assert.equal(h.conn.cc.inRecovery, false);
});

test("third duplicate ACK: fast retransmit, ssthresh = flight/2, cwnd = ssthresh + 3 MSS", () => {
  const h = lossSetup();
  dupAck(h);
  dupAck(h);
  h.take();
  dupAck(h);
  h.expect([{ seq: L1 + 1460, len: 1460 }]);
  assert.equal(h.conn.cc.inRecovery, true);
  assert.equal(h.conn.cc.ssthresh, 9490);
  assert.equal(h.conn.cc.cwnd, 9490 + 3 * 1460);
  assert.equal(h.conn.cc.recover, L1 + 20_440);
});

test("further duplicate ACKs inflate cwnd and release new data once it fits", () => {
  const h = lossSetup();
  for (let i = 0; i < 3; i++) dupAck(h);
  h.take();
  for (let i = 0; i < 4; i++) dupAck(h);
  h.expectNothing("flight still exceeds cwnd (730 bytes of room: SWS waits)");
  dupAck(h);
  h.expect([{ seq: L1 + 20_440, len: 1460 }]);
});

test("full ACK ends recovery and deflates cwnd (RFC 6582 3.2 step 3)", () => {
  const h = lossSetup();
  for (let i = 0; i < 3; i++) dupAck(h);
  h.take();
  h.now = 20;
  ackTo(h, 20_440);
  assert.equal(h.conn.cc.inRecovery, false);
  // min(ssthresh, max(flight, MSS) + MSS) with flight 0 -> 2920; the rest goes out.
  assert.equal(h.conn.cc.cwnd, 2920);
  h.expect([
    { seq: L1 + 20_440, len: 1460 },
    { seq: L1 + 21_900, len: 1460 },
  ]);
});

test("partial ACK retransmits the next hole at once and partially deflates (step 4)", () => {
  const h = lossSetup();
  for (let i = 0; i < 3; i++) dupAck(h);
  h.take();
  const cwnd = h.conn.cc.cwnd;
  h.now = 20;
  ackTo(h, 4380); // the second hole starts at 4380
  h.expect([{ seq: L1 + 4380, len: 1460 }]);
  assert.equal(h.conn.cc.inRecovery, true);
  assert.equal(h.conn.cc.cwnd, cwnd - 2920 + 1460);
  assert.equal(h.conn.timers.rtxAt, 20 + 200, "the first partial ACK resets the timer");
  h.now = 30;
  ackTo(h, 7300);
  h.expect([{ seq: L1 + 7300, len: 1460 }]);
  assert.equal(h.conn.timers.rtxAt, 220, "later partial ACKs do not (impatient variant)");
});

test("duplicate ACKs that carry a window change or data are not counted", () => {
  const h = lossSetup();
  ackTo(h, 1460, 60_000);
  ackTo(h, 1460, 60_000);
  h.input({ seq: R1, ack: L1 + 1460, flags: TCP_ACK, window: 60_000, payload: "x" });
  assert.equal(h.conn.cc.dupAcks, 1, "only the second (same window, no data) counted");
});

test("after a timeout, duplicate ACKs below `recover` do not trigger fast retransmit (RFC 6582 4)", () => {
  const h = lossSetup();
  h.advanceTo(210);
  h.take();
  assert.equal(h.conn.cc.recover, L1 + 17_520);
  for (let i = 0; i < 3; i++) dupAck(h);
  assert.equal(h.conn.cc.inRecovery, false);
});

test("a fast retransmission is not used for an RTT sample", () => {
  const h = lossSetup();
  for (let i = 0; i < 3; i++) dupAck(h);
  h.now = 500;
  const srtt = h.conn.rtt.srtt;
  ackTo(h, 20_440);
  assert.equal(h.conn.rtt.srtt, srtt);
});

test("congestion avoidance adds one MSS per cwnd of ACKed bytes", () => {
  const h = new Harness().established();
  h.conn.cc.ssthresh = 2920;
  h.conn.cc.cwnd = 2920;
  h.write(pattern(20_000));
  h.take();
  ackTo(h, 1460);
  assert.equal(h.conn.cc.cwnd, 2920);
  ackTo(h, 2920);
  assert.equal(h.conn.cc.cwnd, 4380);
});

test("slow start grows cwnd by at most 2 MSS per ACK (RFC 3465, L = 2)", () => {
  const h = new Harness().established();
  h.write(pattern(14_600));
  h.take();
  ackTo(h, 14_600);
  assert.equal(h.conn.cc.cwnd, 14_600 + 2920);
});

test("restart after idle: cwnd falls back to the initial window (RFC 5681 4.1)", () => {
  const h = new Harness().established();
  h.write(pattern(14_600));
  h.take();
  ackTo(h, 14_600);
  assert.ok(h.conn.cc.cwnd > 14_600);
  h.now = 10_000;
  h.write(pattern(30_000));
  assert.equal(h.take().length, 10);
});

test("a retransmission carries the current ACK and window", () => {
  const h = new Harness().established();
  h.write("abc");
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "xyz" });
  h.advanceTo(200);
  const [rtx] = h.take().filter((s) => s.len === 3);
  assert.equal(rtx.ack, R1 + 3);
});

test("FIN is retransmitted on timeout like data", () => {
  const h = new Harness().established();
  h.close();
  h.expect([{ seq: L1, flags: "FIN|ACK" }]);
  h.advanceTo(600);
  h.expect([
    { seq: L1, flags: "FIN|ACK" },
    { seq: L1, flags: "FIN|ACK" },
  ]);
  ackTo(h, 1);
  assert.equal(h.conn.state, "FIN-WAIT-2");
  assert.equal(h.conn.timers.rtxAt, Infinity);
});

test("data and FIN retransmitted after a timeout in FIN-WAIT-1", () => {
  const h = new Harness().established();
  h.conn.send(pattern(2000), h.now);
  h.close();
  h.expect([{ len: 1460 }, { len: 540, flags: "FIN|PSH|ACK" }]);
  h.advanceTo(200);
  h.expect([{ seq: L1, len: 1460 }]);
  ackTo(h, 1460);
  h.expect([{ seq: L1 + 1460, len: 540, flags: "FIN|PSH|ACK" }]);
  ackTo(h, 2001);
  assert.equal(h.conn.state, "FIN-WAIT-2");
});

test("CLOSE-WAIT: retransmission timer stops once everything is ACKed", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  h.write("resp");
  h.take();
  assert.equal(h.conn.timers.rtxAt, 200);
  h.input({ seq: R1 + 1, ack: L1 + 4, flags: TCP_ACK });
  assert.equal(h.conn.timers.rtxAt, Infinity);
});

test("writes during retransmission are queued and sent in order", () => {
  const h = new Harness().established();
  h.write("abc");
  h.advanceTo(200);
  h.take();
  h.write("def");
  h.expect([{ seq: L1 + 3, payload: "def" }], "cwnd (1 MSS) has room; Nagle is off");
  h.now = 210;
  ackTo(h, 6);
  assert.equal(h.conn.txQueue.length, 0);
});

// ------------------------------------------------------------------ SACK-based recovery (RFC 6675)

function sackSetup(): Harness {
  const h = new Harness().established({ syn: { options: { mss: 1460, sackPermitted: true } } });
  assert.equal(h.conn.opts.sackOk, true);
  h.write(pattern(29_200));
  assert.equal(h.take().length, 10);
  return h;
}

function sackAck(h: Harness, blocks: Array<[number, number]>, ack = 1460): void {
  h.input({
    seq: R1,
    ack: L1 + ack,
    flags: TCP_ACK,
    options: { sack: blocks.map(([l, r]) => [L1 + l, L1 + r] as [number, number]) },
  });
}

test("SACK: recovery starts when more than two segments are SACKed above the hole", () => {
  const h = sackSetup();
  h.input({ seq: R1, ack: L1 + 1460, flags: TCP_ACK }); // segment 2 lost, 1 ACKed
  h.take();
  sackAck(h, [[2920, 4380]]);
  assert.equal(h.conn.cc.inRecovery, false);
  h.take();
  sackAck(h, [[2920, 5840]]);
  h.take();
  sackAck(h, [[2920, 7300]]);
  assert.equal(h.conn.cc.inRecovery, true);
  assert.equal(h.conn.cc.sackRecovery, true);
  const out = h.take();
  assert.deepEqual(out[0], { ...out[0], seq: L1 + 1460, len: 1460 }, "the hole first");
  assert.equal(h.conn.cc.cwnd, h.conn.cc.ssthresh, "no inflation in SACK recovery");
});

test("SACK: several holes are retransmitted in one round trip (NewReno needs one per RTT)", () => {
  const h = sackSetup();
  // Segments 1 and 3 lost of 10; the peer SACKs 2 and 4..10.
  sackAck(
    h,
    [
      [5840, 14_600],
      [1460, 2920],
    ],
    0,
  );
  for (let i = 0; i < 2; i++) sackAck(h, [[5840, 14_600]], 0);
  const out = h.take();
  const rtx = out.filter((s) => s.seq - L1 < 14_600).map((s) => [s.seq - L1, s.len]);
  assert.deepEqual(rtx, [
    [0, 1460],
    [2920, 1460],
    [4380, 1460],
  ]);
});

test("SACK: a full ACK ends recovery; the scoreboard empties with it", () => {
  const h = sackSetup();
  for (let i = 0; i < 3; i++) sackAck(h, [[1460, 14_600]], 0);
  assert.equal(h.conn.cc.sackRecovery, true);
  h.take();
  h.input({ seq: R1, ack: L1 + h.conn.cc.recover - L1, flags: TCP_ACK });
  assert.equal(h.conn.cc.inRecovery, false);
  assert.equal(h.conn.cc.sackRecovery, false);
  assert.equal(h.conn.cc.scoreboard.empty, true);
});

test("SACK: after a timeout the scoreboard is rebuilt from new ACKs and SACKed data is skipped", () => {
  const h = sackSetup();
  sackAck(h, [[2920, 4380]], 0);
  h.take();
  h.advanceTo(h.conn.timers.rtxAt);
  assert.equal(h.conn.cc.scoreboard.empty, true, "cleared at the timeout (RFC 2018 8)");
  h.expect([{ seq: L1, len: 1460 }]);
  // The peer now holds 0..1460 and still 2920..14600 (SACKed): go-back skips that range.
  sackAck(h, [[2920, 14_600]], 1460);
  h.expect([{ seq: L1 + 1460, len: 1460 }]);
  assert.equal(h.conn.snd.nxt, L1 + 14_600, "the SACKed range was skipped");
  h.input({ seq: R1, ack: L1 + 14_600, flags: TCP_ACK });
  const out = h.take();
  assert.ok(out.length > 0 && out.every((s) => s.seq - L1 >= 14_600), JSON.stringify(out));
});

test("SACK blocks from a peer without SACK-permitted are ignored", () => {
  const h = new Harness().established();
  h.write(pattern(14_600));
  h.take();
  sackAck(h, [[1460, 14_600]], 0);
  assert.equal(h.conn.cc.scoreboard.empty, true);
  assert.equal(h.conn.cc.inRecovery, false);
});

// ------------------------------------------------------------------ tail loss probe (RFC 8985 7)

function tlpHarness(): Harness {
  const h = new Harness({ cfg: { tailLossProbe: true, rtoMin: 200 } });
  h.listen({ options: { mss: 1460, sackPermitted: true } });
  h.now = 20; // SRTT 20 ms from the handshake
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  h.take();
  return h;
}

test("TLP: when ACKs stop, a probe goes out after 2 x SRTT, long before the RTO", () => {
  const h = tlpHarness();
  h.write(pattern(14_600));
  assert.equal(h.take().length, 10);
  assert.equal(h.conn.timers.tlpAt, 20 + 40);
  h.conn.send(pattern(1460, 9), h.now); // more data waiting: the probe carries new data
  h.advanceTo(60);
  h.expect([{ seq: L1 + 14_600, len: 1460 }], "new data beyond cwnd");
  assert.ok(h.conn.timers.rtxAt > 60, "the RTO stays armed as the backstop");
});

test("TLP: with nothing new to send the last segment is probed again", () => {
  const h = tlpHarness();
  h.write(pattern(4000));
  h.take();
  h.advanceTo(60);
  h.expect([{ seq: L1 + 2540, len: 1460, flags: "PSH|ACK" }], "the last MSS worth");
  h.advanceTo(100);
  h.expectNothing("one probe per tail episode");
});

test("TLP: a single segment in flight would wait a delayed ACK (+200 ms), so the RTO comes first", () => {
  const h = tlpHarness();
  h.write("x");
  h.take();
  assert.equal(h.conn.timers.rtxAt, 220);
  assert.equal(h.conn.timers.tlpAt, Infinity, "2 x 20 + 200 = 240 ms is after the RTO");
  const h2 = tlpHarness();
  h2.write(pattern(3000));
  h2.take();
  assert.equal(h2.conn.timers.tlpAt, 60, "several segments: 2 x SRTT");
});

test("TLP: a SACKed probe marks everything before it lost and starts recovery at once", () => {
  const h = tlpHarness();
  h.write(pattern(14_600));
  h.take();
  h.conn.send(pattern(1460, 9), h.now);
  h.advanceTo(60);
  h.take();
  // The whole first flight was lost; the probe arrived.
  h.now = 80;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, options: { sack: [[L1 + 14_600, L1 + 16_060]] } });
  assert.equal(h.conn.cc.sackRecovery, true);
  const out = h.take();
  assert.equal(out[0].seq, L1, "the first hole at once");
  assert.ok(out.length >= 2, "more holes while cwnd - pipe allows");
  assert.ok(out.every((s) => s.seq - L1 < 14_600));
});

test("TLP: an ACK that advances cancels the probe; it is re-armed for what remains", () => {
  const h = tlpHarness();
  h.write(pattern(14_600));
  h.take();
  h.now = 30;
  h.input({ seq: R1, ack: L1 + 7300, flags: TCP_ACK });
  h.take();
  assert.equal(h.conn.timers.tlpAt, 30 + Math.max(2 * h.conn.rtt.srtt, 10));
  h.input({ seq: R1, ack: L1 + h.conn.snd.max - L1, flags: TCP_ACK });
  assert.equal(h.conn.timers.tlpAt, Infinity);
});
