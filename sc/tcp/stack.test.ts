// The stack at the packet level: demultiplexing, listeners, RST for no socket, bad input
// counted (never thrown), SYN flood bound and SYN cookies, TIME-WAIT reuse, timers, the
// socket seed, ISNs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { TcpStack, type TcpStackOptions } from "./stack.js";
import { TcpServer, type TcpSocket } from "./socket.js";
import { TcpSecret, checkSynCookie, initialSequenceNumber, makeSynCookie } from "./isn.js";
import { Rng } from "./sim.js";
import { flagNames } from "./testing.js";
import { ipv4FromString } from "../wire/addr.js";
import { internetChecksum } from "../wire/checksum.js";
import { isWireError } from "../wire/error.js";
import { parseIpv4 } from "../wire/ipv4.js";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  encodeIpv4Tcp,
  parseTcp,
  type TcpRepr,
} from "../wire/tcp.js";
import type { TcpConfig } from "./config.js";

const VIP = ipv4FromString("198.18.100.1") as number;
const CLIENT = ipv4FromString("198.18.0.2") as number;
const OTHER = ipv4FromString("198.18.0.77") as number;

interface Out {
  src: number;
  dst: number;
  seg: TcpRepr;
  flags: string;
}

function makeStack(cfg: Partial<TcpConfig> = {}, synCookies = true, extra: Partial<TcpStackOptions> = {}) {
  const clock = { now: 0 };
  const out: Out[] = [];
  const stack = new TcpStack({
    addresses: ["198.18.100.1"],
    clock: () => clock.now,
    output: (p) => {
      const ip = parseIpv4(p);
      assert.ok(!isWireError(ip), "we emit valid IPv4");
      const seg = parseTcp(ip.payload, ip.src, ip.dst);
      assert.ok(!isWireError(seg), "we emit valid TCP with a correct checksum");
      out.push({ src: ip.src, dst: ip.dst, seg, flags: flagNames(seg.flags) });
    },
    secret: new Uint8Array(16).fill(7),
    scheduleFlush: () => undefined,
    config: cfg,
    synCookies,
    ...extra,
  });
  return { stack, out, clock };
}

function packet(
  seg: Partial<TcpRepr> & { flags: number },
  src = CLIENT,
  dst = VIP,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const p = encodeIpv4Tcp(
    { src, dst, ttl: 64, tos: 0, id: 1, dontFrag: true },
    {
      srcPort: 40000,
      dstPort: 80,
      seq: 1000,
      ack: 0,
      window: 65535,
      urgent: 0,
      options: {},
      payload,
      ...seg,
    },
  );
  assert.ok(!isWireError(p));
  return p;
}

function fixIpChecksum(p: Uint8Array, edit: (p: Uint8Array) => void): Uint8Array {
  edit(p);
  p[10] = p[11] = 0;
  const c = internetChecksum(p, 0, 20);
  p[10] = c >>> 8;
  p[11] = c & 0xff;
  return p;
}

function listen(stack: TcpStack, port = 80): TcpSocket[] {
  const accepted: TcpSocket[] = [];
  new TcpServer(stack, {}, (s) => accepted.push(s)).listen(port);
  return accepted;
}

test("SYN to a port nobody listens on -> RST|ACK (seq 0, ack = seq + 1)", () => {
  const { stack, out } = makeStack();
  stack.input(packet({ flags: TCP_SYN, seq: 1000 }));
  assert.equal(out.length, 1);
  assert.equal(out[0].flags, "RST|ACK");
  assert.equal(out[0].seg.seq, 0);
  assert.equal(out[0].seg.ack, 1001);
  assert.equal(out[0].src, VIP);
  assert.equal(out[0].dst, CLIENT);
  assert.equal(out[0].seg.srcPort, 80);
  assert.equal(out[0].seg.dstPort, 40000);
  assert.equal(stack.counters.drops["no-socket"], 1);
});

test("an ACK (with data) for no connection -> RST with seq = SEG.ACK", () => {
  const { stack, out } = makeStack();
  stack.input(packet({ flags: TCP_ACK | TCP_PSH, seq: 5, ack: 777 }, CLIENT, VIP, new Uint8Array(10)));
  assert.equal(out.length, 1);
  assert.equal(out[0].flags, "RST");
  assert.equal(out[0].seg.seq, 777);
});

