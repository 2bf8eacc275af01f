// State export/import for Socket Cloning: the binary encoding, continuity (an imported
// connection emits exactly the segments the original would have), the shadow mode of the
// original, the clone behaviours, and the whole clone round trip over a virtual network.

import { test } from "node:test";
import { CLONE_DEFAULTS } from "./stack.js";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TcpConnection } from "./connection.js";
import { STATE_SIZE, decodeState, encodeState, exportState, importState } from "./state.js";
import { TcpServer, connectTcp, type TcpSocket } from "./socket.js";
import { VirtualNet } from "./sim.js";
import { Harness, L1, R1, TCP_ACK, TCP_FIN, TCP_PSH, pattern } from "./testing.js";
import { isWireError } from "../wire/error.js";
import { encodeIpv4Tcp } from "../wire/tcp.js";
import { ipv4FromString } from "../wire/addr.js";

/** A connection that has exchanged a request and a response and is quiescent. */
function busyConnection(): Harness {
  const h = new Harness({ cfg: { rcvBufSize: 1 << 20 } }).established({
    syn: { options: { mss: 1460, wscale: 7 } },
  });
  h.now = 5;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_PSH, payload: "GET /a HTTP/1.1\r\n\r\n" });
  h.read();
  h.now = 10;
  h.write(pattern(5000));
  h.now = 20;
  h.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK, window: 500 });
  h.take();
  return h;
}

test("encodeState/decodeState round-trip every field in STATE_SIZE bytes", () => {
  const h = busyConnection();
  const s = exportState(h.conn, h.now);
  const bin = encodeState(s);
  assert.equal(bin.length, STATE_SIZE);
  const back = decodeState(bin);
  assert.ok(!isWireError(back));
  const { seed: _seed, ...numeric } = s;
  // The record holds the numeric state only: the seed travels beside it in the CLONE.
  assert.deepEqual(back, { ...numeric, seed: undefined });
  assert.equal(back.sndNxt, L1 + 5000);
  assert.equal(back.rcvNxt, R1 + 19);
  assert.equal(back.sndWnd, 500 * 128);
  assert.equal(back.sndWscale, 7);
  assert.equal(back.rcvWscale, 5);
});

test("encodeState writes into a caller's buffer at an offset", () => {
  const h = busyConnection();
  const buf = new Uint8Array(STATE_SIZE + 10);
  encodeState(exportState(h.conn, h.now), buf, 10);
  const back = decodeState(buf, 10);
  assert.ok(!isWireError(back));
  assert.equal(back.tuple.localPort, 80);
});

test("decodeState rejects short, wrong-version and impossible records", () => {
  const good = encodeState(exportState(busyConnection().conn, 20));
  const cases: Array<[string, (b: Uint8Array) => void, string]> = [
    ["short", () => undefined, "truncated"],
    ["version", (b) => (b[0] = 2), "bad-version"],
    ["state", (b) => (b[1] = 9), "bad-field"],
    ["scale", (b) => (b[3] = 15), "bad-field"],
    ["mss", (b) => ((b[6] = 0), (b[7] = 10)), "bad-field"],
    ["port", (b) => ((b[20] = 0), (b[21] = 0)), "bad-field"],
    ["flags", (b) => (b[2] = 0x80), "bad-field"],
    ["cwnd", (b) => b.fill(0, 64, 68), "bad-field"],
  ];
  for (const [name, edit, kind] of cases) {
    const b = good.slice();
    edit(b);
    const r = decodeState(name === "short" ? b.subarray(0, 50) : b);
    assert.ok(isWireError(r), name);
    assert.equal(r.kind, kind, name);
  }
});

test("export refuses connections that are not ESTABLISHED or CLOSE-WAIT", () => {
  const h = new Harness();
  h.listen();
  assert.throws(() => exportState(h.conn, 0), /SYN-RECEIVED/);
});

