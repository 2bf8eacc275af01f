import { test } from "node:test";
import assert from "node:assert/strict";
import { newTcpPeek, PacketRouter, peekTcp, type TcpPeek } from "./router.js";
import { encodeIpv4Tcp, TCP_ACK, TCP_FIN, TCP_RST, type TcpOptions } from "../wire/tcp.js";
import { ipv4FromString } from "../wire/addr.js";
import { isWireError } from "../wire/error.js";

const CLIENT = ipv4FromString("198.18.0.101") as number;
const VIP = ipv4FromString("198.18.100.1") as number;
const tuple = { remoteAddr: CLIENT, remotePort: 40000, localAddr: VIP, localPort: 80 };

function packet(
  ack: number,
  flags = TCP_ACK,
  srcPort = 40000,
  payload = new Uint8Array(0),
  more: { window?: number; options?: TcpOptions } = {},
): Uint8Array {
  const p = encodeIpv4Tcp(
    { src: CLIENT, dst: VIP, ttl: 64, tos: 0, id: 1, dontFrag: true },
    {
      srcPort,
      dstPort: 80,
      seq: 1000,
      ack,
      flags,
      window: more.window ?? 500,
      urgent: 0,
      options: more.options ?? {},
      payload,
    },
  );
  assert.ok(!isWireError(p));
  return p;
}

function peek(p: Uint8Array): TcpPeek {
  const pk = peekTcp(p, newTcpPeek());
  assert.ok(pk);
  return pk;
}

test("peekTcp reads the tuple, flags and ack, and refuses what is not IPv4+TCP", () => {
  const pk = peek(packet(0xfffffff0, TCP_ACK | TCP_FIN, 40001));
  assert.deepEqual(pk, {
    src: CLIENT,
    dst: VIP,
    srcPort: 40001,
    dstPort: 80,
    seq: 1000,
    ack: 0xfffffff0,
    flags: TCP_ACK | TCP_FIN,
    window: 500,
    payloadLength: 0,
    sack: false,
  });
  assert.equal(peek(packet(1, TCP_ACK, 40000, new Uint8Array(77))).payloadLength, 77);
  const scratch = newTcpPeek();
  const p = packet(1);
  assert.equal(peekTcp(p.subarray(0, 39), scratch), undefined);
  const udp = Uint8Array.from(p);
  udp[9] = 17;
  assert.equal(peekTcp(udp, scratch), undefined);
  const frag = Uint8Array.from(p);
  frag[7] = 8; // fragment offset 64
  assert.equal(peekTcp(frag, scratch), undefined);
  const v6 = Uint8Array.from(p);
  v6[0] = 0x65;
  assert.equal(peekTcp(v6, scratch), undefined);
});

test("packets of a cloned connection are forwarded; others stay local", () => {
  const r = new PacketRouter<string>();
  r.add(tuple, "node2", 5000, 0);
  assert.equal(r.route(peek(packet(5000)), 1).verdict, "forward");
  assert.equal(r.route(peek(packet(5000, TCP_ACK, 40001)), 1).verdict, "local");
  assert.equal(r.forwarded, 1);
});

test("completion comes when the client has acknowledged start + length, across the wrap", () => {
  const r = new PacketRouter<string>();
  const start = 0xffffff00;
  const e = r.add(tuple, "node2", start, 0);
  r.route(peek(packet(start)), 1);
  assert.equal(r.isComplete(e), false, "pending: length unknown");
  r.activate(e, 1000, 2);
  assert.equal(r.isComplete(e), false);
  r.route(peek(packet((start + 600) >>> 0)), 3);
  assert.equal(e.ackedBytes, 600);
  assert.equal(r.isComplete(e), false);
  // An old (reordered) ACK does not move progress back.
  r.route(peek(packet((start + 100) >>> 0)), 4);
  assert.equal(e.ackedBytes, 600);
  assert.equal(r.route(peek(packet((start + 1000) >>> 0)), 5).verdict, "complete");
  assert.equal(r.isComplete(e), true);
  r.complete(e);
  assert.equal(r.size, 0, "routing ends: the clone hears of it on the SC link");
  assert.equal(r.completed, 1);
});

test("after completion nothing more reaches the clone (no linger: DONE replaces relayed ACKs)", () => {
  const r = new PacketRouter<string>();
  const e = r.add(tuple, "node2", 0, 0);
  r.activate(e, 10, 0);
  assert.equal(r.route(peek(packet(10)), 1).verdict, "complete");
  r.complete(e);
  assert.equal(r.route(peek(packet(10)), 2).verdict, "local");
  assert.equal(r.route(peek(packet(10, TCP_RST)), 2).verdict, "local");
  assert.equal(r.pollAt(), Infinity, "no timer left behind");
  // The next clone of the connection starts afresh.
  const f = r.add(tuple, "node3", 10, 3);
  assert.equal(r.route(peek(packet(10)), 4).entry, f);
});