test("an RST for no connection is dropped without reply", () => {
  const { stack, out } = makeStack();
  stack.input(packet({ flags: TCP_RST, seq: 5 }));
  assert.equal(out.length, 0);
  assert.equal(stack.counters.drops["rst-no-socket"], 1);
});

test("packets for addresses we do not own are dropped (not answered)", () => {
  const { stack, out } = makeStack();
  listen(stack);
  stack.input(packet({ flags: TCP_SYN }, CLIENT, OTHER));
  assert.equal(out.length, 0);
  assert.equal(stack.counters.drops["not-local"], 1);
  stack.addAddress(OTHER);
  stack.input(packet({ flags: TCP_SYN }, CLIENT, OTHER));
  assert.equal(out.length, 1);
  assert.equal(out[0].flags, "SYN|ACK");
  assert.equal(out[0].src, OTHER);
});

test("bad input is counted by reason and never throws", () => {
  const { stack, out } = makeStack();
  listen(stack);
  const good = packet({ flags: TCP_SYN });
  const badIpSum = good.slice();
  badIpSum[10] ^= 0xff;
  const badTcpSum = good.slice();
  badTcpSum[36] ^= 0xff;
  const fragment = fixIpChecksum(good.slice(), (p) => (p[6] = 0x20)); // MF
  const udp = fixIpChecksum(good.slice(), (p) => (p[9] = 17));
  for (const p of [badIpSum, badTcpSum, fragment, udp, good.subarray(0, 30), new Uint8Array(0)])
    stack.input(p);
  assert.equal(out.length, 0);
  assert.deepEqual(stack.counters.drops, {
    "ip-bad-checksum": 1,
    "tcp-bad-checksum": 1,
    "ip-fragment": 1,
    "not-tcp": 1,
    "ip-truncated": 2,
  });
});

test("fuzz: random and mutated packets never throw and never get a reply from closed ports", () => {
  const { stack, out } = makeStack();
  listen(stack);
  const rng = new Rng(42);
  const base = packet({ flags: TCP_ACK, seq: 5, ack: 9 }, CLIENT, VIP, new Uint8Array(20));
  for (let i = 0; i < 20_000; i++) {
    let p: Uint8Array;
    if (i % 2 === 0) {
      p = rng.bytes(rng.int(0, 80));
    } else {
      p = base.slice();
      for (let k = rng.int(1, 4); k > 0; k--) p[rng.int(0, p.length - 1)] = rng.int(0, 255);
    }
    stack.input(p);
  }
  // Mutations that keep checksums valid are astronomically rare: nothing may be answered
  // except RSTs for well-formed segments.
  assert.ok(out.every((o) => o.flags.includes("RST") || o.flags === "SYN|ACK"));
  assert.ok(stack.counters.packetsIn === 20_000);
});

test("listener bound to one address does not answer for another; the any-address one does", () => {
  const { stack, out } = makeStack();
  stack.addAddress(OTHER);
  new TcpServer(stack).listen(80, "198.18.100.1");
  stack.input(packet({ flags: TCP_SYN }, CLIENT, OTHER));
  assert.equal(out[0].flags, "RST|ACK");
  new TcpServer(stack).listen(80);
  stack.input(packet({ flags: TCP_SYN }, CLIENT, OTHER));
  assert.equal(out[1].flags, "SYN|ACK");
  assert.throws(() => new TcpServer(stack).listen(80), /EADDRINUSE/);
  assert.throws(() => new TcpServer(stack).listen(81, "198.18.0.99"), /EADDRNOTAVAIL/);
});

test("three-way handshake through the stack emits 'connection' with the right addresses", () => {
  const { stack, out } = makeStack();
  const accepted = listen(stack);
  stack.input(packet({ flags: TCP_SYN, seq: 1000, options: { mss: 1400, wscale: 7 } }));
  assert.equal(out.length, 1);
  const synAck = out[0].seg;
  assert.equal(out[0].flags, "SYN|ACK");
  assert.equal(synAck.ack, 1001);
  assert.deepEqual(synAck.options, { mss: 1460, wscale: 5 });
  assert.equal(accepted.length, 0);
  stack.input(packet({ flags: TCP_ACK, seq: 1001, ack: (synAck.seq + 1) >>> 0 }));
  assert.equal(accepted.length, 1);
  assert.equal(accepted[0].remoteAddress, "198.18.0.2");
  assert.equal(accepted[0].remotePort, 40000);
  assert.equal(stack.counters.connectionsAccepted, 1);
});

