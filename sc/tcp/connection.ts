// One TCP connection as a pure state machine (RFC 9293), in the style of smoltcp's
// socket/tcp.rs: plain state fields, `process()` for an incoming segment, `dispatch()` for
// everything that is due to go out, `pollAt()` for the next deadline. No I/O and no clock:
// every entry point takes `now` (milliseconds). The stack (stack.ts) owns demultiplexing,
// listeners, the timer heap and the packet codec; the socket layer (socket.ts) turns the
// `events` bits into node:net-style events.
//
// Sequence variables follow BSD: snd_una (oldest unacknowledged), snd_nxt (next to send; it
// goes back to snd_una after a retransmission timeout), snd_max (highest sent + 1, which is
// RFC 9293's SND.NXT). Exported state calls snd_max "sndNxt" (see state.ts).

import type { TcpConfig } from "./config.js";
import { initialWindowBytes, windowScaleFor } from "./config.js";
import { copyBytes } from "./bytes.js";
import { Reassembler } from "./reassembly.js";
import { SendQueue } from "./send-queue.js";
import { SackScoreboard } from "./scoreboard.js";
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqMax, seqMin } from "./seq.js";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpOptions, type TcpRepr } from "../wire/tcp.js";

export type TcpState =
  | "CLOSED"
  | "SYN-SENT"
  | "SYN-RECEIVED"
  | "ESTABLISHED"
  | "FIN-WAIT-1"
  | "FIN-WAIT-2"
  | "CLOSE-WAIT"
  | "CLOSING"
  | "LAST-ACK"
  | "TIME-WAIT";

/** Why a connection ended (socket 'close' carries it). */
export type CloseReason =
  /** Both FINs exchanged and acknowledged. */
  | "closed"
  /** The peer sent an acceptable RST (ECONNRESET). */
  | "reset"
  /** Active open answered with RST (ECONNREFUSED). */
  | "refused"
  /** Retransmissions, SYN-ACKs, zero-window or keepalive probes went unanswered (ETIMEDOUT). */
  | "timeout"
  /** The peer kept its window closed for zeroWindowTimeout without taking our data
   *  (ETIMEDOUT; counted as zeroWindowAborts). */
  | "zero-window"
  /** Local abort: destroy() sent an RST. */
  | "aborted"
  /** Removed without any packet: dropSilently() or a clone whose response was acknowledged. */
  | "dropped";

// Event bits the socket layer consumes (conn.events), set by process/dispatch.
export const EV_ESTABLISHED = 1;
/** In-order bytes were appended to the receive queue. */
export const EV_DATA = 2;
/** The peer's FIN arrived (after all its data). */
export const EV_FIN = 4;
/** snd_una advanced (write callbacks, 'drain'). */
export const EV_ACKED = 8;
/** Our FIN was acknowledged. */
export const EV_FINISHED = 16;
/** The connection is over for the application (closeReason says why). It may linger in
 *  TIME-WAIT inside the stack. */
export const EV_CLOSED = 32;
/** The idle timeout set with setIdleTimeout elapsed without activity. */
export const EV_TIMEOUT = 64;

/** Per-stack services a connection needs: the config, the global challenge-ACK budget, and
 *  the drop counters. */
export interface ConnectionEnv {
  readonly cfg: TcpConfig;
  /** RFC 5961 section 7: the stack-wide cap on challenge ACKs (randomised per second,
   *  challenge-ack.ts). Returns false when this second's budget is spent. */
  takeChallengeAck(now: number): boolean;
  /** Counts a segment (or part of one) this connection refused, by reason. */
  countDrop(reason: string): void;
  /** Counts a segment that repeats sequence space already sent (retransmission or probe). */
  countRetransmit(): void;
  /** Counts a connection aborted because the peer's window stayed closed too long. */
  countZeroWindowAbort(): void;
}

export interface FourTuple {
  localAddr: number;
  localPort: number;
  remoteAddr: number;
  remotePort: number;
}

/** Options for a connection created by importState on a clone (Socket Cloning). */
export interface CloneBehaviour {
  /** Never advertise a right window edge beyond the one the original had advertised. */
  capWindow: boolean;
  /** Acknowledge but discard application data that arrives after the import. */
  discardNewData: boolean;
  /** After end(): send no FIN; once everything sent is acknowledged, vanish silently. */
  dropWhenAcked: boolean;
  /**
   * FIN delegation (the last response on a connection): end() sends FIN with the last data
   * segment, exactly as a plain close would, and the clone vanishes silently once that FIN is
   * acknowledged (no TIME-WAIT, never a RST). The original follows with delegateFin().
   * Takes precedence over dropWhenAcked's "no FIN".
   */
  finWithLastSegment: boolean;
}

export type SegmentSink = (seg: TcpRepr) => void;

/**
 * The numeric state of a synchronized connection: what exportState captures and
 * importState restores (state.ts adds the socket seed and the binary encoding).
 * `sndNxt` is the highest sequence number sent + 1 (RFC 9293 SND.NXT, our snd_max).
 */
export interface ConnectionSnapshot {
  tuple: FourTuple;
  /** ESTABLISHED, or CLOSE-WAIT when the peer's FIN was received. */
  state: TcpState;
  iss: number;
  irs: number;
  sndUna: number;
  sndNxt: number;
  rcvNxt: number;
  /** Peer's window in bytes (scaled). */
  sndWnd: number;
  sndWl1: number;
  sndWl2: number;
  maxSndWnd: number;
  sndWscale: number;
  rcvWscale: number;
  /** The peer offered window scaling in its SYN. */
  wscaleSeen: boolean;
  /** The window we last advertised, in bytes from rcvNxt (its right edge must not shrink). */
  rcvWnd: number;
  sndMss: number;
  advMss: number;
  rcvMss: number;
  cwnd: number;
  ssthresh: number;
  /** Milliseconds. */
  srtt: number;
  rttvar: number;
  rto: number;
  hasRttSample: boolean;
  noDelay: boolean;
  sackOk: boolean;
}

const NO_OPTIONS: TcpOptions = Object.freeze({}) as TcpOptions;
const EMPTY = new Uint8Array(0);
const DEFAULT_PEER_MSS = 536;
const MIN_PEER_MSS = 64;
const DUP_ACK_THRESHOLD = 3;

export class TcpConnection {
  state: TcpState;
  readonly localAddr: number;
  readonly localPort: number;
  readonly remoteAddr: number;
  readonly remotePort: number;
  readonly cfg: TcpConfig;
  private readonly env: ConnectionEnv;

  // --- send sequence space
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  sndMax = 0;
  /** Peer's window in bytes (already scaled). */
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the peer ever offered (RFC 5961 ACK check, sender SWS avoidance). */
  maxSndWnd = 0;
  /** Shift applied to the peer's window field; the shift we apply to ours. */
  sndWscale = 0;
  /** The peer's SYN carried a window scale option (scaling is on iff both sides sent it). */
  wscaleSeen = false;
  /** Both sides offered SACK-permitted: our ACKs carry SACK blocks for out-of-order data. */
  sackOk = false;
  /** Sequence number of the out-of-order segment that arrived last (first SACK block). */
  private lastOooSeq = 0;
  rcvWscale = 0;
  /** Largest payload we put in a segment: min(peer's MSS, our MTU - 40). */
  sndMss = DEFAULT_PEER_MSS;
  /** MSS we advertised (our MTU - 40). */
  advMss: number;

  // --- receive sequence space
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we advertised; never moves left (RFC 9293 3.8.6). */
  rcvAdvEdge = 0;
  /** rcv_nxt carried by the last segment we sent (what the peer knows we have). */
  lastAckSent = 0;
  /** Largest payload seen from the peer: "full-sized" for the delayed-ACK rule. */
  rcvMss = DEFAULT_PEER_MSS;

  // --- buffers
  readonly txQueue = new SendQueue();
  /** In-order received bytes the application has not taken yet. */
  rxQueue: Buffer[] = [];
  rxQueued = 0;
  readonly ooo: Reassembler;
  /** Sequence number of a FIN that arrived ahead of missing data. */
  private oooFin: number | undefined = undefined;
  /** The application asked to close the sending side: FIN after the queue. */
  finQueued = false;
  /** Sequence number of our FIN once finQueued. */
  finSeq = 0;
  /**
   * Socket Cloning, on the original: our FIN at finSeq is sent by the clone (delegateFin).
   * finSeq is then an absolute sequence number (the response end), not the end of txQueue.
   */
  finDelegated = false;
  finReceived = false;

  // --- congestion control (RFC 5681, RFC 6582), in bytes
  cwnd = 0;
  ssthresh = 0x7fffffff;
  recover = 0;
  inRecovery = false;
  dupAcks = 0;
  private caAcked = 0;
  private firstPartialAck = false;
  /** Retransmit the segment at snd_una on the next dispatch (fast retransmit / partial ACK). */
  private fastRtx = false;
  /** What the peer SACKed above snd_una (only when sackOk). */
  readonly scoreboard = new SackScoreboard();
  /** Loss recovery driven by the scoreboard (RFC 6675) instead of NewReno's inflation. */
  sackRecovery = false;
  /** RFC 6675 HighRxt: the highest sequence number retransmitted in this recovery. */
  private highRxt = 0;
  /** snd_max when the last hole was retransmitted: if data sent after it gets SACKed while
   *  the hole stays open, that retransmission was lost too (checked in processAck). */
  private rtxMark = 0;

