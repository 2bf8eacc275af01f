import { test } from "node:test";
import assert from "node:assert/strict";
import {
  GUE_PORT,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  encodeIpv4Udp,
  ipv4ToString,
  isWireError,
} from "../sc/wire/index.js";
import { Prng } from "../sc/wire/testing.js";
import { ConnState } from "./conn-table.js";
import { DROP_REASONS, Forwarder, type DropReason, type ForwarderOptions } from "./forwarder.js";
import type { SchedulerName } from "./schedulers.js";
import {
  CLIENT,
  DISPATCHER,
  Recorder,
  VIP,
  clientPacket,
  decapOuter,
  nodeAddr,
  parseRst,
  type ClientPacket,
} from "./testing.js";
import { decodeHandover, encodeHandover } from "./handover.js";

function setup(
  scheduler: SchedulerName = "rr",
  nodes = 3,
  extra: Partial<ForwarderOptions> = {},
): { f: Forwarder; out: Recorder; send: (p: ClientPacket, now?: number) => void } {
  const out = new Recorder();
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler, encap: "ipv4", localAddr: DISPATCHER, maxConnections: 4096, ...extra },
    out,
  );
  for (let k = 1; k <= nodes; k++)
    f.upsertNode({ id: `node${k}`, addr: nodeAddr(k), port: GUE_PORT, weight: 1 });
  const send = (p: ClientPacket, now = 0) => {
    const pkt = clientPacket(p);
    f.input(pkt, 0, pkt.length, now);
  };
  return { f, out, send };
}

function drops(f: Forwarder): Partial<Record<DropReason, number>> {
  const d: Partial<Record<DropReason, number>> = {};
  for (const r of DROP_REASONS) if (f.dropCount(r) > 0) d[r] = f.dropCount(r);
  return d;
}

test("each new connection is scheduled; all its packets follow it, encapsulated in GUE", () => {
  const { f, out, send } = setup("rr");
  for (let port = 1000; port < 1006; port++) send({ sport: port, flags: TCP_SYN });
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node1", "node2", "node3", "node1", "node2", "node3"],
  );
  out.clear();
  // Later packets of port 1004's connection go where its SYN went (node2).
  send({ sport: 1004, flags: TCP_ACK, seq: 1001, ack: 1 });
  const payload = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
  send({ sport: 1004, flags: TCP_ACK | TCP_PSH, seq: 1001, ack: 1, payload });
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node2", "node2"],
  );
  const o = decapOuter(out.toNodes[1]!.bytes);
  assert.equal(o.src, DISPATCHER);
  assert.equal(o.dst, nodeAddr(2));
  assert.equal(o.dstPort, GUE_PORT);
  assert.equal(o.variant, 0);
  assert.equal(o.dontFrag, false);
  assert.ok(o.srcPort >= 0xc000);
  assert.deepEqual(
    o.inner,
    clientPacket({ sport: 1004, flags: TCP_ACK | TCP_PSH, seq: 1001, ack: 1, payload }),
  );
  // One connection: one source port (flow entropy is per connection).
  assert.equal(decapOuter(out.toNodes[0]!.bytes).srcPort, o.srcPort);
  assert.equal(f.table.state(f.table.lookup(CLIENT, 1004, VIP, 80)), ConnState.Established);
  assert.equal(f.connectionsScheduled, 6);
  assert.equal(f.packetsOut, 8);
  assert.equal(f.nodes.get("node2")!.packets, 4);
  assert.deepEqual(drops(f), {});
});

test("'gue' mode hands out the UDP payload only; variant 1 is the bare client packet", () => {
  for (const variant of [0, 1] as const) {
    const out = new Recorder();
    const f = new Forwarder(
      { vip: VIP, port: 80, scheduler: "rr", encap: "gue", variant, maxConnections: 16 },
      out,
    );
    f.upsertNode({ id: "a", addr: nodeAddr(1), port: 7000, weight: 1 });
    const pkt = clientPacket({ sport: 5, flags: TCP_SYN });
    f.input(pkt, 0, pkt.length, 0);
    const expected = variant === 0 ? Uint8Array.from([0, 4, 0, 0, ...pkt]) : pkt;
    assert.deepEqual(out.toNodes[0]!.bytes, expected);
  }
  assert.throws(
    () => new Forwarder({ vip: VIP, port: 80, scheduler: "rr", encap: "ipv4" }, new Recorder()),
    RangeError,
  );
});

