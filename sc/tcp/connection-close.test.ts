// Closing in every order (RFC 9293 3.6), TIME-WAIT, RST acceptability (RFC 5961 3),
// zero-window probing (RFC 9293 3.8.6.1), keepalive, idle timeout, FIN-WAIT-2 timeout.

import { test } from "node:test";
import assert from "node:assert/strict";
import { EV_CLOSED, EV_FIN, EV_FINISHED, EV_TIMEOUT } from "./types.js";
import { Harness, L1, R1, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, pattern } from "./testing.js";

// ------------------------------------------------------------------ close orders

test("local close: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED", () => {
  const h = new Harness().established();
  h.close();
  assert.equal(h.conn.state, "FIN-WAIT-1");
  h.expect([{ seq: L1, ack: R1, flags: "FIN|ACK" }]);
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK });
  assert.equal(h.conn.state, "FIN-WAIT-2");
  assert.ok(h.conn.events & EV_FINISHED);
  h.expectNothing();
  h.now = 50;
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.state, "TIME-WAIT");
  assert.ok(h.conn.events & EV_CLOSED);
  assert.equal(h.conn.closeReason, "closed");
  h.expect([{ seq: L1 + 1, ack: R1 + 1, flags: "ACK" }]);
  assert.equal(h.conn.pollAt(), 1050);
  h.advanceTo(1049);
  assert.equal(h.conn.state, "TIME-WAIT");
  h.advanceTo(1050);
  assert.equal(h.conn.state, "CLOSED");
  h.expectNothing();
});

test("remote close: CLOSE-WAIT -> LAST-ACK -> CLOSED", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.state, "CLOSE-WAIT");
  assert.ok(h.conn.events & EV_FIN);
  h.expect([{ seq: L1, ack: R1 + 1, flags: "ACK" }]);
  h.write("last words");
  h.close();
  assert.equal(h.conn.state, "LAST-ACK");
  h.expect([{ len: 10 }, { seq: L1 + 10, flags: "FIN|ACK" }]);
  h.input({ seq: R1 + 1, ack: L1 + 10, flags: TCP_ACK });
  assert.equal(h.conn.state, "LAST-ACK", "ACK not covering the FIN");
  h.input({ seq: R1 + 1, ack: L1 + 11, flags: TCP_ACK });
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "closed");
});

test("simultaneous close: FIN-WAIT-1 + FIN -> CLOSING -> TIME-WAIT", () => {
  const h = new Harness().established();
  h.close();
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.state, "CLOSING");
  h.expect([{ seq: L1 + 1, ack: R1 + 1, flags: "ACK" }]);
  h.input({ seq: R1 + 1, ack: L1 + 1, flags: TCP_ACK });
  assert.equal(h.conn.state, "TIME-WAIT");
});

test("simultaneous close with the FIN also ACKing ours: FIN-WAIT-1 -> TIME-WAIT", () => {
  const h = new Harness().established();
  h.close();
  h.take();
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.state, "TIME-WAIT");
  h.expect([{ seq: L1 + 1, ack: R1 + 1, flags: "ACK" }]);
});

test("simultaneous close, raced: both FINs cross, each side's FIN retransmitted and ACKed", () => {
  const h = new Harness().established();
  h.close();
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  h.take();
  h.advanceTo(200); // our FIN was lost: retransmitted from CLOSING
  h.expect([{ seq: L1, ack: R1 + 1, flags: "FIN|ACK" }]);
  h.input({ seq: R1 + 1, ack: L1 + 1, flags: TCP_ACK });
  assert.equal(h.conn.state, "TIME-WAIT");
});

test("close with data queued: FIN rides on the last data segment", () => {
  const h = new Harness().established();
  h.conn.send(pattern(3000), h.now);
  h.close();
  h.expect([{ len: 1460 }, { len: 1460 }, { len: 80, flags: "FIN|PSH|ACK" }]);
  h.input({ seq: R1, ack: L1 + 3001, flags: TCP_ACK });
  assert.equal(h.conn.state, "FIN-WAIT-2");
});

test("FIN waits for window room", () => {
  const h = new Harness().established({ syn: { window: 2000 }, ackWindow: 1460 });
  h.conn.send(pattern(1460), h.now);
  h.close();
  h.expect([{ len: 1460, flags: "PSH|ACK" }]);
  h.input({ seq: R1, ack: L1 + 1460, flags: TCP_ACK, window: 1460 });
  h.expect([{ seq: L1 + 1460, len: 0, flags: "FIN|ACK" }]);
});

