// Leaving shadow mode after a keep-alive clone (Socket Cloning): the clone's segments
// acknowledged the request it answered, so the original must not repeat that ACK (a
// duplicate ACK to the client, one wasted packet per cloned response); bytes that arrived in
// shadow mode (a pipelined request) are still acknowledged, once. Packet level with the
// Harness, then whole connections on the virtual network with seeded loss.

import { test } from "node:test";
import { CLONE_DEFAULTS } from "./stack.js";
import assert from "node:assert/strict";
import { TcpConnection } from "./connection.js";
import { exportState, importState } from "./state.js";
import { TcpServer, connectTcp, type TcpSocket } from "./socket.js";
import { VirtualNet, type LinkImpairment } from "./sim.js";
import { gsoSegment } from "./gso.js";
import { Harness, L1, R1, TCP_ACK, TCP_FIN, TCP_PSH, pattern } from "./testing.js";
import { parseIpv4 } from "../wire/ipv4.js";
import { TCP_RST, TCP_SYN, parseTcp } from "../wire/tcp.js";
import { isWireError } from "../wire/error.js";
import { seqGe, seqGt } from "./seq.js";

const CFG = { rcvBufSize: 1 << 20 };
const REQ_B = "GET /b HTTP/1.1\r\n\r\n";
/** Response start (snd_nxt at export) and the end of request b (rcv_nxt at export). */
const START = L1 + 5000;
const RCV = R1 + 38;

/** Answered request a; request b arrived and was read, its ACK still delayed (t = 20). */
function original(): Harness {
  const h = new Harness({ cfg: CFG }).established({ syn: { options: { mss: 1460, wscale: 7 } } });
  h.now = 5;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_PSH, payload: "GET /a HTTP/1.1\r\n\r\n" });
  h.read();
  h.now = 10;
  h.write(pattern(5000));
  h.now = 20;
  h.input({ seq: R1 + 19, ack: START, flags: TCP_ACK, window: 500 });
  h.input({ seq: R1 + 19, ack: START, flags: TCP_ACK | TCP_PSH, window: 500, payload: REQ_B });
  assert.equal(h.read(), REQ_B);
  h.take();
  assert.equal(h.conn.rcv.lastAckSent, R1 + 19, "request b not acknowledged yet");
  return h;
}

/** The original in shadow mode and its clone, which has sent a 3000-byte response. */
function cloned(): { orig: Harness; clone: Harness } {
  const orig = original();
  const snap = exportState(orig.conn, orig.now);
  orig.conn.setShadow(true, orig.now);
  const clone = new Harness({ cfg: CFG });
  const conn = TcpConnection.restore(clone.env, snap, orig.now);
  conn.setClone({ ...CLONE_DEFAULTS, finWithLastSegment: false });
  clone.attach(conn, orig.now);
  clone.conn.send(pattern(3000, 5), clone.now);
  clone.close();
  const segs = clone.take();
  assert.equal(segs.length, 3);
  for (const s of segs) assert.equal(s.ack, RCV, "every clone segment acknowledges request b");
  return { orig, clone };
}

test("keep-alive clone done: the original leaves shadow mode without repeating the clone's ACK", () => {
  const { orig, clone } = cloned();
  orig.now = clone.now = 30;
  for (const h of [orig, clone]) h.input({ seq: RCV, ack: START + 3000, flags: TCP_ACK, window: 500 });
  assert.equal(clone.conn.closeReason, "dropped");
  orig.conn.setShadow(false, orig.now);
  orig.dispatch();
  orig.advance(5000);
  orig.expectNothing("the client has ack " + RCV + " from the clone: no pure ACK repeats it");
  // The connection carries on: the next response goes out as usual.
  orig.input({ seq: RCV, ack: START + 3000, flags: TCP_ACK | TCP_PSH, window: 500, payload: "GET /c" });
  orig.write("response c");
  orig.expect([{ seq: START + 3000, ack: RCV + 6, flags: "PSH|ACK", payload: "response c" }]);
});

