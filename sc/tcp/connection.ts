// One TCP connection as a pure state machine (RFC 9293), in the style of smoltcp's
// socket/tcp.rs: plain state grouped by concern (conn-state.ts: snd, rcv, rtt, cc, timers,
// opts, out, cloning), `process()` for an incoming segment, `dispatch()` for
// everything that is due to go out, `pollAt()` for the next deadline. No I/O and no clock:
// every entry point takes `now` (milliseconds). The stack (stack.ts) owns demultiplexing,
// listeners, the timer heap and the packet codec; the socket layer (socket.ts) turns the
// `events` bits into node:net-style events.
//
// Sequence variables follow BSD: snd.una (oldest unacknowledged), snd.nxt (next to send; it
// goes back to snd.una after a retransmission timeout), snd.max (highest sent + 1, which is
// RFC 9293's SND.NXT). Exported state calls snd.max "sndNxt" (see exported.ts).

import type { TcpConfig } from "./config.js";
import { initialWindowBytes, windowScaleFor } from "./config.js";
import { copyBytes } from "./bytes.js";
import { Reassembler } from "./reassembly.js";
import { SendQueue } from "./send-queue.js";
import {
  CloningState,
  CongestionState,
  ConnOptions,
  DEFAULT_PEER_MSS,
  OutputRequests,
  ReceiveState,
  RttState,
  SendState,
  TimerState,
} from "./conn-state.js";
import { currentRto, readFields, writeFields, type ConnectionSnapshot } from "./exported.js";
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqMax, seqMin } from "./seq.js";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpOptions, type TcpRepr } from "../wire/tcp.js";

import {
  EV_ACKED,
  EV_CLOSED,
  EV_DATA,
  EV_ESTABLISHED,
  EV_FIN,
  EV_FINISHED,
  EV_TIMEOUT,
  type CloneBehaviour,
  type CloseReason,
  type ConnectionEnv,
  type FourTuple,
  type SegmentSink,
  type TcpState,
} from "./types.js";

export { STATE_FIELDS, type ConnectionSnapshot, type StateFieldKey } from "./exported.js";