  // --- RTT / RTO (RFC 6298), milliseconds
  srtt = 0;
  rttvar = 0;
  /** RTO from the estimator, before backoff. */
  rtoBase: number;
  backoff = 0;
  hasRttSample = false;
  private rttSeq = 0;
  private rttTime = -1;
  /** Consecutive retransmission timeouts (or unanswered probes) without progress. */
  retries = 0;

  // --- timers: absolute deadlines, Infinity when off
  rtxAt = Infinity;
  /** Tail loss probe deadline (RFC 8985 7). */
  tlpAt = Infinity;
  private tlpDue = false;
  /** A probe was sent and no ACK has advanced snd_una since. */
  private tlpOutstanding = false;
  /** First sequence number of the outstanding probe. */
  private tlpSeq = 0;
  /** Holes below this are lost whatever the DupThresh rule says (set by a SACKed probe). */
  private forcedLostEnd = 0;
  persistAt = Infinity;
  inPersist = false;
  private persistBackoff = 0;
  /**
   * When the peer's window closed on us (we entered persist) with no data sent while it was
   * open acknowledged since; -1 when not stalled. Answered probes, probe bytes taken under a
   * zero window and brief openings that lead nowhere do not restart it, so a peer that never
   * reads is aborted zeroWindowTimeout after this (RFC 9293's user timeout, applied to the
   * persist state as Linux does with TCP_USER_TIMEOUT).
   */
  zeroWindowSince = -1;
  delayedAckAt = Infinity;
  /** TIME-WAIT expiry. */
  closeAt = Infinity;
  keepAlive = false;
  /** Idle time before the first keepalive probe (setKeepAlive's initialDelay). */
  keepAliveIdle: number;
  private keepAliveProbesSent = 0;
  /** Idle timeout for the socket API (0 = off); fires EV_TIMEOUT once per idle period. */
  idleTimeout = 0;
  private idleArmed = false;
  lastActivity = 0;
  lastRecvTime = 0;
  lastSendTime = 0;
  /** When data last went out (restart after idle, RFC 5681 4.1); -1 before any. */
  private lastDataSendTime = -1;

  // --- output requests
  /** Send an ACK on the next dispatch even if nothing else goes out. */
  ackNow = false;
  private synDue = false;
  private lastChallengeAt = -Infinity;
  /** A reply that is not part of our sequence space (RST to a bad ACK in SYN-RECEIVED). */
  private rstReply: { seq: number; ack: number; flags: number } | undefined = undefined;
  private rstOnAbort = false;

  // --- Socket Cloning hooks
  /** Shadow mode (original while a clone serves): see setShadow. */
  shadow = false;
  /**
   * Socket Cloning, on an original that resumes a response its failed clone had partly sent:
   * an ACK beyond what we sent but within what we have queued is taken as acknowledging those
   * bytes (the clone sent identical ones) instead of being dropped as "acks unsent data".
   */
  acceptAcksBeyondSent = false;
  clone: CloneBehaviour | undefined = undefined;
  /** Clone: the fixed right edge its window may never pass. */
  private capEdge = 0;
  /** Clone: application data from this sequence number on is acknowledged and discarded. */
  private discardFrom = 0;
  /** Clone: bytes acknowledged and discarded. */
  discardedBytes = 0;

  noDelay: boolean;
  events = 0;
  closeReason: CloseReason | undefined = undefined;
  /** Set by the owning stack: the last IPv4+TCP header received (the cloning "socket seed"). */
  seed: Uint8Array | undefined = undefined;
  /** The owner of this connection's events (the socket layer's TcpSocket). */
  socket: unknown = undefined;
  // Stack bookkeeping: timer heap deadline, dirty list, table membership, listener of a
  // half-open connection, TIME-WAIT accounting.
  heapAt = Infinity;
  dirty = false;
  inTable = false;
  listener: import("./stack.js").TcpListener | undefined = undefined;
  countedTimeWait = false;

  private readonly seg: TcpRepr = {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    urgent: 0,
    options: NO_OPTIONS,
    payload: EMPTY,
  };

  constructor(env: ConnectionEnv, tuple: FourTuple, state: TcpState) {
    this.env = env;
    this.cfg = env.cfg;
    this.localAddr = tuple.localAddr;
    this.localPort = tuple.localPort;
    this.remoteAddr = tuple.remoteAddr;
    this.remotePort = tuple.remotePort;
    this.state = state;
    this.advMss = this.cfg.mtu - 40;
    this.rtoBase = this.cfg.rtoInitial;
    this.noDelay = this.cfg.noDelay;
    this.keepAliveIdle = this.cfg.keepAliveIdle;
    this.ooo = new Reassembler(this.cfg.maxOooRanges);
  }

  // ------------------------------------------------------------------ construction

  /** A passive open: `syn` arrived at a listener; we answer with SYN-ACK (SYN-RECEIVED). */
  static accept(env: ConnectionEnv, tuple: FourTuple, syn: TcpRepr, iss: number, now: number): TcpConnection {
    const c = new TcpConnection(env, tuple, "SYN-RECEIVED");
    c.initSend(iss);
    c.irs = syn.seq;
    c.rcvNxt = seqAdd(syn.seq, 1);
    c.lastAckSent = c.rcvNxt;
    c.rcvAdvEdge = c.rcvNxt;
    c.negotiate(syn.options);
    c.sndWnd = syn.window; // never scaled in a SYN
    c.maxSndWnd = c.sndWnd;
    c.sndWl1 = syn.seq;
    c.sndWl2 = iss;
    c.synDue = true;
    c.lastActivity = c.lastRecvTime = now;
    return c;
  }

  /** An active open (SYN-SENT); the SYN goes out on the next dispatch. */
  static connect(env: ConnectionEnv, tuple: FourTuple, iss: number, now: number): TcpConnection {
    const c = new TcpConnection(env, tuple, "SYN-SENT");
    c.initSend(iss);
    c.rcvWscale = windowScaleFor(c.cfg.rcvBufSize);
    c.synDue = true;
    c.lastActivity = c.lastRecvTime = now;
    return c;
  }

  /**
   * A connection completed by a valid SYN cookie: the handshake state lives in the cookie
   * (our ISN, the peer's MSS and window scale), so we go straight to ESTABLISHED.
   */
  static fromCookie(
    env: ConnectionEnv,
    tuple: FourTuple,
    ack: TcpRepr,
    cookie: { iss: number; mss: number; wscale: number | undefined },
    now: number,
  ): TcpConnection {
    const c = new TcpConnection(env, tuple, "ESTABLISHED");
    c.initSend(cookie.iss);
    c.sndUna = c.sndNxt = c.sndMax = seqAdd(cookie.iss, 1);
    c.irs = seqAdd(ack.seq, -1);
    c.rcvNxt = ack.seq;
    c.lastAckSent = c.rcvNxt;
    c.negotiate({ mss: cookie.mss, wscale: cookie.wscale });
    // The cookie SYN-ACK advertised the unscaled initial window; its edge bounds what the
    // peer may have sent already.
    c.rcvAdvEdge = seqAdd(c.rcvNxt, Math.min(c.cfg.rcvBufSize, 0xffff));
    c.sndWl1 = seqAdd(ack.seq, -1);
    c.sndWl2 = cookie.iss;
    c.lastActivity = c.lastRecvTime = now;
    c.events |= EV_ESTABLISHED;
    return c;
  }

  /**
   * A connection continuing exported state on this node (Socket Cloning). Everything sent
   * before the export counts as acknowledged here: this side only owns data sent from
   * snapshot.sndNxt on; ACKs between the old snd_una and it are treated as old duplicates.
   */
  static restore(env: ConnectionEnv, snap: ConnectionSnapshot, now: number): TcpConnection {
    const c = new TcpConnection(env, snap.tuple, snap.state === "CLOSE-WAIT" ? "CLOSE-WAIT" : "ESTABLISHED");
    c.iss = snap.iss >>> 0;
    c.irs = snap.irs >>> 0;
    c.sndUna = c.sndNxt = c.sndMax = c.recover = snap.sndNxt >>> 0;
    c.sndWnd = snap.sndWnd;
    c.sndWl1 = snap.sndWl1 >>> 0;
    c.sndWl2 = snap.sndWl2 >>> 0;
    c.maxSndWnd = Math.max(snap.maxSndWnd, snap.sndWnd, seqDiff(snap.sndNxt, snap.sndUna));
    c.sndWscale = snap.sndWscale;
    c.rcvWscale = snap.rcvWscale;
    c.wscaleSeen = snap.wscaleSeen;
    c.rcvNxt = c.lastAckSent = snap.rcvNxt >>> 0;
    c.rcvAdvEdge = seqAdd(c.rcvNxt, snap.rcvWnd);
    c.sndMss = snap.sndMss;
    c.advMss = snap.advMss;
    c.rcvMss = snap.rcvMss;
    c.cwnd = snap.cwnd;
    c.ssthresh = snap.ssthresh;
    c.srtt = snap.srtt;
    c.rttvar = snap.rttvar;
    c.rtoBase = Math.min(Math.max(snap.rto, c.cfg.rtoMin), c.cfg.rtoMax);
    c.hasRttSample = snap.hasRttSample;
    c.noDelay = snap.noDelay;
    c.sackOk = snap.sackOk;
    c.finReceived = snap.state === "CLOSE-WAIT";
    c.lastActivity = c.lastRecvTime = c.lastDataSendTime = now;
    return c;
  }