test("a request pipelined during the clone is acknowledged once: by the response, or one delayed ACK", () => {
  for (const respond of [true, false]) {
    const { orig } = cloned();
    orig.now = 30;
    orig.input({ seq: RCV, ack: START + 1460, flags: TCP_ACK | TCP_PSH, window: 500, payload: "GET /c" });
    orig.input({ seq: RCV + 6, ack: START + 3000, flags: TCP_ACK, window: 500 });
    orig.expectNothing("shadow mode");
    orig.conn.setShadow(false, orig.now);
    orig.dispatch();
    if (respond) {
      orig.write("response c");
      orig.expect([{ ack: RCV + 6, flags: "PSH|ACK", payload: "response c" }], "the response carries it");
      orig.input({ seq: RCV + 6, ack: START + 3010, flags: TCP_ACK, window: 500 });
      orig.advance(5000);
      orig.expectNothing();
    } else {
      orig.advance(5000);
      const out = orig.takeTimed();
      assert.deepEqual(
        out.map((e) => [e.at, e.seg.seq, e.seg.ack, e.seg.flags, e.seg.len]),
        [[30 + orig.cfg.delayedAck, START + 3000, RCV + 6, "ACK", 0]],
        "one delayed ACK for the bytes the clone may not have acknowledged",
      );
    }
  }
});

test("the completing ACK on a retransmitted pipelined request: the stack drops it, leaving shadow catches up", () => {
  // Seen at 5% loss: the client's pure ACKs of the response's end were lost; its next
  // segment was a retransmission of the pipelined request (the first copy had arrived, in
  // shadow mode, unacknowledged), carrying that ACK. An old duplicate fails the sequence
  // check before its ACK is read, while the router counted the ACK and ended the clone: the
  // next response went out inside the clone's.
  const { orig } = cloned();
  orig.now = 30;
  orig.input({ seq: RCV, ack: START + 1460, flags: TCP_ACK | TCP_PSH, window: 500, payload: "GET /c" });
  orig.input({ seq: RCV, ack: START + 3000, flags: TCP_ACK | TCP_PSH, window: 500, payload: "GET /c" });
  assert.equal(orig.conn.sndUna, START + 1460, "the old duplicate was dropped before its ACK was read");
  assert.equal(orig.env.drops["out-of-window"], 1);
  orig.conn.setShadow(false, orig.now, START + 3000);
  assert.equal(orig.conn.sndUna, START + 3000);
  assert.equal(orig.conn.sndMax, START + 3000);
  orig.dispatch();
  orig.write("response c");
  const out = orig.take();
  assert.deepEqual(
    out.filter((e) => e.len > 0).map((e) => [e.seq, e.ack, e.payload]),
    [[START + 3000, RCV + 6, "response c"]],
    "the next response starts where the clone's ended",
  );
  // Nothing below what the client acknowledged is ever sent again.
  for (const e of out) assert.ok(seqGe(e.seq, START + 3000), `segment at ${e.seq - START}`);
  // An ACK point the stack already passed changes nothing.
  const again = cloned().orig;
  again.input({ seq: RCV, ack: START + 3000, flags: TCP_ACK, window: 500 });
  again.conn.setShadow(false, again.now, START + 1460);
  assert.equal(again.conn.sndUna, START + 3000);
});

test("leaving shadow mode still gives the client every ACK it needs", () => {
  // The clone never reached the client (refused, timed out): request b is owed.
  {
    const orig = original();
    orig.conn.setShadow(true, orig.now);
    orig.now = 100;
    orig.conn.setShadow(false, orig.now);
    orig.advance(1000);
    orig.expect([{ seq: START, ack: RCV, flags: "ACK" }], "request b acknowledged");
  }
  // The client retransmitted the pipelined request, a FIN, or out-of-order data: at once.
  const cases: Array<[string, (h: Harness) => void, number]> = [
    [
      "retransmission",
      (h) => {
        const seg = { seq: RCV, ack: START + 3000, flags: TCP_ACK | TCP_PSH, window: 500, payload: "GET /c" };
        h.input(seg);
        h.input(seg);
      },
      RCV + 6,
    ],
    ["FIN", (h) => h.input({ seq: RCV, ack: START + 3000, flags: TCP_ACK | TCP_FIN, window: 500 }), RCV + 1],
    [
      "out of order",
      (h) =>
        h.input({ seq: RCV + 6, ack: START + 3000, flags: TCP_ACK | TCP_PSH, window: 500, payload: "x" }),
      RCV,
    ],
  ];
  for (const [name, clientSends, ack] of cases) {
    const { orig } = cloned();
    orig.now = 30;
    clientSends(orig);
    orig.conn.setShadow(false, orig.now);
    orig.dispatch();
    orig.expect([{ seq: START + 3000, ack, flags: "ACK" }], name);
    orig.advance(5000);
    orig.expectNothing(name);
  }
});