test("'inner' mode hands the client packet's range to toNodeRange, uncopied; the output must have it", () => {
  const ranges: { node: string; bytes: Uint8Array; sameBuffer: boolean }[] = [];
  const pkt = clientPacket({ sport: 5, flags: TCP_SYN });
  const buf = new Uint8Array(pkt.length + 50);
  buf.set(pkt, 11);
  const out = new Recorder();
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler: "rr", encap: "inner", maxConnections: 16 },
    {
      toNode: (n, p) => out.toNode(n, p),
      toClient: (p) => out.toClient(p),
      toNodeRange: (n, b, off, len) =>
        ranges.push({ node: n.id, bytes: b.slice(off, off + len), sameBuffer: b === buf }),
    },
  );
  f.upsertNode({ id: "a", addr: nodeAddr(1), port: 7000, weight: 1 });
  f.input(buf, 11, pkt.length + 20, 0); // trailing junk is not sent
  assert.deepEqual(ranges, [{ node: "a", bytes: pkt, sameBuffer: true }]);
  assert.equal(out.toNodes.length, 0);
  assert.equal(f.packetsOut, 1);
  assert.equal(f.nodes.get("a")!.packets, 1);
  assert.throws(
    () => new Forwarder({ vip: VIP, port: 80, scheduler: "rr", encap: "inner" }, new Recorder()),
    RangeError,
  );
});

test("a packet inside a larger buffer is read at its offset and only its total length is sent", () => {
  const { out, f } = setup("rr", 1);
  const pkt = clientPacket({ sport: 9, flags: TCP_SYN });
  const buf = new Uint8Array(pkt.length + 100).fill(0xee);
  buf.set(pkt, 37);
  f.input(buf, 37, pkt.length + 20, 0); // 20 bytes of trailing junk, as some links pad
  assert.deepEqual(decapOuter(out.toNodes[0]!.bytes).inner, pkt);
});