test("FIN-WAIT-1 and FIN-WAIT-2 still receive data", () => {
  const h = new Harness().established();
  h.close();
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "one" });
  assert.equal(h.read(), "one");
  h.input({ seq: R1 + 3, ack: L1 + 1, flags: TCP_ACK, payload: "two" });
  assert.equal(h.conn.state, "FIN-WAIT-2");
  assert.equal(h.read(), "two");
});

test("data after the peer's FIN is ignored", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN, payload: "req" });
  assert.equal(h.read(), "req");
  h.take();
  h.input({ seq: R1 + 4, ack: L1, flags: TCP_ACK, payload: "more" });
  assert.equal(h.read(), "");
});

test("a FIN ahead of missing data is processed once the gap is filled", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 5, ack: L1, flags: TCP_ACK | TCP_FIN, payload: "world" });
  assert.equal(h.conn.state, "ESTABLISHED");
  h.expect([{ ack: R1 }]);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "hello" });
  assert.equal(h.conn.state, "CLOSE-WAIT");
  h.expect([{ ack: R1 + 11 }]);
  assert.equal(h.read(), "helloworld");
});

test("a bare FIN ahead of missing data waits for the data", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 5, ack: L1, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.state, "ESTABLISHED");
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "hello" });
  assert.equal(h.conn.state, "CLOSE-WAIT");
  assert.equal(h.conn.rcv.nxt, R1 + 6);
});

test("a retransmitted FIN in CLOSE-WAIT is ACKed again", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  h.expect([{ ack: R1 + 1 }]);
  assert.equal(h.conn.state, "CLOSE-WAIT");
});

test("TIME-WAIT: a retransmitted FIN is ACKed and restarts the timer", () => {
  const h = new Harness().established();
  h.close();
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK | TCP_FIN });
  h.take();
  h.now = 500;
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK | TCP_FIN });
  h.expect([{ seq: L1 + 1, ack: R1 + 1, flags: "ACK" }]);
  assert.equal(h.conn.pollAt(), 1500);
});

test("TIME-WAIT: an RST closes (RFC 9293)", () => {
  const h = new Harness().established();
  h.close();
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK | TCP_FIN });
  h.input({ seq: R1 + 1, flags: TCP_RST });
  assert.equal(h.conn.state, "CLOSED");
});

test("TIME-WAIT duration is configurable", () => {
  const h = new Harness({ cfg: { timeWait: 30 } }).established();
  h.close();
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK | TCP_FIN });
  h.advanceTo(30);
  assert.equal(h.conn.state, "CLOSED");
});

test("LAST-ACK: the FIN is retransmitted until the retry bound, then the connection dies", () => {
  const h = new Harness({ cfg: { maxRetransmits: 2 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  h.close();
  h.take();
  h.advanceTo(10_000);
  assert.deepEqual(
    h.takeTimed().map((e) => [e.at, e.seg.flags]),
    [
      [200, "FIN|ACK"],
      [600, "FIN|ACK"],
      [1400, "RST|ACK"],
    ],
  );
  assert.equal(h.conn.closeReason, "timeout");
});

test("FIN-WAIT-2 times out when the peer stays silent", () => {
  const h = new Harness({ cfg: { finWait2Timeout: 5000 } }).established();
  h.close();
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK });
  h.advanceTo(4999);
  assert.equal(h.conn.state, "FIN-WAIT-2");
  h.advanceTo(10_000);
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "timeout");
});

test("close() twice is harmless; close after CLOSE-WAIT FIN sends exactly one FIN", () => {
  const h = new Harness().established();
  h.close();
  h.close();
  h.expect([{ flags: "FIN|ACK" }]);
});

// ------------------------------------------------------------------ RST

test("RST exactly at rcv_nxt resets an ESTABLISHED connection (ECONNRESET)", () => {
  const h = new Harness().established();
  h.input({ seq: R1, flags: TCP_RST });
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "reset");
  h.expectNothing();
});

test("RST with ACK at rcv_nxt also resets", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_RST | TCP_ACK });
  assert.equal(h.conn.closeReason, "reset");
});