  /** The state to export (state.ts). Only meaningful in ESTABLISHED or CLOSE-WAIT. */
  snapshot(now: number): ConnectionSnapshot {
    let cwnd = this.cwnd;
    // Apply restart-after-idle now, so the importer starts where this side would.
    if (
      this.sndMax === this.sndUna &&
      this.lastDataSendTime >= 0 &&
      now - this.lastDataSendTime > this.rto()
    ) {
      cwnd = Math.min(cwnd, this.initialWindow());
    }
    return {
      tuple: {
        localAddr: this.localAddr,
        localPort: this.localPort,
        remoteAddr: this.remoteAddr,
        remotePort: this.remotePort,
      },
      state: this.state,
      iss: this.iss,
      irs: this.irs,
      sndUna: this.sndUna,
      sndNxt: this.sndMax,
      rcvNxt: this.rcvNxt,
      sndWnd: this.sndWnd,
      sndWl1: this.sndWl1,
      sndWl2: this.sndWl2,
      maxSndWnd: this.maxSndWnd,
      sndWscale: this.sndWscale,
      rcvWscale: this.rcvWscale,
      wscaleSeen: this.wscaleSeen,
      rcvWnd: Math.max(seqDiff(this.rcvAdvEdge, this.rcvNxt), 0),
      sndMss: this.sndMss,
      advMss: this.advMss,
      rcvMss: this.rcvMss,
      cwnd,
      ssthresh: this.ssthresh,
      srtt: this.srtt,
      rttvar: this.rttvar,
      rto: this.rtoBase,
      hasRttSample: this.hasRttSample,
      noDelay: this.noDelay,
      sackOk: this.sackOk,
    };
  }

  private initSend(iss: number): void {
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.recover = iss;
  }

  /** MSS and window scale from the peer's SYN options (RFC 9293 3.7.1, RFC 7323 2.2). */
  private negotiate(opts: TcpOptions): void {
    let mss = opts.mss ?? 0;
    if (mss === 0) mss = DEFAULT_PEER_MSS;
    if (mss < MIN_PEER_MSS) mss = MIN_PEER_MSS;
    this.sndMss = Math.min(mss, this.advMss);
    this.rcvMss = Math.min(DEFAULT_PEER_MSS, this.advMss);
    this.wscaleSeen = opts.wscale !== undefined;
    this.sackOk = this.cfg.sack && opts.sackPermitted === true;
    if (opts.wscale !== undefined) {
      this.sndWscale = Math.min(opts.wscale, 14);
      this.rcvWscale = windowScaleFor(this.cfg.rcvBufSize);
    } else {
      this.sndWscale = 0;
      this.rcvWscale = 0;
    }
    this.cwnd = this.initialWindow();
  }

  private initialWindow(): number {
    return initialWindowBytes(this.cfg.initialWindowSegments, this.sndMss);
  }

  // ------------------------------------------------------------------ queries

  /** A method, not a property test, so TypeScript does not narrow `state` across calls. */
  isClosed(): boolean {
    return this.state === "CLOSED";
  }

  /** Bytes sent and not yet acknowledged (sequence space, including SYN/FIN). */
  get flight(): number {
    return seqDiff(this.sndMax, this.sndUna);
  }

  /** True while the connection is in a state where segments carry data both ways. */
  get synchronized(): boolean {
    return this.state !== "SYN-SENT" && this.state !== "SYN-RECEIVED" && this.state !== "CLOSED";
  }

  /** Sequence number of the first byte in txQueue. */
  private get dataStart(): number {
    return this.state === "SYN-SENT" || this.state === "SYN-RECEIVED" ? seqAdd(this.iss, 1) : this.sndUna;
  }

  private get dataEnd(): number {
    return seqAdd(this.dataStart, this.txQueue.length);
  }

  /** Our current RTO with backoff (RFC 6298 5.5), clamped to rtoMax. */
  rto(): number {
    return Math.min(this.rtoBase * 2 ** this.backoff, this.cfg.rtoMax);
  }

  /** The earliest deadline at which dispatch() has timer work to do (Infinity: none). */
  pollAt(): number {
    if (this.state === "CLOSED") return Infinity;
    let t = this.closeAt;
    if (this.shadow) return t;
    if (this.rtxAt < t) t = this.rtxAt;
    if (this.tlpAt < t) t = this.tlpAt;
    if (this.persistAt < t) t = this.persistAt;
    if (this.zeroWindowSince >= 0) {
      const z = this.zeroWindowSince + this.cfg.zeroWindowTimeout;
      if (z < t) t = z;
    }
    if (this.delayedAckAt < t) t = this.delayedAckAt;
    if (this.keepAlive && this.state === "ESTABLISHED") {
      const k = this.keepAliveDeadline();
      if (k < t) t = k;
    }
    if (this.idleArmed) {
      const i = this.lastActivity + this.idleTimeout;
      if (i < t) t = i;
    }
    return t;
  }

  private keepAliveDeadline(): number {
    const cfg = this.cfg;
    return this.lastRecvTime + this.keepAliveIdle + this.keepAliveProbesSent * cfg.keepAliveInterval;
  }

  // ------------------------------------------------------------------ application side

  /** Queues bytes to send (the caller hands over ownership of `data`). */
  send(data: Uint8Array, now: number): void {
    if (data.length === 0) return;
    if (this.finDelegated && seqGt(seqAdd(this.dataEnd, data.length), this.finSeq)) {
      // Resuming after a failed clone: the bytes must end where the clone's FIN is.
      throw new RangeError("send: data beyond the delegated FIN");
    }
    this.txQueue.push(data);
    this.lastActivity = now;
    if (this.idleTimeout > 0) this.idleArmed = true;
  }

  /** Takes everything in the receive queue; the window reopens. */
  takeReceived(now: number): Buffer[] {
    const out = this.rxQueue;
    if (out.length === 0) return out;
    this.rxQueue = [];
    this.rxQueued = 0;
    this.lastActivity = now;
    if (this.idleTimeout > 0) this.idleArmed = true;
    this.checkWindowUpdate();
    return out;
  }

  /**
   * Sends FIN after the queued data (RFC 9293 CLOSE call). Before the handshake completes
   * the FIN waits for it (node:net lets end() follow connect() at once); abort() is the way to
   * give up on an opening connection.
   */
  close(_now: number): void {
    if (this.finQueued || this.state === "CLOSED") return;
    if (this.silentClose() && this.synchronized) {
      // A clone never sends FIN: it stays in its state and vanishes once all is ACKed.
      this.finQueued = true;
      this.finSeq = this.dataEnd;
      this.checkCloneDone();
      return;
    }
    switch (this.state) {
      case "SYN-SENT":
      case "SYN-RECEIVED":
      case "ESTABLISHED":
        this.finQueued = true;
        this.finSeq = this.dataEnd;
        if (this.state === "ESTABLISHED") this.state = "FIN-WAIT-1";
        break;
      case "CLOSE-WAIT":
        this.finQueued = true;
        this.finSeq = this.dataEnd;
        this.state = "LAST-ACK";
        break;
      default:
        return;
    }
  }

  /** Both sides' FINs have been sent (CLOSING, LAST-ACK, TIME-WAIT): only the last ACKs remain. */
  get bothFinsSent(): boolean {
    return this.state === "CLOSING" || this.state === "LAST-ACK" || this.state === "TIME-WAIT";
  }

  /** Aborts with RST (if the peer knows us) and closes. */
  abort(): void {
    if (this.state === "CLOSED") return;
    // RFC 9293 3.10.5: no RST from SYN-SENT, CLOSING, LAST-ACK or TIME-WAIT.
    // A clone never resets either: the connection belongs to its original.
    this.rstOnAbort =
      this.state !== "SYN-SENT" && !this.bothFinsSent && !this.shadow && this.clone === undefined;
    this.finish("aborted");
  }

  /** Removes the connection without any packet (cloning: the clone's job is done). */
  dropSilently(): void {
    if (this.state === "CLOSED") return;
    this.rstOnAbort = false;
    this.finish("dropped");
  }

  setIdleTimeout(ms: number, now: number): void {
    this.idleTimeout = ms > 0 ? ms : 0;
    this.idleArmed = ms > 0;
    this.lastActivity = now;
  }

  setKeepAlive(enable: boolean, now: number): void {
    this.keepAlive = enable;
    this.keepAliveProbesSent = 0;
    this.lastRecvTime = now;
  }

  /**
   * Shadow mode, for the ORIGINAL connection while a clone answers (paper section 2.3):
   * incoming segments still update the receive side, and their ACK field advances snd_una and
   * snd_nxt (the clone sent those bytes), but nothing is emitted and no retransmission,
   * persist or delayed-ACK timer runs. Leaving shadow mode resumes from the synchronised state
   * and sends an ACK if one is owed.
   */
  setShadow(on: boolean, now: number): void {
    if (on === this.shadow) return;
    this.shadow = on;
    if (on) {
      this.rtxAt = Infinity;
      this.persistAt = Infinity;
      this.inPersist = false;
      this.zeroWindowSince = -1;
      this.delayedAckAt = Infinity;
      this.fastRtx = false;
      this.ackNow = false;
      this.rstReply = undefined;
      return;
    }
    this.sndNxt = this.sndMax;
    this.dupAcks = 0;
    this.inRecovery = false;
    this.retries = 0;
    this.backoff = 0;
    if (this.flight > 0) this.rtxAt = now + this.rto();
    if (this.rcvNxt !== this.lastAckSent || this.windowUpdateDue()) this.ackNow = true;
  }

