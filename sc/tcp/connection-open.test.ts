// Opening a connection: passive open (SYN-RECEIVED), active open (SYN-SENT), option
// negotiation (MSS, window scale), handshake retransmission and failures.

import { test } from "node:test";
import assert from "node:assert/strict";
import { EV_CLOSED, EV_DATA, EV_ESTABLISHED } from "./types.js";
import {
  Harness,
  L1,
  LOCAL_ISS,
  R1,
  REMOTE_ISS,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  bytes,
} from "./testing.js";

test("passive open answers SYN with SYN-ACK carrying our MSS and the unscaled window", () => {
  const h = new Harness();
  const synAck = h.listen({ options: { mss: 1400 } });
  assert.deepEqual(synAck, {
    seq: LOCAL_ISS,
    ack: R1,
    flags: "SYN|ACK",
    window: 65535,
    options: { mss: 1460 },
    len: 0,
  });
  assert.equal(h.conn.state, "SYN-RECEIVED");
  assert.equal(h.conn.snd.mss, 1400);
});

test("SYN-ACK echoes window scaling only when the SYN offered it (RFC 7323 1.3)", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  const synAck = h.listen({ options: { mss: 1460, wscale: 7 } });
  assert.deepEqual(synAck.options, { mss: 1460, wscale: 5 });
  assert.equal(synAck.window, 65535, "the window in a SYN is never scaled");
  assert.equal(h.conn.snd.wscale, 7);

  const h2 = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  const synAck2 = h2.listen({ options: { mss: 1460 } });
  assert.deepEqual(synAck2.options, { mss: 1460 });
  assert.equal(h2.conn.rcv.wscale, 0);
  assert.equal(h2.conn.snd.wscale, 0);
});

test("peer window scale above 14 is clamped to 14 (RFC 7323 2.3)", () => {
  const h = new Harness();
  h.listen({ options: { mss: 1460, wscale: 15 } });
  assert.equal(h.conn.snd.wscale, 14);
});

test("MSS: missing or zero means 536, tiny values are clamped, large ones capped by our MTU", () => {
  const cases: Array<[number | undefined, number]> = [
    [undefined, 536],
    [0, 536],
    [1, 64],
    [9000, 1460],
    [1200, 1200],
  ];
  for (const [mss, want] of cases) {
    const h = new Harness();
    h.listen({ options: mss === undefined ? {} : { mss } });
    assert.equal(h.conn.snd.mss, want, `peer MSS ${mss}`);
  }
});

test("our MSS follows the MTU", () => {
  const h = new Harness({ cfg: { mtu: 9000 } });
  assert.deepEqual(h.listen().options, { mss: 8960 });
});

test("SYN-RECEIVED + ACK of our SYN -> ESTABLISHED, event raised, nothing sent", () => {
  const h = new Harness();
  h.listen();
  h.conn.events = 0;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  assert.equal(h.conn.state, "ESTABLISHED");
  assert.ok(h.conn.events & EV_ESTABLISHED);
  h.expectNothing();
});

test("the handshake ACK's window is scaled; the SYN's was not", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  h.listen({ window: 1000, options: { mss: 1460, wscale: 3 } });
  assert.equal(h.conn.snd.wnd, 1000);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, window: 1000 });
  assert.equal(h.conn.snd.wnd, 8000);
});

test("SYN-RECEIVED + ACK too low or too high -> RST with seq = SEG.ACK, state kept", () => {
  for (const bad of [LOCAL_ISS, LOCAL_ISS + 2, LOCAL_ISS - 100]) {
    const h = new Harness();
    h.listen();
    h.input({ seq: R1, ack: bad, flags: TCP_ACK });
    h.expect([{ seq: bad >>> 0, ack: 0, flags: "RST", len: 0 }]);
    assert.equal(h.conn.state, "SYN-RECEIVED");
  }
});

test("SYN-RECEIVED + RST at rcv_nxt closes the half-open connection silently", () => {
  const h = new Harness();
  h.listen();
  h.input({ seq: R1, flags: TCP_RST });
  assert.equal(h.conn.state, "CLOSED");
  h.expectNothing();
});