test("the clone gets only what its sending side needs", () => {
  const r = new PacketRouter<string>();
  const e = r.add(tuple, "node2", 100, 0);
  r.activate(e, 100_000, 0);
  const verdict = (p: Uint8Array) => r.route(peek(p), 1).verdict;
  const data = new Uint8Array(30);
  assert.equal(verdict(packet(200)), "forward", "an ACK that advances");
  assert.equal(verdict(packet(200)), "forward", "a duplicate ACK (fast retransmit)");
  assert.equal(verdict(packet(200, TCP_ACK, 40000, data)), "local", "the next request's bytes");
  assert.equal(verdict(packet(200, TCP_ACK, 40000, data)), "local", "a retransmitted copy of them");
  assert.equal(verdict(packet(150)), "local", "an old, reordered ACK");
  assert.equal(
    verdict(packet(200, TCP_ACK, 40000, new Uint8Array(0), { window: 9000 })),
    "forward",
    "a window change",
  );
  const sack: TcpOptions = { sack: [[300, 400]] };
  assert.equal(
    verdict(packet(200, TCP_ACK, 40000, data, { window: 9000, options: sack })),
    "forward",
    "a SACK, even on a data segment",
  );
  assert.equal(
    verdict(packet(300, TCP_ACK, 40000, data, { window: 9000 })),
    "forward",
    "data with an ACK that advances (the clone acknowledges and discards the data)",
  );
  assert.equal(
    verdict(packet(300, TCP_ACK | TCP_FIN, 40000, new Uint8Array(0), { window: 9000 })),
    "local",
    "a FIN alone",
  );
  assert.equal(verdict(packet(300, TCP_RST)), "forward", "a RST");
  assert.equal(r.notRelayed, 4);
  assert.equal(e.ackedBytes, 200);
});

test("responses longer than 2^31 bytes complete by counting, not by comparing sequence numbers", () => {
  const r = new PacketRouter<string>();
  const e = r.add(tuple, "p", 7, 0);
  r.activate(e, 3 * 2 ** 31, 0);
  let ack = 7;
  for (let i = 0; i < 6; i++) {
    ack = (ack + 2 ** 30) >>> 0;
    r.route(peek(packet(ack)), i);
    assert.equal(r.isComplete(e), i === 5);
  }
});

test("after a FIN the entry lingers, then goes (paper 2.3); progress extends the linger", () => {
  const r = new PacketRouter<string>({ finLingerMs: 100, stallMs: 1e9 });
  const e = r.add(tuple, "p", 0, 0);
  r.activate(e, 10_000, 0);
  r.route(peek(packet(10, TCP_ACK | TCP_FIN)), 50);
  assert.equal(r.pollAt(), 150);
  assert.deepEqual(r.expire(149), []);
  r.route(peek(packet(500)), 120); // still progressing: keep routing
  assert.equal(r.pollAt(), 220);
  assert.deepEqual(r.expire(200), []);
  const out = r.expire(220);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.why, "fin-timeout");
  assert.equal(r.size, 0);
  assert.equal(r.expired, 1);
});

test("a RST starts the linger too", () => {
  const r = new PacketRouter<string>({ finLingerMs: 10, stallMs: 1e9 });
  r.add(tuple, "p", 0, 0);
  r.route(peek(packet(0, TCP_RST)), 5);
  assert.equal(r.expire(15).length, 1);
});

test("an active entry with no progress is reported stalled once per period and kept", () => {
  const r = new PacketRouter<string>({ finLingerMs: 1e9, stallMs: 100 });
  const e = r.add(tuple, "p", 0, 0);
  assert.equal(r.pollAt(), Infinity, "pending entries wait for the SC-ACK timeout, not the stall timer");
  r.activate(e, 1000, 10);
  assert.deepEqual(r.expire(109), []);
  const s = r.expire(110);
  assert.equal(s.length, 1);
  assert.equal(s[0]!.why, "stalled");
  assert.equal(r.size, 1);
  assert.deepEqual(r.expire(150), []);
  assert.equal(r.expire(210).length, 1);
});

test("one entry per connection", () => {
  const r = new PacketRouter<string>();
  r.add(tuple, "p", 0, 0);
  assert.throws(() => r.add(tuple, "q", 0, 0));
});
