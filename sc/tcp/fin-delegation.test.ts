// FIN delegation (Socket Cloning, the last response on a connection): the clone sends FIN
// with its last data segment, as a plain server closing would, and the original's shadow
// follows (delegateFin). Packet level under virtual time: three connections continue the same
// exported state — the original in shadow mode, the clone, and a plain reference that serves
// and closes itself — and get the same client segments; the client must see from the clone
// exactly what it sees from the plain one. Then whole connections on the virtual network,
// with seeded loss, duplication and reordering.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TcpConnection } from "./connection.js";
import { exportState, importState, type TcpExportedState } from "./state.js";
import { TcpServer, connectTcp, type TcpSocket } from "./socket.js";
import { VirtualNet, type LinkImpairment } from "./sim.js";
import { gsoSegment } from "./gso.js";
import { CLONE_DEFAULTS, type TcpStack } from "./stack.js";
import { Harness, L1, R1, TCP_ACK, TCP_FIN, TCP_PSH, pattern, type OutSeg, type Seg } from "./testing.js";
import { parseIpv4 } from "../wire/ipv4.js";
import { TCP_RST, parseTcp } from "../wire/tcp.js";
import { isWireError } from "../wire/error.js";

const CFG = { rcvBufSize: 1 << 20 };

/** A connection that answered one request and is quiescent (t = 20, request 2 read). */
function busyConnection(): Harness {
  const h = new Harness({ cfg: CFG }).established({ syn: { options: { mss: 1460, wscale: 7 } } });
  h.now = 5;
  h.input({ seq: R1, ack: L1, flags: TCP_ACK | TCP_PSH, payload: "GET /a HTTP/1.1\r\n\r\n" });
  h.read();
  h.now = 10;
  h.write(pattern(5000));
  h.now = 20;
  h.input({ seq: R1 + 19, ack: L1 + 5000, flags: TCP_ACK, window: 500 });
  h.take();
  h.input({
    seq: R1 + 19,
    ack: L1 + 5000,
    flags: TCP_ACK | TCP_PSH,
    window: 500,
    payload: "GET /b HTTP/1.0\r\n\r\n",
  });
  h.read();
  h.take();
  return h;
}

/** Response start (the original's snd_nxt at export) and the request's end. */
const START = L1 + 5000;
const RCV = R1 + 38;

interface Scene {
  snap: TcpExportedState;
  /** The original, in shadow mode from the export on. */
  orig: Harness;
  /** The clone, imported with finWithLastSegment. */
  clone: Harness;
  /** Reference: the same state served and closed by a plain connection. */
  plain: Harness;
  /** A client segment reaches all three (the router forwards it to the clone). */
  input(s: Seg): void;
  advanceTo(t: number): void;
}

function scene(): Scene {
  const orig = busyConnection();
  const snap = exportState(orig.conn, orig.now);
  assert.equal(snap.sndNxt, START);
  orig.conn.setShadow(true, orig.now);
  const restored = (clone: boolean): Harness => {
    const h = new Harness({ cfg: CFG });
    const conn = TcpConnection.restore(h.env, snap, orig.now);
    if (clone) conn.setClone({ ...CLONE_DEFAULTS, finWithLastSegment: true });
    return h.attach(conn, orig.now);
  };
  const clone = restored(true);
  const plain = restored(false);
  const all = [orig, clone, plain];
  return {
    snap,
    orig,
    clone,
    plain,
    input: (s) => all.forEach((h) => h.input(s)),
    advanceTo: (t) => all.forEach((h) => h.advanceTo(t)),
  };
}

/** The application writes the whole response and closes in the same tick. */
function respondAndClose(h: Harness, data: Uint8Array): void {
  h.conn.send(data, h.now);
  h.close();
}

/** What the client can tell apart: everything but the window (the clone caps its window at
 *  the original's edge, which a plain server's may exceed). */
function onWire(segs: OutSeg[]): Array<Omit<OutSeg, "window">> {
  return segs.map(({ window: _w, ...rest }) => rest);
}

