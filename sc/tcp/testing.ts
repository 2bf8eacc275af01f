// Test support for packet-level tests of one TcpConnection under virtual time (in the
// manner of smoltcp's socket/tcp.rs tests): the test plays the remote peer, feeds segments,
// and asserts the exact segments that come out and when. Not imported by product code.

import assert from "node:assert/strict";
import { makeConfig, type TcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import { type ConnectionEnv, type FourTuple } from "./types.js";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpOptions, type TcpRepr } from "../wire/tcp.js";

export { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN };

export const LOCAL_ADDR = 0xc6126401; // 198.18.100.1
export const REMOTE_ADDR = 0xc6120002; // 198.18.0.2
export const LOCAL_PORT = 80;
export const REMOTE_PORT = 49152;
/** Our ISS in tests. */
export const LOCAL_ISS = 10_000;
/** The peer's ISS in tests. */
export const REMOTE_ISS = 50_000;

export const TUPLE: FourTuple = {
  localAddr: LOCAL_ADDR,
  localPort: LOCAL_PORT,
  remoteAddr: REMOTE_ADDR,
  remotePort: REMOTE_PORT,
};

/** A segment as tests write it: only the fields that matter, the rest defaulted. */
export interface Seg {
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: TcpOptions;
  payload?: Uint8Array | string;
}

/** An emitted segment, normalised for deepEqual. */
export interface OutSeg {
  seq: number;
  ack: number;
  flags: string;
  window: number;
  options?: TcpOptions;
  len: number;
  payload?: string;
}

export function flagNames(f: number): string {
  const names: string[] = [];
  if (f & TCP_SYN) names.push("SYN");
  if (f & TCP_FIN) names.push("FIN");
  if (f & TCP_RST) names.push("RST");
  if (f & TCP_PSH) names.push("PSH");
  if (f & TCP_ACK) names.push("ACK");
  return names.join("|");
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function pattern(len: number, seed = 1): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function toRepr(s: Seg): TcpRepr {
  const payload = typeof s.payload === "string" ? bytes(s.payload) : (s.payload ?? new Uint8Array(0));
  return {
    srcPort: REMOTE_PORT,
    dstPort: LOCAL_PORT,
    seq: s.seq >>> 0,
    ack: (s.ack ?? 0) >>> 0,
    flags: s.flags,
    window: s.window ?? 65535,
    urgent: 0,
    options: s.options ?? {},
    payload,
  };
}

function normalise(r: TcpRepr): OutSeg {
  const o: OutSeg = {
    seq: r.seq,
    ack: r.ack,
    flags: flagNames(r.flags),
    window: r.window,
    len: r.payload.length,
  };
  if (r.options.mss !== undefined || r.options.wscale !== undefined || r.options.sack !== undefined) {
    o.options = { ...r.options };
  }
  if (r.payload.length > 0 && r.payload.length <= 64) o.payload = Buffer.from(r.payload).toString("latin1");
  return o;
}

export class TestEnv implements ConnectionEnv {
  challengeBudget = Infinity;
  readonly drops: Record<string, number> = {};
  constructor(readonly cfg: TcpConfig) {}
  countDrop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }
  retransmits = 0;
  countRetransmit(): void {
    this.retransmits++;
  }
  zeroWindowAborts = 0;
  countZeroWindowAbort(): void {
    this.zeroWindowAborts++;
  }
  takeChallengeAck(): boolean {
    if (this.challengeBudget <= 0) return false;
    this.challengeBudget--;
    return true;
  }
}

export interface HarnessOptions {
  cfg?: Partial<TcpConfig>;
  /** Our ISS (default LOCAL_ISS). */
  iss?: number;
}

/** One connection, a virtual clock, and the segments it emitted. */
export class Harness {
  now = 0;
  readonly env: TestEnv;
  conn!: TcpConnection;
  /** Every emitted segment (normalised) with its emission time. */
  readonly log: Array<{ at: number; seg: OutSeg; raw: TcpRepr }> = [];
  private pending: Array<{ at: number; seg: OutSeg; raw: TcpRepr }> = [];

  readonly iss: number;

  constructor(opts: HarnessOptions = {}) {
    this.iss = opts.iss ?? LOCAL_ISS;
    this.env = new TestEnv(
      // Tail loss probes are off here so timelines show the RTO rules alone (TLP has its own tests).
      makeConfig({
        rcvBufSize: 65535,
        delayedAck: 40,
        timeWait: 1000,
        rtoInitial: 1000,
        tailLossProbe: false,
        ...opts.cfg,
      }),
    );
  }

  get cfg(): TcpConfig {
    return this.env.cfg;
  }