/** Drives two harnesses with the same inputs and asserts identical outputs. */
function lockstep(a: Harness, b: Harness) {
  return {
    input(seg: Parameters<Harness["input"]>[0]): void {
      a.input(seg);
      b.input(seg);
      assert.deepEqual(b.take(), a.take());
    },
    write(data: Uint8Array): void {
      a.write(data);
      b.write(data);
      assert.deepEqual(b.take(), a.take());
    },
    advanceTo(t: number): void {
      a.advanceTo(t);
      b.advanceTo(t);
      assert.deepEqual(b.takeTimed(), a.takeTimed());
    },
    close(): void {
      a.close();
      b.close();
      assert.deepEqual(b.take(), a.take());
    },
  };
}

test("continuity: the imported connection emits exactly the segments the original would have", () => {
  const a = busyConnection();
  const snap = exportState(a.conn, a.now);
  const b = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  b.attach(TcpConnection.restore(b.env, decodeState(encodeState(snap)) as never, a.now), a.now);
  const both = lockstep(a, b);
  // Response, partial ACKs, window changes, new data from the peer, a loss with fast
  // retransmit, a timeout, and the close.
  both.write(pattern(30_000, 5));
  both.advanceTo(25);
  both.input({ seq: R1 + 19, ack: L1 + 5000 + 1460, flags: TCP_ACK, window: 2000 });
  both.input({ seq: R1 + 19, ack: L1 + 5000 + 2920, flags: TCP_ACK, window: 2000 });
  both.input({
    seq: R1 + 19,
    ack: L1 + 5000 + 2920,
    flags: TCP_ACK | TCP_PSH,
    window: 2000,
    payload: "next",
  });
  both.advanceTo(200);
  for (let i = 0; i < 3; i++)
    both.input({ seq: R1 + 23, ack: L1 + 5000 + 2920, flags: TCP_ACK, window: 2000 });
  both.advanceTo(2000);
  both.input({ seq: R1 + 23, ack: a.conn.snd.max, flags: TCP_ACK, window: 2000 });
  both.advanceTo(4000);
  both.input({ seq: R1 + 23, ack: a.conn.snd.max, flags: TCP_ACK, window: 2000 });
  assert.equal(a.conn.txQueue.length, 0);
  both.close();
  both.input({ seq: R1 + 23, ack: a.conn.snd.max, flags: TCP_ACK | TCP_FIN, window: 2000 });
  assert.equal(a.conn.state, "TIME-WAIT");
  assert.equal(b.conn.state, "TIME-WAIT");
  assert.equal(a.log.length > 20, true, "the scenario exercised many segments");
});

test("continuity holds for a CLOSE-WAIT connection too", () => {
  const a = busyConnection();
  a.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK | TCP_FIN, window: 500 });
  a.take();
  const snap = exportState(a.conn, a.now);
  assert.equal(snap.state, "CLOSE-WAIT");
  const b = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  b.attach(TcpConnection.restore(b.env, snap, a.now), a.now);
  const both = lockstep(a, b);
  both.write(pattern(3000));
  both.close();
  both.input({ seq: R1 + 20, ack: L1 + 8001, flags: TCP_ACK, window: 500 });
  assert.equal(a.conn.state, "CLOSED");
  assert.equal(b.conn.state, "CLOSED");
});

test("data the original sent but the peer has not ACKed yet is not the importer's: old ACKs are ignored", () => {
  const a = busyConnection();
  a.write("unacked");
  a.take();
  const snap = exportState(a.conn, a.now);
  assert.equal(snap.sndNxt - snap.sndUna, 7);
  const b = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  b.attach(TcpConnection.restore(b.env, snap, a.now), a.now);
  assert.equal(b.conn.snd.una, L1 + 5007);
  b.input({ seq: R1 + 19, ack: L1 + 5003, flags: TCP_ACK, window: 500 });
  b.expectNothing("an ACK inside the original's flight is an old duplicate");
  b.advance(5000);
  b.expectNothing("nothing to retransmit");
});

// ------------------------------------------------------------------ hook (a): shadow mode

test("shadow mode: receive side runs, ACKs advance snd_una/snd_nxt, nothing is emitted", () => {
  const h = busyConnection();
  h.conn.setShadow(true, h.now);
  // The clone sends 1000 response bytes; the client ACKs them (and sends the next request).
  h.input({ seq: R1 + 19, ack: L1 + 6000, flags: TCP_ACK | TCP_PSH, window: 700, payload: "GET /b" });
  assert.equal(h.conn.snd.una, L1 + 6000);
  assert.equal(h.conn.snd.max, L1 + 6000);
  assert.equal(h.conn.snd.nxt, L1 + 6000);
  assert.equal(h.conn.snd.wnd, 700 * 128);
  assert.equal(h.conn.rcv.nxt, R1 + 25);
  assert.equal(h.read(), "GET /b");
  h.advance(10_000);
  h.expectNothing("no ACK, no window update, no timers");
});