test("non-TCP, wrong destination or port, fragments, bad checksums and garbage are dropped and counted", () => {
  const { f, out, send } = setup("rr");
  send({ sport: 1, flags: TCP_SYN, dport: 443 });
  send({ sport: 1, flags: TCP_SYN, dst: nodeAddr(1) });
  const udp = encodeIpv4Udp(
    { src: CLIENT, dst: VIP, ttl: 64, tos: 0, id: 1, dontFrag: false },
    { srcPort: 1, dstPort: 80, payload: new Uint8Array(10) },
  );
  assert.ok(!isWireError(udp));
  f.input(udp, 0, udp.length, 0);
  const frag = clientPacket({ sport: 2, flags: TCP_SYN });
  frag[6] |= 0x20; // MF
  frag[10] = 0;
  frag[11] = 0;
  // Fix the header checksum so only the fragment rule applies.
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (frag[i]! << 8) | frag[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  frag[10] = (~s >>> 8) & 0xff;
  frag[11] = ~s & 0xff;
  f.input(frag, 0, frag.length, 0);
  const badIp = clientPacket({ sport: 3, flags: TCP_SYN });
  badIp[8] ^= 1; // TTL changed, header checksum not updated
  f.input(badIp, 0, badIp.length, 0);
  const badTcp = clientPacket({ sport: 4, flags: TCP_SYN });
  badTcp[badTcp.length - 1] ^= 0x40; // urgent pointer byte; TCP checksum now wrong
  f.input(badTcp, 0, badTcp.length, 0);
  const v6 = new Uint8Array(40);
  v6[0] = 0x60;
  f.input(v6, 0, v6.length, 0);
  const short = clientPacket({ sport: 5, flags: TCP_SYN });
  f.input(short, 0, 30, 0);
  assert.deepEqual(drops(f), {
    wrong_port: 1,
    wrong_dst: 1,
    not_tcp: 1,
    fragment: 1,
    bad_checksum: 2,
    not_ipv4: 1,
    malformed: 1,
  });
  assert.equal(out.toNodes.length, 0);
  assert.equal(out.toClients.length, 0);
  assert.equal(f.table.size, 0);
  assert.equal(f.packetsIn, 8);
});

test("impossible sources (the VIP, 0/8, 127/8, 224/4, 240/4, this host) are dropped unanswered and counted", () => {
  const { f, out, send } = setup("mh", 3, { localAddrs: [0xc0a80a05] }); // 192.168.10.5
  const spoofed = [
    VIP,
    DISPATCHER, // the outer source (localAddr)
    0xc0a80a05, // another address of this host
    0x00000000,
    0x00ffffff,
    0x7f000001, // 127.0.0.1
    0x7fffffff,
    0xe0000001, // 224.0.0.1
    0xefffffff,
    0xf0000001, // 240.0.0.1
    0xffffffff, // broadcast
  ];
  for (const [i, src] of spoofed.entries()) {
    send({ src, sport: 1000 + i, flags: TCP_SYN });
    send({ src, sport: 1000 + i, flags: TCP_ACK, ack: 5 });
  }
  assert.deepEqual(drops(f), { bad_src: 2 * spoofed.length });
  assert.equal(out.toNodes.length, 0);
  assert.equal(out.toClients.length, 0, "no RST to a spoofed address");
  assert.equal(f.table.size, 0);
  // The edges next to them are clients like any other.
  for (const src of [0x01000000, 0x7effffff, 0x80000000, 0xdfffffff, nodeAddr(1), CLIENT]) {
    send({ src, sport: 1, flags: TCP_SYN });
  }
  assert.equal(out.toNodes.length, 6);
  assert.deepEqual(drops(f), { bad_src: 2 * spoofed.length });
});

test("random and mutated input never throws and is never forwarded unless valid", () => {
  const { f, out } = setup("mh");
  const r = new Prng(7);
  const base = clientPacket({ sport: 77, flags: TCP_ACK, payload: new Uint8Array(40) });
  for (let i = 0; i < 20_000; i++) {
    let pkt: Uint8Array;
    if (i % 2 === 0) {
      pkt = new Uint8Array(r.below(120));
      for (let j = 0; j < pkt.length; j++) pkt[j] = r.below(256);
      if (pkt.length > 0 && r.bool()) pkt[0] = 0x45;
    } else {
      pkt = base.slice(0, r.below(base.length + 1));
      for (let k = r.below(4); k >= 0; k--) if (pkt.length > 0) pkt[r.below(pkt.length)] = r.below(256);
    }
    f.input(pkt, 0, pkt.length, i);
  }
  // Whatever got through must be a valid packet to the VIP's port: re-check each.
  for (const s of out.toNodes) {
    const o = decapOuter(s.bytes);
    const fwd = new Forwarder(
      { vip: VIP, port: 80, scheduler: "rr", encap: "gue", variant: 1, maxConnections: 4 },
      new Recorder(),
    );
    fwd.upsertNode({ id: "x", addr: 1, port: 1, weight: 1 });
    fwd.input(o.inner, 0, o.inner.length, 0);
    assert.equal(fwd.packetsOut + fwd.dropCount("no_conn"), 1);
  }
  assert.equal(f.packetsIn, 20_000);
});

/** Opens a keep-alive connection the client confirmed: SYN, ACK, then a request. */
function openConn(send: (p: ClientPacket, now?: number) => void, sport: number, now: number): void {
  send({ sport, flags: TCP_SYN, seq: 5000 }, now);
  send({ sport, flags: TCP_ACK, seq: 5001, ack: 777 }, now);
  send({ sport, flags: TCP_ACK | TCP_PSH, seq: 5001, ack: 777, payload: new Uint8Array(20) }, now);
}

test("a 3 s health flap resets nothing: a down node keeps its established connections, new ones go elsewhere", () => {
  // Issue 14 item 5: two missed checks used to mark the node dead and every packet of its
  // connections got a RST (2 of 6 idle keep-alive connections reset during a 3 s stall).
  const { f, out, send } = setup("rr", 2);
  for (let p = 0; p < 6; p++) openConn(send, 100 + p, 0);
  const home = new Map<number, string>();
  for (let p = 0; p < 6; p++) home.set(100 + p, out.toNodes[3 * p]!.node);
  // One more connection on node1 still in its handshake when the node stalls.
  send({ sport: 200, flags: TCP_SYN, seq: 9000 }, 0); // node1 (rr)
  send({ sport: 201, flags: TCP_SYN, seq: 9100 }, 0); // node2
  out.clear();

  f.setHealth("node1", "down", 1_000);
  assert.equal(f.nodes.get("node1")!.downSince, 1_000);
  for (const t of [1_500, 2_500, 4_000]) {
    for (let p = 0; p < 6; p++) {
      send({ sport: 100 + p, flags: TCP_ACK | TCP_PSH, seq: 5021, ack: 900, payload: new Uint8Array(20) }, t);
    }
  }
  assert.equal(out.toClients.length, 0, "no RST");
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    [0, 1, 2].flatMap(() => [...home.values()]),
    "every packet went to its connection's node",
  );
  assert.deepEqual(drops(f), {});
  assert.equal(f.nodes.get("node1")!.rsts, 0);
  assert.equal(f.nodes.get("node1")!.downForwarded, 9);
  assert.equal(f.downForwarded, 9);
  // New connections avoid it; a retransmitted SYN of its half-open connection is retried elsewhere.
  out.clear();
  send({ sport: 300, flags: TCP_SYN }, 2_000);
  send({ sport: 301, flags: TCP_SYN }, 2_000);
  send({ sport: 200, flags: TCP_SYN, seq: 9000 }, 2_000);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node2", "node2", "node2"],
  );
  assert.equal(out.toClients.length, 0);
  assert.equal(f.table.node(f.table.lookup(CLIENT, 200, VIP, 80)), f.nodes.get("node2")!.slot);
  // It answers again: nothing was lost, and it takes new connections.
  f.setHealth("node1", "up", 4_000);
  out.clear();
  send({ sport: 100, flags: TCP_ACK, seq: 5041, ack: 900 }, 4_100);
  send({ sport: 302, flags: TCP_SYN }, 4_100);
  send({ sport: 303, flags: TCP_SYN }, 4_100);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    [home.get(100), "node1", "node2"],
  );
  assert.equal(f.rstsSent, 0);
});