// ------------------------------------------------------------------ over the network

const VIP = "198.18.100.1";
const CLIENT = "198.18.0.2";
const REQ1 = "GET /1 HTTP/1.1\r\n\r\n";
const REQ2 = "GET /2 HTTP/1.1\r\n\r\n";

interface Rx {
  at: number;
  ack: number;
  edge: number;
  flags: number;
  len: number;
}

/**
 * Request 1 is cloned from A to B (keep-alive: the clone vanishes once its response is
 * acknowledged, and A leaves shadow mode on the completing ACK, as the engine does); request
 * 2, sent by the client after response 1 or pipelined into it, is served by A. "mirror": B
 * gets every client packet (it acknowledges a pipelined request itself); "acks": B gets only
 * packets without data (only A can acknowledge it).
 */
async function keepAlive(
  seed: number,
  o: { pipelined: boolean; relay: "mirror" | "acks"; impair?: LinkImpairment },
): Promise<{ got: Buffer; want: Buffer; rx: Rx[]; clientSent: Map<number, number> }> {
  const net = new VirtualNet(seed);
  const rx: Rx[] = [];
  const clientSent = new Map<number, number>();
  const client = net.addStack([CLIENT], {
    output: (p, gso) => {
      for (const pkt of gso === 0 ? [p] : gsoSegment(p, gso)) {
        const t = tcpOf(pkt);
        if (t.payload.length > 0) clientSent.set(t.seq, (clientSent.get(t.seq) ?? 0) + 1);
        net.send(pkt);
      }
    },
  });
  const rawClientReceive = client.receive.bind(client);
  client.receive = (p: Uint8Array) => {
    const t = tcpOf(p);
    rx.push({
      at: net.now,
      ack: t.ack,
      edge: (t.ack + t.window * 2 ** c.conn.snd.wscale) >>> 0,
      flags: t.flags,
      len: t.payload.length,
    });
    rawClientReceive(p);
  };
  const a = net.addStack([VIP]);
  const b = net.addStack([VIP]);
  new TcpServer(b).listen(80);
  net.route(VIP, [a]);
  const response1 = Buffer.from(pattern(30_000, seed));
  const response2 = Buffer.from(pattern(2000, seed + 1));
  let orig: TcpSocket | undefined;
  let clone: TcpSocket | undefined;
  let end1 = -1;
  let inbox = "";
  let served2 = false;
  const serve2 = (): void => {
    if (served2 || orig === undefined || orig.conn.shadow || !inbox.includes(REQ2)) return;
    served2 = true;
    orig.write(response2);
  };
  // Client packets reach A's stack first, then the clone if the relay rule lets them.
  const rawA = a.receive.bind(a);
  a.receive = (p: Uint8Array) => {
    rawA(p);
    const t = tcpOf(p);
    const toClone =
      clone !== undefined &&
      b.lookup(parseIpv4Ok(p).dst, t.dstPort, parseIpv4Ok(p).src, t.srcPort) !== undefined;
    if (toClone && (o.relay === "mirror" || t.payload.length === 0)) {
      b.receive(p);
      b.flush();
    }
    if (orig !== undefined && orig.conn.shadow && seqGe(orig.conn.sndUna, end1)) {
      orig.setShadow(false); // completion
      setImmediate(serve2);
    }
  };
  new TcpServer(a, {}, (s) => {
    orig = s;
    s.on("data", (d: Buffer) => {
      inbox += d.toString("latin1");
      if (clone === undefined && inbox.startsWith(REQ1)) {
        const state = exportState(s);
        s.setShadow(true);
        end1 = (state.sndNxt + response1.length) >>> 0;
        clone = importState(b, state, Buffer.from(REQ1), { clone: {} });
        clone.once("data", () => clone!.end(response1));
      }
      serve2();
    });
  }).listen(80);
  net.setImpairment(o.impair ?? {});
  const c = connectTcp(client, { host: VIP, port: 80, noDelay: true });
  const got: Buffer[] = [];
  let received = 0;
  c.on("error", () => undefined);
  c.on("data", (d: Buffer) => {
    got.push(d);
    received += d.length;
    if (o.pipelined && received === d.length) c.write(REQ2); // into response 1
    if (!o.pipelined && received === response1.length) c.write(REQ2);
  });
  c.write(REQ1);
  const want = Buffer.concat([response1, response2]);
  assert.ok(
    await net.run(() => received >= want.length && orig !== undefined && orig.conn.flight === 0, 120_000),
    `seed ${seed}: both responses`,
  );
  await net.advance(1000); // any late ACK would show now
  assert.equal(b.connections, 0, "the clone vanished");
  return { got: Buffer.concat(got), want, rx, clientSent };
}