test("FIN delegation: the clone sends data+FIN in one segment, as a plain close does; the shadow counts the FIN", () => {
  const s = scene();
  const resp = pattern(3000, 7);
  respondAndClose(s.plain, resp);
  respondAndClose(s.clone, resp);
  const fromPlain = s.plain.take();
  const fromClone = s.clone.take();
  assert.deepEqual(onWire(fromClone), onWire(fromPlain));
  assert.equal(fromClone.length, 3);
  assert.deepEqual(fromClone[2], { ...fromClone[2], seq: START + 2920, flags: "FIN|PSH|ACK", len: 80 });
  assert.equal(s.clone.conn.state, "FIN-WAIT-1");
  // The SC-ACK tells the original where the response ends.
  assert.equal(s.orig.conn.delegateFin(START + 3000, s.orig.now), true);
  assert.equal(s.orig.conn.state, "FIN-WAIT-1");
  assert.equal(s.orig.conn.cloning.finDelegated, true);
  s.orig.close();
  assert.equal(s.orig.conn.snd.finSeq, START + 3000, "close() after delegation changes nothing");
  s.orig.advance(5000);
  s.orig.expectNothing("the shadow sends nothing, not even its FIN");
});

for (const order of ["in the segment that acknowledges the clone's FIN", "later"] as const) {
  test(`FIN delegation: the client's FIN ${order} is acknowledged by the original, as a plain server would`, () => {
    const s = scene();
    const resp = pattern(3000, 7);
    respondAndClose(s.plain, resp);
    respondAndClose(s.clone, resp);
    s.plain.take();
    s.clone.take();
    s.orig.conn.delegateFin(START + 3000, s.orig.now);
    s.orig.now = s.clone.now = s.plain.now = 30;
    const finEnd = START + 3001;
    if (order === "later") {
      s.input({ seq: RCV, ack: finEnd, flags: TCP_ACK, window: 500 });
      for (const h of [s.orig, s.clone, s.plain]) h.expectNothing("nothing answers the ACK");
      assert.equal(s.plain.conn.state, "FIN-WAIT-2");
      assert.equal(s.orig.conn.state, "FIN-WAIT-2");
      assert.equal(s.orig.conn.cloning.shadow, false, "nothing left to shadow once the FIN is acknowledged");
      s.orig.now = s.clone.now = s.plain.now = 35;
    }
    s.input({ seq: RCV, ack: finEnd, flags: TCP_ACK | TCP_FIN, window: 500 });
    const fromPlain = s.plain.take();
    assert.deepEqual(fromPlain, [
      { seq: finEnd, ack: RCV + 1, flags: "ACK", window: fromPlain[0].window, len: 0 },
    ]);
    assert.deepEqual(onWire(s.orig.take()), onWire(fromPlain), "the original sends that ACK");
    s.clone.expectNothing("the clone never answers the client's FIN");
    assert.equal(s.clone.conn.state, "CLOSED");
    assert.equal(s.clone.conn.closeReason, "dropped");
    assert.equal(s.orig.conn.state, "TIME-WAIT");
    assert.equal(s.orig.conn.closeReason, "closed");
    // A retransmitted FIN (our ACK was lost) is answered again, until TIME-WAIT ends.
    s.orig.now = s.plain.now = 200;
    s.orig.input({ seq: RCV, ack: finEnd, flags: TCP_ACK | TCP_FIN, window: 500 });
    s.plain.input({ seq: RCV, ack: finEnd, flags: TCP_ACK | TCP_FIN, window: 500 });
    assert.deepEqual(onWire(s.orig.take()), onWire(s.plain.take()));
    s.advanceTo(5000);
    assert.equal(s.orig.conn.state, "CLOSED");
    for (const h of [s.orig, s.clone]) assert.ok(!h.log.some((e) => e.seg.flags.includes("RST")), "no RST");
  });
}