test("SYN-RECEIVED + RST in window but not at rcv_nxt -> challenge ACK, state kept", () => {
  const h = new Harness();
  h.listen();
  h.input({ seq: R1 + 10, flags: TCP_RST });
  assert.equal(h.conn.state, "SYN-RECEIVED");
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
});

test("a retransmitted SYN in SYN-RECEIVED is answered with the same SYN-ACK", () => {
  const h = new Harness();
  const first = h.listen();
  h.now = 300;
  h.input({ seq: REMOTE_ISS, flags: TCP_SYN, options: { mss: 1460 } });
  h.expect([first]);
});

test("SYN-ACK is retransmitted with exponential backoff, then the half-open connection dies", () => {
  const h = new Harness({ cfg: { synAckRetries: 3 } });
  h.listen();
  h.advanceTo(100_000);
  const times = h.takeTimed().map((e) => [e.at, e.seg.flags]);
  assert.deepEqual(times, [
    [1000, "SYN|ACK"],
    [3000, "SYN|ACK"],
    [7000, "SYN|ACK"],
  ]);
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "timeout");
});

test("the ACK completing the handshake may carry data, which is delivered", () => {
  const h = new Harness();
  h.listen();
  h.conn.events = 0;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK, payload: "GET / HTTP/1.1\r\n\r\n" });
  assert.equal(h.conn.state, "ESTABLISHED");
  assert.ok(h.conn.events & EV_DATA);
  assert.equal(h.read(), "GET / HTTP/1.1\r\n\r\n");
  assert.equal(h.conn.rcv.nxt, R1 + 18);
});

test("FIN with the handshake ACK -> CLOSE-WAIT, FIN acknowledged at once", () => {
  const h = new Harness();
  h.listen();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_FIN });
  assert.equal(h.conn.state, "CLOSE-WAIT");
  h.expect([{ seq: L1, ack: R1 + 1, flags: "ACK" }]);
});

test("a segment without ACK in SYN-RECEIVED is dropped", () => {
  const h = new Harness();
  h.listen();
  h.input({ seq: R1, flags: 0, payload: "x" });
  assert.equal(h.conn.state, "SYN-RECEIVED");
  h.expectNothing();
});

test("close() in SYN-RECEIVED sends FIN once the handshake completes", () => {
  const h = new Harness();
  h.listen();
  h.close();
  h.expectNothing();
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  assert.equal(h.conn.state, "FIN-WAIT-1");
  h.expect([{ seq: L1, ack: R1, flags: "FIN|ACK" }]);
});

test("the SYN-ACK round trip gives the first RTT sample (RFC 6298 2.2)", () => {
  const h = new Harness();
  h.listen();
  h.now = 10;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  assert.equal(h.conn.rtt.srtt, 10);
  assert.equal(h.conn.rtt.rttvar, 5);
  assert.equal(h.conn.rto(), 200, "clamped to rtoMin");
});

test("a retransmitted SYN-ACK gives no RTT sample (Karn)", () => {
  const h = new Harness();
  h.listen();
  h.advanceTo(1000);
  h.take();
  h.now = 1010;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  assert.equal(h.conn.rtt.hasSample, false);
  assert.equal(h.conn.rto(), 1000, "backoff cleared by the ACK, estimator untouched");
});

// ------------------------------------------------------------------ active open

test("active open sends SYN with MSS and window scale", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  const syn = h.connect();
  assert.deepEqual(syn, {
    seq: LOCAL_ISS,
    ack: 0,
    flags: "SYN",
    window: 65535,
    options: { mss: 1460, wscale: 5, sackPermitted: true },
    len: 0,
  });
  assert.equal(h.conn.state, "SYN-SENT");
});

test("SYN-SENT + SYN-ACK -> ESTABLISHED and an ACK", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  h.connect();
  h.input({
    seq: REMOTE_ISS,
    ack: L1,
    flags: TCP_SYN | TCP_ACK,
    window: 29200,
    options: { mss: 1400, wscale: 7 },
  });
  assert.equal(h.conn.state, "ESTABLISHED");
  assert.equal(h.conn.snd.mss, 1400);
  assert.equal(h.conn.snd.wscale, 7);
  assert.equal(h.conn.rcv.wscale, 5);
  assert.equal(h.conn.snd.wnd, 29200);
  h.expect([{ seq: L1, ack: R1, flags: "ACK", window: 32768 }]);
});