test("SYN flood: half-open connections stay bounded by the backlog; the rest get cookies", () => {
  const { stack, out } = makeStack({ synBacklog: 64 });
  listen(stack);
  const rng = new Rng(3);
  for (let i = 0; i < 20_000; i++) {
    const src = (CLIENT + rng.int(0, 1 << 16)) >>> 0;
    stack.input(packet({ flags: TCP_SYN, seq: rng.int(0, 0xffffffff), srcPort: rng.int(1024, 65535) }, src));
  }
  assert.ok(stack.connections <= 64, `connections ${stack.connections}`);
  assert.equal(stack.counters.synCookiesSent, 20_000 - stack.connections);
  assert.equal(out.length, 20_000);
  assert.ok(out.every((o) => o.flags === "SYN|ACK"));
});

test("a valid cookie ACK completes the handshake (MSS and window scale restored)", () => {
  const { stack, out } = makeStack({ synBacklog: 0 });
  const accepted = listen(stack);
  stack.input(packet({ flags: TCP_SYN, seq: 5000, options: { mss: 1400, wscale: 6 } }));
  assert.equal(stack.connections, 0, "no state kept");
  const synAck = out[0].seg;
  assert.deepEqual(synAck.options, { mss: 1460, wscale: 5 });
  stack.input(
    packet(
      { flags: TCP_ACK | TCP_PSH, seq: 5001, ack: (synAck.seq + 1) >>> 0 },
      CLIENT,
      VIP,
      Buffer.from("GET"),
    ),
  );
  assert.equal(accepted.length, 1);
  const conn = accepted[0].conn;
  assert.equal(conn.state, "ESTABLISHED");
  assert.equal(conn.snd.mss, 1400);
  assert.equal(conn.snd.wscale, 6);
  assert.equal(conn.rcv.wscale, 5);
  assert.equal(conn.rcv.nxt, 5004, "the data in the ACK was taken");
  assert.equal(stack.counters.synCookiesAccepted, 1);
});

test("a forged cookie ACK is refused with RST and counted", () => {
  const { stack, out } = makeStack({ synBacklog: 0 });
  const accepted = listen(stack);
  stack.input(packet({ flags: TCP_SYN, seq: 5000 }));
  const synAck = out[0].seg;
  stack.input(packet({ flags: TCP_ACK, seq: 5001, ack: (synAck.seq + 2) >>> 0 }));
  assert.equal(accepted.length, 0);
  assert.equal(out[1].flags, "RST");
  assert.equal(stack.counters.drops["syn-cookie-invalid"], 1);
});

test("without cookies a full backlog drops SYNs", () => {
  const { stack, out } = makeStack({ synBacklog: 2 }, false);
  listen(stack);
  for (let p = 1; p <= 5; p++) stack.input(packet({ flags: TCP_SYN, srcPort: 1000 + p }));
  assert.equal(out.length, 2);
  assert.equal(stack.counters.drops["backlog-full"], 3);
});

test("maxConnections bounds the table; SYNs beyond it are dropped", () => {
  const { stack, out } = makeStack({ maxConnections: 3 });
  listen(stack);
  for (let p = 1; p <= 5; p++) stack.input(packet({ flags: TCP_SYN, srcPort: 1000 + p }));
  assert.equal(stack.connections, 3);
  assert.equal(out.length, 3);
  assert.equal(stack.counters.drops["max-connections"], 2);
});

test("a half-open connection that times out frees its backlog slot", () => {
  const { stack, clock } = makeStack({ synBacklog: 1, synAckRetries: 1 });
  listen(stack);
  stack.input(packet({ flags: TCP_SYN, srcPort: 1001 }));
  assert.equal(stack.connections, 1);
  for (let i = 0; i < 10; i++) {
    const at = stack.pollAt();
    if (at === undefined) break;
    clock.now = at;
    stack.poll(at);
  }
  assert.equal(stack.connections, 0);
  assert.equal(stack.pollAt(), undefined);
  stack.input(packet({ flags: TCP_SYN, srcPort: 1002 }));
  assert.equal(stack.connections, 1, "slot reused, not a cookie");
  assert.equal(stack.counters.synCookiesSent, 0);
});