test("FIN delegation: the client closes first (simultaneous close): the clone acknowledges its FIN, all end as a plain server", () => {
  const s = scene();
  const resp = pattern(2000, 3);
  respondAndClose(s.plain, resp);
  respondAndClose(s.clone, resp);
  s.plain.take();
  s.clone.take();
  s.orig.conn.delegateFin(START + 2000, s.orig.now);
  // The client's FIN crosses our data+FIN: it acknowledges only the first segment.
  s.input({ seq: RCV, ack: START + 1460, flags: TCP_ACK | TCP_FIN, window: 500 });
  const fromPlain = s.plain.take();
  assert.equal(s.plain.conn.state, "CLOSING");
  assert.deepEqual(onWire(s.clone.take()), onWire(fromPlain), "the clone answers it, as the server");
  assert.equal(s.clone.conn.state, "CLOSING");
  s.orig.expectNothing();
  assert.equal(s.orig.conn.state, "CLOSING");
  s.input({ seq: RCV + 1, ack: START + 2001, flags: TCP_ACK, window: 500 });
  for (const h of [s.orig, s.clone, s.plain]) h.expectNothing();
  assert.equal(s.plain.conn.state, "TIME-WAIT");
  assert.equal(s.orig.conn.state, "TIME-WAIT");
  assert.equal(s.orig.conn.cloning.shadow, false);
  assert.equal(s.clone.conn.closeReason, "dropped");
});

test("FIN delegation: the client's FIN before the response (half-close): LAST-ACK on both sides, CLOSED on its ACK", () => {
  const s = scene();
  s.input({ seq: RCV, ack: START, flags: TCP_ACK | TCP_FIN, window: 500 });
  assert.deepEqual(onWire(s.clone.take()), onWire(s.plain.take()));
  s.orig.expectNothing();
  assert.equal(s.orig.conn.state, "CLOSE-WAIT");
  assert.equal(s.clone.conn.state, "CLOSE-WAIT");
  assert.equal(
    s.clone.conn.peerFinForApp,
    false,
    "the clone's reader does not end: the original owns the close",
  );
  assert.equal(s.orig.conn.peerFinForApp, true);
  const resp = pattern(500, 9);
  respondAndClose(s.plain, resp);
  respondAndClose(s.clone, resp);
  const fromPlain = s.plain.take();
  assert.deepEqual(onWire(s.clone.take()), onWire(fromPlain));
  assert.equal(fromPlain[0].flags, "FIN|PSH|ACK");
  s.orig.conn.delegateFin(START + 500, s.orig.now);
  assert.equal(s.orig.conn.state, "LAST-ACK");
  s.input({ seq: RCV + 1, ack: START + 501, flags: TCP_ACK, window: 500 });
  assert.equal(s.plain.conn.state, "CLOSED");
  assert.equal(s.orig.conn.state, "CLOSED");
  assert.equal(s.orig.conn.closeReason, "closed");
  assert.equal(s.clone.conn.closeReason, "dropped");
  for (const h of [s.orig, s.clone, s.plain]) h.expectNothing();
});