test("RST in the window but not at rcv_nxt -> challenge ACK (RFC 5961 3.2)", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 1, flags: TCP_RST });
  assert.equal(h.conn.state, "ESTABLISHED");
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
});

test("RST outside the window is dropped silently", () => {
  const h = new Harness().established();
  h.input({ seq: R1 + 70_000, flags: TCP_RST });
  h.input({ seq: R1 - 1, flags: TCP_RST });
  assert.equal(h.conn.state, "ESTABLISHED");
  h.expectNothing();
  assert.equal(h.env.drops["rst-out-of-window"], 2);
});

test("RST in CLOSE-WAIT, FIN-WAIT-1/2, CLOSING, LAST-ACK closes", () => {
  const setups: Array<[string, (h: Harness) => number]> = [
    [
      "CLOSE-WAIT",
      (h) => {
        h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
        return R1 + 1;
      },
    ],
    ["FIN-WAIT-1", (h) => (h.close(), R1)],
    [
      "FIN-WAIT-2",
      (h) => {
        h.close();
        h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK });
        return R1;
      },
    ],
    [
      "CLOSING",
      (h) => {
        h.close();
        h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
        return R1 + 1;
      },
    ],
    [
      "LAST-ACK",
      (h) => {
        h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
        h.close();
        return R1 + 1;
      },
    ],
  ];
  for (const [state, setup] of setups) {
    const h = new Harness().established();
    const seq = setup(h);
    assert.equal(h.conn.state, state);
    h.take();
    h.input({ seq, flags: TCP_RST });
    assert.equal(h.conn.state, "CLOSED", state);
    assert.equal(h.conn.closeReason, "reset", state);
    h.expectNothing(state);
  }
});

test("abort() sends RST|ACK with snd_max and rcv_nxt, then CLOSED", () => {
  const h = new Harness().established();
  h.write("abc");
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "xy" });
  h.conn.abort();
  h.dispatch();
  h.expect([{ seq: L1 + 3, ack: R1 + 2, flags: "RST|ACK" }]);
  assert.equal(h.conn.closeReason, "aborted");
  h.input({ seq: R1 + 2, ack: L1 + 3, flags: TCP_ACK, payload: "late" });
  h.expectNothing("a closed connection answers nothing (the stack sends RSTs)");
});

test("dropSilently() emits nothing", () => {
  const h = new Harness().established();
  h.write("abc");
  h.take();
  h.conn.dropSilently();
  h.dispatch();
  h.advance(10_000);
  h.expectNothing();
  assert.equal(h.conn.closeReason, "dropped");
});

test("SYN in the window in CLOSE-WAIT -> challenge ACK", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  h.take();
  h.input({ seq: R1 + 1, flags: TCP_SYN });
  h.expect([{ flags: "ACK", ack: R1 + 1 }]);
});

// ------------------------------------------------------------------ zero window

test("zero window: persist probes of one byte with exponential backoff", () => {
  const h = new Harness().established();
  h.write(pattern(100));
  h.take();
  h.now = 10;
  h.input({ seq: R1, ack: L1 + 100, flags: TCP_ACK, window: 0 });
  h.write("abcdef");
  h.expectNothing();
  assert.equal(h.conn.timers.inPersist, true);
  assert.equal(h.conn.timers.rtxAt, Infinity);
  h.advanceTo(1500);
  assert.deepEqual(
    h.takeTimed().map((e) => [e.at, e.seg.seq, e.seg.len]),
    [
      [210, L1 + 100, 1],
      [610, L1 + 100, 1],
      [1410, L1 + 100, 1],
    ],
  );
});