  /**
   * FIN delegation, on the ORIGINAL in shadow mode: the clone sends this connection's FIN at
   * `finSeq` (the response end: start + length) with its last data segment. From here on the
   * connection behaves as if its own FIN were queued at finSeq and sent by the time the client
   * acknowledges it: ESTABLISHED -> FIN-WAIT-1 (CLOSE-WAIT -> LAST-ACK), an ACK of finSeq + 1
   * is accepted and moves the state on exactly as for a FIN of its own, and close() is a
   * no-op. Once the FIN is acknowledged the clone has nothing left to send, so the
   * connection leaves shadow mode by itself and answers the client's FIN (arriving in the
   * same segment or later) as a plain server does. If the clone fails first, the original
   * leaves shadow, queues the rest of the response (it must end exactly at finSeq) and sends
   * its own FIN there. Returns false (and changes nothing) when not in shadow mode, not in
   * ESTABLISHED or CLOSE-WAIT, a FIN is already queued, or the client acknowledged beyond
   * finSeq + 1.
   */
  delegateFin(finSeq: number, now: number): boolean {
    finSeq >>>= 0;
    if (!this.shadow || this.finQueued || this.txQueue.length > 0) return false;
    if (this.state !== "ESTABLISHED" && this.state !== "CLOSE-WAIT") return false;
    if (seqLt(finSeq, this.sndUna) && this.sndUna !== seqAdd(finSeq, 1)) return false;
    this.finQueued = true;
    this.finDelegated = true;
    this.finSeq = finSeq;
    this.state = this.state === "ESTABLISHED" ? "FIN-WAIT-1" : "LAST-ACK";
    if (!this.finAcked()) return true;
    // The client acknowledged the clone's FIN before we learnt where it was (the SC-ACK
    // was slower than the client): move on as that ACK would have.
    this.leaveShadowAfterFin(now);
    this.events |= EV_FINISHED;
    if (this.state === "LAST-ACK") {
      // The client's FIN arrived too, in an order we cannot know: TIME-WAIT answers it (the
      // clone was gone, or gone right after, and may not have).
      this.enterTimeWait(now);
      this.ackNow = true;
    } else {
      this.state = "FIN-WAIT-2";
    }
    return true;
  }

  /** The delegated FIN was acknowledged: the clone is done, stop being silent. Everything
   *  received before this point was acknowledged by the clone's segments. */
  private leaveShadowAfterFin(now: number): void {
    this.shadow = false;
    this.sndNxt = this.sndMax;
    this.dupAcks = 0;
    this.inRecovery = false;
    this.retries = 0;
    this.backoff = 0;
    this.lastAckSent = this.rcvNxt;
    this.ackNow = false;
    this.delayedAckAt = Infinity;
    this.rtxAt = this.flight > 0 ? now + this.rto() : Infinity;
  }

  /** True when our FIN is queued and the peer has acknowledged it. */
  get finAcknowledged(): boolean {
    return this.finAcked();
  }

  /** The peer's FIN as the application sees it: a clone that discards new data leaves the
   *  client's FIN to its original (the connection's owner) and never ends its reader. */
  get peerFinForApp(): boolean {
    return this.finReceived && this.clone?.discardNewData !== true;
  }

  /** A clone that closes without a FIN (dropWhenAcked without finWithLastSegment). */
  private silentClose(): boolean {
    const c = this.clone;
    return c !== undefined && c.dropWhenAcked && !c.finWithLastSegment;
  }

  /** Configures a clone (importState): see CloneBehaviour. */
  setClone(behaviour: CloneBehaviour): void {
    this.clone = behaviour;
    this.capEdge = this.rcvAdvEdge;
    this.discardFrom = this.rcvNxt;
  }

  // ------------------------------------------------------------------ input

  /** Processes one incoming segment addressed to this connection. */
  process(now: number, seg: TcpRepr): void {
    if (this.state === "CLOSED") return;
    if (this.state === "SYN-SENT") {
      this.processSynSent(now, seg);
      return;
    }
    const flags = seg.flags;
    const plen = seg.payload.length;
    const segLen = plen + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);

    // 1. Sequence number acceptability (RFC 9293 3.10.7.4, first check).
    if (!this.acceptable(seg.seq, segLen)) {
      if (flags & TCP_RST) return this.drop("rst-out-of-window");
      if (this.state === "TIME-WAIT" && flags & TCP_FIN) this.closeAt = now + this.cfg.timeWait;
      if (flags & TCP_SYN) {
        // RFC 5961 4.2 (also a retransmitted SYN in SYN-RECEIVED: our SYN-ACK got lost).
        if (this.state === "SYN-RECEIVED" && seg.seq === this.irs && !(flags & TCP_ACK)) {
          this.synDue = true;
          return;
        }
        this.challengeAck(now);
      } else if (segLen > 0) {
        // Old duplicate data, data beyond the window, or a zero-window probe: ACK at once so
        // the peer learns rcv_nxt and our window (not rate-limited: it carries data).
        this.ackNow = true;
      } else {
        // A bare ACK outside the window (keepalive probe, stale ACK): rate-limited reply.
        this.challengeAck(now);
      }
      this.drop("out-of-window");
      return;
    }
    this.lastRecvTime = now;
    this.keepAliveProbesSent = 0;
    if (plen > 0) this.lastActivity = now;

    // 2. RST (RFC 5961 3.2): exact match resets, anything else in the window is challenged.
    if (flags & TCP_RST) {
      if (seg.seq === this.rcvNxt) {
        this.finish(this.state === "SYN-RECEIVED" ? "refused" : "reset");
      } else {
        this.challengeAck(now);
      }
      return;
    }

    // 4. SYN in a synchronized state (RFC 5961 4.2): challenge ACK, drop.
    if (flags & TCP_SYN) {
      this.challengeAck(now);
      return;
    }

    // 5. ACK.
    if (!(flags & TCP_ACK)) return this.drop("no-ack");
    if (this.state === "SYN-RECEIVED") {
      if (!seqGt(seg.ack, this.sndUna) || seqGt(seg.ack, this.sndMax)) {
        this.rstReply = { seq: seg.ack, ack: 0, flags: TCP_RST };
        return;
      }
      this.state = "ESTABLISHED";
      this.events |= EV_ESTABLISHED;
      // The window in the ACK that completes the handshake is scaled (RFC 7323 2.2).
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.sndWnd = seg.window << this.sndWscale;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      if (this.finQueued) this.state = "FIN-WAIT-1";
    }
    if (!this.processAck(now, seg)) return;
    if (this.finQueued && this.finAcked()) {
      if (this.clone !== undefined) {
        // A clone's FIN is acknowledged: the original owns the rest of the close (the
        // client's FIN in this segment or later is the original's to acknowledge).
        this.dropSilently();
        return;
      }
      if (this.shadow && this.finDelegated) this.leaveShadowAfterFin(now);
    }

    switch (this.state) {
      case "FIN-WAIT-1":
        if (this.finAcked()) {
          this.state = "FIN-WAIT-2";
          this.events |= EV_FINISHED;
        }
        break;
      case "CLOSING":
        if (this.finAcked()) {
          this.events |= EV_FINISHED;
          this.enterTimeWait(now);
          return;
        }
        break;
      case "LAST-ACK":
        if (this.finAcked()) {
          this.events |= EV_FINISHED;
          this.finish("closed");
          return;
        }
        // RFC 9293: in LAST-ACK, an ACK that does not cover our FIN changes nothing.
        break;
      case "TIME-WAIT":
        if (flags & TCP_FIN) {
          this.ackNow = true;
          this.closeAt = now + this.cfg.timeWait;
        }
        return;
      default:
        break;
    }