const NO_OPTIONS: TcpOptions = Object.freeze({}) as TcpOptions;
const EMPTY = new Uint8Array(0);
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

  /** Send sequence space (and our FIN). */
  readonly snd = new SendState();
  /** Receive sequence space (and the peer's FIN). */
  readonly rcv: ReceiveState;
  /** RTT estimator and RTO backoff. */
  readonly rtt: RttState;
  /** Congestion control and loss recovery. */
  readonly cc = new CongestionState();
  readonly timers = new TimerState();
  readonly opts: ConnOptions;
  /** Output the next dispatch owes besides data. */
  readonly out = new OutputRequests();
  /** Socket Cloning: shadow mode, FIN delegation, clone behaviour. */
  readonly cloning = new CloningState();

  // --- buffers
  readonly txQueue = new SendQueue();
  /** In-order received bytes the application has not taken yet. */
  rxQueue: Buffer[] = [];
  rxQueued = 0;
  readonly ooo: Reassembler;

  events = 0;
  closeReason: CloseReason | undefined = undefined;
  /** Set by the owning stack: the last IPv4+TCP header received (the cloning "socket seed"). */
  seed: Uint8Array | undefined = undefined;
  /** The owner of this connection's events (the socket layer's TcpSocket). */
  socket: unknown = undefined;
  /** Set by the owning stack: its table entry for this connection (saves a lookup per app call). */
  stackEntry: unknown = undefined;
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
    this.rcv = new ReceiveState(this.cfg.mtu - 40);
    this.rtt = new RttState(this.cfg.rtoInitial);
    this.opts = new ConnOptions(this.cfg.noDelay, this.cfg.keepAliveIdle);
    this.ooo = new Reassembler(this.cfg.maxOooRanges);
  }

  // ------------------------------------------------------------------ construction

  /** A passive open: `syn` arrived at a listener; we answer with SYN-ACK (SYN-RECEIVED). */
  static accept(env: ConnectionEnv, tuple: FourTuple, syn: TcpRepr, iss: number, now: number): TcpConnection {
    const c = new TcpConnection(env, tuple, "SYN-RECEIVED");
    c.initSend(iss);
    c.rcv.irs = syn.seq;
    c.rcv.nxt = seqAdd(syn.seq, 1);
    c.rcv.lastAckSent = c.rcv.nxt;
    c.rcv.advEdge = c.rcv.nxt;
    c.negotiate(syn.options);
    c.snd.wnd = syn.window; // never scaled in a SYN
    c.snd.maxWnd = c.snd.wnd;
    c.snd.wl1 = syn.seq;
    c.snd.wl2 = iss;
    c.out.synDue = true;
    c.timers.lastActivity = c.timers.lastRecvTime = now;
    return c;
  }

  /** An active open (SYN-SENT); the SYN goes out on the next dispatch. */
  static connect(env: ConnectionEnv, tuple: FourTuple, iss: number, now: number): TcpConnection {
    const c = new TcpConnection(env, tuple, "SYN-SENT");
    c.initSend(iss);
    c.rcv.wscale = windowScaleFor(c.cfg.rcvBufSize);
    c.out.synDue = true;
    c.timers.lastActivity = c.timers.lastRecvTime = now;
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
    c.snd.una = c.snd.nxt = c.snd.max = seqAdd(cookie.iss, 1);
    c.rcv.irs = seqAdd(ack.seq, -1);
    c.rcv.nxt = ack.seq;
    c.rcv.lastAckSent = c.rcv.nxt;
    c.negotiate({ mss: cookie.mss, wscale: cookie.wscale });
    // The cookie SYN-ACK advertised the unscaled initial window; its edge bounds what the
    // peer may have sent already.
    c.rcv.advEdge = seqAdd(c.rcv.nxt, Math.min(c.cfg.rcvBufSize, 0xffff));
    c.snd.wl1 = seqAdd(ack.seq, -1);
    c.snd.wl2 = cookie.iss;
    c.timers.lastActivity = c.timers.lastRecvTime = now;
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
    writeFields(c, snap, c.cfg);
    c.rcv.finReceived = snap.state === "CLOSE-WAIT";
    c.timers.lastActivity = c.timers.lastRecvTime = c.timers.lastDataSendTime = now;
    return c;
  }

  /** The state to export (state.ts). Only meaningful in ESTABLISHED or CLOSE-WAIT. */
  snapshot(now: number): ConnectionSnapshot {
    const tuple: FourTuple = {
      localAddr: this.localAddr,
      localPort: this.localPort,
      remoteAddr: this.remoteAddr,
      remotePort: this.remotePort,
    };
    return readFields(this, now, this.cfg, tuple, this.state);
  }

  private initSend(iss: number): void {
    this.snd.iss = iss;
    this.snd.una = iss;
    this.snd.nxt = iss;
    this.snd.max = iss;
    this.cc.recover = iss;
  }

  /** MSS and window scale from the peer's SYN options (RFC 9293 3.7.1, RFC 7323 2.2). */
  private negotiate(opts: TcpOptions): void {
    let mss = opts.mss ?? 0;
    if (mss === 0) mss = DEFAULT_PEER_MSS;
    if (mss < MIN_PEER_MSS) mss = MIN_PEER_MSS;
    this.snd.mss = Math.min(mss, this.rcv.advMss);
    this.rcv.mss = Math.min(DEFAULT_PEER_MSS, this.rcv.advMss);
    this.opts.wscaleSeen = opts.wscale !== undefined;
    this.opts.sackOk = this.cfg.sack && opts.sackPermitted === true;
    if (opts.wscale !== undefined) {
      this.snd.wscale = Math.min(opts.wscale, 14);
      this.rcv.wscale = windowScaleFor(this.cfg.rcvBufSize);
    } else {
      this.snd.wscale = 0;
      this.rcv.wscale = 0;
    }
    this.cc.cwnd = this.initialWindow();
  }

  private initialWindow(): number {
    return initialWindowBytes(this.cfg.initialWindowSegments, this.snd.mss);
  }

  // ------------------------------------------------------------------ queries

  /** snd_una (the send group's `una`): for the cloning layer outside sc/tcp. */
  get sndUna(): number {
    return this.snd.una;
  }

  /** Highest sequence number sent + 1 (RFC 9293 SND.NXT; the send group's `max`). */
  get sndMax(): number {
    return this.snd.max;
  }

  /** The clone behaviour of an imported clone, undefined otherwise. */
  get clone(): CloneBehaviour | undefined {
    return this.cloning.clone;
  }

  /** True while in shadow mode (setShadow). */
  get shadow(): boolean {
    return this.cloning.shadow;
  }

  /** True once this connection's FIN was delegated to a clone (delegateFin). */
  get finDelegated(): boolean {
    return this.cloning.finDelegated;
  }

  /** See CloningState.acceptAcksBeyondSent (range resume after a failed clone). */
  get acceptAcksBeyondSent(): boolean {
    return this.cloning.acceptAcksBeyondSent;
  }

  set acceptAcksBeyondSent(on: boolean) {
    this.cloning.acceptAcksBeyondSent = on;
  }

  /** A method, not a property test, so TypeScript does not narrow `state` across calls. */
  isClosed(): boolean {
    return this.state === "CLOSED";
  }

  /** Bytes sent and not yet acknowledged (sequence space, including SYN/FIN). */
  get flight(): number {
    return seqDiff(this.snd.max, this.snd.una);
  }

  /** True while the connection is in a state where segments carry data both ways. */
  get synchronized(): boolean {
    return this.state !== "SYN-SENT" && this.state !== "SYN-RECEIVED" && this.state !== "CLOSED";
  }

  /** Sequence number of the first byte in txQueue. */
  private get dataStart(): number {
    return this.state === "SYN-SENT" || this.state === "SYN-RECEIVED"
      ? seqAdd(this.snd.iss, 1)
      : this.snd.una;
  }

  private get dataEnd(): number {
    return seqAdd(this.dataStart, this.txQueue.length);
  }

  /** Our current RTO with backoff (RFC 6298 5.5), clamped to rtoMax. */
  rto(): number {
    return currentRto(this.rtt, this.cfg);
  }

  /** The earliest deadline at which dispatch() has timer work to do (Infinity: none). */
  pollAt(): number {
    if (this.state === "CLOSED") return Infinity;
    let t = this.timers.closeAt;
    if (this.cloning.shadow) return t;
    if (this.timers.rtxAt < t) t = this.timers.rtxAt;
    if (this.timers.tlpAt < t) t = this.timers.tlpAt;
    if (this.timers.persistAt < t) t = this.timers.persistAt;
    if (this.timers.zeroWindowSince >= 0) {
      const z = this.timers.zeroWindowSince + this.cfg.zeroWindowTimeout;
      if (z < t) t = z;
    }
    if (this.timers.delayedAckAt < t) t = this.timers.delayedAckAt;
    if (this.opts.keepAlive && this.state === "ESTABLISHED") {
      const k = this.keepAliveDeadline();
      if (k < t) t = k;
    }
    if (this.timers.idleArmed) {
      const i = this.timers.lastActivity + this.opts.idleTimeout;
      if (i < t) t = i;
    }
    return t;
  }

  private keepAliveDeadline(): number {
    const cfg = this.cfg;
    return (
      this.timers.lastRecvTime +
      this.opts.keepAliveIdle +
      this.timers.keepAliveProbesSent * cfg.keepAliveInterval
    );
  }

  // ------------------------------------------------------------------ application side

  /** Queues bytes to send (the caller hands over ownership of `data`). */
  send(data: Uint8Array, now: number): void {
    if (data.length === 0) return;
    if (this.cloning.finDelegated && seqGt(seqAdd(this.dataEnd, data.length), this.snd.finSeq)) {
      // Resuming after a failed clone: the bytes must end where the clone's FIN is.
      throw new RangeError("send: data beyond the delegated FIN");
    }
    this.txQueue.push(data);
    this.timers.lastActivity = now;
    if (this.opts.idleTimeout > 0) this.timers.idleArmed = true;
  }

  /** Takes everything in the receive queue; the window reopens. */
  takeReceived(now: number): Buffer[] {
    const out = this.rxQueue;
    if (out.length === 0) return out;
    this.rxQueue = [];
    this.rxQueued = 0;
    this.timers.lastActivity = now;
    if (this.opts.idleTimeout > 0) this.timers.idleArmed = true;
    this.checkWindowUpdate();
    return out;
  }

  /**
   * Sends FIN after the queued data (RFC 9293 CLOSE call). Before the handshake completes
   * the FIN waits for it (node:net lets end() follow connect() at once); abort() is the way to
   * give up on an opening connection.
   */
  close(_now: number): void {
    if (this.snd.finQueued || this.state === "CLOSED") return;
    if (this.silentClose() && this.synchronized) {
      // A clone never sends FIN: it stays in its state and vanishes once all is ACKed.
      this.snd.finQueued = true;
      this.snd.finSeq = this.dataEnd;
      this.checkCloneDone();
      return;
    }
    switch (this.state) {
      case "SYN-SENT":
      case "SYN-RECEIVED":
      case "ESTABLISHED":
        this.snd.finQueued = true;
        this.snd.finSeq = this.dataEnd;
        if (this.state === "ESTABLISHED") this.state = "FIN-WAIT-1";
        break;
      case "CLOSE-WAIT":
        this.snd.finQueued = true;
        this.snd.finSeq = this.dataEnd;
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
    this.out.rstOnAbort =
      this.state !== "SYN-SENT" &&
      !this.bothFinsSent &&
      !this.cloning.shadow &&
      this.cloning.clone === undefined;
    this.finish("aborted");
  }

  /** Removes the connection without any packet (cloning: the clone's job is done). */
  dropSilently(): void {
    if (this.state === "CLOSED") return;
    this.out.rstOnAbort = false;
    this.finish("dropped");
  }

  setIdleTimeout(ms: number, now: number): void {
    this.opts.idleTimeout = ms > 0 ? ms : 0;
    this.timers.idleArmed = ms > 0;
    this.timers.lastActivity = now;
  }

  setKeepAlive(enable: boolean, now: number): void {
    this.opts.keepAlive = enable;
    this.timers.keepAliveProbesSent = 0;
    this.timers.lastRecvTime = now;
  }

  /**
   * Shadow mode, for the ORIGINAL connection while a clone answers (paper section 2.3):
   * incoming segments still update the receive side, and their ACK field advances snd_una and
   * snd_nxt (the clone sent those bytes), but nothing is emitted and no retransmission,
   * persist or delayed-ACK timer runs. Enter it right after the export, with no input in
   * between: the clone starts from this rcv_nxt. Leaving shadow mode resumes from the
   * synchronised state and owes only the ACKs the clone cannot have given (leaveShadow).
   */
  setShadow(on: boolean, now: number, ackedThrough?: number): void {
    if (on === this.cloning.shadow) return;
    if (!on) {
      if (ackedThrough !== undefined) this.catchUpShadowAck(now, ackedThrough >>> 0);
      if (this.cloning.shadow) this.leaveShadow(now);
      return;
    }
    this.cloning.shadow = true;
    this.cloning.shadowRcvNxt = this.rcv.nxt;
    this.cloning.shadowSndMax = this.snd.max;
    this.timers.rtxAt = Infinity;
    this.timers.persistAt = Infinity;
    this.timers.inPersist = false;
    this.timers.zeroWindowSince = -1;
    this.timers.delayedAckAt = Infinity;
    this.cc.fastRtx = false;
    this.out.ackNow = false;
    this.out.rstReply = undefined;
  }

  /**
   * Leaves shadow mode with the ACK state the client actually has, so it gets no repeat of an
   * acknowledgement it already received (a duplicate ACK to it):
   * - every clone segment carried ack >= shadowRcvNxt; once the client acknowledged a byte
   *   beyond shadowSndMax it received one, so shadowRcvNxt counts as sent (the request the
   *   clone answered is acknowledged by the clone's response, as a plain server's would be);
   * - bytes received in shadow beyond that (a pipelined request, the client's FIN) may or may
   *   not have been acknowledged by the clone (it sees only the client segments the router
   *   relays, and acknowledges and discards their data), so they are treated as just
   *   received: ACKed at once where RFC 5681 says so (two full segments, a full window, a
   *   FIN, or a segment in shadow that asked for an immediate ACK, e.g. a retransmission),
   *   otherwise on the delayed-ACK timer, restarted now, so the response to
   *   the pipelined request carries it (then no pure ACK at all);
   * - out-of-order data held here is ACKed at once (SACK blocks for the client's recovery);
   * - an immediate ACK asked for in shadow about bytes the clone acknowledged is dropped.
   * A due window update (the clone's window was capped at ours) goes out with the next
   * segment, at the latest on the delayed-ACK timer; at once if the client is nearly out of
   * window.
   */
  private leaveShadow(now: number): void {
    this.resumeAfterShadow(now);
    const cl = this.cloning;
    const cloneReachedClient = seqGt(this.snd.una, cl.shadowSndMax);
    if (cloneReachedClient && seqGt(cl.shadowRcvNxt, this.rcv.lastAckSent)) {
      this.rcv.lastAckSent = cl.shadowRcvNxt;
    }
    const askedInShadow = this.out.ackNow;
    this.out.ackNow = false;
    this.timers.delayedAckAt = Infinity;
    if (!this.ooo.empty) {
      this.out.ackNow = true; // a hole: the client needs our SACK blocks now
    } else if (this.rcv.nxt !== this.rcv.lastAckSent) {
      if (askedInShadow || this.rcv.finReceived) this.out.ackNow = true;
      else this.scheduleAck(now);
    } else if (askedInShadow && !cloneReachedClient) {
      this.out.ackNow = true;
    }
    if (!this.out.ackNow && this.windowUpdateDue()) {
      // The clone kept our window edge; the update rides on the next response segment
      // unless the client is (nearly) out of window.
      if (seqDiff(this.rcv.advEdge, this.rcv.nxt) < this.rcv.advMss) this.out.ackNow = true;
      else if (this.timers.delayedAckAt === Infinity) this.timers.delayedAckAt = now + this.cfg.delayedAck;
    }
  }

  /**
   * The client acknowledged up to `ack` (the cloning router saw it) but the segment that said so
   * may never have reached this connection's ACK processing: an old duplicate (a retransmitted
   * pipelined request whose first copy arrived) fails the sequence check and is dropped before
   * its ACK field is read (RFC 9293 3.10.7.4). Leaving shadow mode behind the clone's response
   * would start the next response inside it, so the send state jumps there now, as that ACK
   * would have moved it (up to a delegated FIN, which then counts as acknowledged).
   */
  private catchUpShadowAck(now: number, ack: number): void {
    if (this.cloning.finDelegated && seqGt(ack, seqAdd(this.snd.finSeq, 1))) return;
    if (seqGt(ack, this.snd.max)) this.jumpInShadow(now, ack);
    else if (seqGt(ack, this.snd.una)) this.onNewAck(now, seqDiff(ack, this.snd.una));
    else return;
    if (this.cloning.finDelegated && this.finAcked()) this.onDelegatedFinAcked(now);
  }

  /**
   * Shadow mode: the client acknowledges bytes the clone sent. Acknowledge our own outstanding
   * data first, then jump the send sequence space to the client's ACK.
   */
  private jumpInShadow(now: number, ack: number): void {
    if (this.snd.max !== this.snd.una) this.onNewAck(now, seqDiff(this.snd.max, this.snd.una));
    const jump = seqDiff(ack, this.snd.max);
    this.snd.una = this.snd.nxt = this.snd.max = ack;
    if (this.snd.finQueued && !this.cloning.finDelegated) this.snd.finSeq = seqAdd(this.snd.finSeq, jump);
    this.cc.recover = ack;
    this.events |= EV_ACKED;
  }

  /** The sending side after shadow mode: the send state is the clone's, recovery starts over. */
  private resumeAfterShadow(now: number): void {
    this.cloning.shadow = false;
    this.snd.nxt = this.snd.max;
    this.cc.dupAcks = 0;
    this.cc.inRecovery = false;
    this.rtt.retries = 0;
    this.rtt.backoff = 0;
    this.timers.rtxAt = this.flight > 0 ? now + this.rto() : Infinity;
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
    if (!this.cloning.shadow || this.snd.finQueued || this.txQueue.length > 0) return false;
    if (this.state !== "ESTABLISHED" && this.state !== "CLOSE-WAIT") return false;
    if (seqLt(finSeq, this.snd.una) && this.snd.una !== seqAdd(finSeq, 1)) return false;
    this.snd.finQueued = true;
    this.cloning.finDelegated = true;
    this.snd.finSeq = finSeq;
    this.state = this.state === "ESTABLISHED" ? "FIN-WAIT-1" : "LAST-ACK";
    // The client acknowledged the clone's FIN before we learnt where it was (the SC-ACK
    // was slower than the client): move on as that ACK would have.
    if (this.finAcked()) this.onDelegatedFinAcked(now);
    return true;
  }

  /** The clone's FIN is acknowledged, seen outside process() (delegateFin, catchUpShadowAck). */
  private onDelegatedFinAcked(now: number): void {
    this.leaveShadowAfterFin(now);
    this.events |= EV_FINISHED;
    if (this.state === "LAST-ACK") {
      // The client's FIN arrived too, in an order we cannot know: TIME-WAIT answers it (the
      // clone was gone, or gone right after, and may not have).
      this.enterTimeWait(now);
      this.out.ackNow = true;
    } else if (this.state === "FIN-WAIT-1") {
      this.state = "FIN-WAIT-2";
    }
  }

  /** The delegated FIN was acknowledged: the clone is done, stop being silent. Everything
   *  received before this point was acknowledged by the clone's segments. */
  private leaveShadowAfterFin(now: number): void {
    this.resumeAfterShadow(now);
    this.rcv.lastAckSent = this.rcv.nxt;
    this.out.ackNow = false;
    this.timers.delayedAckAt = Infinity;
  }

  /** True when our FIN is queued and the peer has acknowledged it. */
  get finAcknowledged(): boolean {
    return this.finAcked();
  }

  /** The peer's FIN as the application sees it: a clone that discards new data leaves the
   *  client's FIN to its original (the connection's owner) and never ends its reader. */
  get peerFinForApp(): boolean {
    return this.rcv.finReceived && this.cloning.clone?.discardNewData !== true;
  }

  /** A clone that closes without a FIN (dropWhenAcked without finWithLastSegment). */
  private silentClose(): boolean {
    const c = this.cloning.clone;
    return c !== undefined && c.dropWhenAcked && !c.finWithLastSegment;
  }

  /** Configures a clone (importState): see CloneBehaviour. */
  setClone(behaviour: CloneBehaviour): void {
    this.cloning.clone = behaviour;
    this.cloning.capEdge = this.rcv.advEdge;
    this.cloning.discardFrom = this.rcv.nxt;
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
      if (this.state === "TIME-WAIT" && flags & TCP_FIN) this.timers.closeAt = now + this.cfg.timeWait;
      if (flags & TCP_SYN) {
        // RFC 5961 4.2 (also a retransmitted SYN in SYN-RECEIVED: our SYN-ACK got lost).
        if (this.state === "SYN-RECEIVED" && seg.seq === this.rcv.irs && !(flags & TCP_ACK)) {
          this.out.synDue = true;
          return;
        }
        this.challengeAck(now);
      } else if (segLen > 0) {
        // Old duplicate data, data beyond the window, or a zero-window probe: ACK at once so
        // the peer learns rcv_nxt and our window (not rate-limited: it carries data).
        this.out.ackNow = true;
      } else {
        // A bare ACK outside the window (keepalive probe, stale ACK): rate-limited reply.
        this.challengeAck(now);
      }
      this.drop("out-of-window");
      return;
    }
    this.timers.lastRecvTime = now;
    this.timers.keepAliveProbesSent = 0;
    if (plen > 0) this.timers.lastActivity = now;

    // 2. RST (RFC 5961 3.2): exact match resets, anything else in the window is challenged.
    if (flags & TCP_RST) {
      if (seg.seq === this.rcv.nxt) {
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
      if (!seqGt(seg.ack, this.snd.una) || seqGt(seg.ack, this.snd.max)) {
        this.out.rstReply = { seq: seg.ack, ack: 0, flags: TCP_RST };
        return;
      }
      this.state = "ESTABLISHED";
      this.events |= EV_ESTABLISHED;
      // The window in the ACK that completes the handshake is scaled (RFC 7323 2.2).
      this.snd.wl1 = seg.seq;
      this.snd.wl2 = seg.ack;
      this.snd.wnd = seg.window << this.snd.wscale;
      this.snd.maxWnd = Math.max(this.snd.maxWnd, this.snd.wnd);
      if (this.snd.finQueued) this.state = "FIN-WAIT-1";
    }
    if (!this.processAck(now, seg)) return;
    if (this.snd.finQueued && this.finAcked()) {
      if (this.cloning.clone !== undefined) {
        // A clone's FIN is acknowledged: the original owns the rest of the close (the
        // client's FIN in this segment or later is the original's to acknowledge).
        this.dropSilently();
        return;
      }
      if (this.cloning.shadow && this.cloning.finDelegated) this.leaveShadowAfterFin(now);
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
          this.out.ackNow = true;
          this.timers.closeAt = now + this.cfg.timeWait;
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
    const wnd = seqDiff(this.rcv.advEdge, this.rcv.nxt);
    if (segLen === 0) {
      if (wnd <= 0) return seq === this.rcv.nxt;
      return seqInRange(seq, this.rcv.nxt, this.rcv.advEdge);
    }
    if (wnd <= 0) return false;
    return (
      seqInRange(seq, this.rcv.nxt, this.rcv.advEdge) ||
      seqInRange(seqAdd(seq, segLen - 1), this.rcv.nxt, this.rcv.advEdge)
    );
  }

  private processSynSent(now: number, seg: TcpRepr): void {
    const flags = seg.flags;
    if (flags & TCP_ACK) {
      if (seqLe(seg.ack, this.snd.iss) || seqGt(seg.ack, this.snd.max)) {
        if (!(flags & TCP_RST)) this.out.rstReply = { seq: seg.ack, ack: 0, flags: TCP_RST };
        return this.drop("bad-ack");
      }
    }
    if (flags & TCP_RST) {
      if (flags & TCP_ACK) this.finish("refused");
      else this.drop("rst-no-ack");
      return;
    }
    if (!(flags & TCP_SYN)) return this.drop("no-syn");
    this.rcv.irs = seg.seq;
    this.rcv.nxt = seqAdd(seg.seq, 1);
    this.rcv.advEdge = this.rcv.nxt;
    this.timers.lastRecvTime = now;
    this.negotiate(seg.options);
    this.snd.wnd = seg.window;
    this.snd.maxWnd = this.snd.wnd;
    this.snd.wl1 = seg.seq;
    this.snd.wl2 = seg.ack;
    if (flags & TCP_ACK) {
      this.snd.una = seg.ack;
      if (seqLt(this.snd.nxt, this.snd.una)) this.snd.nxt = this.snd.una;
      this.rttSampleOnAck(now, seg.ack);
      this.timers.rtxAt = Infinity;
      this.rtt.retries = 0;
      this.rtt.backoff = 0;
      this.state = "ESTABLISHED";
      this.events |= EV_ESTABLISHED;
      this.out.ackNow = true;
      if (this.snd.finQueued) this.state = "FIN-WAIT-1";
    } else {
      // Simultaneous open: answer SYN-ACK from the same ISS.
      this.state = "SYN-RECEIVED";
      this.snd.nxt = this.snd.iss;
      this.out.synDue = true;
    }
  }

  /** Returns false when the segment must be dropped after the ACK check. */
  private processAck(now: number, seg: TcpRepr): boolean {
    const ack = seg.ack;
    if (this.cloning.clone !== undefined && seqGt(ack, this.snd.max)) {
      // The original has taken the connection back and sent beyond the clone's response:
      // the clone's job is over, whatever it still had in flight.
      this.dropSilently();
      return false;
    }
    if (
      seqGt(ack, this.snd.max) &&
      this.cloning.acceptAcksBeyondSent &&
      !this.cloning.shadow &&
      seqLe(ack, this.sendEnd())
    ) {
      // Resumed after a clone failed mid-response: the clone sent these bytes (the same
      // bytes we have queued) and the peer has them. Count them as sent, then as acknowledged.
      this.snd.nxt = this.snd.max = ack;
    }
    if (seqGt(ack, this.snd.max)) {
      if (!this.cloning.shadow) {
        // Acknowledges something not yet sent: ACK and drop (RFC 9293, RFC 5961 5.2).
        this.out.ackNow = true;
        this.drop("ack-unsent");
        return false;
      }
      if (this.cloning.finDelegated && seqGt(ack, seqAdd(this.snd.finSeq, 1))) {
        // Nothing can be acknowledged beyond the clone's FIN.
        this.drop("ack-unsent");
        return false;
      }
      // Shadow mode: the clone sent these bytes.
      this.jumpInShadow(now, ack);
    }
    if (seqLt(ack, seqAdd(this.snd.una, -this.snd.maxWnd))) {
      this.challengeAck(now);
      this.drop("ack-too-old");
      return false;
    }
    const acked = seqDiff(ack, this.snd.una);
    const wndField = seg.window << this.snd.wscale;
    // RFC 6675: an ACK bringing new SACK information counts as a duplicate ACK.
    const sack = seg.options.sack;
    const newSack =
      sack !== undefined &&
      this.opts.sackOk &&
      !this.cloning.shadow &&
      this.cc.scoreboard.update(sack, seqMax(ack, this.snd.una), this.snd.max);
    if (newSack && this.cc.sackRecovery) this.detectLostRetransmissions();
    if (
      newSack &&
      this.cc.tlpOutstanding &&
      !this.cc.inRecovery &&
      seqLt(seqMax(ack, this.snd.una), this.cc.tlpSeq) &&
      this.cc.scoreboard.rangeAt(this.cc.tlpSeq) !== undefined &&
      seqGt(this.snd.una, this.cc.recover)
    ) {
      // The probe arrived but what was sent before it did not: all of that is lost (what
      // RFC 8985 RACK concludes here), so recover now instead of waiting for the RTO.
      this.enterRecovery();
      this.cc.forcedLostEnd = this.cc.tlpSeq;
    }
    if (acked > 0) {
      this.onNewAck(now, acked);
    } else if (
      acked === 0 &&
      seg.payload.length === 0 &&
      !(seg.flags & (TCP_SYN | TCP_FIN)) &&
      this.snd.max !== this.snd.una &&
      (wndField === this.snd.wnd || newSack) &&
      wndField > 0 &&
      !this.timers.inPersist &&
      !this.cloning.shadow
    ) {
      this.onDupAck();
    }
    // Window update (RFC 9293 3.10.7.4 ESTABLISHED, fifth check).
    if (seqLt(this.snd.wl1, seg.seq) || (this.snd.wl1 === seg.seq && seqLe(this.snd.wl2, ack))) {
      this.snd.wnd = wndField;
      this.snd.wl1 = seg.seq;
      this.snd.wl2 = ack;
      if (wndField > this.snd.maxWnd) this.snd.maxWnd = wndField;
      if (this.timers.inPersist && wndField > 0) this.leavePersist(now);
    }
    if (this.timers.inPersist) this.rtt.retries = 0; // the peer answers our probes
    return true;
  }

  private onNewAck(now: number, acked: number): void {
    const ack = seqAdd(this.snd.una, acked);
    let dataAcked = acked;
    const synAcked = this.snd.una === this.snd.iss;
    if (synAcked) {
      dataAcked--; // our SYN
      acked--; // and it does not grow cwnd
    }
    if (this.snd.finQueued && seqGt(ack, this.snd.finSeq)) dataAcked--;
    if (dataAcked > this.txQueue.length) dataAcked = this.txQueue.length;
    if (dataAcked > 0) this.txQueue.consume(dataAcked);
    this.snd.una = ack;
    if (seqLt(this.snd.nxt, ack)) this.snd.nxt = ack;
    this.cc.scoreboard.advance(ack);
    this.events |= EV_ACKED;
    this.rttSampleOnAck(now, ack);
    this.rtt.retries = 0;
    this.rtt.backoff = 0;
    // Progress is data sent into an open window being acknowledged, not probe bytes.
    if (!this.timers.inPersist) this.timers.zeroWindowSince = -1;

    if (!this.cloning.shadow) {
      if (this.cc.inRecovery) {
        if (seqGe(ack, this.cc.recover)) {
          // Full acknowledgment (RFC 6582 3.2 step 3): deflate.
          this.cc.cwnd = Math.min(this.cc.ssthresh, Math.max(this.flight, this.snd.mss) + this.snd.mss);
          this.cc.inRecovery = false;
          this.cc.sackRecovery = false;
          this.cc.dupAcks = 0;
        } else if (this.cc.sackRecovery) {
          // RFC 6675: the scoreboard decides what goes out next; no deflation.
          if (seqLt(this.cc.highRxt, ack)) this.cc.highRxt = ack;
        } else {
          // Partial acknowledgment (step 4): retransmit the next hole, partially deflate.
          this.cc.fastRtx = true;
          this.cc.cwnd = Math.max(
            this.cc.cwnd - acked + (acked >= this.snd.mss ? this.snd.mss : 0),
            this.snd.mss,
          );
          if (this.cc.firstPartialAck) {
            this.cc.firstPartialAck = false;
            this.timers.rtxAt = now + this.rto();
          }
          return;
        }
      } else {
        this.cc.dupAcks = 0;
        if (this.cc.cwnd < this.cc.ssthresh) {
          // Slow start with appropriate byte counting, L = 2 (RFC 3465).
          this.cc.cwnd += Math.min(acked, 2 * this.snd.mss);
        } else {
          this.cc.caAcked += acked;
          if (this.cc.caAcked >= this.cc.cwnd) {
            this.cc.caAcked -= this.cc.cwnd;
            this.cc.cwnd += this.snd.mss;
          }
        }
        if (this.cc.cwnd > 0x3fffffff) this.cc.cwnd = 0x3fffffff;
      }
    }
    this.timers.rtxAt = this.snd.max === this.snd.una || this.cloning.shadow ? Infinity : now + this.rto();
    this.cc.tlpOutstanding = false;
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
      !this.rtt.hasSample ||
      flight === 0 ||
      this.cc.inRecovery ||
      this.timers.inPersist ||
      this.cc.tlpOutstanding ||
      this.cloning.shadow ||
      !this.synchronized
    ) {
      this.timers.tlpAt = Infinity;
      return;
    }
    let pto = Math.max(2 * this.rtt.srtt, this.cfg.tlpMin, this.cloning.clone?.tailProbeMinMs ?? 0);
    if (flight <= this.snd.mss) pto += 200;
    const at = now + pto;
    this.timers.tlpAt = at < this.timers.rtxAt ? at : Infinity;
  }

  /**
   * Lost retransmission detection (in the spirit of RFC 8985 RACK, without timestamps): once
   * the peer SACKs more than DupThresh segments sent after our last hole retransmission, holes
   * retransmitted before it that are still missing were lost again: start over from snd_una.
   */
  private detectLostRetransmissions(): void {
    const rs = this.cc.scoreboard.ranges;
    if (rs.length === 0 || !seqGt(this.cc.highRxt, this.snd.una)) return;
    const top = rs[rs.length - 1][1];
    if (
      seqDiff(top, this.cc.rtxMark) > DUP_ACK_THRESHOLD * this.snd.mss &&
      !this.cc.scoreboard.rangeAt(this.snd.una)
    ) {
      this.cc.highRxt = this.snd.una;
      this.cc.rtxMark = this.snd.max;
    }
  }

  private onDupAck(): void {
    this.cc.dupAcks++;
    if (this.cc.inRecovery) {
      // RFC 6582 step 2: inflate for each extra dup ACK (SACK recovery counts the pipe).
      if (!this.cc.sackRecovery) this.cc.cwnd += this.snd.mss;
      return;
    }
    // RFC 6675 5: three duplicate ACKs, or more than DupThresh-1 segments SACKed above snd_una.
    const sackSaysLost =
      this.opts.sackOk && this.cc.scoreboard.bytes > (DUP_ACK_THRESHOLD - 1) * this.snd.mss;
    if ((this.cc.dupAcks >= DUP_ACK_THRESHOLD || sackSaysLost) && seqGt(this.snd.una, this.cc.recover)) {
      this.enterRecovery();
    }
  }

  /** Fast retransmit and the start of loss recovery (RFC 5681 3.2, RFC 6582, RFC 6675 5). */
  private enterRecovery(): void {
    this.cc.ssthresh = Math.max(Math.floor(this.flight / 2), 2 * this.snd.mss);
    this.cc.recover = this.snd.max;
    this.cc.inRecovery = true;
    this.cc.firstPartialAck = true;
    this.cc.fastRtx = true;
    this.cc.caAcked = 0;
    this.cc.forcedLostEnd = this.snd.una;
    this.timers.tlpAt = Infinity;
    if (this.opts.sackOk && !this.cc.scoreboard.empty) {
      this.cc.sackRecovery = true;
      this.cc.cwnd = this.cc.ssthresh;
      this.cc.highRxt = this.snd.una;
      this.cc.rtxMark = this.snd.max;
    } else {
      this.cc.cwnd = this.cc.ssthresh + DUP_ACK_THRESHOLD * this.snd.mss;
    }
  }

  private rttSampleOnAck(now: number, ack: number): void {
    if (this.rtt.time < 0 || seqLt(ack, this.rtt.seq)) return;
    const r = now - this.rtt.time;
    this.rtt.time = -1;
    if (r < 0) return;
    // RFC 6298 2.2 / 2.3.
    if (!this.rtt.hasSample) {
      this.rtt.srtt = r;
      this.rtt.rttvar = r / 2;
      this.rtt.hasSample = true;
    } else {
      this.rtt.rttvar = 0.75 * this.rtt.rttvar + 0.25 * Math.abs(this.rtt.srtt - r);
      this.rtt.srtt = 0.875 * this.rtt.srtt + 0.125 * r;
    }
    const rto = this.rtt.srtt + Math.max(this.cfg.clockGranularity, 4 * this.rtt.rttvar);
    this.rtt.rto = Math.min(Math.max(rto, this.cfg.rtoMin), this.cfg.rtoMax);
  }

  private finAcked(): boolean {
    return this.snd.finQueued && seqGt(this.snd.una, this.snd.finSeq);
  }

  /** Payload at `seq` in a state that accepts data. */
  private processData(now: number, seq: number, payload: Uint8Array, fin: boolean): void {
    let off = 0;
    let len = payload.length;
    if (seqLt(seq, this.rcv.nxt)) {
      off = seqDiff(this.rcv.nxt, seq);
      if (off >= len) {
        this.out.ackNow = true; // an old duplicate
        if (fin) this.noteFin(now, seqAdd(seq, len));
        return;
      }
    }
    const start = seqAdd(seq, off);
    const room = seqDiff(this.rcv.advEdge, start);
    let finInWindow = fin;
    if (len - off > room) {
      len = off + Math.max(room, 0);
      finInWindow = false;
      this.out.ackNow = true;
      this.count("beyond-window");
    }
    if (len - off <= 0) return;
    if (len - off > this.rcv.mss) this.rcv.mss = Math.min(len - off, this.rcv.advMss);
    if (start === this.rcv.nxt && this.ooo.empty) {
      this.deliver(copyBytes(payload, off, len));
      if (finInWindow) this.noteFin(now, seqAdd(seq, len));
      else if (this.rcv.oooFin === this.rcv.nxt) this.noteFin(now, this.rcv.nxt);
      else this.scheduleAck(now);
      return;
    }
    const data = off === 0 && len === payload.length ? payload : payload.subarray(off, len);
    if (!this.ooo.insert(start, data)) {
      this.count("ooo-full");
      this.out.ackNow = true;
      return;
    }
    if (finInWindow) this.rcv.oooFin = seqAdd(seq, len);
    this.rcv.lastOooSeq = start;
    // Out of order, or filling (part of) a gap: ACK at once (RFC 5681 4.2).
    this.out.ackNow = true;
    const chunks = this.ooo.take(this.rcv.nxt);
    if (chunks !== undefined) {
      for (const c of chunks) this.deliver(c as Buffer);
      if (this.rcv.oooFin !== undefined && this.rcv.oooFin === this.rcv.nxt) this.noteFin(now, this.rcv.nxt);
    }
  }

  /** Appends in-order bytes and advances rcv_nxt. */
  private deliver(data: Buffer): void {
    const n = data.length;
    if (this.cloning.clone?.discardNewData && seqGe(this.rcv.nxt, this.cloning.discardFrom)) {
      this.cloning.discardedBytes += n;
    } else {
      this.rxQueue.push(data);
      this.rxQueued += n;
      this.events |= EV_DATA;
    }
    this.rcv.nxt = seqAdd(this.rcv.nxt, n);
  }

  /** Delayed ACK (RFC 1122 4.2.3.2, RFC 5681 4.2): every second full-sized segment at once. */
  private scheduleAck(now: number): void {
    if (
      seqDiff(this.rcv.nxt, this.rcv.lastAckSent) >= 2 * this.rcv.mss ||
      this.rcv.nxt === this.rcv.advEdge
    ) {
      // (A full window is ACKed at once too: the sender needs it to start probing.)
      this.out.ackNow = true;
    } else if (this.timers.delayedAckAt === Infinity) {
      this.timers.delayedAckAt = now + this.cfg.delayedAck;
    }
  }

  /** A FIN at sequence number `finSeq` (the sequence number after the segment's data). */
  private noteFin(now: number, finSeq: number): void {
    if (this.rcv.finReceived) {
      this.out.ackNow = true;
      return;
    }
    if (finSeq !== this.rcv.nxt) {
      if (seqGt(finSeq, this.rcv.nxt) && seqLt(finSeq, this.rcv.advEdge)) this.rcv.oooFin = finSeq;
      this.out.ackNow = true;
      return;
    }
    if (this.state !== "ESTABLISHED" && this.state !== "FIN-WAIT-1" && this.state !== "FIN-WAIT-2") {
      this.out.ackNow = true;
      return;
    }
    this.rcv.nxt = seqAdd(this.rcv.nxt, 1);
    this.rcv.finReceived = true;
    this.rcv.oooFin = undefined;
    this.out.ackNow = true;
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
    this.timers.rtxAt = Infinity;
    this.timers.persistAt = Infinity;
    this.timers.inPersist = false;
    this.timers.zeroWindowSince = -1;
    this.timers.delayedAckAt = Infinity;
    this.timers.idleArmed = false;
    this.timers.closeAt = now + this.cfg.timeWait;
    this.closeReason = "closed";
    this.events |= EV_CLOSED;
    this.txQueue.consume(this.txQueue.length);
  }

  /** Final transition to CLOSED. */
  private finish(reason: CloseReason): void {
    this.state = "CLOSED";
    this.closeReason ??= reason;
    this.events |= EV_CLOSED;
    this.timers.rtxAt = this.timers.persistAt = this.timers.delayedAckAt = this.timers.closeAt = Infinity;
    this.timers.idleArmed = false;
    this.timers.inPersist = false;
    this.timers.zeroWindowSince = -1;
    this.txQueue.consume(this.txQueue.length);
    this.ooo.clear();
  }

  /**
   * A challenge ACK (RFC 5961), rate-limited per connection first (so one connection cannot
   * drain the shared budget, and a spoofer aiming at one connection gets at most one reply
   * per interval), then by the stack's randomised global cap (challenge-ack.ts).
   */
  private challengeAck(now: number): void {
    if (now - this.out.lastChallengeAt < this.cfg.challengeAckInterval) {
      this.count("challenge-ack-limited");
      return;
    }
    if (!this.env.takeChallengeAck(now)) {
      this.count("challenge-ack-global-limited");
      return;
    }
    this.out.lastChallengeAt = now;
    this.out.ackNow = true;
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
    if (this.cloning.clone?.capWindow) {
      const cap = seqDiff(this.cloning.capEdge, this.rcv.nxt);
      if (w > cap) w = cap > 0 ? cap : 0;
    }
    return w;
  }

  /** RFC 1122 4.2.3.3: the right edge moves only by min(buffer/2, MSS) or more. */
  private windowUpdateDue(): boolean {
    const cur = seqDiff(this.rcv.advEdge, this.rcv.nxt);
    const grow = this.freeWindow() - cur;
    return (
      grow >= Math.min(this.cfg.rcvBufSize >>> 1, 2 * this.rcv.advMss) ||
      (cur < this.rcv.advMss && grow >= this.rcv.advMss)
    );
  }

  private checkWindowUpdate(): void {
    // (In shadow mode the clone speaks; leaveShadow decides about the update.)
    if (this.cloning.shadow) return;
    if (this.synchronized && !this.rcv.finReceived && this.windowUpdateDue()) this.out.ackNow = true;
  }

  /** The window field for an outgoing non-SYN segment; moves rcvAdvEdge. */
  private windowField(): number {
    const cur = seqDiff(this.rcv.advEdge, this.rcv.nxt);
    let w = this.freeWindow();
    if (w > cur && w - cur < Math.min(this.cfg.rcvBufSize >>> 1, this.rcv.advMss)) w = cur;
    const capped = this.cloning.clone?.capWindow === true;
    if (w < cur && !capped) w = cur;
    const shift = this.rcv.wscale;
    let field = capped ? w >>> shift : Math.ceil(w / 2 ** shift);
    if (field > 0xffff) field = 0xffff;
    if (field < 0) field = 0;
    const edge = seqAdd(this.rcv.nxt, field * 2 ** shift);
    if (seqGt(edge, this.rcv.advEdge)) this.rcv.advEdge = edge;
    return field;
  }

  // ------------------------------------------------------------------ output

  /**
   * Runs due timers, then emits every segment that is due, through `emit` (which must
   * serialize the segment before returning: the object is reused).
   */
  dispatch(now: number, emit: SegmentSink): void {
    if (this.state === "CLOSED") {
      if (this.out.rstOnAbort) {
        this.out.rstOnAbort = false;
        // Never past the peer's window (Linux's tcp_acceptable_seq): after zero-window probes
        // sndMax is beyond it, and RFC 5961 peers drop such a RST silently.
        const wndEnd = (this.snd.una + this.snd.wnd) >>> 0;
        const seq = seqGt(this.snd.max, wndEnd) ? wndEnd : this.snd.max;
        this.emitRst(emit, seq, this.rcv.nxt, TCP_RST | TCP_ACK);
      }
      return;
    }
    if (this.out.rstReply !== undefined) {
      const r = this.out.rstReply;
      this.out.rstReply = undefined;
      if (!this.cloning.shadow) this.emitRst(emit, r.seq, r.ack, r.flags);
    }
    if (now >= this.timers.closeAt) {
      if (this.state === "TIME-WAIT") {
        this.state = "CLOSED";
        this.timers.closeAt = Infinity;
        return;
      }
    }
    if (this.cloning.shadow) return;
    this.runTimers(now);
    if (this.isClosed()) {
      this.dispatch(now, emit);
      return;
    }
    if (this.state === "SYN-SENT" || this.state === "SYN-RECEIVED") {
      if (this.out.synDue) this.emitSyn(now, emit);
      else if (this.out.ackNow && this.state === "SYN-RECEIVED") this.emitAck(now, emit, this.snd.max);
      return;
    }
    let sent = false;
    if (this.cc.fastRtx) {
      this.cc.fastRtx = false;
      if (this.snd.max !== this.snd.una) {
        const len = this.holeLength(this.snd.una, this.snd.mss);
        this.emitFrom(now, emit, this.snd.una, len, true);
        if (this.cc.sackRecovery) {
          this.cc.highRxt = seqMax(this.cc.highRxt, seqAdd(this.snd.una, len));
          this.cc.rtxMark = this.snd.max;
        }
        sent = true;
      }
    }
    if (this.state !== "TIME-WAIT") sent = this.emitData(now, emit) || sent;
    if (!sent && (this.out.ackNow || now >= this.timers.delayedAckAt)) {
      this.emitAck(now, emit, this.snd.max);
    }
  }

  private runTimers(now: number): void {
    if (now >= this.timers.tlpAt) {
      this.timers.tlpAt = Infinity;
      if (this.flight > 0 && !this.cc.inRecovery) this.cc.tlpDue = true;
    }
    if (now >= this.timers.rtxAt) this.onRetransmitTimeout(now);
    if (this.isClosed()) return;
    if (this.timers.zeroWindowSince >= 0 && now >= this.timers.zeroWindowSince + this.cfg.zeroWindowTimeout) {
      this.env.countZeroWindowAbort();
      this.finish("zero-window");
      // A clone never resets: the connection belongs to its original node.
      this.out.rstOnAbort = this.cloning.clone === undefined;
      return;
    }
    if (now >= this.timers.persistAt) this.onPersistTimeout(now);
    if (this.isClosed()) return;
    if (this.opts.keepAlive && this.state === "ESTABLISHED" && now >= this.keepAliveDeadline()) {
      if (this.timers.keepAliveProbesSent >= this.cfg.keepAliveProbes) {
        this.finish("timeout");
        this.out.rstOnAbort = this.cloning.clone === undefined;
        return;
      }
      this.timers.keepAliveProbesSent++;
      this.timers.keepAliveProbeDue = true;
    }
    if (this.timers.idleArmed && now >= this.timers.lastActivity + this.opts.idleTimeout) {
      this.timers.idleArmed = false;
      this.events |= EV_TIMEOUT;
    }
    if (
      this.state === "FIN-WAIT-2" &&
      this.cfg.finWait2Timeout > 0 &&
      now >= this.timers.lastRecvTime + this.cfg.finWait2Timeout
    ) {
      this.finish("timeout");
    }
  }

  private onRetransmitTimeout(_now: number): void {
    this.timers.rtxAt = Infinity;
    this.timers.tlpAt = Infinity;
    this.cc.tlpDue = false;
    this.cc.tlpOutstanding = false;
    if (this.state === "SYN-SENT" || this.state === "SYN-RECEIVED") {
      const limit = this.state === "SYN-SENT" ? this.cfg.synRetries : this.cfg.synAckRetries;
      if (this.rtt.retries >= limit) {
        this.finish("timeout");
        return;
      }
      this.rtt.retries++;
      this.rtt.backoff++;
      this.rtt.time = -1;
      this.out.synDue = true;
      return;
    }
    if (this.snd.max === this.snd.una) return;
    if (this.rtt.retries >= this.cfg.maxRetransmits) {
      this.finish("timeout");
      // A clone never resets: the connection belongs to its original node.
      this.out.rstOnAbort = this.cloning.clone === undefined;
      return;
    }
    this.rtt.retries++;
    // RFC 5681 eq. 4 on the first timeout of this data; later ones keep ssthresh.
    if (this.rtt.backoff === 0) this.cc.ssthresh = Math.max(Math.floor(this.flight / 2), 2 * this.snd.mss);
    this.cc.cwnd = this.snd.mss;
    this.cc.caAcked = 0;
    this.cc.recover = this.snd.max; // RFC 6582 section 4: no fast retransmit for these losses
    this.cc.inRecovery = false;
    this.cc.sackRecovery = false;
    // RFC 2018 8: the receiver may have dropped what it SACKed; rebuilt from later ACKs.
    this.cc.scoreboard.clear();
    this.cc.dupAcks = 0;
    this.cc.fastRtx = false;
    this.rtt.backoff++;
    this.rtt.time = -1; // Karn: no sample from retransmitted data
    this.snd.nxt = this.snd.una; // go back N
  }

  private onPersistTimeout(_now: number): void {
    this.timers.persistAt = Infinity;
    if (!this.timers.inPersist) return;
    if (this.rtt.retries >= this.cfg.maxRetransmits) {
      this.finish("timeout");
      // A clone never resets: the connection belongs to its original node.
      this.out.rstOnAbort = this.cloning.clone === undefined;
      return;
    }
    this.rtt.retries++;
    this.timers.persistProbeDue = true;
  }

  private leavePersist(now: number): void {
    this.timers.inPersist = false;
    this.timers.persistAt = Infinity;
    this.timers.persistBackoff = 0;
    // A probe byte the peer did not take is sent again with the next segment.
    this.snd.nxt = this.snd.una;
    if (this.flight > 0 && this.timers.rtxAt === Infinity) this.timers.rtxAt = now + this.rto();
  }

  /** Sends data (and FIN) permitted by the windows. Returns true if anything went out. */
  private emitData(now: number, emit: SegmentSink): boolean {
    let sent = false;
    if (this.timers.persistProbeDue) {
      this.timers.persistProbeDue = false;
      const persistDelay = Math.min(this.rtt.rto * 2 ** ++this.timers.persistBackoff, this.cfg.rtoMax);
      this.timers.persistAt = now + persistDelay;
      this.emitFrom(now, emit, this.snd.una, 1, true);
      return true;
    }
    if (this.timers.keepAliveProbeDue) {
      this.timers.keepAliveProbeDue = false;
      if (this.snd.max === this.snd.una && this.txQueue.length === 0) {
        // Keepalive: one byte below snd_una, no data (RFC 1122 4.2.3.6); the peer ACKs.
        this.emitAck(now, emit, seqAdd(this.snd.una, -1));
        return true;
      }
    }
    const mss = this.snd.mss;
    if (this.cc.tlpDue) {
      // Tail loss probe (RFC 8985 7.3): a new segment if the peer's window allows, else the
      // last segment again; either way its ACK (with SACK) tells us what is missing.
      this.cc.tlpDue = false;
      this.cc.tlpOutstanding = true;
      const unsent = seqDiff(this.dataEnd, this.snd.nxt);
      const wndRoom = seqDiff(seqAdd(this.snd.una, this.snd.wnd), this.snd.nxt);
      if (unsent > 0 && wndRoom > 0 && this.snd.nxt === this.snd.max) {
        this.cc.tlpSeq = this.snd.nxt;
        this.emitFrom(now, emit, this.snd.nxt, Math.min(mss, unsent, wndRoom), false);
      } else {
        const end =
          this.snd.finQueued && seqGt(this.snd.max, this.snd.finSeq) ? this.snd.finSeq : this.snd.max;
        const start = seqMax(this.snd.una, seqAdd(end, -mss));
        this.cc.tlpSeq = start;
        this.emitFrom(now, emit, start, seqDiff(end, start), true);
      }
      return true;
    }
    // With GSO one packet carries several whole segments (the kernel cuts it up).
    const gsoPayload = this.cfg.gsoMaxBytes - 40;
    const maxSeg = gsoPayload > 2 * mss ? Math.floor(gsoPayload / mss) * mss : mss;
    if (
      this.snd.max === this.snd.una &&
      now - this.timers.lastDataSendTime > this.rto() &&
      this.timers.lastDataSendTime >= 0
    ) {
      // RFC 5681 4.1: restart from the initial window after an idle period.
      const iw = this.initialWindow();
      if (this.cc.cwnd > iw) this.cc.cwnd = iw;
    }
    if (this.cc.sackRecovery) return this.emitSackRecovery(now, emit, maxSeg);
    for (;;) {
      if (seqLt(this.snd.nxt, this.snd.max) && !this.cc.scoreboard.empty) {
        // Going back after a timeout: skip what the peer SACKed since.
        const r = this.cc.scoreboard.rangeAt(this.snd.nxt);
        if (r !== undefined) {
          this.snd.nxt = seqMin(r[1], this.snd.max);
          continue;
        }
      }
      const dataEnd = this.dataEnd;
      const unsent = seqDiff(dataEnd, this.snd.nxt);
      const finPending = this.finPending();
      if (unsent <= 0 && !finPending) break;
      let wnd = this.snd.wnd;
      let cw = this.cc.cwnd;
      if (!this.cc.inRecovery && this.cc.dupAcks > 0 && this.cc.dupAcks < DUP_ACK_THRESHOLD)
        cw += this.cc.dupAcks * mss; // RFC 3042
      if (cw < wnd) wnd = cw;
      const room = seqDiff(seqAdd(this.snd.una, wnd), this.snd.nxt);
      if (room <= 0) {
        if (this.snd.wnd === 0 && this.snd.nxt === this.snd.una) this.enterPersist(now);
        break;
      }
      let len = unsent > 0 ? Math.min(unsent, maxSeg, room) : 0;
      if (len > mss && len < unsent && len % mss !== 0) len -= len % mss;
      const retransmit = seqLt(this.snd.nxt, this.snd.max);
      if (retransmit && len > 0) len = this.holeLength(this.snd.nxt, len);
      if (unsent > 0 && len < mss && len < unsent) {
        // Limited by the window: sender SWS avoidance (RFC 1122 4.2.3.4).
        const inFlight = seqDiff(this.snd.nxt, this.snd.una) > 0;
        if (inFlight && len * 2 < this.snd.maxWnd && !retransmit) break;
      }
      if (
        unsent > 0 &&
        len < mss &&
        len === unsent &&
        !this.opts.noDelay &&
        !this.snd.finQueued &&
        !retransmit
      ) {
        // Nagle (RFC 896): a small tail waits while data is unacknowledged.
        if (this.snd.max !== this.snd.una) break;
      }
      if (len < 0) len = 0;
      const before = this.snd.nxt;
      this.emitFrom(now, emit, before, len, len < room);
      sent = true;
      if (this.snd.nxt === before) break;
    }
    return sent;
  }

  /**
   * Our FIN still has to go out: queued, not sent past, everything before it queued (a
   * delegated FIN waits for the resumed data), and not a clone that vanishes silently.
   */
  private finPending(): boolean {
    return (
      this.snd.finQueued &&
      seqLe(this.snd.nxt, this.snd.finSeq) &&
      this.dataEnd === this.snd.finSeq &&
      !this.silentClose()
    );
  }

  /** End of our sequence space once everything queued is sent: data, plus a FIN queued
   *  right after it. */
  private sendEnd(): number {
    const end = this.dataEnd;
    return this.snd.finQueued && this.snd.finSeq === end ? seqAdd(end, 1) : end;
  }

  /** Bytes from `seq` up to `max` that are not SACKed (stops at the next SACKed range). */
  private holeLength(seq: number, max: number): number {
    if (this.cc.scoreboard.empty) return max;
    const next = this.cc.scoreboard.nextStart(seq);
    return next === undefined ? max : Math.max(Math.min(max, seqDiff(next, seq)), 0);
  }

  /**
   * RFC 6675 "pipe": bytes in flight = outstanding - SACKed - lost and not yet retransmitted.
   */
  private pipe(lostEnd: number): number {
    const sb = this.cc.scoreboard;
    const from = seqMax(this.cc.highRxt, this.snd.una);
    let lost = 0;
    if (seqLt(from, lostEnd)) lost = seqDiff(lostEnd, from) - sb.sackedIn(from, lostEnd);
    return this.flight - sb.bytes - lost;
  }

  /**
   * Output during SACK-based recovery (RFC 6675 5, NextSeg): while cwnd - pipe allows a
   * segment, first retransmit holes presumed lost (above HighRxt), then send new data.
   */
  private emitSackRecovery(now: number, emit: SegmentSink, maxSeg: number): boolean {
    const mss = this.snd.mss;
    const sb = this.cc.scoreboard;
    // The first hole is lost by definition once recovery started (three duplicate ACKs).
    let lostEnd = seqMax(sb.lostEnd(this.snd.una, (DUP_ACK_THRESHOLD - 1) * mss), seqAdd(this.snd.una, 1));
    if (seqGt(this.cc.forcedLostEnd, lostEnd) && seqLe(this.cc.forcedLostEnd, this.snd.max))
      lostEnd = this.cc.forcedLostEnd;
    let pipe = this.pipe(lostEnd);
    let sent = false;
    for (let guard = 0; guard < 1024 && this.cc.cwnd - pipe >= mss; guard++) {
      let seq = seqMax(this.cc.highRxt, this.snd.una);
      const r = sb.rangeAt(seq);
      if (r !== undefined) seq = r[1];
      if (seqLt(seq, lostEnd) && seqLt(seq, this.snd.max)) {
        const next = sb.nextStart(seq);
        const limit = next !== undefined && seqLt(next, this.snd.max) ? next : this.snd.max;
        const len = Math.min(mss, seqDiff(limit, seq));
        this.emitFrom(now, emit, seq, len, true);
        this.cc.highRxt = seqAdd(seq, len);
        this.cc.rtxMark = this.snd.max;
        pipe += len;
        sent = true;
        continue;
      }
      // New data, as the peer's window allows.
      const unsent = seqDiff(this.dataEnd, this.snd.nxt);
      const finPending = this.finPending();
      const wndRoom = seqDiff(seqAdd(this.snd.una, this.snd.wnd), this.snd.nxt);
      if ((unsent <= 0 && !finPending) || wndRoom <= 0) break;
      let len = Math.min(unsent, maxSeg, this.cc.cwnd - pipe, wndRoom);
      if (len > mss && len < unsent) len -= len % mss;
      if (len < 0) len = 0;
      const before = this.snd.nxt;
      this.emitFrom(now, emit, before, len, len < wndRoom);
      pipe += seqDiff(this.snd.nxt, before);
      sent = true;
      if (this.snd.nxt === before) break;
    }
    return sent;
  }

  private enterPersist(now: number): void {
    if (this.timers.inPersist) return;
    this.timers.inPersist = true;
    if (this.timers.zeroWindowSince < 0) this.timers.zeroWindowSince = now;
    this.timers.persistBackoff = 0;
    this.timers.rtxAt = Infinity;
    this.timers.persistAt = now + this.rto();
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
    if (this.snd.finQueued && end === this.snd.finSeq && finFits && !this.silentClose()) flags |= TCP_FIN;
    if (len > 0 && off + len === this.txQueue.length) flags |= TCP_PSH;
    const s = this.seg;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = seq;
    s.ack = this.rcv.nxt;
    s.flags = flags;
    s.window = this.windowField();
    s.options = NO_OPTIONS;
    s.payload = len > 0 ? this.txQueue.slice(off, len) : EMPTY;
    const segEnd = seqAdd(end, flags & TCP_FIN ? 1 : 0);
    const isNew = seqGt(segEnd, this.snd.max);
    if (seqGt(segEnd, this.snd.nxt)) this.snd.nxt = segEnd;
    if (isNew) {
      if (this.rtt.time < 0 && !seqLt(seq, this.snd.max)) {
        this.rtt.time = now;
        this.rtt.seq = segEnd;
      }
      this.snd.max = segEnd;
    } else if (this.rtt.time >= 0 && seqLt(seq, this.rtt.seq)) {
      this.rtt.time = -1; // Karn's algorithm
    }
    if (!isNew && segEnd !== seq) this.env.countRetransmit();
    if (this.timers.rtxAt === Infinity && !this.timers.inPersist && segEnd !== seq)
      this.timers.rtxAt = now + this.rto();
    if (isNew && this.timers.tlpAt === Infinity) this.armTlp(now);
    if (len > 0) this.timers.lastDataSendTime = now;
    this.afterSend(now);
    emit(s);
  }

  private emitAck(now: number, emit: SegmentSink, seq: number): void {
    const s = this.seg;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = seq;
    s.ack = this.rcv.nxt;
    s.flags = TCP_ACK;
    s.window = this.windowField();
    // SACK blocks ride on pure ACKs only, so data segments keep their full MSS.
    s.options =
      this.opts.sackOk && !this.ooo.empty
        ? { sack: this.ooo.sackBlocks(this.rcv.lastOooSeq, 4) }
        : NO_OPTIONS;
    s.payload = EMPTY;
    this.afterSend(now);
    emit(s);
  }

  private afterSend(now: number): void {
    this.rcv.lastAckSent = this.rcv.nxt;
    this.out.ackNow = false;
    this.timers.delayedAckAt = Infinity;
    this.timers.lastSendTime = now;
  }

  private emitSyn(now: number, emit: SegmentSink): void {
    this.out.synDue = false;
    const s = this.seg;
    const synAck = this.state === "SYN-RECEIVED";
    const opts: TcpOptions = { mss: this.rcv.advMss };
    // RFC 7323 1.3: a SYN-ACK carries window scale only if the SYN did (same for SACK).
    if (!synAck || this.opts.wscaleSeen) opts.wscale = this.rcv.wscale;
    if (synAck ? this.opts.sackOk : this.cfg.sack) opts.sackPermitted = true;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = this.snd.iss;
    s.ack = synAck ? this.rcv.nxt : 0;
    s.flags = synAck ? TCP_SYN | TCP_ACK : TCP_SYN;
    const wnd = Math.min(this.freeWindow(), 0xffff);
    s.window = wnd;
    s.options = opts;
    s.payload = EMPTY;
    if (synAck) {
      const edge = seqAdd(this.rcv.nxt, wnd);
      if (seqGt(edge, this.rcv.advEdge)) this.rcv.advEdge = edge;
      this.rcv.lastAckSent = this.rcv.nxt;
    }
    const end = seqAdd(this.snd.iss, 1);
    if (seqGt(end, this.snd.max)) {
      this.snd.max = end;
      this.rtt.time = now;
      this.rtt.seq = end;
    }
    this.snd.nxt = end;
    if (this.timers.rtxAt === Infinity) this.timers.rtxAt = now + this.rto();
    this.timers.lastSendTime = now;
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
    if (this.snd.finQueued && this.snd.una === this.snd.max && seqGe(this.snd.una, this.snd.finSeq)) {
      this.dropSilently();
    }
  }
}
