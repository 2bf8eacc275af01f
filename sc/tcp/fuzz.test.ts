// Stateful TCP fuzz, in the manner of smoltcp's fuzz target `tcp_headers`: the checksums are
// always right, so the segments get past the parser and reach the state machine. A seeded
// PRNG plays a crowd of peers against one stack that listens on VIP:80 (small SYN backlog,
// so cookies too) and whose accepted connections keep writing a known byte stream: proper
// handshakes and ACKs that move connections forward, mixed with plausible and implausible
// sequence and acknowledgment numbers, flag combinations, windows, options (MSS, window
// scale, SACK blocks around the data in flight or anywhere), payloads, raw header bytes
// (then the checksum is fixed again), martian sources, the application reading, pausing,
// closing and aborting, and virtual time jumping over timers. After every step:
//   - nothing threw;
//   - every packet out parses with valid IPv4 and TCP checksums, comes from the VIP and
//     goes to a plausible peer;
//   - a connection's segments lie in its send space (snd_una - 1 .. snd_max), carry exactly
//     the bytes the application wrote at those sequence numbers, and ACK at most rcv_nxt;
//   - snd_una <= snd_nxt <= snd_max, flight <= 2^30, cwnd and ssthresh sane, windows within
//     their fields, received bytes within the receive buffer, out-of-order blocks bounded,
//     the advertised right edge never moves left;
//   - every timer is a number (Infinity = off), and a connection with data to (re)send has
//     one armed.
// A failure names its seed: TCP_FUZZ_SEED=<n> replays it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { TcpStack, type ConnectionOwner } from "./stack.js";
import { type TcpConnection } from "./connection.js";
import { EV_CLOSED } from "./types.js";
import { implausibleRemote } from "../wire/addr.js";
import { seqAdd, seqDiff, seqGe, seqLe } from "./seq.js";
import { pattern } from "./testing.js";
import { Prng, testSeed } from "../wire/testing.js";
import { checksumAdd, internetChecksum, pseudoHeaderSum } from "../wire/checksum.js";
import { isWireError } from "../wire/error.js";
import { parseIpv4 } from "../wire/ipv4.js";
import {
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  encodeIpv4Tcp,
  parseTcp,
  type TcpOptions,
  type TcpRepr,
} from "../wire/tcp.js";

const VIP = 0xc6126401; // 198.18.100.1
const CLIENTS = [0xc6120002, 0xc6120003];
const MARTIANS = [VIP, 0x7f000001, 0xffffffff, 0xe0000001, 0x00000000, 0xf0000005];
const PORTS = 12;
const BASE_PORT = 40000;
const STEPS = 4000;
/** Every server connection sends these bytes from its ISS + 1 on. */
const STREAM = pattern(1 << 20, 99);
const MAX_WINDOW = 0xffff * 2 ** 14;

interface App {
  conn: TcpConnection;
  written: number;
  reading: boolean;
}

interface Before {
  conn: TcpConnection;
  sndUna: number;
  rcvAdvEdge: number;
}

class Fuzzer {
  readonly r: Prng;
  now = 0;
  readonly out: Uint8Array[] = [];
  readonly stack: TcpStack;
  readonly apps = new Map<TcpConnection, App>();
  /** SYN-ACKs seen per tuple: a correct (cookie) handshake ACK can be sent later. */
  readonly synAcks = new Map<string, { seq: number; ack: number }>();
  fed = 0;
  readonly tuples: Array<{ addr: number; port: number }> = [];