    // 7. Segment text.
    if (plen > 0) {
      if (this.state === "ESTABLISHED" || this.state === "FIN-WAIT-1" || this.state === "FIN-WAIT-2") {
        this.processData(now, seg.seq, seg.payload, (flags & TCP_FIN) !== 0);
      }
    } else if (flags & TCP_FIN) {
      this.noteFin(now, seg.seq);
    }
    if (this.silentClose()) this.checkCloneDone();
  }

  private acceptable(seq: number, segLen: number): boolean {
    const wnd = seqDiff(this.rcvAdvEdge, this.rcvNxt);
    if (segLen === 0) {
      if (wnd <= 0) return seq === this.rcvNxt;
      return seqInRange(seq, this.rcvNxt, this.rcvAdvEdge);
    }
    if (wnd <= 0) return false;
    return (
      seqInRange(seq, this.rcvNxt, this.rcvAdvEdge) ||
      seqInRange(seqAdd(seq, segLen - 1), this.rcvNxt, this.rcvAdvEdge)
    );
  }

  private processSynSent(now: number, seg: TcpRepr): void {
    const flags = seg.flags;
    if (flags & TCP_ACK) {
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
        if (!(flags & TCP_RST)) this.rstReply = { seq: seg.ack, ack: 0, flags: TCP_RST };
        return this.drop("bad-ack");
      }
    }
    if (flags & TCP_RST) {
      if (flags & TCP_ACK) this.finish("refused");
      else this.drop("rst-no-ack");
      return;
    }
    if (!(flags & TCP_SYN)) return this.drop("no-syn");
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdvEdge = this.rcvNxt;
    this.lastRecvTime = now;
    this.negotiate(seg.options);
    this.sndWnd = seg.window;
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    if (flags & TCP_ACK) {
      this.sndUna = seg.ack;
      if (seqLt(this.sndNxt, this.sndUna)) this.sndNxt = this.sndUna;
      this.rttSampleOnAck(now, seg.ack);
      this.rtxAt = Infinity;
      this.retries = 0;
      this.backoff = 0;
      this.state = "ESTABLISHED";
      this.events |= EV_ESTABLISHED;
      this.ackNow = true;
      if (this.finQueued) this.state = "FIN-WAIT-1";
    } else {
      // Simultaneous open: answer SYN-ACK from the same ISS.
      this.state = "SYN-RECEIVED";
      this.sndNxt = this.iss;
      this.synDue = true;
    }
  }

  /** Returns false when the segment must be dropped after the ACK check. */
  private processAck(now: number, seg: TcpRepr): boolean {
    let ack = seg.ack;
    if (this.clone !== undefined && seqGt(ack, this.sndMax)) {
      // The original has taken the connection back and sent beyond the clone's response:
      // the clone's job is over, whatever it still had in flight.
      this.dropSilently();
      return false;
    }
    if (seqGt(ack, this.sndMax) && this.acceptAcksBeyondSent && !this.shadow && seqLe(ack, this.sendEnd())) {
      // Resumed after a clone failed mid-response: the clone sent these bytes (the same
      // bytes we have queued) and the peer has them. Count them as sent, then as acknowledged.
      this.sndNxt = this.sndMax = ack;
    }
    if (seqGt(ack, this.sndMax)) {
      if (!this.shadow) {
        // Acknowledges something not yet sent: ACK and drop (RFC 9293, RFC 5961 5.2).
        this.ackNow = true;
        this.drop("ack-unsent");
        return false;
      }
      if (this.finDelegated && seqGt(ack, seqAdd(this.finSeq, 1))) {
        // Nothing can be acknowledged beyond the clone's FIN.
        this.drop("ack-unsent");
        return false;
      }
      // Shadow mode: the clone sent these bytes. Acknowledge our own outstanding data
      // first, then jump the send sequence space to the client's ACK.
      if (this.sndMax !== this.sndUna) this.onNewAck(now, seg, seqDiff(this.sndMax, this.sndUna));
      const jump = seqDiff(ack, this.sndMax);
      this.sndUna = this.sndNxt = this.sndMax = ack;
      if (this.finQueued && !this.finDelegated) this.finSeq = seqAdd(this.finSeq, jump);
      this.recover = ack;
      ack = this.sndUna;
      this.events |= EV_ACKED;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -this.maxSndWnd))) {
      this.challengeAck(now);
      this.drop("ack-too-old");
      return false;
    }
    const acked = seqDiff(ack, this.sndUna);
    const wndField = seg.window << this.sndWscale;
    // RFC 6675: an ACK bringing new SACK information counts as a duplicate ACK.
    const sack = seg.options.sack;
    const newSack =
      sack !== undefined &&
      this.sackOk &&
      !this.shadow &&
      this.scoreboard.update(sack, seqMax(ack, this.sndUna), this.sndMax);
    if (newSack && this.sackRecovery) this.detectLostRetransmissions();
    if (
      newSack &&
      this.tlpOutstanding &&
      !this.inRecovery &&
      seqLt(seqMax(ack, this.sndUna), this.tlpSeq) &&
      this.scoreboard.rangeAt(this.tlpSeq) !== undefined &&
      seqGt(this.sndUna, this.recover)
    ) {
      // The probe arrived but what was sent before it did not: all of that is lost (what
      // RFC 8985 RACK concludes here), so recover now instead of waiting for the RTO.
      this.enterRecovery();
      this.forcedLostEnd = this.tlpSeq;
    }
    if (acked > 0) {
      this.onNewAck(now, seg, acked);
    } else if (
      acked === 0 &&
      seg.payload.length === 0 &&
      !(seg.flags & (TCP_SYN | TCP_FIN)) &&
      this.sndMax !== this.sndUna &&
      (wndField === this.sndWnd || newSack) &&
      wndField > 0 &&
      !this.inPersist &&
      !this.shadow
    ) {
      this.onDupAck();
    }
    // Window update (RFC 9293 3.10.7.4 ESTABLISHED, fifth check).
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      this.sndWnd = wndField;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (wndField > this.maxSndWnd) this.maxSndWnd = wndField;
      if (this.inPersist && wndField > 0) this.leavePersist(now);
    }
    if (this.inPersist) this.retries = 0; // the peer answers our probes
    return true;
  }

  private onNewAck(now: number, seg: TcpRepr, acked: number): void {
    const ack = seqAdd(this.sndUna, acked);
    let dataAcked = acked;
    const synAcked = this.sndUna === this.iss;
    if (synAcked) {
      dataAcked--; // our SYN
      acked--; // and it does not grow cwnd
    }
    if (this.finQueued && seqGt(ack, this.finSeq)) dataAcked--;
    if (dataAcked > this.txQueue.length) dataAcked = this.txQueue.length;
    if (dataAcked > 0) this.txQueue.consume(dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.scoreboard.advance(ack);
    this.events |= EV_ACKED;
    this.rttSampleOnAck(now, ack);
    this.retries = 0;
    this.backoff = 0;
    // Progress is data sent into an open window being acknowledged, not probe bytes.
    if (!this.inPersist) this.zeroWindowSince = -1;

    if (!this.shadow) {
      if (this.inRecovery) {
        if (seqGe(ack, this.recover)) {
          // Full acknowledgment (RFC 6582 3.2 step 3): deflate.
          this.cwnd = Math.min(this.ssthresh, Math.max(this.flight, this.sndMss) + this.sndMss);
          this.inRecovery = false;
          this.sackRecovery = false;
          this.dupAcks = 0;
        } else if (this.sackRecovery) {
          // RFC 6675: the scoreboard decides what goes out next; no deflation.
          if (seqLt(this.highRxt, ack)) this.highRxt = ack;
        } else {
          // Partial acknowledgment (step 4): retransmit the next hole, partially deflate.
          this.fastRtx = true;
          this.cwnd = Math.max(this.cwnd - acked + (acked >= this.sndMss ? this.sndMss : 0), this.sndMss);
          if (this.firstPartialAck) {
            this.firstPartialAck = false;
            this.rtxAt = now + this.rto();
          }
          return;
        }
      } else {
        this.dupAcks = 0;
        if (this.cwnd < this.ssthresh) {
          // Slow start with appropriate byte counting, L = 2 (RFC 3465).
          this.cwnd += Math.min(acked, 2 * this.sndMss);
        } else {
          this.caAcked += acked;
          if (this.caAcked >= this.cwnd) {
            this.caAcked -= this.cwnd;
            this.cwnd += this.sndMss;
          }
        }
        if (this.cwnd > 0x3fffffff) this.cwnd = 0x3fffffff;
      }
    }
    this.rtxAt = this.sndMax === this.sndUna || this.shadow ? Infinity : now + this.rto();
    this.tlpOutstanding = false;
    this.armTlp(now);
  }

  /**
   * (Re)arms the tail loss probe: PTO = max(2 * SRTT, tlpMin), plus a worst-case delayed ACK
   * when a single segment is in flight, and only if it comes before the RTO (RFC 8985 7.2).
   */
  private armTlp(now: number): void {
    const flight = this.flight;
    if (
      !this.cfg.tailLossProbe ||
      !this.hasRttSample ||
      flight === 0 ||
      this.inRecovery ||
      this.inPersist ||
      this.tlpOutstanding ||
      this.shadow ||
      !this.synchronized
    ) {
      this.tlpAt = Infinity;
      return;
    }
    let pto = Math.max(2 * this.srtt, this.cfg.tlpMin);
    if (flight <= this.sndMss) pto += 200;
    const at = now + pto;
    this.tlpAt = at < this.rtxAt ? at : Infinity;
  }

  /**
   * Lost retransmission detection (in the spirit of RFC 8985 RACK, without timestamps): once
   * the peer SACKs more than DupThresh segments sent after our last hole retransmission, holes
   * retransmitted before it that are still missing were lost again: start over from snd_una.
   */
  private detectLostRetransmissions(): void {
    const rs = this.scoreboard.ranges;
    if (rs.length === 0 || !seqGt(this.highRxt, this.sndUna)) return;
    const top = rs[rs.length - 1][1];
    if (
      seqDiff(top, this.rtxMark) > DUP_ACK_THRESHOLD * this.sndMss &&
      !this.scoreboard.rangeAt(this.sndUna)
    ) {
      this.highRxt = this.sndUna;
      this.rtxMark = this.sndMax;
    }
  }

  private onDupAck(): void {
    this.dupAcks++;
    if (this.inRecovery) {
      // RFC 6582 step 2: inflate for each extra dup ACK (SACK recovery counts the pipe).
      if (!this.sackRecovery) this.cwnd += this.sndMss;
      return;
    }
    // RFC 6675 5: three duplicate ACKs, or more than DupThresh-1 segments SACKed above snd_una.
    const sackSaysLost = this.sackOk && this.scoreboard.bytes > (DUP_ACK_THRESHOLD - 1) * this.sndMss;
    if ((this.dupAcks >= DUP_ACK_THRESHOLD || sackSaysLost) && seqGt(this.sndUna, this.recover)) {
      this.enterRecovery();
    }
  }

  /** Fast retransmit and the start of loss recovery (RFC 5681 3.2, RFC 6582, RFC 6675 5). */
  private enterRecovery(): void {
    this.ssthresh = Math.max(Math.floor(this.flight / 2), 2 * this.sndMss);
    this.recover = this.sndMax;
    this.inRecovery = true;
    this.firstPartialAck = true;
    this.fastRtx = true;
    this.caAcked = 0;
    this.forcedLostEnd = this.sndUna;
    this.tlpAt = Infinity;
    if (this.sackOk && !this.scoreboard.empty) {
      this.sackRecovery = true;
      this.cwnd = this.ssthresh;
      this.highRxt = this.sndUna;
      this.rtxMark = this.sndMax;
    } else {
      this.cwnd = this.ssthresh + DUP_ACK_THRESHOLD * this.sndMss;
    }
  }

  private rttSampleOnAck(now: number, ack: number): void {
    if (this.rttTime < 0 || seqLt(ack, this.rttSeq)) return;
    const r = now - this.rttTime;
    this.rttTime = -1;
    if (r < 0) return;
    // RFC 6298 2.2 / 2.3.
    if (!this.hasRttSample) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.hasRttSample = true;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    const rto = this.srtt + Math.max(this.cfg.clockGranularity, 4 * this.rttvar);
    this.rtoBase = Math.min(Math.max(rto, this.cfg.rtoMin), this.cfg.rtoMax);
  }

  private finAcked(): boolean {
    return this.finQueued && seqGt(this.sndUna, this.finSeq);
  }

  /** Payload at `seq` in a state that accepts data. */
  private processData(now: number, seq: number, payload: Uint8Array, fin: boolean): void {
    let off = 0;
    let len = payload.length;
    if (seqLt(seq, this.rcvNxt)) {
      off = seqDiff(this.rcvNxt, seq);
      if (off >= len) {
        this.ackNow = true; // an old duplicate
        if (fin) this.noteFin(now, seqAdd(seq, len));
        return;
      }
    }
    const start = seqAdd(seq, off);
    const room = seqDiff(this.rcvAdvEdge, start);
    let finInWindow = fin;
    if (len - off > room) {
      len = off + Math.max(room, 0);
      finInWindow = false;
      this.ackNow = true;
      this.count("beyond-window");
    }
    if (len - off <= 0) return;
    if (len - off > this.rcvMss) this.rcvMss = Math.min(len - off, this.advMss);
    if (start === this.rcvNxt && this.ooo.empty) {
      this.deliver(copyBytes(payload, off, len));
      if (finInWindow) this.noteFin(now, seqAdd(seq, len));
      else if (this.oooFin === this.rcvNxt) this.noteFin(now, this.rcvNxt);
      else this.scheduleAck(now);
      return;
    }
    const data = off === 0 && len === payload.length ? payload : payload.subarray(off, len);
    if (!this.ooo.insert(start, data)) {
      this.count("ooo-full");
      this.ackNow = true;
      return;
    }
    if (finInWindow) this.oooFin = seqAdd(seq, len);
    this.lastOooSeq = start;
    // Out of order, or filling (part of) a gap: ACK at once (RFC 5681 4.2).
    this.ackNow = true;
    const chunks = this.ooo.take(this.rcvNxt);
    if (chunks !== undefined) {
      for (const c of chunks) this.deliver(c as Buffer);
      if (this.oooFin !== undefined && this.oooFin === this.rcvNxt) this.noteFin(now, this.rcvNxt);
    }
  }

  /** Appends in-order bytes and advances rcv_nxt. */
  private deliver(data: Buffer): void {
    const n = data.length;
    if (this.clone?.discardNewData && seqGe(this.rcvNxt, this.discardFrom)) {
      this.discardedBytes += n;
    } else {
      this.rxQueue.push(data);
      this.rxQueued += n;
      this.events |= EV_DATA;
    }
    this.rcvNxt = seqAdd(this.rcvNxt, n);
  }

  /** Delayed ACK (RFC 1122 4.2.3.2, RFC 5681 4.2): every second full-sized segment at once. */
  private scheduleAck(now: number): void {
    if (seqDiff(this.rcvNxt, this.lastAckSent) >= 2 * this.rcvMss || this.rcvNxt === this.rcvAdvEdge) {
      // (A full window is ACKed at once too: the sender needs it to start probing.)
      this.ackNow = true;
    } else if (this.delayedAckAt === Infinity) {
      this.delayedAckAt = now + this.cfg.delayedAck;
    }
  }

  /** A FIN at sequence number `finSeq` (the sequence number after the segment's data). */
  private noteFin(now: number, finSeq: number): void {
    if (this.finReceived) {
      this.ackNow = true;
      return;
    }
    if (finSeq !== this.rcvNxt) {
      if (seqGt(finSeq, this.rcvNxt) && seqLt(finSeq, this.rcvAdvEdge)) this.oooFin = finSeq;
      this.ackNow = true;
      return;
    }
    if (this.state !== "ESTABLISHED" && this.state !== "FIN-WAIT-1" && this.state !== "FIN-WAIT-2") {
      this.ackNow = true;
      return;
    }
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.finReceived = true;
    this.oooFin = undefined;
    this.ackNow = true;
    this.events |= EV_FIN;
    switch (this.state) {
      case "ESTABLISHED":
        this.state = "CLOSE-WAIT";
        break;
      case "FIN-WAIT-1":
        if (this.finAcked()) this.enterTimeWait(now);
        else this.state = "CLOSING";
        break;
      case "FIN-WAIT-2":
        this.enterTimeWait(now);
        break;
    }
  }

  private enterTimeWait(now: number): void {
    this.state = "TIME-WAIT";
    this.rtxAt = Infinity;
    this.persistAt = Infinity;
    this.inPersist = false;
    this.zeroWindowSince = -1;
    this.delayedAckAt = Infinity;
    this.idleArmed = false;
    this.closeAt = now + this.cfg.timeWait;
    this.closeReason = "closed";
    this.events |= EV_CLOSED;
    this.txQueue.consume(this.txQueue.length);
  }

  /** Final transition to CLOSED. */
  private finish(reason: CloseReason): void {
    this.state = "CLOSED";
    this.closeReason ??= reason;
    this.events |= EV_CLOSED;
    this.rtxAt = this.persistAt = this.delayedAckAt = this.closeAt = Infinity;
    this.idleArmed = false;
    this.inPersist = false;
    this.zeroWindowSince = -1;
    this.txQueue.consume(this.txQueue.length);
    this.ooo.clear();
  }

  /**
   * A challenge ACK (RFC 5961), rate-limited per connection first (so one connection cannot
   * drain the shared budget, and a spoofer aiming at one connection gets at most one reply
   * per interval), then by the stack's randomised global cap (challenge-ack.ts).
   */
  private challengeAck(now: number): void {
    if (now - this.lastChallengeAt < this.cfg.challengeAckInterval) {
      this.count("challenge-ack-limited");
      return;
    }
    if (!this.env.takeChallengeAck(now)) {
      this.count("challenge-ack-global-limited");
      return;
    }
    this.lastChallengeAt = now;
    this.ackNow = true;
  }

  private drop(reason: string): void {
    this.env.countDrop(reason);
  }

  private count(reason: string): void {
    this.env.countDrop(reason);
  }

  // ------------------------------------------------------------------ window advertisement

  /** Unscaled window bytes we could offer now, before SWS avoidance and never-shrink. */
  private freeWindow(): number {
    let w = this.cfg.rcvBufSize - this.rxQueued;
    if (w < 0) w = 0;
    if (this.clone?.capWindow) {
      const cap = seqDiff(this.capEdge, this.rcvNxt);
      if (w > cap) w = cap > 0 ? cap : 0;
    }
    return w;
  }

  /** RFC 1122 4.2.3.3: the right edge moves only by min(buffer/2, MSS) or more. */
  private windowUpdateDue(): boolean {
    const cur = seqDiff(this.rcvAdvEdge, this.rcvNxt);
    const grow = this.freeWindow() - cur;
    return (
      grow >= Math.min(this.cfg.rcvBufSize >>> 1, 2 * this.advMss) ||
      (cur < this.advMss && grow >= this.advMss)
    );
  }

  private checkWindowUpdate(): void {
    if (this.synchronized && !this.finReceived && this.windowUpdateDue()) this.ackNow = true;
  }

  /** The window field for an outgoing non-SYN segment; moves rcvAdvEdge. */
  private windowField(): number {
    const cur = seqDiff(this.rcvAdvEdge, this.rcvNxt);
    let w = this.freeWindow();
    if (w > cur && w - cur < Math.min(this.cfg.rcvBufSize >>> 1, this.advMss)) w = cur;
    const capped = this.clone?.capWindow === true;
    if (w < cur && !capped) w = cur;
    const shift = this.rcvWscale;
    let field = capped ? w >>> shift : Math.ceil(w / 2 ** shift);
    if (field > 0xffff) field = 0xffff;
    if (field < 0) field = 0;
    const edge = seqAdd(this.rcvNxt, field * 2 ** shift);
    if (seqGt(edge, this.rcvAdvEdge)) this.rcvAdvEdge = edge;
    return field;
  }

  // ------------------------------------------------------------------ output

  /**
   * Runs due timers, then emits every segment that is due, through `emit` (which must
   * serialize the segment before returning: the object is reused).
   */
  dispatch(now: number, emit: SegmentSink): void {
    if (this.state === "CLOSED") {
      if (this.rstOnAbort) {
        this.rstOnAbort = false;
        // Never past the peer's window (Linux's tcp_acceptable_seq): after zero-window probes
        // sndMax is beyond it, and RFC 5961 peers drop such a RST silently.
        const wndEnd = (this.sndUna + this.sndWnd) >>> 0;
        const seq = seqGt(this.sndMax, wndEnd) ? wndEnd : this.sndMax;
        this.emitRst(emit, seq, this.rcvNxt, TCP_RST | TCP_ACK);
      }
      return;
    }
    if (this.rstReply !== undefined) {
      const r = this.rstReply;
      this.rstReply = undefined;
      if (!this.shadow) this.emitRst(emit, r.seq, r.ack, r.flags);
    }
    if (now >= this.closeAt) {
      if (this.state === "TIME-WAIT") {
        this.state = "CLOSED";
        this.closeAt = Infinity;
        return;
      }
    }
    if (this.shadow) return;
    this.runTimers(now);
    if (this.isClosed()) {
      this.dispatch(now, emit);
      return;
    }
    if (this.state === "SYN-SENT" || this.state === "SYN-RECEIVED") {
      if (this.synDue) this.emitSyn(now, emit);
      else if (this.ackNow && this.state === "SYN-RECEIVED") this.emitAck(now, emit, this.sndMax);
      return;
    }
    let sent = false;
    if (this.fastRtx) {
      this.fastRtx = false;
      if (this.sndMax !== this.sndUna) {
        const len = this.holeLength(this.sndUna, this.sndMss);
        this.emitFrom(now, emit, this.sndUna, len, true);
        if (this.sackRecovery) {
          this.highRxt = seqMax(this.highRxt, seqAdd(this.sndUna, len));
          this.rtxMark = this.sndMax;
        }
        sent = true;
      }
    }
    if (this.state !== "TIME-WAIT") sent = this.emitData(now, emit) || sent;
    if (!sent && (this.ackNow || now >= this.delayedAckAt)) {
      this.emitAck(now, emit, this.sndMax);
    }
  }

  private runTimers(now: number): void {
    if (now >= this.tlpAt) {
      this.tlpAt = Infinity;
      if (this.flight > 0 && !this.inRecovery) this.tlpDue = true;
    }
    if (now >= this.rtxAt) this.onRetransmitTimeout(now);
    if (this.isClosed()) return;
    if (this.zeroWindowSince >= 0 && now >= this.zeroWindowSince + this.cfg.zeroWindowTimeout) {
      this.env.countZeroWindowAbort();
      this.finish("zero-window");
      // A clone never resets: the connection belongs to its original node.
      this.rstOnAbort = this.clone === undefined;
      return;
    }
    if (now >= this.persistAt) this.onPersistTimeout(now);
    if (this.isClosed()) return;
    if (this.keepAlive && this.state === "ESTABLISHED" && now >= this.keepAliveDeadline()) {
      if (this.keepAliveProbesSent >= this.cfg.keepAliveProbes) {
        this.finish("timeout");
        this.rstOnAbort = this.clone === undefined;
        return;
      }
      this.keepAliveProbesSent++;
      this.keepAliveProbeDue = true;
    }
    if (this.idleArmed && now >= this.lastActivity + this.idleTimeout) {
      this.idleArmed = false;
      this.events |= EV_TIMEOUT;
    }
    if (
      this.state === "FIN-WAIT-2" &&
      this.cfg.finWait2Timeout > 0 &&
      now >= this.lastRecvTime + this.cfg.finWait2Timeout
    ) {
      this.finish("timeout");
    }
  }

  private keepAliveProbeDue = false;

  private onRetransmitTimeout(_now: number): void {
    this.rtxAt = Infinity;
    this.tlpAt = Infinity;
    this.tlpDue = false;
    this.tlpOutstanding = false;
    if (this.state === "SYN-SENT" || this.state === "SYN-RECEIVED") {
      const limit = this.state === "SYN-SENT" ? this.cfg.synRetries : this.cfg.synAckRetries;
      if (this.retries >= limit) {
        this.finish("timeout");
        return;
      }
      this.retries++;
      this.backoff++;
      this.rttTime = -1;
      this.synDue = true;
      return;
    }
    if (this.sndMax === this.sndUna) return;
    if (this.retries >= this.cfg.maxRetransmits) {
      this.finish("timeout");
      // A clone never resets: the connection belongs to its original node.
      this.rstOnAbort = this.clone === undefined;
      return;
    }
    this.retries++;
    // RFC 5681 eq. 4 on the first timeout of this data; later ones keep ssthresh.
    if (this.backoff === 0) this.ssthresh = Math.max(Math.floor(this.flight / 2), 2 * this.sndMss);
    this.cwnd = this.sndMss;
    this.caAcked = 0;
    this.recover = this.sndMax; // RFC 6582 section 4: no fast retransmit for these losses
    this.inRecovery = false;
    this.sackRecovery = false;
    // RFC 2018 8: the receiver may have dropped what it SACKed; rebuilt from later ACKs.
    this.scoreboard.clear();
    this.dupAcks = 0;
    this.fastRtx = false;
    this.backoff++;
    this.rttTime = -1; // Karn: no sample from retransmitted data
    this.sndNxt = this.sndUna; // go back N
  }

  private onPersistTimeout(_now: number): void {
    this.persistAt = Infinity;
    if (!this.inPersist) return;
    if (this.retries >= this.cfg.maxRetransmits) {
      this.finish("timeout");
      // A clone never resets: the connection belongs to its original node.
      this.rstOnAbort = this.clone === undefined;
      return;
    }
    this.retries++;
    this.persistProbeDue = true;
  }

  private persistProbeDue = false;

  private leavePersist(now: number): void {
    this.inPersist = false;
    this.persistAt = Infinity;
    this.persistBackoff = 0;
    // A probe byte the peer did not take is sent again with the next segment.
    this.sndNxt = this.sndUna;
    if (this.flight > 0 && this.rtxAt === Infinity) this.rtxAt = now + this.rto();
  }

  /** Sends data (and FIN) permitted by the windows. Returns true if anything went out. */
  private emitData(now: number, emit: SegmentSink): boolean {
    let sent = false;
    if (this.persistProbeDue) {
      this.persistProbeDue = false;
      const persistDelay = Math.min(this.rtoBase * 2 ** ++this.persistBackoff, this.cfg.rtoMax);
      this.persistAt = now + persistDelay;
      this.emitFrom(now, emit, this.sndUna, 1, true);
      return true;
    }
    if (this.keepAliveProbeDue) {
      this.keepAliveProbeDue = false;
      if (this.sndMax === this.sndUna && this.txQueue.length === 0) {
        // Keepalive: one byte below snd_una, no data (RFC 1122 4.2.3.6); the peer ACKs.
        this.emitAck(now, emit, seqAdd(this.sndUna, -1));
        return true;
      }
    }
    const mss = this.sndMss;
    if (this.tlpDue) {
      // Tail loss probe (RFC 8985 7.3): a new segment if the peer's window allows, else the
      // last segment again; either way its ACK (with SACK) tells us what is missing.
      this.tlpDue = false;
      this.tlpOutstanding = true;
      const unsent = seqDiff(this.dataEnd, this.sndNxt);
      const wndRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
      if (unsent > 0 && wndRoom > 0 && this.sndNxt === this.sndMax) {
        this.tlpSeq = this.sndNxt;
        this.emitFrom(now, emit, this.sndNxt, Math.min(mss, unsent, wndRoom), false);
      } else {
        const end = this.finQueued && seqGt(this.sndMax, this.finSeq) ? this.finSeq : this.sndMax;
        const start = seqMax(this.sndUna, seqAdd(end, -mss));
        this.tlpSeq = start;
        this.emitFrom(now, emit, start, seqDiff(end, start), true);
      }
      return true;
    }
    // With GSO one packet carries several whole segments (the kernel cuts it up).
    const gsoPayload = this.cfg.gsoMaxBytes - 40;
    const maxSeg = gsoPayload > 2 * mss ? Math.floor(gsoPayload / mss) * mss : mss;
    if (
      this.sndMax === this.sndUna &&
      now - this.lastDataSendTime > this.rto() &&
      this.lastDataSendTime >= 0
    ) {
      // RFC 5681 4.1: restart from the initial window after an idle period.
      const iw = this.initialWindow();
      if (this.cwnd > iw) this.cwnd = iw;
    }
    if (this.sackRecovery) return this.emitSackRecovery(now, emit, maxSeg);
    for (;;) {
      if (seqLt(this.sndNxt, this.sndMax) && !this.scoreboard.empty) {
        // Going back after a timeout: skip what the peer SACKed since.
        const r = this.scoreboard.rangeAt(this.sndNxt);
        if (r !== undefined) {
          this.sndNxt = seqMin(r[1], this.sndMax);
          continue;
        }
      }
      const dataEnd = this.dataEnd;
      const unsent = seqDiff(dataEnd, this.sndNxt);
      const finPending = this.finPending();
      if (unsent <= 0 && !finPending) break;
      let wnd = this.sndWnd;
      let cw = this.cwnd;
      if (!this.inRecovery && this.dupAcks > 0 && this.dupAcks < DUP_ACK_THRESHOLD) cw += this.dupAcks * mss; // RFC 3042
      if (cw < wnd) wnd = cw;
      const room = seqDiff(seqAdd(this.sndUna, wnd), this.sndNxt);
      if (room <= 0) {
        if (this.sndWnd === 0 && this.sndNxt === this.sndUna) this.enterPersist(now);
        break;
      }
      let len = unsent > 0 ? Math.min(unsent, maxSeg, room) : 0;
      if (len > mss && len < unsent && len % mss !== 0) len -= len % mss;
      const retransmit = seqLt(this.sndNxt, this.sndMax);
      if (retransmit && len > 0) len = this.holeLength(this.sndNxt, len);
      if (unsent > 0 && len < mss && len < unsent) {
        // Limited by the window: sender SWS avoidance (RFC 1122 4.2.3.4).
        const inFlight = seqDiff(this.sndNxt, this.sndUna) > 0;
        if (inFlight && len * 2 < this.maxSndWnd && !retransmit) break;
      }
      if (unsent > 0 && len < mss && len === unsent && !this.noDelay && !this.finQueued && !retransmit) {
        // Nagle (RFC 896): a small tail waits while data is unacknowledged.
        if (this.sndMax !== this.sndUna) break;
      }
      if (len < 0) len = 0;
      const before = this.sndNxt;
      this.emitFrom(now, emit, before, len, len < room);
      sent = true;
      if (this.sndNxt === before) break;
    }
    return sent;
  }

  /**
   * Our FIN still has to go out: queued, not sent past, everything before it queued (a
   * delegated FIN waits for the resumed data), and not a clone that vanishes silently.
   */
  private finPending(): boolean {
    return (
      this.finQueued && seqLe(this.sndNxt, this.finSeq) && this.dataEnd === this.finSeq && !this.silentClose()
    );
  }

  /** End of our sequence space once everything queued is sent: data, plus a FIN queued
   *  right after it. */
  private sendEnd(): number {
    const end = this.dataEnd;
    return this.finQueued && this.finSeq === end ? seqAdd(end, 1) : end;
  }

  /** Bytes from `seq` up to `max` that are not SACKed (stops at the next SACKed range). */
  private holeLength(seq: number, max: number): number {
    if (this.scoreboard.empty) return max;
    const next = this.scoreboard.nextStart(seq);
    return next === undefined ? max : Math.max(Math.min(max, seqDiff(next, seq)), 0);
  }

  /**
   * RFC 6675 "pipe": bytes in flight = outstanding - SACKed - lost and not yet retransmitted.
   */
  private pipe(lostEnd: number): number {
    const sb = this.scoreboard;
    const from = seqMax(this.highRxt, this.sndUna);
    let lost = 0;
    if (seqLt(from, lostEnd)) lost = seqDiff(lostEnd, from) - sb.sackedIn(from, lostEnd);
    return this.flight - sb.bytes - lost;
  }

  /**
   * Output during SACK-based recovery (RFC 6675 5, NextSeg): while cwnd - pipe allows a
   * segment, first retransmit holes presumed lost (above HighRxt), then send new data.
   */
  private emitSackRecovery(now: number, emit: SegmentSink, maxSeg: number): boolean {
    const mss = this.sndMss;
    const sb = this.scoreboard;
    // The first hole is lost by definition once recovery started (three duplicate ACKs).
    let lostEnd = seqMax(sb.lostEnd(this.sndUna, (DUP_ACK_THRESHOLD - 1) * mss), seqAdd(this.sndUna, 1));
    if (seqGt(this.forcedLostEnd, lostEnd) && seqLe(this.forcedLostEnd, this.sndMax))
      lostEnd = this.forcedLostEnd;
    let pipe = this.pipe(lostEnd);
    let sent = false;
    for (let guard = 0; guard < 1024 && this.cwnd - pipe >= mss; guard++) {
      let seq = seqMax(this.highRxt, this.sndUna);
      const r = sb.rangeAt(seq);
      if (r !== undefined) seq = r[1];
      if (seqLt(seq, lostEnd) && seqLt(seq, this.sndMax)) {
        const next = sb.nextStart(seq);
        const limit = next !== undefined && seqLt(next, this.sndMax) ? next : this.sndMax;
        const len = Math.min(mss, seqDiff(limit, seq));
        this.emitFrom(now, emit, seq, len, true);
        this.highRxt = seqAdd(seq, len);
        this.rtxMark = this.sndMax;
        pipe += len;
        sent = true;
        continue;
      }
      // New data, as the peer's window allows.
      const unsent = seqDiff(this.dataEnd, this.sndNxt);
      const finPending = this.finPending();
      const wndRoom = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
      if ((unsent <= 0 && !finPending) || wndRoom <= 0) break;
      let len = Math.min(unsent, maxSeg, this.cwnd - pipe, wndRoom);
      if (len > mss && len < unsent) len -= len % mss;
      if (len < 0) len = 0;
      const before = this.sndNxt;
      this.emitFrom(now, emit, before, len, len < wndRoom);
      pipe += seqDiff(this.sndNxt, before);
      sent = true;
      if (this.sndNxt === before) break;
    }
    return sent;
  }

  private enterPersist(now: number): void {
    if (this.inPersist) return;
    this.inPersist = true;
    if (this.zeroWindowSince < 0) this.zeroWindowSince = now;
    this.persistBackoff = 0;
    this.rtxAt = Infinity;
    this.persistAt = now + this.rto();
  }

  /**
   * Emits one segment starting at `seq` with up to `maxLen` data bytes, plus FIN when it
   * reaches the end of the queue after close() and `finFits` (the window has room for it).
   * snd_nxt only moves forward (a fast retransmission leaves it where it is).
   */
  private emitFrom(now: number, emit: SegmentSink, seq: number, maxLen: number, finFits: boolean): void {
    const dataStart = this.dataStart;
    const off = seqDiff(seq, dataStart);
    let len = Math.min(maxLen, this.txQueue.length - off);
    if (len < 0) len = 0;
    let flags = TCP_ACK;
    const end = seqAdd(seq, len);
    if (this.finQueued && end === this.finSeq && finFits && !this.silentClose()) flags |= TCP_FIN;
    if (len > 0 && off + len === this.txQueue.length) flags |= TCP_PSH;
    const s = this.seg;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = seq;
    s.ack = this.rcvNxt;
    s.flags = flags;
    s.window = this.windowField();
    s.options = NO_OPTIONS;
    s.payload = len > 0 ? this.txQueue.slice(off, len) : EMPTY;
    const segEnd = seqAdd(end, flags & TCP_FIN ? 1 : 0);
    const isNew = seqGt(segEnd, this.sndMax);
    if (seqGt(segEnd, this.sndNxt)) this.sndNxt = segEnd;
    if (isNew) {
      if (this.rttTime < 0 && !seqLt(seq, this.sndMax)) {
        this.rttTime = now;
        this.rttSeq = segEnd;
      }
      this.sndMax = segEnd;
    } else if (this.rttTime >= 0 && seqLt(seq, this.rttSeq)) {
      this.rttTime = -1; // Karn's algorithm
    }
    if (!isNew && segEnd !== seq) this.env.countRetransmit();
    if (this.rtxAt === Infinity && !this.inPersist && segEnd !== seq) this.rtxAt = now + this.rto();
    if (isNew && this.tlpAt === Infinity) this.armTlp(now);
    if (len > 0) this.lastDataSendTime = now;
    this.afterSend(now);
    emit(s);
  }

  private emitAck(now: number, emit: SegmentSink, seq: number): void {
    const s = this.seg;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = seq;
    s.ack = this.rcvNxt;
    s.flags = TCP_ACK;
    s.window = this.windowField();
    // SACK blocks ride on pure ACKs only, so data segments keep their full MSS.
    s.options =
      this.sackOk && !this.ooo.empty ? { sack: this.ooo.sackBlocks(this.lastOooSeq, 4) } : NO_OPTIONS;
    s.payload = EMPTY;
    this.afterSend(now);
    emit(s);
  }

  private afterSend(now: number): void {
    this.lastAckSent = this.rcvNxt;
    this.ackNow = false;
    this.delayedAckAt = Infinity;
    this.lastSendTime = now;
  }

  private emitSyn(now: number, emit: SegmentSink): void {
    this.synDue = false;
    const s = this.seg;
    const synAck = this.state === "SYN-RECEIVED";
    const opts: TcpOptions = { mss: this.advMss };
    // RFC 7323 1.3: a SYN-ACK carries window scale only if the SYN did (same for SACK).
    if (!synAck || this.wscaleSeen) opts.wscale = this.rcvWscale;
    if (synAck ? this.sackOk : this.cfg.sack) opts.sackPermitted = true;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = this.iss;
    s.ack = synAck ? this.rcvNxt : 0;
    s.flags = synAck ? TCP_SYN | TCP_ACK : TCP_SYN;
    const wnd = Math.min(this.freeWindow(), 0xffff);
    s.window = wnd;
    s.options = opts;
    s.payload = EMPTY;
    if (synAck) {
      const edge = seqAdd(this.rcvNxt, wnd);
      if (seqGt(edge, this.rcvAdvEdge)) this.rcvAdvEdge = edge;
      this.lastAckSent = this.rcvNxt;
    }
    const end = seqAdd(this.iss, 1);
    if (seqGt(end, this.sndMax)) {
      this.sndMax = end;
      this.rttTime = now;
      this.rttSeq = end;
    }
    this.sndNxt = end;
    if (this.rtxAt === Infinity) this.rtxAt = now + this.rto();
    this.lastSendTime = now;
    emit(s);
  }

  private emitRst(emit: SegmentSink, seq: number, ack: number, flags: number): void {
    const s = this.seg;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.window = 0;
    s.options = NO_OPTIONS;
    s.payload = EMPTY;
    emit(s);
  }

  /** Clone with dropWhenAcked (no FIN): after end(), vanish once all sent data is acknowledged. */
  private checkCloneDone(): void {
    if (this.finQueued && this.sndUna === this.sndMax && seqGe(this.sndUna, this.finSeq)) {
      this.dropSilently();
    }
  }
}