test("RSTs only when the down node stays down past the grace, is gone, or was removed", () => {
  const { f, out, send } = setup("rr", 3, { deadGraceMs: 60_000 });
  openConn(send, 100, 0); // node1
  openConn(send, 101, 0); // node2
  openConn(send, 102, 0); // node3
  openConn(send, 103, 0); // node1
  out.clear();

  // Down past the grace: forwarded until then, a RST from then on (seq = its ACK, no ACK flag).
  f.setHealth("node1", "down", 1_000);
  send({ sport: 100, flags: TCP_ACK, seq: 5021, ack: 777 }, 1_000 + 59_999);
  assert.equal(out.toNodes.length, 1);
  send({ sport: 100, flags: TCP_ACK | TCP_PSH, seq: 5021, ack: 777, payload: new Uint8Array(10) }, 61_000);
  assert.equal(out.toNodes.length, 1);
  assert.equal(out.toClients.length, 1);
  const rst = parseRst(out.toClients[0]!);
  assert.equal(rst.src, VIP);
  assert.equal(rst.dst, CLIENT);
  assert.equal(rst.tcp.srcPort, 80);
  assert.equal(rst.tcp.dstPort, 100);
  assert.equal(rst.tcp.flags, TCP_RST);
  assert.equal(rst.tcp.seq, 777);
  assert.equal(f.table.lookup(CLIENT, 100, VIP, 80), -1);
  assert.equal(f.dropCount("node_dead"), 1);
  assert.equal(f.nodes.get("node1")!.rsts, 1);
  // The client's retry goes to a live node at once.
  out.clear();
  send({ sport: 100, flags: TCP_SYN }, 61_001);
  assert.notEqual(out.toNodes[0]!.node, "node1");

  // Gone (its admin port refuses): no grace. A packet without ACK gets RST|ACK.
  f.setHealth("node2", "gone", 62_000);
  out.clear();
  send({ sport: 101, flags: TCP_FIN, seq: 7000 }, 62_001);
  assert.equal(out.toNodes.length, 0);
  const r2 = parseRst(out.toClients[0]!);
  assert.equal(r2.tcp.flags, TCP_RST | TCP_ACK);
  assert.equal(r2.tcp.seq, 0);
  assert.equal(r2.tcp.ack, 7001);
  assert.equal(f.dropCount("node_gone"), 1);

  // Removed (DELETE): it drains while it is up, and is reset once it is also down.
  f.removeNode("node3");
  out.clear();
  send({ sport: 102, flags: TCP_ACK, seq: 5021, ack: 777 }, 62_002);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node3"],
  );
  f.setHealth("node3", "down", 62_003);
  send({ sport: 102, flags: TCP_ACK, seq: 5021, ack: 777 }, 62_004);
  assert.equal(out.toNodes.length, 1);
  assert.equal(f.dropCount("node_removed"), 1);

  // Never a RST in answer to a RST (and the entry goes).
  const before = out.toClients.length;
  send({ sport: 103, flags: TCP_RST, seq: 5021 }, 62_005);
  assert.equal(out.toClients.length, before);
  assert.equal(f.table.lookup(CLIENT, 103, VIP, 80), -1);
  assert.equal(f.dropCount("node_dead"), 2);
  assert.equal(f.rstsSent, 3);
});