  constructor(seed: number) {
    this.r = new Prng(seed);
    const r = this.r;
    this.stack = new TcpStack({
      addresses: [VIP],
      clock: () => this.now,
      output: (p) => this.out.push(p.slice()),
      scheduleFlush: () => undefined,
      secret: new Uint8Array(16).fill(5),
      random: (n) => r.below(n),
      config: {
        mtu: r.pick([576, 1280, 1500]),
        rcvBufSize: r.pick([4096, 8192, 65535, 300_000]),
        sndBufSize: 1 << 20,
        maxOooRanges: r.pick([2, 4, 64]),
        synBacklog: 4,
        maxConnections: 20,
        maxTimeWait: 4,
        timeWait: 500,
        finWait2Timeout: 5000,
        zeroWindowTimeout: 8000,
        maxRetransmits: 6,
        rtoMax: 5000,
        synAckRetries: 2,
        noDelay: r.bool(),
        sack: r.bool(0.8),
        tailLossProbe: r.bool(),
        challengeAckPerSecond: r.pick([5, 1000]),
      },
    });
    for (const addr of CLIENTS)
      for (let p = 0; p < PORTS; p++) this.tuples.push({ addr, port: BASE_PORT + p });
    this.stack.listen(80, VIP, {
      accept: (conn: TcpConnection): ConnectionOwner => {
        this.apps.set(conn, { conn, written: 0, reading: this.r.bool(0.7) });
        return {
          onConnectionEvents: (c: TcpConnection): void => {
            if (c.events & EV_CLOSED) this.apps.delete(c);
            c.events = 0;
          },
        };
      },
    });
  }

  conn(t: { addr: number; port: number }): TcpConnection | undefined {
    return this.stack.lookup(VIP, 80, t.addr, t.port);
  }

  // ---------------------------------------------------------------- segments from peers

  private pickSeq(c: TcpConnection): number {
    const r = this.r;
    switch (r.below(8)) {
      case 0:
      case 1:
      case 2:
        return c.rcv.nxt;
      case 3:
        return seqAdd(c.rcv.nxt, r.below(Math.max(seqDiff(c.rcv.advEdge, c.rcv.nxt), 1) + 3000));
      case 4:
        return seqAdd(c.rcv.nxt, -1 - r.below(3000));
      case 5:
        return seqAdd(c.rcv.advEdge, r.below(5) - 2);
      case 6:
        return c.rcv.irs;
      default:
        return r.u32();
    }
  }

  private pickAck(c: TcpConnection): number {
    const r = this.r;
    switch (r.below(9)) {
      case 0:
      case 1:
      case 2:
        return c.snd.max;
      case 3:
      case 4:
        return seqAdd(c.snd.una, r.below(c.flight + 1));
      case 5:
        return seqAdd(c.snd.max, 1 + r.below(5000));
      case 6:
        return seqAdd(c.snd.una, -r.below(0x30000));
      case 7:
        return r.pick([c.snd.iss, seqAdd(c.snd.iss, 1), c.snd.una]);
      default:
        return r.u32();
    }
  }

  private pickFlags(): number {
    const r = this.r;
    if (r.bool(0.03)) return r.below(256);
    let f = r.bool(0.9) ? TCP_ACK : 0;
    if (r.bool(0.3)) f |= TCP_PSH;
    if (r.bool(0.08)) f |= TCP_FIN;
    if (r.bool(0.04)) f |= TCP_RST;
    if (r.bool(0.04)) f |= TCP_SYN;
    if (r.bool(0.02)) f |= r.pick([TCP_URG, TCP_ECE, TCP_CWR]);
    return f;
  }

  private pickWindow(): number {
    const r = this.r;
    return r.pick([0, 0, 1, 100, 1000, 8000, 65535, 65535, r.below(65536)]);
  }

  private pickOptions(c: TcpConnection | undefined): TcpOptions {
    const r = this.r;
    const o: TcpOptions = {};
    if (r.bool(0.25)) {
      const blocks: Array<[number, number]> = [];
      for (let n = 1 + r.below(4); n > 0; n--) {
        if (c !== undefined && r.bool(0.8)) {
          // Somewhere around the data in flight (possibly reversed, possibly beyond snd_max).
          const a = seqAdd(c.snd.una, r.below(c.flight + 3000) - 1000);
          blocks.push([a, seqAdd(a, r.below(5000) - 100)]);
        } else {
          blocks.push([r.u32(), r.u32()]);
        }
      }
      o.sack = blocks;
    }
    if (r.bool(0.06)) o.mss = r.pick([0, 1, 63, 536, 1460, 9000, 65535]);
    if (r.bool(0.05)) o.wscale = r.below(15);
    if (r.bool(0.04)) o.sackPermitted = true;
    if (r.bool(0.05)) o.timestamp = { tsval: r.u32(), tsecr: r.u32() };
    return o;
  }