test("shadow mode: no retransmissions of the original's own unacknowledged data", () => {
  const h = busyConnection();
  h.write("tail");
  h.take();
  h.conn.setShadow(true, h.now);
  h.advance(30_000);
  h.expectNothing();
  assert.equal(h.conn.state, "ESTABLISHED", "no give-up either");
});

test("shadow mode: a FIN is noted (CLOSE-WAIT) without an ACK", () => {
  const h = busyConnection();
  h.conn.setShadow(true, h.now);
  h.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK | TCP_FIN, window: 500 });
  assert.equal(h.conn.state, "CLOSE-WAIT");
  h.expectNothing();
});

test("taking a stalled clone back: a client that keeps its window closed meets the zero-window deadline", () => {
  const h = busyConnection(); // t = 20
  h.conn.setShadow(true, h.now);
  // The clone sent 3000 bytes; the client took them and closed its window.
  h.input({ seq: R1 + 19, ack: L1 + 8000, flags: TCP_ACK, window: 0 });
  h.now = 1000;
  h.conn.setShadow(false, h.now);
  h.write(pattern(20_000)); // the rest of the response
  h.take();
  const deadline = 1000 + h.cfg.zeroWindowTimeout;
  while (h.conn.state !== "CLOSED" && h.now < 10 * deadline) {
    h.advanceTo(h.conn.pollAt());
    if (h.take().some((seg) => seg.len === 1))
      h.input({ seq: R1 + 19, ack: L1 + 8000, flags: TCP_ACK, window: 0 });
  }
  assert.equal(h.now, deadline);
  assert.equal(h.conn.closeReason, "zero-window");
  assert.ok(
    h.log.some((e) => e.at === deadline && e.seg.flags === "RST|ACK"),
    "the original resets",
  );
});

test("leaving shadow mode owes the ACK of bytes that came in shadow and continues from the synchronised state", () => {
  const h = busyConnection();
  h.conn.setShadow(true, h.now);
  h.input({ seq: R1 + 19, ack: L1 + 9000, flags: TCP_ACK | TCP_PSH, window: 700, payload: "GET /c" });
  h.conn.setShadow(false, h.now);
  h.dispatch();
  // The ACK is delayed (shadow-ack.test.ts): the response carries it.
  h.expectNothing();
  assert.equal(h.conn.timers.delayedAckAt, h.now + h.cfg.delayedAck);
  h.write("response");
  h.expect([{ seq: L1 + 9000, ack: R1 + 25, payload: "response" }]);
  h.input({ seq: R1 + 25, ack: L1 + 9008, flags: TCP_ACK, window: 700 });
  assert.equal(h.conn.flight, 0);
});

test("leaving shadow mode with nothing owed sends nothing", () => {
  const h = busyConnection();
  h.conn.setShadow(true, h.now);
  h.input({ seq: R1 + 19, ack: L1 + 7000, flags: TCP_ACK, window: 700 });
  h.conn.setShadow(false, h.now);
  h.dispatch();
  h.expectNothing();
});