function establish(stack: TcpStack, out: Out[], srcPort = 40000, seq = 1000): TcpRepr {
  stack.input(packet({ flags: TCP_SYN, seq, srcPort }));
  const synAck = out[out.length - 1].seg;
  stack.input(packet({ flags: TCP_ACK, seq: seq + 1, ack: (synAck.seq + 1) >>> 0, srcPort }));
  return synAck;
}

test("TIME-WAIT: a new SYN with a higher sequence number reuses the 4-tuple", () => {
  const { stack, out } = makeStack();
  const accepted = listen(stack);
  const synAck = establish(stack, out);
  const l1 = (synAck.seq + 1) >>> 0;
  accepted[0].end();
  stack.flush();
  assert.equal(out[out.length - 1].flags, "FIN|ACK");
  stack.input(packet({ flags: TCP_ACK | TCP_FIN, seq: 1001, ack: l1 + 1 }));
  assert.equal(accepted[0].conn.state, "TIME-WAIT");
  // An old-sequence SYN is challenged, a newer one starts a new connection.
  stack.input(packet({ flags: TCP_SYN, seq: 900 }));
  assert.equal(out[out.length - 1].flags, "ACK");
  stack.input(packet({ flags: TCP_SYN, seq: 90_000 }));
  assert.equal(out[out.length - 1].flags, "SYN|ACK");
  assert.equal(out[out.length - 1].seg.ack, 90_001);
  assert.equal(stack.connections, 1);
});

test("maxTimeWait bounds TIME-WAIT entries", () => {
  const { stack, out } = makeStack({ maxTimeWait: 2 });
  const accepted = listen(stack);
  for (let i = 0; i < 5; i++) {
    const synAck = establish(stack, out, 41000 + i);
    accepted[i].end();
    stack.flush();
    stack.input(
      packet({ flags: TCP_ACK | TCP_FIN, seq: 1001, ack: (synAck.seq + 2) >>> 0, srcPort: 41000 + i }),
    );
  }
  assert.equal(stack.connections, 2);
});

test("one timer heap: pollAt is the earliest deadline of all connections, poll runs them", () => {
  const { stack, out, clock } = makeStack();
  const accepted = listen(stack);
  establish(stack, out, 40001);
  clock.now = 50;
  establish(stack, out, 40002);
  accepted[1].write("x");
  stack.flush();
  const rtxAt = accepted[1].conn.timers.rtxAt;
  assert.equal(stack.pollAt(), rtxAt);
  const before = out.length;
  stack.poll(rtxAt - 1);
  assert.equal(out.length, before);
  clock.now = rtxAt;
  stack.poll(rtxAt);
  assert.equal(out.length, before + 1, "the retransmission");
  assert.ok(stack.pollAt()! > rtxAt);
});

test("touch dispatches only a live connection of this stack, even one with the same 4-tuple elsewhere", () => {
  const a = makeStack();
  const b = makeStack();
  const onA = listen(a.stack);
  const onB = listen(b.stack);
  establish(a.stack, a.out);
  establish(b.stack, b.out); // the same 4-tuple, another stack
  const connA = onA[0].conn;
  connA.send(Buffer.from("hello"), 0); // queued below the socket layer: only a touch sends it
  const [outA, outB] = [a.out.length, b.out.length];
  b.stack.touch(connA);
  b.stack.flush();
  a.stack.flush();
  assert.equal(b.out.length, outB, "another stack never dispatches this connection");
  assert.equal(a.out.length, outA, "nothing was marked on its own stack");
  a.stack.touch(connA);
  a.stack.flush();
  assert.equal(a.out.length, outA + 1);
  assert.equal(Buffer.from(a.out[outA].seg.payload).toString(), "hello");
  // Gone from the table (aborted): a touch is a no-op, not a dispatch of a dead entry.
  onB[0].destroy();
  b.stack.flush();
  const n = b.out.length;
  b.stack.touch(onB[0].conn);
  b.stack.flush();
  assert.equal(b.out.length, n);
  assert.equal(b.stack.connections, 0);
});

test("the socket seed is a copy of the last IPv4+TCP header from the peer", () => {
  const { stack, out } = makeStack();
  const accepted = listen(stack);
  const synAck = establish(stack, out);
  const p = packet(
    { flags: TCP_ACK | TCP_PSH, seq: 1001, ack: (synAck.seq + 1) >>> 0 },
    CLIENT,
    VIP,
    Buffer.from("GET /"),
  );
  stack.input(p);
  const seed = accepted[0].conn.seed!;
  assert.equal(seed.length, 40);
  assert.deepEqual(Buffer.from(seed), Buffer.from(p.subarray(0, 40)));
  p.fill(0); // the device buffer is reused: the seed must not change
  assert.notDeepEqual(Buffer.from(seed), Buffer.from(p.subarray(0, 40)));
});