  private pickPayload(c: TcpConnection | undefined): Uint8Array {
    const r = this.r;
    if (r.bool(0.6)) return new Uint8Array(0);
    const wnd = c === undefined ? 1000 : Math.max(seqDiff(c.rcv.advEdge, c.rcv.nxt), 1);
    return r.bytes(1 + r.below(Math.min(wnd + 200, 3000)));
  }

  /** A segment a well-behaved peer would send now: it moves the connection forward. */
  private goodSegment(c: TcpConnection): TcpRepr {
    const r = this.r;
    const seg = this.repr(c.rcv.nxt, c.snd.max, TCP_ACK);
    if (c.state === "SYN-RECEIVED") return seg;
    if (r.bool(0.3)) seg.ack = seqAdd(c.snd.una, r.below(c.flight + 1));
    seg.window = r.bool(0.1) ? 0 : r.pick([2000, 30_000, 65535]);
    if (r.bool(0.3)) {
      const room = seqDiff(c.rcv.advEdge, c.rcv.nxt);
      if (room > 0) seg.payload = r.bytes(1 + r.below(Math.min(room, 2000)));
    }
    if (r.bool(0.04)) seg.flags |= TCP_FIN;
    return seg;
  }

  private repr(seq: number, ack: number, flags: number): TcpRepr {
    return {
      srcPort: 0,
      dstPort: 80,
      seq: seq >>> 0,
      ack: ack >>> 0,
      flags,
      window: 65535,
      urgent: 0,
      options: {},
      payload: new Uint8Array(0),
    };
  }

  /** One segment from some peer, as a packet with valid checksums. */
  private segment(): Uint8Array {
    const r = this.r;
    const t = r.pick(this.tuples);
    const c = this.conn(t);
    let seg: TcpRepr;
    const key = `${t.addr}:${t.port}`;
    const synAck = this.synAcks.get(key);
    if (c !== undefined && r.bool(0.45)) {
      seg = this.goodSegment(c);
    } else if (c === undefined && synAck !== undefined && r.bool(0.5)) {
      // Complete a handshake whose state is only in a cookie (or was dropped).
      seg = this.repr(synAck.ack, seqAdd(synAck.seq, 1), TCP_ACK);
      if (r.bool(0.3)) seg.payload = r.bytes(1 + r.below(500));
      this.synAcks.delete(key);
    } else if (c === undefined && r.bool(0.6)) {
      seg = this.repr(r.u32(), 0, TCP_SYN);
      seg.options = { mss: r.pick([0, 88, 536, 1460, 8960]) };
      if (r.bool(0.7)) seg.options.wscale = r.below(15);
      if (r.bool(0.7)) seg.options.sackPermitted = true;
      seg.window = this.pickWindow();
    } else {
      seg =
        c === undefined
          ? this.repr(r.u32(), r.u32(), this.pickFlags())
          : this.repr(this.pickSeq(c), this.pickAck(c), this.pickFlags());
      seg.window = this.pickWindow();
      seg.options = this.pickOptions(c);
      seg.payload = this.pickPayload(c);
      if (seg.flags & TCP_URG) seg.urgent = r.below(65536);
    }
    seg.srcPort = t.port;
    const src = r.bool(0.01) ? r.pick(MARTIANS) : t.addr;
    const ip = { src, dst: VIP, ttl: 64, tos: 0, id: r.below(65536), dontFrag: true };
    let p = encodeIpv4Tcp(ip, seg);
    // Options beyond 40 bytes: fewer SACK blocks (the rest the parser sees via mutation).
    while (isWireError(p) && (seg.options.sack?.length ?? 0) > 0) {
      seg.options.sack = seg.options.sack!.slice(1);
      p = encodeIpv4Tcp(ip, seg);
    }
    assert.ok(!isWireError(p), `fuzzer built a bad segment: ${String(p)}`);
    if (r.bool(0.05)) this.mutateHeader(p);
    return p;
  }