test("resuming after a failed clone: ACKs for bytes the clone sent beyond ours advance us", () => {
  for (const accept of [false, true]) {
    const h = busyConnection();
    h.conn.setShadow(true, h.now);
    h.input({ seq: R1 + 19, ack: L1 + 6000, flags: TCP_ACK, window: 4000 });
    h.conn.setShadow(false, h.now);
    h.conn.cloning.acceptAcksBeyondSent = accept;
    // The original regenerates the rest of the response and sends what its window allows.
    h.write(pattern(100_000));
    h.take();
    const sentUpTo = h.conn.snd.max;
    assert.ok(sentUpTo - (L1 + 6000) < 100_000, "not everything went out at once");
    // The clone's last segments, sent before it died, reach the client, which acknowledges
    // beyond what the original has sent so far.
    const beyond = (sentUpTo + 20_000) >>> 0;
    h.input({ seq: R1 + 19, ack: beyond, flags: TCP_ACK, window: 4000 });
    if (accept) {
      assert.equal(h.conn.snd.una, beyond);
      assert.ok(h.conn.snd.max >= beyond);
    } else {
      assert.equal(h.conn.snd.una, L1 + 6000, "without the flag the ACK is dropped as acking unsent data");
    }
    // Never beyond what is queued: such an ACK is still dropped.
    const before = h.conn.snd.una;
    h.input({ seq: R1 + 19, ack: (L1 + 6000 + 200_000) >>> 0, flags: TCP_ACK, window: 4000 });
    assert.equal(h.conn.snd.una, before);
  }
});

// ------------------------------------------------------------------ hook (b): clone

function cloneOf(h: Harness): Harness {
  const snap = exportState(h.conn, h.now);
  const c = new Harness({ cfg: { rcvBufSize: 1 << 20 } });
  const conn = TcpConnection.restore(c.env, snap, h.now);
  conn.setClone({ ...CLONE_DEFAULTS, finWithLastSegment: false });
  return c.attach(conn, h.now);
}

test("clone: the window never opens beyond the imported right edge", () => {
  const orig = busyConnection();
  const edge = orig.conn.rcv.advEdge;
  const c = cloneOf(orig);
  c.write("x");
  const [seg] = c.take();
  assert.equal(R1 + 19 + seg.window * 32, edge);
  c.input({ seq: R1 + 19, ack: L1 + 5001, flags: TCP_ACK | TCP_PSH, window: 500, payload: pattern(1000) });
  c.advance(100);
  const [ack] = c.take();
  assert.equal(ack.ack, R1 + 1019);
  assert.ok(R1 + 1019 + ack.window * 32 <= edge, "edge not passed");
  c.read();
  c.write("y");
  const [after] = c.take();
  assert.ok(R1 + 1019 + after.window * 32 <= edge, "reading does not reopen it");
});

test("clone: data after the import is ACKed but discarded", () => {
  const c = cloneOf(busyConnection());
  c.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK | TCP_PSH, window: 500, payload: "GET /next" });
  c.advance(50);
  c.expect([{ ack: R1 + 28 }]);
  assert.equal(c.read(), "");
  assert.equal(c.conn.cloning.discardedBytes, 9);
});

test("clone: end() sends no FIN; once all is ACKed it vanishes without a packet", () => {
  const c = cloneOf(busyConnection());
  c.write(pattern(3000));
  c.take();
  c.close();
  c.expectNothing("no FIN");
  c.input({ seq: R1 + 19, ack: L1 + 6460, flags: TCP_ACK, window: 500 });
  assert.equal(c.conn.state, "ESTABLISHED");
  c.input({ seq: R1 + 19, ack: L1 + 8000, flags: TCP_ACK, window: 500 });
  assert.equal(c.conn.state, "CLOSED");
  assert.equal(c.conn.closeReason, "dropped");
  c.advance(10_000);
  c.expectNothing();
});

test("clone: still retransmits its own unacknowledged response data", () => {
  const c = cloneOf(busyConnection());
  c.write(pattern(1000));
  c.take();
  c.close();
  c.advanceTo(c.conn.timers.rtxAt);
  c.expect([{ seq: L1 + 5000, len: 1000 }]);
});

test("clone: an ACK beyond everything it sent means the original moved on: it vanishes", () => {
  const c = cloneOf(busyConnection());
  c.write(pattern(3000));
  c.take();
  c.close();
  // Its last ACK was lost on the way; the original already answers the next request and
  // the client acknowledges the original's bytes too.
  c.input({ seq: R1 + 19, ack: L1 + 9000, flags: TCP_ACK, window: 500 });
  assert.equal(c.conn.state, "CLOSED");
  assert.equal(c.conn.closeReason, "dropped");
  c.advance(10_000);
  c.expectNothing("no ACK for the 'unsent' data, no RST");
});