test("ISNs: keyed, different per 4-tuple, increasing with time for the same tuple (RFC 6528)", () => {
  const s1 = new TcpSecret(new Uint8Array(16).fill(1));
  const s2 = new TcpSecret(new Uint8Array(16).fill(2));
  const t = { localAddr: VIP, localPort: 80, remoteAddr: CLIENT, remotePort: 40000 };
  const t2 = { ...t, remotePort: 40001 };
  const a = initialSequenceNumber(s1, t, 0);
  assert.notEqual(a, initialSequenceNumber(s1, t2, 0));
  assert.notEqual(a, initialSequenceNumber(s2, t, 0));
  assert.equal(initialSequenceNumber(s1, t, 1000), (a + 250_000) >>> 0, "4 us ticks");
  const random = new TcpSecret();
  assert.equal(random.words.length, 4);
});

test("SYN cookies: valid for one to two periods, bound to tuple and peer ISN", () => {
  const s = new TcpSecret(new Uint8Array(16).fill(9));
  const t = { localAddr: VIP, localPort: 80, remoteAddr: CLIENT, remotePort: 40000 };
  const c = makeSynCookie(s, t, 1234, 1460, 7, 10_000);
  const ok = checkSynCookie(s, t, 1235, (c + 1) >>> 0, 70_000);
  assert.deepEqual(ok, { iss: c, mss: 1460, wscale: 7 });
  assert.equal(checkSynCookie(s, t, 1235, (c + 1) >>> 0, 200_000), undefined, "expired");
  assert.equal(checkSynCookie(s, { ...t, remotePort: 40001 }, 1235, (c + 1) >>> 0, 10_000), undefined);
  assert.equal(checkSynCookie(s, t, 1236, (c + 1) >>> 0, 10_000), undefined);
  const noWs = makeSynCookie(s, t, 1, 1300, undefined, 0);
  assert.deepEqual(checkSynCookie(s, t, 2, (noWs + 1) >>> 0, 0), { iss: noWs, mss: 1200, wscale: undefined });
});

test("demultiplexing keeps many connections apart", () => {
  const { stack, out } = makeStack();
  const accepted = listen(stack);
  const acks = new Map<number, number>();
  for (let p = 0; p < 200; p++) acks.set(p, (establish(stack, out, 30000 + p, p * 1000).seq + 1) >>> 0);
  assert.equal(accepted.length, 200);
  for (let p = 199; p >= 0; p--) {
    stack.input(
      packet(
        { flags: TCP_ACK, seq: p * 1000 + 1, ack: acks.get(p)!, srcPort: 30000 + p },
        CLIENT,
        VIP,
        Buffer.from(`#${p}`),
      ),
    );
  }
  for (let p = 0; p < 200; p++) {
    const s = accepted[p];
    assert.equal(s.remotePort, 30000 + p);
    assert.equal(Buffer.concat(s.conn.takeReceived(0)).toString(), `#${p}`);
  }
});

test("a non-reading client is aborted at zeroWindowTimeout: RST, counter, ETIMEDOUT to the socket", async () => {
  const { stack, out, clock } = makeStack({ zeroWindowTimeout: 30_000 });
  const accepted = listen(stack);
  const synAck = establish(stack, out);
  const l1 = (synAck.seq + 1) >>> 0;
  const sock = accepted[0];
  const errors: string[] = [];
  sock.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? ""));
  stack.input(packet({ flags: TCP_ACK, seq: 1001, ack: l1, window: 0 }));
  sock.write(Buffer.alloc(100_000));
  stack.flush();
  while (stack.connections > 0 && clock.now < 120_000) {
    const at = stack.pollAt()!;
    clock.now = at;
    const before = out.length;
    stack.poll(at);
    for (const o of out.slice(before))
      if (o.seg.payload.length === 1) stack.input(packet({ flags: TCP_ACK, seq: 1001, ack: l1, window: 0 }));
  }
  assert.equal(clock.now, 30_000);
  assert.equal(out[out.length - 1].flags, "RST|ACK");
  assert.equal(stack.counters.zeroWindowAborts, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(sock.closeReason, "zero-window");
  assert.deepEqual(errors, ["ETIMEDOUT"]);
});

