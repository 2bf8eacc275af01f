// GSO output: the connection builds multi-segment packets, the stack marks them for the
// TUN vnet header (partial checksum), and software segmentation (what the kernel does)
// turns them into valid MSS-sized segments.

import { test } from "node:test";
import assert from "node:assert/strict";
import { gsoSegment } from "./gso.js";
import { TcpStack } from "./stack.js";
import { TcpServer } from "./socket.js";
import { Harness, L1, R1, TCP_ACK, pattern } from "./testing.js";
import { checksumFold, pseudoHeaderSum } from "../wire/checksum.js";
import { isWireError } from "../wire/error.js";
import { parseIpv4 } from "../wire/ipv4.js";
import { TCP_FIN, TCP_PSH, TCP_SYN, encodeIpv4Tcp, parseTcp } from "../wire/tcp.js";

test("with GSO a packet carries whole segments up to the windows, the tail last", () => {
  const h = new Harness({ cfg: { gsoMaxBytes: 65000 } }).established();
  h.write(pattern(100_000));
  h.expect([{ seq: L1, len: 14_600 }], "the initial window in one packet");
  h.input({ seq: R1, ack: L1 + 14_600, flags: TCP_ACK });
  // Slow start: cwnd 17520, all of it in one packet (a multiple of the MSS).
  h.expect([{ seq: L1 + 14_600, len: 17_520 }]);
  h.conn.cc.cwnd = 1 << 20;
  h.input({ seq: R1, ack: L1 + 32_120, flags: TCP_ACK });
  // Bounded by the peer's 65535-byte window, cut to whole segments (64240 = 44 x 1460); the
  // 1295 bytes of window left wait (sender SWS avoidance).
  h.expect([{ seq: L1 + 32_120, len: 64_240, flags: "ACK" }]);
  h.input({ seq: R1, ack: L1 + 96_360, flags: TCP_ACK });
  h.expect([{ seq: L1 + 96_360, len: 3_640, flags: "PSH|ACK" }], "the tail");
});

test("without GSO (the default) no packet exceeds the MSS", () => {
  const h = new Harness().established();
  h.conn.cc.cwnd = 1 << 20;
  h.write(pattern(100_000));
  assert.ok(h.take().every((s) => s.len <= 1460));
});

test("the stack hands GSO packets to the output with gsoSize = MSS and a pseudo-header checksum", () => {
  const out: Array<{ p: Uint8Array; gso: number }> = [];
  const clock = { now: 0 };
  const stack = new TcpStack({
    addresses: ["198.18.100.1"],
    clock: () => clock.now,
    output: (p, gso) => out.push({ p, gso }),
    secret: new Uint8Array(16),
    scheduleFlush: () => undefined,
    config: { gsoMaxBytes: 65000 },
  });
  new TcpServer(stack, {}, (s) => s.end(pattern(10_000))).listen(80);
  const vip = 0xc6126401;
  const client = 0xc6120002;
  const pkt = (flags: number, seq: number, ack: number): Uint8Array => {
    const p = encodeIpv4Tcp(
      { src: client, dst: vip, ttl: 64, tos: 0, id: 0, dontFrag: true },
      {
        srcPort: 40000,
        dstPort: 80,
        seq,
        ack,
        flags,
        window: 65535,
        urgent: 0,
        options: { mss: 1000 },
        payload: new Uint8Array(0),
      },
    );
    assert.ok(!isWireError(p));
    return p;
  };
  stack.input(pkt(TCP_SYN, 100, 0));
  const synAck = parseTcp(out[0].p.subarray(20), vip, client);
  assert.ok(!isWireError(synAck));
  stack.input(pkt(TCP_ACK, 101, (synAck.seq + 1) >>> 0));
  stack.flush();
  const big = out.find((o) => o.gso > 0)!;
  assert.ok(big !== undefined);
  assert.equal(big.gso, 1000, "the peer's MSS");
  const total = (big.p[2] << 8) | big.p[3];
  assert.equal(total, big.p.length);
  const tcpLen = total - 20;
  assert.equal((big.p[36] << 8) | big.p[37], checksumFold(pseudoHeaderSum(vip, client, 6, tcpLen)));
  // Segmented in software, every piece is a valid packet of at most one MSS.
  const segs = gsoSegment(big.p.slice(), big.gso);
  assert.equal(segs.length, Math.ceil((tcpLen - 20) / 1000));
  let expectSeq = -1;
  for (const [i, s] of segs.entries()) {
    const ip = parseIpv4(s);
    assert.ok(!isWireError(ip), `segment ${i}: ${String(ip)}`);
    const t = parseTcp(ip.payload, ip.src, ip.dst);
    assert.ok(!isWireError(t), `segment ${i} checksum`);
    assert.ok(t.payload.length <= 1000);
    if (expectSeq >= 0) assert.equal(t.seq, expectSeq);
    expectSeq = (t.seq + t.payload.length) >>> 0;
    const last = i === segs.length - 1;
    assert.equal(
      (t.flags & (TCP_PSH | TCP_FIN)) !== 0,
      last &&
        (parseTcp(big.p.subarray(20), 0, 0, { verifyChecksum: false }) as { flags: number }).flags !==
          TCP_ACK,
    );
  }
});

test("gsoSegment leaves a packet that fits alone", () => {
  const p = encodeIpv4Tcp(
    { src: 1, dst: 2, ttl: 64, tos: 0, id: 7, dontFrag: true },
    {
      srcPort: 1,
      dstPort: 2,
      seq: 5,
      ack: 0,
      flags: TCP_ACK,
      window: 1,
      urgent: 0,
      options: {},
      payload: new Uint8Array(100),
    },
  );
  assert.ok(!isWireError(p));
  const segs = gsoSegment(p, 1460);
  assert.equal(segs.length, 1);
  assert.deepEqual(Buffer.from(segs[0]), Buffer.from(p));
});