test("clone: giving up on retransmissions never sends a RST", () => {
  const c = cloneOf(busyConnection());
  c.write(pattern(1000));
  c.take();
  c.close();
  for (let i = 0; i < 40 && c.conn.state !== "CLOSED"; i++) {
    c.advanceTo(c.conn.timers.rtxAt);
    for (const seg of c.take()) assert.ok(!seg.flags.includes("RST"), "no RST");
  }
  assert.equal(c.conn.state, "CLOSED");
  assert.equal(c.conn.closeReason, "timeout");
  c.advance(10_000);
  c.expectNothing();
});

test("clone: a client that keeps its window closed is dropped at the zero-window deadline (no RST)", () => {
  const orig = busyConnection(); // t = 20
  const c = cloneOf(orig);
  c.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK, window: 0 });
  c.write(pattern(50_000)); // the response; the client never reads
  c.close();
  assert.equal(c.conn.timers.inPersist, true);
  const deadline = 20 + c.cfg.zeroWindowTimeout;
  while (c.conn.state !== "CLOSED" && c.now < 10 * deadline) {
    c.advanceTo(c.conn.pollAt());
    if (c.take().length > 0) c.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK, window: 0 });
    if (c.now < deadline) assert.equal(c.conn.state, "ESTABLISHED");
  }
  assert.equal(c.now, deadline);
  assert.equal(c.conn.closeReason, "zero-window");
  assert.equal(c.env.zeroWindowAborts, 1);
  assert.ok(!c.log.some((e) => e.seg.flags.includes("RST")), "the connection belongs to the original");
});

test("clone: dropSilently() removes it with no FIN and no RST", () => {
  const c = cloneOf(busyConnection());
  c.write(pattern(100));
  c.take();
  c.conn.dropSilently();
  c.dispatch();
  c.advance(10_000);
  c.expectNothing();
});

// ------------------------------------------------------------------ over the network

const VIP = "198.18.100.1";
const CLIENT = "198.18.0.2";

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

test("migration: importState on another stack continues the connection for a real client", async () => {
  const net = new VirtualNet(11);
  const a = net.addStack([VIP]);
  const client = net.addStack([CLIENT]);
  const b = net.addStack([VIP]);
  new TcpServer(b).listen(80); // the importer serves the same VIP:port
  net.route(VIP, [a]);
  let orig: TcpSocket | undefined;
  new TcpServer(a, {}, (s) => {
    orig = s;
    s.pause();
  }).listen(80);
  const c = connectTcp(client, { host: VIP, port: 80 });
  const got: Buffer[] = [];
  c.on("data", (d: Buffer) => got.push(d));
  let ended = false;
  c.on("end", () => (ended = true));
  c.write("GET /big HTTP/1.1\r\n\r\n");
  assert.ok(await net.run(() => orig !== undefined && orig.conn.rxQueued === 21));
  // Export from A (after it read the request), import on B, move the VIP, A forgets silently.
  const request = Buffer.concat(orig!.conn.takeReceived(net.now));
  const state = exportState(orig!);
  assert.ok(state.seed !== undefined);
  const moved = importState(b, state, request);
  orig!.dropSilently();
  net.route(VIP, [b]);
  const body = net.rng.bytes(200_000);
  let req = "";
  moved.on("data", (d: Buffer) => {
    req += d.toString();
    moved.end(body);
  });
  assert.ok(await net.run(() => ended, 60_000));
  assert.equal(req, "GET /big HTTP/1.1\r\n\r\n");
  assert.equal(sha(Buffer.concat(got)), sha(body));
});