  private readonly sink = (r: TcpRepr): void => {
    const copy: TcpRepr = { ...r, options: { ...r.options }, payload: Uint8Array.from(r.payload) };
    const e = { at: this.now, seg: normalise(copy), raw: copy };
    this.log.push(e);
    this.pending.push(e);
  };

  /** Drives an existing connection (e.g. one restored from exported state). */
  attach(conn: TcpConnection, now: number): this {
    this.conn = conn;
    this.now = now;
    return this;
  }

  /** Passive open: a SYN arrives, we answer SYN-ACK (taken from the output). */
  listen(syn: Partial<Seg> = {}): OutSeg {
    const seg = toRepr({ seq: REMOTE_ISS, flags: TCP_SYN, options: { mss: 1460 }, ...syn });
    this.conn = TcpConnection.accept(this.env, TUPLE, seg, this.iss, this.now);
    this.dispatch();
    const out = this.take();
    assert.equal(out.length, 1, "one SYN-ACK");
    return out[0];
  }

  /** Passive open completed: SYN, SYN-ACK, ACK; output cleared. */
  established(opts: { syn?: Partial<Seg>; ackWindow?: number } = {}): this {
    this.listen(opts.syn);
    const rseq = ((opts.syn?.seq ?? REMOTE_ISS) + 1) >>> 0;
    this.input({ seq: rseq, ack: (this.iss + 1) >>> 0, flags: TCP_ACK, window: opts.ackWindow ?? 65535 });
    assert.equal(this.conn.state, "ESTABLISHED");
    this.take();
    this.conn.events = 0;
    return this;
  }

  /** Active open: the SYN we sent (taken from the output). */
  connect(): OutSeg {
    this.conn = TcpConnection.connect(this.env, TUPLE, this.iss, this.now);
    this.dispatch();
    const out = this.take();
    assert.equal(out.length, 1, "one SYN");
    return out[0];
  }

  /** Feeds a segment from the peer, then dispatches. */
  input(s: Seg): void {
    this.conn.process(this.now, toRepr(s));
    this.dispatch();
  }

  /** Feeds a segment without dispatching (to batch several). */
  inputOnly(s: Seg): void {
    this.conn.process(this.now, toRepr(s));
  }

  dispatch(): void {
    this.conn.dispatch(this.now, this.sink);
  }

  /** Application write, then dispatch. */
  write(data: Uint8Array | string): void {
    this.conn.send(typeof data === "string" ? bytes(data) : data, this.now);
    this.dispatch();
  }

  /** Application close (FIN after the queue), then dispatch. */
  close(): void {
    this.conn.close(this.now);
    this.dispatch();
  }

  /** The application reads everything queued; returns it as a string (latin1). */
  read(): string {
    const chunks = this.conn.takeReceived(this.now);
    this.dispatch();
    return Buffer.concat(chunks).toString("latin1");
  }

  /** Advances virtual time to `t`, running the connection's timers at each deadline. */
  advanceTo(t: number): void {
    for (let guard = 0; guard < 10_000; guard++) {
      const at = this.conn.pollAt();
      if (at > t) break;
      this.now = Math.max(this.now, at);
      this.dispatch();
    }
    this.now = t;
    this.dispatch();
  }

  advance(ms: number): void {
    this.advanceTo(this.now + ms);
  }

  /** Emitted segments since the last take(). */
  take(): OutSeg[] {
    const out = this.pending.map((e) => e.seg);
    this.pending = [];
    return out;
  }

  takeRaw(): TcpRepr[] {
    const out = this.pending.map((e) => e.raw);
    this.pending = [];
    return out;
  }

  takeTimed(): Array<{ at: number; seg: OutSeg }> {
    const out = this.pending.map((e) => ({ at: e.at, seg: e.seg }));
    this.pending = [];
    return out;
  }

  /** Asserts that exactly these segments came out since the last take(). */
  expect(expected: Array<Partial<OutSeg>>, message?: string): void {
    const got = this.take();
    assert.equal(got.length, expected.length, `${message ?? ""} segment count: ${JSON.stringify(got)}`);
    for (let i = 0; i < expected.length; i++) {
      const want = expected[i];
      const picked: Partial<OutSeg> = {};
      for (const k of Object.keys(want) as Array<keyof OutSeg>)
        (picked as Record<string, unknown>)[k] = got[i][k];
      assert.deepEqual(picked, want, `${message ?? ""} segment ${i}: ${JSON.stringify(got[i])}`);
    }
  }

  expectNothing(message?: string): void {
    this.expect([], message);
  }
}

/** The ACK values our segments carry after the handshake. */
export const L1 = LOCAL_ISS + 1;
export const R1 = REMOTE_ISS + 1;