test("FIN delegation: a lost data+FIN segment is retransmitted by the clone, never by the shadow", () => {
  const s = scene();
  const resp = pattern(3000, 7);
  respondAndClose(s.plain, resp);
  respondAndClose(s.clone, resp);
  s.plain.take();
  s.clone.take();
  s.orig.conn.delegateFin(START + 3000, s.orig.now);
  // The last segment (data+FIN) is lost: the client acknowledges the first two.
  s.input({ seq: RCV, ack: START + 2920, flags: TCP_ACK, window: 500 });
  const rto = s.plain.conn.timers.rtxAt;
  assert.equal(s.clone.conn.timers.rtxAt, rto);
  s.advanceTo(rto);
  const fromPlain = s.plain.take();
  assert.deepEqual(
    fromPlain.map((x) => [x.seq, x.flags, x.len]),
    [[START + 2920, "FIN|PSH|ACK", 80]],
  );
  assert.deepEqual(onWire(s.clone.take()), onWire(fromPlain));
  s.orig.expectNothing();
  s.input({ seq: RCV, ack: START + 3001, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.state, "FIN-WAIT-2");
  assert.equal(s.clone.conn.closeReason, "dropped");
  s.orig.advance(1000);
  s.orig.expectNothing();
});

test("FIN delegation: the client's ACK of the FIN lost on the way to the clone only: it retransmits, the duplicate ACK ends it", () => {
  const s = scene();
  respondAndClose(s.clone, pattern(1000, 1));
  s.clone.take();
  s.orig.conn.delegateFin(START + 1000, s.orig.now);
  s.orig.input({ seq: RCV, ack: START + 1001, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.state, "FIN-WAIT-2");
  s.orig.expectNothing();
  s.clone.advanceTo(s.clone.conn.timers.rtxAt);
  assert.deepEqual(
    s.clone.take().map((x) => [x.seq, x.flags, x.len]),
    [[START, "FIN|PSH|ACK", 1000]],
  );
  // The client answers the old duplicate with a duplicate ACK; both nodes see it.
  s.orig.input({ seq: RCV, ack: START + 1001, flags: TCP_ACK, window: 500 });
  s.clone.input({ seq: RCV, ack: START + 1001, flags: TCP_ACK, window: 500 });
  s.orig.expectNothing();
  s.clone.expectNothing();
  assert.equal(s.clone.conn.closeReason, "dropped");
  assert.equal(s.orig.conn.state, "FIN-WAIT-2");
});

test("FIN delegation: the client's ACK of the FIN before the SC-ACK: delegateFin catches up", () => {
  for (const clientFin of [false, true]) {
    const s = scene();
    s.orig.input({ seq: RCV, ack: START + 700, flags: TCP_ACK | (clientFin ? TCP_FIN : 0), window: 500 });
    s.orig.expectNothing();
    assert.equal(s.orig.conn.state, clientFin ? "CLOSE-WAIT" : "ESTABLISHED");
    assert.equal(s.orig.conn.delegateFin(START + 699, s.orig.now), true);
    assert.equal(s.orig.conn.cloning.shadow, false);
    s.orig.dispatch();
    if (clientFin) {
      assert.equal(s.orig.conn.state, "TIME-WAIT");
      s.orig.expect([{ seq: START + 700, ack: RCV + 1, flags: "ACK" }], "the client's FIN is answered");
    } else {
      assert.equal(s.orig.conn.state, "FIN-WAIT-2");
      s.orig.expectNothing();
      s.orig.input({ seq: RCV, ack: START + 700, flags: TCP_ACK | TCP_FIN, window: 500 });
      s.orig.expect([{ seq: START + 700, ack: RCV + 1, flags: "ACK" }]);
      assert.equal(s.orig.conn.state, "TIME-WAIT");
    }
  }
});

test("FIN delegation: the ACK of the clone's FIN missed by the stack; leaving shadow with it ends as that ACK would", () => {
  const s = scene();
  assert.equal(s.orig.conn.delegateFin(START + 699, s.orig.now), true);
  s.orig.input({ seq: RCV, ack: START + 300, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.state, "FIN-WAIT-1");
  s.orig.conn.setShadow(false, s.orig.now, START + 700);
  assert.equal(s.orig.conn.cloning.shadow, false);
  assert.equal(s.orig.conn.snd.una, START + 700);
  assert.equal(s.orig.conn.state, "FIN-WAIT-2");
  s.orig.dispatch();
  s.orig.expectNothing("no FIN of its own, no ACK the clone gave");
  s.orig.input({ seq: RCV, ack: START + 700, flags: TCP_ACK | TCP_FIN, window: 500 });
  s.orig.expect([{ seq: START + 700, ack: RCV + 1, flags: "ACK" }]);
  assert.equal(s.orig.conn.state, "TIME-WAIT");
  // Beyond the FIN is nothing the client can have acknowledged: ignored.
  const t = scene();
  assert.equal(t.orig.conn.delegateFin(START + 699, t.orig.now), true);
  t.orig.conn.setShadow(false, t.orig.now, START + 900);
  assert.equal(t.orig.conn.snd.una, START, "no jump past the FIN");
});

test("FIN delegation: delegateFin refuses what it cannot follow; nothing is acknowledged beyond the FIN", () => {
  const s = scene();
  s.orig.conn.setShadow(false, s.orig.now);
  assert.equal(s.orig.conn.delegateFin(START + 100, s.orig.now), false, "not in shadow mode");
  s.orig.conn.setShadow(true, s.orig.now);
  s.orig.input({ seq: RCV, ack: START + 500, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.delegateFin(START + 100, s.orig.now), false, "acknowledged beyond it");
  assert.equal(s.orig.conn.state, "ESTABLISHED");
  assert.equal(s.orig.conn.delegateFin(START + 1000, s.orig.now), true);
  assert.equal(s.orig.conn.delegateFin(START + 1000, s.orig.now), false, "only once");
  s.orig.input({ seq: RCV, ack: START + 1002, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.snd.una, START + 500, "an ACK beyond the FIN is dropped");
  assert.equal(s.orig.env.drops["ack-unsent"], 1);
  assert.equal(s.orig.conn.state, "FIN-WAIT-1");
});

test("FIN delegation: the clone fails mid-response; the original resumes and sends its own FIN at the response end", () => {
  const s = scene();
  const resp = pattern(10_000, 4);
  respondAndClose(s.clone, resp);
  s.clone.take();
  s.orig.conn.delegateFin(START + resp.length, s.orig.now);
  s.orig.input({ seq: RCV, ack: START + 2920, flags: TCP_ACK, window: 500 });
  // The clone's node dies. The original leaves shadow and sends the rest.
  s.orig.now = 500;
  s.orig.conn.setShadow(false, s.orig.now);
  s.orig.dispatch();
  // (No ACK: the clone's segments carried it; no FIN before the rest is queued.)
  s.orig.expectNothing();
  s.orig.conn.cloning.acceptAcksBeyondSent = true;
  assert.throws(() => s.orig.conn.send(pattern(7081), s.orig.now), RangeError, "never data beyond the FIN");
  s.orig.conn.send(resp.subarray(2920), s.orig.now);
  s.orig.dispatch();
  const out = s.orig.take();
  const last = out[out.length - 1];
  assert.equal(last.flags, "FIN|PSH|ACK");
  assert.equal(last.seq + last.len, START + resp.length);
  assert.equal(
    out.reduce((n, x) => n + x.len, 0),
    resp.length - 2920,
  );
  s.orig.input({ seq: RCV, ack: START + resp.length + 1, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.state, "FIN-WAIT-2");
});

test("FIN delegation: a resumed original takes the client's ACK of the dead clone's FIN before sending its own", () => {
  const s = scene();
  const resp = pattern(6000, 4);
  s.orig.conn.delegateFin(START + resp.length, s.orig.now);
  s.orig.input({ seq: RCV, ack: START + 1460, flags: TCP_ACK, window: 8 });
  s.orig.now = 500;
  s.orig.conn.setShadow(false, s.orig.now);
  s.orig.conn.cloning.acceptAcksBeyondSent = true;
  s.orig.conn.send(resp.subarray(1460), s.orig.now);
  s.orig.dispatch();
  s.orig.take(); // the peer's window (8 x 128) holds one segment
  assert.ok(s.orig.conn.snd.max < START + resp.length);
  // The clone's last segment (data+FIN) had reached the client before the clone died.
  s.orig.input({ seq: RCV, ack: START + resp.length + 1, flags: TCP_ACK, window: 500 });
  assert.equal(s.orig.conn.snd.una, START + resp.length + 1);
  assert.equal(s.orig.conn.state, "FIN-WAIT-2");
  assert.equal(s.orig.conn.txQueue.length, 0);
  s.orig.advance(5000);
  s.orig.expectNothing("nothing left to send, no FIN of its own");
});

// ------------------------------------------------------------------ over the network

const VIP = "198.18.100.1";
const CLIENT = "198.18.0.2";

interface Sent {
  from: "a" | "b" | "client";
  at: number;
  seq: number;
  ack: number;
  flags: number;
  len: number;
}

/** A stack whose packets are also recorded (who sent what). */
function tapped(net: VirtualNet, addr: string, who: Sent["from"], log: Sent[]): TcpStack {
  return net.addStack([addr], {
    output: (p, gso) => {
      for (const pkt of gso === 0 ? [p] : gsoSegment(p, gso)) {
        const ip = parseIpv4(pkt);
        assert.ok(!isWireError(ip));
        const t = parseTcp(ip.payload, ip.src, ip.dst);
        assert.ok(!isWireError(t));
        log.push({ from: who, at: net.now, seq: t.seq, ack: t.ack, flags: t.flags, len: t.payload.length });
        net.send(pkt);
      }
    },
  });
}

interface Outcome {
  body: Buffer;
  clientClose: string | undefined;
  log: Sent[];
  /** Index in `log` of the first packet after the response started (the clone's import). */
  logFrom: number;
  cloneClose: string | undefined;
  origConn: TcpConnection;
  /** The original's socket emitted 'finish' (its FIN, sent by whoever, was acknowledged). */
  origFinished: boolean;
  a: TcpStack;
  b: TcpStack;
}

/**
 * One HTTP/1.0-style exchange: the client sends a request and closes when the response
 * ends. "plain": the original serves and closes; "clone": the original clones to B with FIN
 * delegation, B answers and closes, the original follows in shadow mode.
 */
async function exchange(
  mode: "plain" | "clone",
  seed: number,
  size: number,
  impair: LinkImpairment = {},
): Promise<Outcome> {
  const net = new VirtualNet(seed);
  const log: Sent[] = [];
  const a = tapped(net, VIP, "a", log);
  const b = tapped(net, VIP, "b", log);
  const client = tapped(net, CLIENT, "client", log);
  net.route(VIP, [a]);
  new TcpServer(b, { allowHalfOpen: true }).listen(80);
  let orig: TcpSocket | undefined;
  let request = "";
  new TcpServer(a, { allowHalfOpen: true }, (s) => {
    orig = s;
    s.on("data", (d: Buffer) => (request += d.toString()));
  }).listen(80);
  const c = connectTcp(client, { host: VIP, port: 80 });
  const got: Buffer[] = [];
  let clientClose: string | undefined;
  c.on("data", (d: Buffer) => got.push(d));
  c.on("close", () => (clientClose = c.closeReason));
  c.on("error", () => undefined);
  c.write("GET /x HTTP/1.0\r\n\r\n");
  assert.ok(await net.run(() => request.length === 19, 60_000), "request at A");
  net.setImpairment(impair);
  const body = Buffer.from(pattern(size, seed));
  let cloneClose: string | undefined;
  const logFrom = log.length;
  if (mode === "plain") {
    orig!.end(body);
  } else {
    const state = exportState(orig!);
    orig!.setShadow(true);
    const clone = importState(b, state, Buffer.from(request), { clone: { finWithLastSegment: true } });
    clone.on("close", () => (cloneClose = clone.closeReason));
    clone.on("end", () => assert.fail("the clone's reader never ends"));
    net.route(VIP, [a, b]);
    // The Packet Router forwards client packets to the clone's node, which drops those for
    // connections it does not have (a forwarded packet never draws a RST).
    net.accept = (to, p) => {
      if (to !== b) return true;
      const ip = parseIpv4(p);
      if (isWireError(ip)) return false;
      const t = parseTcp(ip.payload, ip.src, ip.dst);
      return !isWireError(t) && b.lookup(ip.dst, t.dstPort, ip.src, t.srcPort) !== undefined;
    };
    clone.once("data", () => {
      clone.end(body);
      // The SC-ACK (response length) reaches the original a little later.
      setImmediate(() => {
        assert.equal(orig!.delegateFin((state.sndNxt + size) >>> 0), true);
        assert.equal(orig!.finDelegated, true);
        // The application's pipeline ends the connection: no second FIN.
        orig!.end();
      });
    });
  }
  let origFinished = false;
  orig!.once("finish", () => (origFinished = true));
  const origConn = orig!.conn;
  const cloneDone = () => mode === "plain" || cloneClose !== undefined;
  assert.ok(
    await net.run(() => clientClose !== undefined && origConn.isClosed() && cloneDone(), 120_000),
    `seed ${seed}: done`,
  );
  return { body: Buffer.concat(got), clientClose, log, logFrom, cloneClose, origConn, origFinished, a, b };
}

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

test("FIN delegation on the network: the client sees the same segments from a clone as from a plain close", async () => {
  for (const size of [100, 3000, 70_000]) {
    const plain = await exchange("plain", 21, size);
    const cloned = await exchange("clone", 21, size);
    assert.equal(sha(cloned.body), sha(plain.body));
    assert.equal(cloned.body.length, size);
    const toClient = (o: Outcome) =>
      o.log
        .filter((x) => x.from !== "client")
        .map(({ at, seq, ack, flags, len }) => ({ at, seq, ack, flags, len }));
    const fromClient = (o: Outcome) =>
      o.log
        .filter((x) => x.from === "client")
        .map(({ at, seq, ack, flags, len }) => ({ at, seq, ack, flags, len }));
    assert.deepEqual(toClient(cloned), toClient(plain), `size ${size}: server segments`);
    assert.deepEqual(fromClient(cloned), fromClient(plain), `size ${size}: client segments`);
    // Data and FIN in one segment, from B; the last ACK (of the client's FIN) from A.
    const fins = cloned.log.filter((x) => x.from !== "client" && x.flags & TCP_FIN);
    assert.equal(fins.length, 1);
    assert.equal(fins[0].from, "b");
    assert.ok(fins[0].len > 0, "FIN rides on the last data segment");
    const last = cloned.log.filter((x) => x.from !== "client").at(-1)!;
    assert.equal(last.from, "a");
    assert.equal(last.flags, TCP_ACK);
    assert.equal(cloned.clientClose, "closed");
    assert.equal(cloned.cloneClose, "dropped");
    assert.equal(cloned.origConn.closeReason, "closed");
    assert.equal(cloned.b.connections, 0);
    assert.equal(cloned.origFinished, true);
    assert.equal(plain.origFinished, true);
  }
});

test("FIN delegation on the network: byte-exact and clean closes under seeded loss, duplication and reordering", async () => {
  // FIN_SIM_SEEDS=<n> runs a longer sweep.
  const seeds = Number(process.env.FIN_SIM_SEEDS ?? 24);
  for (let seed = 1; seed <= seeds; seed++) {
    const loss = [0.01, 0.05, 0.1][seed % 3];
    const size = 1 + ((seed * 7919) % 90_000);
    const o = await exchange("clone", seed, size, {
      loss,
      duplicate: 0.02,
      reorder: 0.05,
      reorderDelay: 4,
      delay: 1,
      jitter: 0.5,
    });
    assert.equal(o.body.length, size, `seed ${seed}`);
    assert.equal(sha(o.body), sha(Buffer.from(pattern(size, seed))), `seed ${seed}`);
    assert.equal(o.clientClose, "closed", `seed ${seed}: the client closed cleanly`);
    assert.equal(o.origConn.closeReason, "closed", `seed ${seed}`);
    assert.ok(
      !o.log.some((x) => x.from !== "client" && x.flags & TCP_RST),
      `seed ${seed}: no RST from the VIP`,
    );
    assert.ok(
      !o.log.some((x) => x.from === "a" && x.flags & TCP_FIN),
      `seed ${seed}: the original never sends a FIN`,
    );
    assert.ok(
      !o.log
        .slice(o.logFrom)
        .some((x) => x.from === "a" && (x.len > 0 || x.seq !== (o.origConn.snd.finSeq + 1) >>> 0)),
      `seed ${seed}: the original only acknowledges, after the FIN`,
    );
    // The clone is gone: its FIN was acknowledged (or, if every later client segment to it
    // was lost, the client's RST to its retransmission ended it silently).
    assert.ok(o.cloneClose === "dropped" || o.cloneClose === "reset", `seed ${seed}: ${o.cloneClose}`);
    if (process.env.FIN_SIM_SEEDS !== undefined) console.log(`seed ${seed}: clone ${o.cloneClose}`);
    assert.equal(o.b.connections, 0);
    assert.equal(o.origFinished, true);
  }
});

test("a clone never resets, not even on abort()", () => {
  const s = scene();
  s.clone.conn.send(pattern(100), s.clone.now);
  s.clone.dispatch();
  s.clone.take();
  s.clone.conn.abort();
  s.clone.dispatch();
  s.clone.expectNothing("the connection belongs to the original");
  assert.equal(s.clone.conn.state, "CLOSED");
});