test("zero window: probes continue while the peer answers (no give-up), stop when it opens", () => {
  const h = new Harness({ cfg: { maxRetransmits: 2 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write("abcdef");
  h.expectNothing();
  for (let i = 0; i < 5; i++) {
    h.advanceTo(h.conn.pollAt());
    h.expect([{ seq: L1, len: 1, payload: "a" }], `probe ${i}`);
    h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  }
  assert.equal(h.conn.state, "ESTABLISHED");
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 1000 });
  assert.equal(h.conn.timers.inPersist, false);
  h.expect([{ seq: L1, len: 6, payload: "abcdef" }]);
});

test("zero window: unanswered probes hit the give-up bound", () => {
  const h = new Harness({ cfg: { maxRetransmits: 3 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write("abc");
  h.advanceTo(100_000);
  const segs = h.take();
  assert.deepEqual(
    segs.map((s) => s.flags),
    ["ACK", "ACK", "ACK", "RST|ACK"],
  );
  assert.equal(h.conn.closeReason, "timeout");
});

test("zero window: a probe byte the peer accepts is not sent again", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write("abc");
  h.advanceTo(h.conn.pollAt());
  h.expect([{ seq: L1, len: 1 }]);
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK, window: 0 });
  h.advanceTo(h.conn.pollAt());
  h.expect([{ seq: L1 + 1, len: 1, payload: "b" }]);
  h.input({ seq: R1, ack: L1 + 2, flags: TCP_ACK, window: 500 });
  h.expect([{ seq: L1 + 2, len: 1, payload: "c" }]);
});

test("zero window after data in flight: the timeout turns into probing", () => {
  const h = new Harness().established();
  h.write(pattern(1000));
  h.take();
  h.input({ seq: R1, ack: L1 + 500, flags: TCP_ACK, window: 0 });
  h.advanceTo(200); // RTO: window is zero, go back and probe
  h.advanceTo(h.conn.pollAt());
  const segs = h.take();
  assert.ok(segs.length >= 1);
  assert.ok(segs.every((s) => s.seq === L1 + 500 && s.len === 1));
  h.input({ seq: R1, ack: L1 + 500, flags: TCP_ACK, window: 2000 });
  h.expect([{ seq: L1 + 500, len: 500 }]);
});

test("zero window with only a FIN pending: the FIN is the probe", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.close();
  h.expectNothing();
  h.advanceTo(h.conn.pollAt());
  h.expect([{ seq: L1, len: 0, flags: "FIN|ACK" }]);
  h.input({ seq: R1, ack: L1 + 1, flags: TCP_ACK, window: 0 });
  assert.equal(h.conn.state, "FIN-WAIT-2");
});

test("zero window: a peer that answers every probe with window 0 is aborted at the deadline, not before", () => {
  const h = new Harness({ cfg: { zeroWindowTimeout: 60_000 } }).established();
  h.now = 1000;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write("response"); // window closed: persist starts now (t = 1000)
  assert.equal(h.conn.timers.inPersist, true);
  let probes = 0;
  while (h.conn.state !== "CLOSED") {
    const at = h.conn.pollAt();
    assert.ok(at <= 61_000, `deadline ${at}`);
    h.advanceTo(at);
    for (const seg of h.take()) {
      if (seg.flags.includes("RST")) continue;
      probes++;
      assert.deepEqual([seg.seq, seg.len], [L1, 1], "a probe");
      assert.ok(h.now < 61_000, "no probe at or after the deadline");
      h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 }); // answered, window still 0
    }
    if (h.now < 61_000) assert.equal(h.conn.state, "ESTABLISHED", `alive at ${h.now}`);
  }
  assert.equal(h.now, 61_000, "aborted exactly zeroWindowTimeout after the window closed");
  assert.ok(probes >= 5, `${probes} probes answered before`);
  assert.equal(h.conn.closeReason, "zero-window");
  assert.equal(h.env.zeroWindowAborts, 1);
  assert.deepEqual(
    h.log.filter((e) => e.seg.flags.includes("RST")).map((e) => [e.at, e.seg.seq, e.seg.flags]),
    [[61_000, L1, "RST|ACK"]], // at the window's edge, not after the probe byte: the peer accepts it
  );
});