  /** Overwrites random TCP header bytes (not the checksum), then fixes the checksum. */
  private mutateHeader(p: Uint8Array): void {
    const r = this.r;
    const doff = (p[32] >>> 4) * 4;
    for (let n = 1 + r.below(3); n > 0; n--) {
      let i = 20 + r.below(Math.max(doff, 20));
      if (i === 36 || i === 37) i = 32;
      p[i] = r.pick([0, 1, 2, 3, 4, 5, 8, 10, 14, 15, 0x50, 0xf0, 0xff, r.below(256)]);
    }
    const tcpLen = p.length - 20;
    p[36] = p[37] = 0;
    const pseudo = pseudoHeaderSum(readU32(p, 12), VIP, 6, tcpLen);
    const c = ~checksumAdd(p, 20, tcpLen, pseudo) & 0xffff;
    p[36] = c >>> 8;
    p[37] = c & 0xff;
    assert.equal(internetChecksum(p, 20, tcpLen, pseudo), 0);
  }

  // ---------------------------------------------------------------- the application

  private appAction(): void {
    const r = this.r;
    const apps = [...this.apps.values()];
    if (apps.length === 0) return;
    const a = r.pick(apps);
    const c = a.conn;
    switch (r.below(10)) {
      case 0:
      case 1:
      case 2:
      case 3: {
        const n = Math.min(r.below(30_000), STREAM.length - a.written);
        if (n > 0 && !c.snd.finQueued && !c.isClosed()) {
          c.send(STREAM.subarray(a.written, a.written + n), this.now);
          a.written += n;
        }
        break;
      }
      case 4:
      case 5:
        if (a.reading) c.takeReceived(this.now);
        break;
      case 6:
        a.reading = !a.reading;
        break;
      case 7:
      case 8:
        c.close(this.now);
        break;
      default:
        if (r.bool(0.2)) c.abort();
    }
    this.stack.touch(c);
  }

  // ---------------------------------------------------------------- time

  private advance(ms: number): void {
    const to = this.now + ms;
    for (let guard = 0; guard < 10_000; guard++) {
      const at = this.stack.pollAt();
      if (at === undefined || at > to) break;
      assert.ok(Number.isFinite(at), `stack deadline ${at}`);
      if (at > this.now) this.now = at;
      this.stack.poll(this.now);
    }
    this.now = to;
  }

  // ---------------------------------------------------------------- one step + invariants

  step(): void {
    const r = this.r;
    const before = new Map<string, Before>();
    for (const t of this.tuples) {
      const c = this.conn(t);
      if (c !== undefined)
        before.set(`${t.addr}:${t.port}`, { conn: c, sndUna: c.snd.una, rcvAdvEdge: c.rcv.advEdge });
    }
    const what = r.below(100);
    if (what < 70) {
      for (let n = 1 + r.below(3); n > 0; n--) {
        this.stack.receive(this.segment());
        this.fed++;
      }
      this.stack.flush();
    } else if (what < 85) {
      for (let n = 1 + r.below(2); n > 0; n--) this.appAction();
      this.stack.flush();
    } else {
      const ms = r.bool(0.8) ? r.below(50) : r.bool(0.9) ? r.below(3000) : r.below(12_000);
      this.advance(ms);
    }
    this.checkOutput(before);
    this.checkConnections(before);
  }