test("a lost node's silent clients are tickled: two bare ACKs each, and the answer gets an exact RST (issue 22)", () => {
  // The one-hour chaos run's 30 s hang: a client whose request its node had acknowledged
  // waits for the answer and sends nothing, so no packet ever met the RST of a gone node.
  const { f, out, send } = setup("rr", 2, { deadGraceMs: 60_000 });
  openConn(send, 100, 0); // node1
  openConn(send, 101, 0); // node2
  openConn(send, 102, 0); // node1
  openConn(send, 103, 0); // node2
  send({ sport: 103, flags: TCP_FIN | TCP_ACK, seq: 5021, ack: 777 }, 0); // fin_wait: still waiting
  send({ sport: 104, flags: TCP_SYN, seq: 9000 }, 0); // node1, half-open: its SYN is retried anyway
  out.clear();
  // Down within the grace: nothing (it may be only slow).
  f.setHealth("node1", "down", 1_000);
  f.tick(30_000);
  assert.equal(out.toClients.length, 0);
  // Gone: node2's two connections, at once.
  f.setHealth("node2", "gone", 31_000);
  const tickles = out.toClients.map(parseRst);
  assert.deepEqual(
    tickles.map((t) => [
      t.src,
      t.dst,
      t.tcp.srcPort,
      t.tcp.dstPort,
      t.tcp.flags,
      t.tcp.seq,
      t.tcp.payload.length,
    ]),
    [
      [VIP, CLIENT, 80, 101, TCP_ACK, 0, 0],
      [VIP, CLIENT, 80, 101, TCP_ACK, 0x80000000, 0],
      [VIP, CLIENT, 80, 103, TCP_ACK, 0, 0],
      [VIP, CLIENT, 80, 103, TCP_ACK, 0x80000000, 0],
    ],
  );
  assert.equal(f.ticklesSent, 2);
  // The client answers with an ACK of where it stands; that gets the RST it accepts.
  out.clear();
  send({ sport: 101, flags: TCP_ACK, seq: 5021, ack: 12_345 }, 31_001);
  const rst = parseRst(out.toClients[0]!);
  assert.equal(rst.tcp.flags, TCP_RST);
  assert.equal(rst.tcp.seq, 12_345);
  // Once per outage: later verdicts and ticks send nothing more for node2.
  out.clear();
  f.setHealth("node2", "gone", 32_000);
  f.tick(33_000);
  assert.equal(out.toClients.length, 0);
  // node1 down past the grace: its established connection at the next tick (not the half-open one).
  f.tick(61_000);
  assert.deepEqual(
    out.toClients.map((p) => parseRst(p).tcp.dstPort),
    [100, 100, 102, 102],
  );
  assert.equal(f.ticklesSent, 4);
  // Back up, then lost again: a new outage is tickled again.
  out.clear();
  f.setHealth("node2", "up", 70_000);
  openConn(send, 105, 70_000);
  const node105 = f.nodes.bySlot(f.table.node(f.table.lookup(CLIENT, 105, VIP, 80)))!.id;
  f.setHealth(node105, "gone", 71_000);
  assert.ok(out.toClients.map((p) => parseRst(p).tcp.dstPort).includes(105));
});

test("tickles go out at most tickleBatch per call, and skip connections whose node came back", () => {
  const { f, out, send } = setup("rr", 1, { deadGraceMs: 60_000, tickleBatch: 2 });
  for (let p = 0; p < 5; p++) openConn(send, 200 + p, 0);
  out.clear();
  f.setHealth("node1", "gone", 1_000);
  assert.equal(f.ticklesSent, 2);
  f.tick(1_500);
  assert.equal(f.ticklesSent, 4);
  f.setHealth("node1", "up", 1_600);
  f.tick(2_000);
  assert.equal(f.ticklesSent, 4);
  assert.equal(out.toClients.length, 8);
});

test("--dead-grace 0: a node's connections are reset as soon as it is down (IPVS expire_nodest_conn=1)", () => {
  const { f, out, send } = setup("rr", 1, { deadGraceMs: 0 });
  openConn(send, 1, 0);
  f.setHealth("node1", "down", 10);
  out.clear();
  send({ sport: 1, flags: TCP_ACK, seq: 5021, ack: 777 }, 10);
  assert.equal(out.toNodes.length, 0);
  assert.equal(parseRst(out.toClients[0]!).tcp.seq, 777);
  assert.equal(f.dropCount("node_dead"), 1);
});

test("with no eligible node a SYN is refused with RST|ACK", () => {
  const { f, out, send } = setup("wlc", 1);
  f.upsertNode({ id: "node1", addr: nodeAddr(1), port: GUE_PORT, weight: 0 });
  send({ sport: 7, flags: TCP_SYN, seq: 41 });
  assert.equal(f.dropCount("no_node"), 1);
  const rst = parseRst(out.toClients[0]!);
  assert.equal(rst.tcp.flags, TCP_RST | TCP_ACK);
  assert.equal(rst.tcp.ack, 42);
});

test("no entry: rr refuses a mid-connection packet with RST; mh picks the connection up where it hashes", () => {
  const rr = setup("rr");
  rr.send({ sport: 50, flags: TCP_ACK, seq: 10, ack: 99 });
  assert.equal(rr.f.dropCount("no_conn"), 1);
  assert.equal(parseRst(rr.out.toClients[0]!).tcp.seq, 99);

  const mh = setup("mh");
  mh.send({ sport: 50, flags: TCP_SYN });
  const first = mh.out.toNodes[0]!.node;
  // The dispatcher restarts: a new forwarder, same nodes, no table.
  const again = setup("mh");
  again.send({ sport: 50, flags: TCP_ACK, seq: 1001, ack: 5 });
  assert.equal(again.out.toNodes[0]!.node, first);
  assert.equal(again.f.connectionsRecovered, 1);
  assert.equal(again.f.table.state(again.f.table.lookup(CLIENT, 50, VIP, 80)), ConnState.Established);
  assert.equal(again.out.toClients.length, 0);
  // A stray RST is passed on but creates no entry.
  again.send({ sport: 51, flags: TCP_RST });
  assert.equal(again.out.toNodes.length, 2);
  assert.equal(again.f.table.lookup(CLIENT, 51, VIP, 80), -1);
});