test("zero window: a peer that opens its window in time is not aborted; the deadline restarts", () => {
  const h = new Harness({ cfg: { zeroWindowTimeout: 10_000 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write("abcdef");
  h.advanceTo(9_999);
  h.take();
  assert.equal(h.conn.state, "ESTABLISHED");
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 1000 });
  h.expect([{ seq: L1, len: 6 }]);
  h.input({ seq: R1, ack: L1 + 6, flags: TCP_ACK, window: 0 }); // progress, then closed again
  assert.equal(h.conn.timers.zeroWindowSince, -1, "acknowledged data ends the stall");
  h.write("ghi");
  assert.equal(h.conn.timers.zeroWindowSince, 9_999, "a new episode");
  h.advanceTo(19_998);
  assert.equal(h.conn.state, "ESTABLISHED");
  h.take();
  h.input({ seq: R1, ack: L1 + 6, flags: TCP_ACK, window: 1000 });
  h.expect([{ seq: L1 + 6, len: 3 }]);
  h.input({ seq: R1, ack: L1 + 9, flags: TCP_ACK, window: 1000 });
  h.advanceTo(100_000);
  assert.equal(h.conn.state, "ESTABLISHED");
  assert.equal(h.env.zeroWindowAborts, 0);
});

test("zero window: taking probe bytes one at a time under a zero window does not extend the deadline", () => {
  const h = new Harness({ cfg: { zeroWindowTimeout: 10_000 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write(pattern(1000));
  let acked = 0;
  while (h.conn.state !== "CLOSED" && h.now < 100_000) {
    h.advanceTo(h.conn.pollAt());
    if (h.take().some((s) => s.len === 1)) {
      acked++;
      h.input({ seq: R1, ack: L1 + acked, flags: TCP_ACK, window: 0 });
    }
  }
  assert.equal(h.now, 10_000);
  assert.equal(h.conn.closeReason, "zero-window");
  assert.ok(acked >= 3, `${acked} probe bytes taken`);
});

test("zero window: reopening the window and never acknowledging does not restart the deadline", () => {
  const h = new Harness({ cfg: { zeroWindowTimeout: 10_000 } }).established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 0 });
  h.write(pattern(3000));
  while (h.conn.state !== "CLOSED" && h.now < 100_000) {
    // Open the window a little now and then; never acknowledge what it lets through.
    h.advanceTo(h.conn.pollAt());
    h.take();
    h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: h.conn.timers.inPersist ? 500 : 0 });
    h.take();
  }
  assert.equal(h.now, 10_000);
  assert.equal(h.conn.closeReason, "zero-window");
});

// ------------------------------------------------------------------ keepalive & idle

test("keepalive: a probe after the idle time; an answer resets the count", () => {
  const h = new Harness({
    cfg: { keepAliveIdle: 1000, keepAliveInterval: 100, keepAliveProbes: 3 },
  }).established();
  h.conn.setKeepAlive(true, h.now);
  h.advanceTo(999);
  h.expectNothing();
  h.advanceTo(1000);
  h.expect([{ seq: L1 - 1, ack: R1, len: 0, flags: "ACK" }]);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  h.advanceTo(2000);
  h.expect([{ seq: L1 - 1 }]);
});

test("keepalive: unanswered probes end the connection with a timeout", () => {
  const h = new Harness({
    cfg: { keepAliveIdle: 1000, keepAliveInterval: 100, keepAliveProbes: 3 },
  }).established();
  h.conn.setKeepAlive(true, h.now);
  h.advanceTo(5000);
  assert.deepEqual(
    h.takeTimed().map((e) => [e.at, e.seg.flags]),
    [
      [1000, "ACK"],
      [1100, "ACK"],
      [1200, "ACK"],
      [1300, "RST|ACK"],
    ],
  );
  assert.equal(h.conn.closeReason, "timeout");
});

test("we answer a keepalive probe (seq = rcv_nxt - 1) with an ACK", () => {
  const h = new Harness().established();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "a" });
  h.advance(100);
  h.take();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  h.expect([{ ack: R1 + 1 }]);
});

test("idle timeout fires once per idle period and is re-armed by activity", () => {
  const h = new Harness().established();
  h.conn.setIdleTimeout(500, h.now);
  h.advanceTo(499);
  assert.equal(h.conn.events & EV_TIMEOUT, 0);
  h.advanceTo(500);
  assert.ok(h.conn.events & EV_TIMEOUT);
  h.conn.events = 0;
  h.advanceTo(5000);
  assert.equal(h.conn.events & EV_TIMEOUT, 0, "not again without activity");
  h.write("x");
  h.advanceTo(5499);
  assert.equal(h.conn.events & EV_TIMEOUT, 0);
  h.advanceTo(5500);
  assert.ok(h.conn.events & EV_TIMEOUT);
});

test("incoming data counts as activity for the idle timeout", () => {
  const h = new Harness().established();
  h.conn.setIdleTimeout(500, h.now);
  h.now = 400;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "a" });
  h.advanceTo(899);
  assert.equal(h.conn.events & EV_TIMEOUT, 0);
  h.advanceTo(900);
  assert.ok(h.conn.events & EV_TIMEOUT);
});