test("SYN-SENT + SYN-ACK without window scale turns scaling off both ways", () => {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  h.connect();
  h.input({ seq: REMOTE_ISS, ack: L1, flags: TCP_SYN | TCP_ACK, window: 29200, options: { mss: 1460 } });
  assert.equal(h.conn.rcv.wscale, 0);
  assert.equal(h.conn.snd.wscale, 0);
  h.expect([{ seq: L1, ack: R1, flags: "ACK", window: 65535 }]);
});

test("SYN-SENT + ACK of something else -> RST with seq = SEG.ACK", () => {
  const h = new Harness();
  h.connect();
  h.input({ seq: REMOTE_ISS, ack: LOCAL_ISS + 5, flags: TCP_SYN | TCP_ACK });
  h.expect([{ seq: LOCAL_ISS + 5, flags: "RST" }]);
  assert.equal(h.conn.state, "SYN-SENT");
  h.input({ seq: REMOTE_ISS, ack: LOCAL_ISS, flags: TCP_ACK });
  h.expect([{ seq: LOCAL_ISS, flags: "RST" }]);
});

test("SYN-SENT + RST with an acceptable ACK -> refused; without ACK -> ignored", () => {
  const h = new Harness();
  h.connect();
  h.input({ seq: 0, flags: TCP_RST });
  assert.equal(h.conn.state, "SYN-SENT");
  h.input({ seq: 0, ack: LOCAL_ISS + 3, flags: TCP_RST | TCP_ACK });
  assert.equal(h.conn.state, "SYN-SENT", "unacceptable ACK: RST ignored");
  h.expectNothing();
  h.input({ seq: 0, ack: L1, flags: TCP_RST | TCP_ACK });
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "refused");
  assert.ok(h.conn.events & EV_CLOSED);
  h.expectNothing();
});

test("SYN is retransmitted with backoff and the open times out", () => {
  const h = new Harness({ cfg: { synRetries: 2 } });
  h.connect();
  h.advanceTo(60_000);
  assert.deepEqual(
    h.takeTimed().map((e) => e.at),
    [1000, 3000],
  );
  assert.equal(h.conn.state, "CLOSED");
  assert.equal(h.conn.closeReason, "timeout");
});

test("simultaneous open: SYN in SYN-SENT -> SYN-RECEIVED, SYN-ACK, then ESTABLISHED", () => {
  const h = new Harness();
  h.connect();
  h.input({ seq: REMOTE_ISS, flags: TCP_SYN, options: { mss: 1460 } });
  assert.equal(h.conn.state, "SYN-RECEIVED");
  h.expect([{ seq: LOCAL_ISS, ack: R1, flags: "SYN|ACK" }]);
  h.input({ seq: R1, ack: L1, flags: TCP_ACK });
  assert.equal(h.conn.state, "ESTABLISHED");
});

test("SYN-SENT: a SYN-ACK carrying data does not deliver it (peer retransmits)", () => {
  const h = new Harness();
  h.connect();
  h.input({ seq: REMOTE_ISS, ack: L1, flags: TCP_SYN | TCP_ACK, payload: "early" });
  assert.equal(h.conn.state, "ESTABLISHED");
  h.expect([{ seq: L1, ack: R1, flags: "ACK" }]);
});

test("close() in SYN-SENT: the FIN (after queued data) follows the handshake", () => {
  const h = new Harness();
  h.connect();
  h.conn.send(bytes("req"), h.now);
  h.close();
  h.expectNothing();
  assert.equal(h.conn.state, "SYN-SENT");
  h.input({ seq: REMOTE_ISS, ack: L1, flags: TCP_SYN | TCP_ACK });
  assert.equal(h.conn.state, "FIN-WAIT-1");
  h.expect([{ seq: L1, ack: R1, flags: "FIN|PSH|ACK", payload: "req" }]);
});

test("abort() in SYN-SENT gives up without a packet", () => {
  const h = new Harness();
  h.connect();
  h.conn.abort();
  h.dispatch();
  assert.equal(h.conn.state, "CLOSED");
  h.expectNothing();
});