test("a restarted mh dispatcher picks no connection up before every node's first health verdict (issue 22)", () => {
  // The dispatcher before the restart: every node healthy; where does port 50 live?
  const before = setup("mh");
  const home = new Map<number, string>();
  for (let port = 40; port < 100; port++) {
    before.send({ sport: port, flags: TCP_SYN });
    home.set(port, before.out.toNodes.at(-1)!.node);
  }
  const port = [...home].find(([, n]) => n !== "node1")![0];
  // After a restart the nodes are health-checked (admin URLs): unknown until their first verdict.
  const out = new Recorder();
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler: "mh", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 4096 },
    out,
  );
  for (let k = 1; k <= 3; k++)
    f.upsertNode({
      id: `node${k}`,
      addr: nodeAddr(k),
      port: GUE_PORT,
      weight: 1,
      admin: `http://${ipv4ToString(nodeAddr(k))}:9080`,
    });
  const send = (p: ClientPacket) => {
    const pkt = clientPacket(p);
    f.input(pkt, 0, pkt.length, 0);
  };
  // No verdict yet: an established connection's packet waits (dropped unanswered, the client
  // retransmits) instead of a RST, and so does a SYN: no node is known yet.
  send({ sport: port, flags: TCP_ACK, seq: 1001, ack: 5 });
  send({ sport: 7000, flags: TCP_SYN });
  assert.equal(out.toClients.length, 0);
  assert.equal(out.toNodes.length, 0);
  assert.equal(f.dropCount("warming_up"), 2);
  // node1 answers first: the connection living on another node is still not picked up by node1.
  f.setHealth("node1", "up", 1);
  send({ sport: port, flags: TCP_ACK, seq: 1001, ack: 5 });
  assert.equal(out.toNodes.length, 0);
  assert.equal(f.table.lookup(CLIENT, port, VIP, 80), -1);
  // A new connection may go to a node already known healthy.
  send({ sport: 7001, flags: TCP_SYN });
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node1"],
  );
  // A node that fails its first check is a verdict too; then the table is the one from before.
  f.setHealth("node2", "up", 2);
  f.setHealth("node3", "up", 3);
  send({ sport: port, flags: TCP_ACK, seq: 1001, ack: 5 });
  assert.equal(out.toNodes.at(-1)!.node, home.get(port));
  assert.equal(f.connectionsRecovered, 1);
  assert.equal(out.toClients.length, 0);
  assert.equal(f.dropCount("warming_up"), 3);
});

test("warm-up ends with a failed first check too; a down node's connections still go to it, a gone node's are reset", () => {
  // Where ports 60.. live with both nodes up (the dispatcher before the restart).
  const before = setup("mh", 2);
  const home = new Map<number, string>();
  for (let port = 60; port < 90; port++) {
    before.send({ sport: port, flags: TCP_SYN });
    home.set(port, before.out.toNodes.at(-1)!.node);
  }
  const onNode2 = [...home].filter(([, n]) => n === "node2").map(([p]) => p);
  const onNode1 = [...home].filter(([, n]) => n === "node1").map(([p]) => p);
  const out = new Recorder();
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler: "mh", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 4096 },
    out,
  );
  for (let k = 1; k <= 2; k++)
    f.upsertNode({
      id: `node${k}`,
      addr: nodeAddr(k),
      port: GUE_PORT,
      weight: 1,
      admin: `http://${ipv4ToString(nodeAddr(k))}:9080`,
    });
  f.setHealth("node1", "up", 1);
  f.setHealth("node2", "down", 2);
  const send = (sport: number, now: number) => {
    const pkt = clientPacket({ sport, flags: TCP_ACK, seq: 1, ack: 1 });
    f.input(pkt, 0, pkt.length, now);
  };
  // node2 only fails its checks (stopped, slow): its connection goes on to it within the grace.
  send(onNode2[0]!, 3);
  send(onNode1[0]!, 3);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node2", "node1"],
  );
  assert.equal(f.dropCount("warming_up"), 0);
  // Its process gone: its connections are lost, the client gets a RST at once.
  f.setHealth("node2", "gone", 4);
  send(onNode2[1]!, 5);
  assert.equal(out.toNodes.length, 2);
  assert.equal(f.dropCount("node_gone"), 1);
  // Two tickles for the connection node2 held (forwarder.ts), then the RST.
  assert.equal(out.toClients.length, 3);
  assert.equal(parseRst(out.toClients[2]!).tcp.flags, TCP_RST);
  // Past the grace the same holds for a node that stays down from the start.
  const g = setup("mh", 2, { deadGraceMs: 1000 });
  g.f.upsertNode({
    id: "node2",
    addr: nodeAddr(2),
    port: GUE_PORT,
    weight: 1,
    admin: "http://" + ipv4ToString(nodeAddr(2)) + ":9080",
  });
  g.f.setHealth("node2", "down", 10);
  g.send({ sport: onNode2[0]!, flags: TCP_ACK, seq: 1, ack: 1 }, 500);
  g.send({ sport: onNode2[1]!, flags: TCP_ACK, seq: 1, ack: 1 }, 1010);
  assert.deepEqual(
    g.out.toNodes.map((s) => s.node),
    ["node2"],
  );
  assert.equal(g.f.dropCount("node_dead"), 1);
});