test("cloning round trip: the clone answers request 1 directly, the original then answers request 2", async () => {
  const net = new VirtualNet(12);
  const a = net.addStack([VIP]);
  const b = net.addStack([VIP]);
  new TcpServer(b).listen(80);
  const client = net.addStack([CLIENT]);
  net.route(VIP, [a]);
  let orig: TcpSocket | undefined;
  const requestsAtA: string[] = [];
  new TcpServer(a, {}, (s) => {
    orig = s;
    s.on("data", (d: Buffer) => requestsAtA.push(d.toString()));
  }).listen(80);
  const c = connectTcp(client, { host: VIP, port: 80 });
  const got: Buffer[] = [];
  c.on("data", (d: Buffer) => got.push(d));
  c.write("GET /1");
  assert.ok(await net.run(() => requestsAtA.length === 1));

  // A clones the connection to B and goes into shadow mode; the router now sends client
  // packets to both (A's stack sees them, B answers).
  const state = exportState(orig!);
  orig!.setShadow(true);
  const clone = importState(b, state, Buffer.from("GET /1"), { clone: {} });
  net.route(VIP, [a, b]);
  const response1 = net.rng.bytes(100_000);
  let cloneClosed: string | undefined;
  clone.on("close", () => (cloneClosed = clone.closeReason));
  clone.once("data", () => clone.end(response1));
  // The client pipelines request 2 while response 1 is in flight.
  await net.advance(2);
  c.write("GET /2");
  assert.ok(await net.run(() => cloneClosed !== undefined, 30_000));
  assert.equal(cloneClosed, "dropped");
  assert.equal(b.connections, 0);
  // A's state followed the client's ACKs; it got request 2 and emitted nothing meanwhile.
  assert.equal(orig!.conn.snd.max, (state.sndNxt + response1.length) >>> 0);
  assert.deepEqual(requestsAtA, ["GET /1", "GET /2"]);
  net.route(VIP, [a]);
  orig!.setShadow(false);
  const response2 = Buffer.from("second response");
  orig!.end(response2);
  let closed = false;
  c.on("close", () => (closed = true));
  c.on("end", () => c.end());
  assert.ok(await net.run(() => closed, 30_000));
  assert.equal(sha(Buffer.concat(got)), sha(Buffer.concat([response1, response2])));
});

test("an imported socket seed is never grown in place over its neighbours' bytes", () => {
  const net = new VirtualNet(13);
  const b = net.addStack([VIP]);
  new TcpServer(b).listen(80);
  const h = busyConnection();
  const state = exportState(h.conn, h.now);
  // The seed arrives as a 40-byte view into a larger shared buffer (as Buffer.from(...) from
  // node's pool can be); what follows it belongs to someone else.
  const shared = new Uint8Array(256).fill(0xaa);
  const seed = encodeIpv4Tcp(
    {
      src: state.tuple.remoteAddr,
      dst: ipv4FromString(VIP) as number,
      ttl: 64,
      tos: 0,
      id: 1,
      dontFrag: true,
    },
    {
      srcPort: state.tuple.remotePort,
      dstPort: 80,
      seq: state.rcvNxt,
      ack: state.sndNxt,
      flags: TCP_ACK,
      window: 500,
      urgent: 0,
      options: {},
      payload: new Uint8Array(0),
    },
  );
  assert.ok(!isWireError(seed));
  shared.set(seed, 0);
  const tuple = { ...state.tuple, localAddr: ipv4FromString(VIP) as number, localPort: 80 };
  importState(b, { ...state, tuple, seed: shared.subarray(0, 40) }, undefined, { clone: {} });
  // Small Buffers come from node's shared pool one after another: this one sits right
  // behind the importer's copy of the seed.
  const neighbour = Buffer.allocUnsafe(64).fill(0xbb);
  // The client's next segment carries options: a longer header than the seed's 40 bytes.
  const next = encodeIpv4Tcp(
    { src: tuple.remoteAddr, dst: tuple.localAddr, ttl: 64, tos: 0, id: 2, dontFrag: true },
    {
      srcPort: tuple.remotePort,
      dstPort: 80,
      seq: state.rcvNxt,
      ack: state.sndNxt,
      flags: TCP_ACK,
      window: 500,
      urgent: 0,
      options: { sack: [[(state.sndNxt + 100) >>> 0, (state.sndNxt + 200) >>> 0]] },
      payload: new Uint8Array(0),
    },
  );
  assert.ok(!isWireError(next));
  b.input(next);
  assert.ok(
    shared.subarray(40).every((x) => x === 0xaa),
    "bytes after the seed view are untouched",
  );
  assert.ok(
    neighbour.every((x) => x === 0xbb),
    "the buffer allocated after the imported seed is untouched",
  );
  const conn = b.lookup(tuple.localAddr, 80, tuple.remoteAddr, tuple.remotePort)!;
  assert.equal(conn.seed!.length, 52);
});