function parseIpv4Ok(p: Uint8Array) {
  const ip = parseIpv4(p);
  assert.ok(!isWireError(ip));
  return ip;
}

function tcpOf(p: Uint8Array) {
  const ip = parseIpv4Ok(p);
  const t = parseTcp(ip.payload, ip.src, ip.dst);
  assert.ok(!isWireError(t));
  return t;
}

function isPureAck(r: Rx): boolean {
  return r.len === 0 && (r.flags & (TCP_SYN | TCP_FIN | TCP_RST)) === 0;
}

/** Pure ACKs the client got that told it nothing new: no new ACK, no new window edge. */
function repeatedAcks(rx: Rx[]): Rx[] {
  const out: Rx[] = [];
  let ack: number | undefined;
  let edge: number | undefined;
  for (const r of rx) {
    if (isPureAck(r) && ack !== undefined && edge !== undefined && !seqGt(r.ack, ack) && !seqGt(r.edge, edge))
      out.push(r);
    if (r.flags & TCP_SYN) continue;
    if (ack === undefined || seqGt(r.ack, ack)) ack = r.ack;
    if (edge === undefined || seqGt(r.edge, edge)) edge = r.edge;
  }
  return out;
}

for (const pipelined of [false, true]) {
  for (const relay of ["mirror", "acks"] as const) {
    test(`on the network: after a keep-alive clone the client gets no repeated ACK (${pipelined ? "pipelined" : "sequential"} request 2, clone sees ${relay})`, async () => {
      const r = await keepAlive(7, { pipelined, relay });
      assert.ok(r.got.equals(r.want), "byte-exact");
      assert.deepEqual(repeatedAcks(r.rx), [], "no pure ACK repeating one the client had");
      // As from a plain server answering both: every ACK rides on response data.
      assert.deepEqual(r.rx.filter(isPureAck), [], "no pure ACK at all after the handshake");
      for (const [seq, n] of r.clientSent)
        assert.equal(n, 1, `client data at ${seq} sent once (acknowledged in time)`);
    });
  }
}

test("on the network: keep-alive clones stay byte-exact under seeded loss, duplication and reordering", async () => {
  for (let seed = 1; seed <= 12; seed++) {
    const loss = [0.01, 0.05][seed % 2];
    const r = await keepAlive(seed, {
      pipelined: seed % 3 !== 0,
      relay: seed % 4 < 2 ? "mirror" : "acks",
      impair: { loss, duplicate: 0.02, reorder: 0.05, reorderDelay: 4, delay: 1, jitter: 0.5 },
    });
    assert.ok(r.got.equals(r.want), `seed ${seed}: byte-exact`);
  }
});