test("a restarted mh dispatcher keeps the connections opened while a node was out (state file, issue 22)", () => {
  // Before: 3 nodes; node2 killed (gone), 60 connections opened on node1/node3, node2 back.
  const before = setup("mh", 3);
  before.f.setHealth("node2", "gone", 0);
  const placed = new Map<number, string>();
  for (let port = 3000; port < 3060; port++) {
    before.send({ sport: port, flags: TCP_SYN });
    before.send({ sport: port, flags: TCP_ACK, seq: 1, ack: 1 });
    placed.set(port, before.out.toNodes.at(-1)!.node);
  }
  assert.ok(![...placed.values()].includes("node2"));
  before.f.setHealth("node2", "up", 1);
  // The ones the full hash would send to node2 are recorded, and only those.
  const displaced = before.f.displaced.list();
  const fresh = setup("mh", 3);
  const homeOf = (port: number) => {
    fresh.send({ sport: port, flags: TCP_SYN });
    return fresh.out.toNodes.at(-1)!.node;
  };
  const expected = [...placed.keys()].filter((p) => homeOf(p) === "node2");
  assert.ok(expected.length >= 10, `${expected.length} displaced`);
  assert.deepEqual(displaced.map((c) => c.srcPort).sort(), expected.sort());
  assert.ok(displaced.every((c) => c.node === placed.get(c.srcPort) && c.src === CLIENT));
  // An entry that ended is forgotten at the next tick.
  before.send({ sport: expected[0]!, flags: TCP_RST, seq: 1 }, 2);
  before.f.tick(5_000);
  assert.equal(before.f.displaced.size, expected.length);
  before.f.tick(12_003);
  assert.equal(before.f.displaced.size, expected.length - 1);

  // The restart: a new dispatcher, every node up, the state file written by the old one.
  const file = encodeHandover(before.f.displaced.list());
  const after = setup("mh", 3);
  const { connections, skipped } = decodeHandover(file);
  assert.equal(skipped, 0);
  assert.equal(after.f.adopt(connections, 10), expected.length - 1);
  for (const port of placed.keys()) {
    if (port === expected[0]) continue;
    after.send({ sport: port, flags: TCP_ACK | TCP_PSH, seq: 1, ack: 1, payload: new Uint8Array(3) }, 11);
    assert.equal(after.out.toNodes.at(-1)!.node, placed.get(port), `port ${port}`);
  }
  assert.equal(after.out.toClients.length, 0);
  assert.equal(after.f.connectionsAdopted, expected.length - 1);
  // Still displaced for the next restart.
  assert.equal(after.f.displaced.size, expected.length - 1);

  // With health checks the first packets come before the first verdicts: an adopted
  // connection goes on to its node (not reset as if the node were long dead).
  const out = new Recorder();
  const checked = new Forwarder(
    { vip: VIP, port: 80, scheduler: "mh", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 4096 },
    out,
  );
  for (let k = 1; k <= 3; k++)
    checked.upsertNode({
      id: `node${k}`,
      addr: nodeAddr(k),
      port: GUE_PORT,
      weight: 1,
      admin: `http://${ipv4ToString(nodeAddr(k))}:9080`,
    });
  checked.adopt(connections, 0);
  const port = expected[1]!;
  const pkt = clientPacket({
    sport: port,
    flags: TCP_ACK | TCP_PSH,
    seq: 1,
    ack: 1,
    payload: new Uint8Array(3),
  });
  checked.input(pkt, 0, pkt.length, 1);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    [placed.get(port)],
  );
  assert.equal(out.toClients.length, 0);
});