test("a SYN with FIN or RST is dropped and counted, never taken as a SYN", () => {
  const { stack, out } = makeStack();
  const accepted = listen(stack);
  stack.input(packet({ flags: TCP_SYN | TCP_FIN, seq: 1000 }));
  stack.input(packet({ flags: TCP_SYN | TCP_RST, seq: 1000 }));
  stack.input(
    packet({ flags: TCP_SYN | TCP_FIN | TCP_ACK | TCP_PSH, seq: 1000 }, CLIENT, VIP, Buffer.from("x")),
  );
  assert.equal(out.length, 0, "no SYN-ACK, no RST");
  assert.equal(stack.connections, 0);
  assert.equal(stack.counters.drops["syn-fin"], 2);
  assert.equal(stack.counters.drops["syn-rst"], 1);
  // Nor on an established connection (no challenge ACK, no state change).
  const synAck = establish(stack, out);
  const n = out.length;
  stack.input(packet({ flags: TCP_SYN | TCP_FIN, seq: 1001, ack: (synAck.seq + 1) >>> 0 }));
  stack.input(packet({ flags: TCP_SYN | TCP_RST, seq: 1001 }));
  assert.equal(out.length, n);
  assert.equal(accepted[0].conn.state, "ESTABLISHED");
  assert.equal(stack.counters.drops["syn-fin"], 3);
  assert.equal(stack.counters.drops["syn-rst"], 2);
});

test("impossible source addresses are dropped at input and counted, never answered", () => {
  const { stack, out } = makeStack();
  listen(stack);
  const sources = ["198.18.100.1", "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.0.9", "224.0.0.1"];
  sources.push("239.255.255.250", "240.0.0.1", "254.1.1.1", "255.255.255.255");
  for (const src of sources) {
    stack.input(packet({ flags: TCP_SYN, seq: 1000 }, ipv4FromString(src) as number));
    stack.input(packet({ flags: TCP_ACK, seq: 1000, ack: 5 }, ipv4FromString(src) as number));
  }
  assert.equal(out.length, 0, "no SYN-ACK and no RST to a martian");
  assert.equal(stack.connections, 0);
  assert.equal(stack.counters.drops["bad-source"], 2 * sources.length);
  // The neighbours of each range are ordinary unicast addresses.
  for (const src of ["1.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.254", "198.18.100.2"])
    stack.input(packet({ flags: TCP_SYN, seq: 1000 }, ipv4FromString(src) as number));
  assert.equal(out.filter((o) => o.flags === "SYN|ACK").length, 5);
});

test("challenge ACKs: one per connection per interval, then a global cap drawn per second", () => {
  const draws: number[] = [];
  const { stack, out, clock } = makeStack({ challengeAckPerSecond: 10, challengeAckInterval: 200 }, true, {
    random: (n) => (draws.push(n), 0), // the lowest budget: 5 per second
  });
  const accepted = listen(stack);
  const acks: number[] = [];
  for (let i = 0; i < 20; i++) acks.push((establish(stack, out, 30000 + i).seq + 1) >>> 0);
  assert.equal(accepted.length, 20);
  const inWindowSyn = (i: number) => packet({ flags: TCP_SYN, seq: 1500, srcPort: 30000 + i });
  clock.now = 1000;
  const before = out.length;
  for (let i = 0; i < 20; i++) stack.input(inWindowSyn(i));
  assert.equal(out.length - before, 5, "the global budget of this second");
  assert.ok(out.slice(before).every((o) => o.flags === "ACK" && o.seg.ack === 1001));
  assert.equal(stack.counters.drops["challenge-ack-global-limited"], 15);
  assert.deepEqual(draws, [10]);
  // The same connection again within its interval: limited per connection first.
  clock.now = 1100;
  stack.input(inWindowSyn(0));
  assert.equal(stack.counters.drops["challenge-ack-limited"], 1);
  assert.equal(out.length - before, 5);
  // Next second: a new draw, a new budget.
  clock.now = 2000;
  for (let i = 0; i < 20; i++) stack.input(inWindowSyn(i));
  assert.equal(out.length - before, 10);
  assert.deepEqual(draws, [10, 10]);
  for (const s of accepted) assert.equal(s.conn.state, "ESTABLISHED");
});