  private checkOutput(before: Map<string, Before>): void {
    for (const p of this.out.splice(0)) {
      const ip = parseIpv4(p);
      assert.ok(!isWireError(ip), `emitted a bad IPv4 packet: ${String(ip)}`);
      const seg = parseTcp(ip.payload, ip.src, ip.dst);
      assert.ok(!isWireError(seg), `emitted a bad TCP segment: ${String(seg)}`);
      assert.equal(ip.src, VIP);
      assert.ok(ip.dst !== VIP && implausibleRemote(ip.dst) === undefined, `sent to ${ip.dst}`);
      const key = `${ip.dst}:${seg.dstPort}`;
      // The connection that sent it: the one there after the step, else the one before
      // (it may have closed). A tuple reused during the step (TIME-WAIT, then a new SYN) is
      // ambiguous and skipped. A mutated header can address any port: RSTs for no socket.
      const pre = before.get(key)?.conn;
      const post = seg.srcPort === 80 ? this.stack.lookup(VIP, 80, ip.dst, seg.dstPort) : undefined;
      if (pre !== undefined && post !== undefined && pre !== post) continue;
      const c = seg.srcPort !== 80 ? undefined : (post ?? pre);
      if ((seg.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && seg.srcPort === 80) {
        this.synAcks.set(key, { seq: seg.seq, ack: seg.ack });
      }
      if (c === undefined || seg.flags & TCP_RST) {
        // Replies without a connection: RST for no socket, or a cookie SYN-ACK.
        if (c === undefined)
          assert.ok(seg.flags & TCP_RST || seg.flags === (TCP_SYN | TCP_ACK), `flags ${seg.flags}`);
        assert.equal(seg.payload.length, 0);
        continue;
      }
      const len = seg.payload.length;
      if (seg.flags & TCP_SYN) {
        // From a half-open connection: its ISS; otherwise a stateless cookie SYN-ACK. A
        // connection made during the step may follow a cookie SYN-ACK the stack sent earlier in
        // the step to another SYN on the same tuple: that one acknowledges another ISN
        // (TCP_FUZZ_SEED=4225229801 found it), so it is the cookie's, not this connection's.
        const answersThisSyn = pre !== undefined || seg.ack === seqAdd(c.rcv.irs, 1);
        if (c.state === "SYN-RECEIVED" && answersThisSyn)
          assert.equal(seg.seq, c.snd.iss, "SYN-ACK from our ISS");
        assert.equal(len, 0);
        continue;
      }
      assert.ok(seg.flags & TCP_ACK, "every synchronized segment carries ACK");
      const una = before.get(key)?.conn === c ? before.get(key)!.sndUna : c.snd.una;
      const end = seqAdd(seg.seq, len + (seg.flags & TCP_FIN ? 1 : 0));
      assert.ok(seqGe(seg.seq, seqAdd(una, -1)), `seq ${seg.seq} below snd_una ${una}`);
      assert.ok(seqLe(end, c.snd.max), `segment end ${end} beyond snd_max ${c.snd.max}`);
      assert.ok(seqLe(seg.ack, c.rcv.nxt), `ack ${seg.ack} beyond rcv_nxt ${c.rcv.nxt}`);
      if (len > 0) {
        const off = seqDiff(seg.seq, seqAdd(c.snd.iss, 1));
        assert.ok(off >= 0 && off + len <= STREAM.length, `payload offset ${off}`);
        assert.ok(
          Buffer.from(seg.payload).equals(STREAM.subarray(off, off + len)),
          `wrong bytes at offset ${off} (${len})`,
        );
        assert.ok(len <= c.snd.mss, `segment of ${len} > MSS ${c.snd.mss}`);
      }
    }
  }

  private checkConnections(before: Map<string, Before>): void {
    const cfg = this.stack.cfg;
    assert.ok(this.stack.connections <= cfg.maxConnections);
    assert.equal(this.stack.counters.packetsIn, this.fed);
    const deadline = this.stack.pollAt();
    assert.ok(deadline === undefined || Number.isFinite(deadline), `stack deadline ${deadline}`);
    for (const t of this.tuples) {
      const c = this.conn(t);
      if (c === undefined) continue;
      const name = `${c.state} ${t.addr}:${t.port}`;
      assert.ok(seqLe(c.snd.una, c.snd.nxt) && seqLe(c.snd.nxt, c.snd.max), `${name}: una/nxt/max`);
      assert.ok(c.flight <= MAX_WINDOW, `${name}: flight ${c.flight}`);
      assert.ok(c.cc.cwnd >= 1 && c.cc.cwnd <= 2 ** 31, `${name}: cwnd ${c.cc.cwnd}`);
      assert.ok(
        c.cc.ssthresh >= 2 * c.snd.mss || c.cc.ssthresh === 0x7fffffff,
        `${name}: ssthresh ${c.cc.ssthresh}`,
      );
      assert.ok(c.snd.wnd >= 0 && c.snd.wnd <= MAX_WINDOW, `${name}: snd_wnd ${c.snd.wnd}`);
      assert.ok(c.snd.mss >= 64 && c.snd.mss <= cfg.mtu - 40, `${name}: mss ${c.snd.mss}`);
      const held = c.rxQueued + c.ooo.bytes;
      assert.ok(held <= cfg.rcvBufSize + 2 ** c.rcv.wscale, `${name}: holds ${held} bytes`);
      assert.ok(c.ooo.blockCount <= cfg.maxOooRanges, `${name}: ${c.ooo.blockCount} ooo blocks`);
      assert.ok(seqDiff(c.rcv.advEdge, c.rcv.nxt) <= MAX_WINDOW, `${name}: window`);
      const b = before.get(`${t.addr}:${t.port}`);
      if (b?.conn === c) assert.ok(seqGe(c.rcv.advEdge, b.rcvAdvEdge), `${name}: right edge moved left`);
      for (const [k, v] of Object.entries({
        rtxAt: c.timers.rtxAt,
        tlpAt: c.timers.tlpAt,
        persistAt: c.timers.persistAt,
        delayedAckAt: c.timers.delayedAckAt,
        closeAt: c.timers.closeAt,
        pollAt: c.pollAt(),
      })) {
        assert.ok(v === Infinity || (Number.isFinite(v) && v >= 0), `${name}: ${k} = ${v}`);
      }
      const mustRun = c.synchronized && c.state !== "TIME-WAIT" && (c.flight > 0 || c.txQueue.length > 0);
      if (mustRun) assert.ok(Number.isFinite(c.pollAt()), `${name}: data to send but no timer`);
    }
  }
}

function readU32(p: Uint8Array, off: number): number {
  return ((p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3]) >>> 0;
}

function seeds(): number[] {
  const env = process.env.TCP_FUZZ_SEED;
  if (env !== undefined && env !== "") return [Number(env) >>> 0];
  // Fixed seeds keep the coverage of every run; a fresh one explores further.
  return [1, 2, 3, testSeed()];
}

test(`stateful TCP fuzz: ${STEPS} steps per seed, valid checksums, invariants after each step`, () => {
  for (const seed of seeds()) {
    const f = new Fuzzer(seed);
    const reached = new Set<string>();
    try {
      for (let i = 0; i < STEPS; i++) {
        f.step();
        for (const t of f.tuples) {
          const c = f.conn(t);
          if (c !== undefined) reached.add(c.state);
        }
      }
    } catch (err) {
      throw new Error(`TCP_FUZZ_SEED=${seed}: ${(err as Error).message}`, { cause: err });
    }
    // The fuzz must reach the state machine, not just the parser.
    for (const state of ["SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "CLOSE-WAIT"]) {
      assert.ok(reached.has(state), `seed ${seed} never reached ${state}: ${[...reached].join()}`);
    }
    const c = f.stack.counters;
    assert.ok(c.connectionsAccepted > 10, `seed ${seed}: ${c.connectionsAccepted} accepted`);
    assert.ok(c.packetsOut > STEPS / 2, `seed ${seed}: ${c.packetsOut} packets out`);
  }
});