test("membership and weight changes never move established connections; removed nodes drain", () => {
  const { f, out, send } = setup("wrr", 3);
  for (let p = 0; p < 30; p++) {
    send({ sport: 2000 + p, flags: TCP_SYN });
    send({ sport: 2000 + p, flags: TCP_ACK });
  }
  const home = new Map<number, string>();
  for (let p = 0; p < 30; p++) home.set(2000 + p, out.toNodes[2 * p]!.node);
  assert.equal([...home.values()].filter((n) => n === "node2").length, 10);

  f.removeNode("node2");
  f.upsertNode({ id: "node1", addr: nodeAddr(1), port: GUE_PORT, weight: 5 });
  f.upsertNode({ id: "node4", addr: nodeAddr(4), port: GUE_PORT, weight: 1 });
  out.clear();
  for (let p = 0; p < 30; p++)
    send({ sport: 2000 + p, flags: TCP_ACK | TCP_PSH, payload: new Uint8Array(3) }, 1);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    [...home.values()],
  );
  // New connections: weights 5 (node1), 1 (node3), 1 (node4); never node2.
  out.clear();
  for (let p = 0; p < 70; p++) send({ sport: 3000 + p, flags: TCP_SYN }, 1);
  const c: Record<string, number> = {};
  for (const s of out.toNodes) c[s.node] = (c[s.node] ?? 0) + 1;
  assert.deepEqual(c, { node1: 50, node3: 10, node4: 10 });
  // node2 stays listed (draining) until its connections are gone.
  assert.ok(f.nodes.get("node2")?.removed);
  for (let p = 0; p < 30; p++) {
    if (home.get(2000 + p) === "node2") send({ sport: 2000 + p, flags: TCP_ACK | TCP_FIN }, 2);
  }
  f.tick(2 + 119_999);
  assert.ok(f.nodes.get("node2"));
  f.tick(2 + 120_000);
  assert.equal(f.nodes.get("node2"), undefined);
});

test("a SYN on a closed connection's port is a new connection, scheduled afresh", () => {
  const { f, out, send } = setup("rr", 2);
  send({ sport: 9, flags: TCP_SYN });
  send({ sport: 9, flags: TCP_ACK });
  send({ sport: 9, flags: TCP_ACK | TCP_FIN });
  send({ sport: 9, flags: TCP_SYN }, 10);
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node1", "node1", "node1", "node2"],
  );
  assert.equal(f.table.state(f.table.lookup(CLIENT, 9, VIP, 80)), ConnState.SynRecv);
  // A SYN on an established entry is a stray and stays put.
  send({ sport: 9, flags: TCP_ACK }, 11);
  send({ sport: 9, flags: TCP_SYN }, 12);
  assert.equal(out.toNodes.at(-1)!.node, "node2");
  assert.equal(f.connectionsScheduled, 2);
});

test("a SYN flood through the forwarder stays within the half-open budget", () => {
  const { f, send } = setup("mh", 3, { maxConnections: 1000, maxHalfOpen: 64 });
  for (let p = 0; p < 10; p++) openConn(send, p, 0);
  for (let i = 0; i < 50_000; i++) send({ src: 0x0a000000 + i, sport: i & 0xffff, flags: TCP_SYN }, i);
  assert.equal(f.table.halfOpen, 64);
  assert.equal(f.table.size, 74);
  assert.equal(f.table.evictedHalfOpen, 50_000 - 64);
  assert.equal(f.table.countInState(ConnState.Established), 10);
});

test("lc balances open connections, and the table's counts drive it", () => {
  const { f, out, send } = setup("lc", 3);
  // node1 gets long connections first.
  for (let p = 0; p < 3; p++) {
    send({ sport: p, flags: TCP_SYN });
    send({ sport: p, flags: TCP_ACK });
  }
  assert.deepEqual(
    [1, 2, 3].map((k) => f.table.active(f.nodes.get(`node${k}`)!.slot)),
    [1, 1, 1],
  );
  // node1 and node2 connections close (RST: close state counts as inactive only).
  send({ sport: 0, flags: TCP_RST });
  send({ sport: 1, flags: TCP_RST });
  out.clear();
  send({ sport: 10, flags: TCP_SYN });
  send({ sport: 11, flags: TCP_SYN });
  assert.deepEqual(out.toNodes.map((s) => s.node).sort(), ["node1", "node2"]);
});

test("extra service ports (443 beside 80) are balanced; each connection keeps its own port's entry", () => {
  const { f, out, send } = setup("rr", 3, { extraPorts: [443] });
  // The same client port to 80 and to 443: two connections, scheduled one after the other.
  send({ sport: 5000, dport: 80, flags: TCP_SYN });
  send({ sport: 5000, dport: 443, flags: TCP_SYN });
  send({ sport: 5001, dport: 443, flags: TCP_SYN });
  assert.deepEqual(
    out.toNodes.map((s) => s.node),
    ["node1", "node2", "node3"],
  );
  assert.equal(f.table.size, 3);
  // Later packets of the 443 connection follow it, not the 80 one with the same client port.
  send({ sport: 5000, dport: 443, flags: TCP_ACK });
  send({ sport: 5000, dport: 80, flags: TCP_ACK });
  assert.deepEqual(
    out.toNodes.slice(3).map((s) => s.node),
    ["node2", "node1"],
  );
  // A port that is not a service port is still dropped.
  send({ sport: 5002, dport: 8443, flags: TCP_SYN });
  assert.deepEqual(drops(f), { wrong_port: 1 });
});
