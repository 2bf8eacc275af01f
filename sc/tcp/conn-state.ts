// A TCP connection's state, grouped by concern (as gVisor's sender/receiver state or
// smoltcp's grouped fields): send sequence space, receive sequence space, RTT estimator,
// congestion control and loss recovery, timers, negotiated and socket options, pending
// output, and the Socket Cloning hooks. TcpConnection (connection.ts) holds one of each and
// is the only writer; the exported state (exported.ts) is a composition of these groups.
// Plain classes with every field initialised in the constructor, so each group keeps one
// hidden class and the hot path stays monomorphic.

import type { CloneBehaviour } from "./types.js";
import { SackScoreboard } from "./scoreboard.js";

/** MSS assumed for a peer that sends no MSS option (RFC 9293 3.7.1). */
export const DEFAULT_PEER_MSS = 536;

/**
 * Send sequence space, BSD-style: una (oldest unacknowledged), nxt (next to send; goes back
 * to una after a retransmission timeout), max (highest sent + 1 = RFC 9293 SND.NXT).
 */
export class SendState {
  iss = 0;
  una = 0;
  nxt = 0;
  max = 0;
  /** Peer's window in bytes (already scaled). */
  wnd = 0;
  wl1 = 0;
  wl2 = 0;
  /** Largest window the peer ever offered (RFC 5961 ACK check, sender SWS avoidance). */
  maxWnd = 0;
  /** Shift applied to the peer's window field. */
  wscale = 0;
  /** Largest payload we put in a segment: min(peer's MSS, our MTU - 40). */
  mss = DEFAULT_PEER_MSS;
  /** The application asked to close the sending side: FIN after the queue. */
  finQueued = false;
  /** Sequence number of our FIN once finQueued. */
  finSeq = 0;
}

/** Receive sequence space and what we told the peer about it. */
export class ReceiveState {
  irs = 0;
  nxt = 0;
  /** Right edge of the window we advertised; never moves left (RFC 9293 3.8.6). */
  advEdge = 0;
  /** rcv_nxt carried by the last segment we sent (what the peer knows we have). */
  lastAckSent = 0;
  /** Largest payload seen from the peer: "full-sized" for the delayed-ACK rule. */
  mss = DEFAULT_PEER_MSS;
  /** Shift we apply to our window field. */
  wscale = 0;
  /** MSS we advertised (our MTU - 40). */
  advMss: number;
  /** Sequence number of the out-of-order segment that arrived last (first SACK block). */
  lastOooSeq = 0;
  /** Sequence number of a FIN that arrived ahead of missing data. */
  oooFin: number | undefined = undefined;
  finReceived = false;
  constructor(advMss: number) {
    this.advMss = advMss;
  }
}

/** RTT estimator and retransmission backoff (RFC 6298), milliseconds. */
export class RttState {
  srtt = 0;
  rttvar = 0;
  /** RTO from the estimator, before backoff. */
  rto: number;
  backoff = 0;
  hasSample = false;
  /** The timed segment: its end sequence number, and when it left (-1: none timed). */
  seq = 0;
  time = -1;
  /** Consecutive retransmission timeouts (or unanswered probes) without progress. */
  retries = 0;
  constructor(rto: number) {
    this.rto = rto;
  }
}

/** Congestion control (RFC 5681, RFC 6582), in bytes, and loss recovery (RFC 6675, TLP). */
export class CongestionState {
  cwnd = 0;
  ssthresh = 0x7fffffff;
  recover = 0;
  inRecovery = false;
  dupAcks = 0;
  caAcked = 0;
  firstPartialAck = false;
  /** Retransmit the segment at snd_una on the next dispatch (fast retransmit / partial ACK). */
  fastRtx = false;
  /** What the peer SACKed above snd_una (only when SACK is on). */
  readonly scoreboard = new SackScoreboard();
  /** Loss recovery driven by the scoreboard (RFC 6675) instead of NewReno's inflation. */
  sackRecovery = false;
  /** RFC 6675 HighRxt: the highest sequence number retransmitted in this recovery. */
  highRxt = 0;
  /** snd_max when the last hole was retransmitted: if data sent after it gets SACKed while
   *  the hole stays open, that retransmission was lost too. */
  rtxMark = 0;
  /** A tail loss probe is due on the next dispatch (RFC 8985 7). */
  tlpDue = false;
  /** A probe was sent and no ACK has advanced snd_una since. */
  tlpOutstanding = false;
  /** First sequence number of the outstanding probe. */
  tlpSeq = 0;
  /** Holes below this are lost whatever the DupThresh rule says (set by a SACKed probe). */
  forcedLostEnd = 0;
}

/** Deadlines (absolute ms, Infinity when off) and the activity times they derive from. */
export class TimerState {
  rtxAt = Infinity;
  /** Tail loss probe deadline (RFC 8985 7). */
  tlpAt = Infinity;
  persistAt = Infinity;
  inPersist = false;
  persistBackoff = 0;
  persistProbeDue = false;
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
  keepAliveProbesSent = 0;
  keepAliveProbeDue = false;
  /** The idle timeout (options.idleTimeout) is armed for the current idle period. */
  idleArmed = false;
  lastActivity = 0;
  lastRecvTime = 0;
  lastSendTime = 0;
  /** When data last went out (restart after idle, RFC 5681 4.1); -1 before any. */
  lastDataSendTime = -1;
}

/** Negotiated options (SYN) and the socket's options. */
export class ConnOptions {
  /** The peer's SYN carried a window scale option (scaling is on iff both sides sent it). */
  wscaleSeen = false;
  /** Both sides offered SACK-permitted: our ACKs carry SACK blocks for out-of-order data. */
  sackOk = false;
  noDelay: boolean;
  keepAlive = false;
  /** Idle time before the first keepalive probe (setKeepAlive's initialDelay). */
  keepAliveIdle: number;
  /** Idle timeout for the socket API (0 = off); fires EV_TIMEOUT once per idle period. */
  idleTimeout = 0;
  constructor(noDelay: boolean, keepAliveIdle: number) {
    this.noDelay = noDelay;
    this.keepAliveIdle = keepAliveIdle;
  }
}

/** A reply outside our sequence space (RST to a bad ACK in SYN-RECEIVED or SYN-SENT). */
export interface RstReply {
  seq: number;
  ack: number;
  flags: number;
}

/** Output the next dispatch owes besides data. */
export class OutputRequests {
  /** Send an ACK on the next dispatch even if nothing else goes out. */
  ackNow = false;
  synDue = false;
  lastChallengeAt = -Infinity;
  rstReply: RstReply | undefined = undefined;
  rstOnAbort = false;
}

/** Socket Cloning: the original's shadow mode and FIN delegation, the clone's behaviour. */
export class CloningState {
  /** Shadow mode (original while a clone serves): see TcpConnection.setShadow. */
  shadow = false;
  /** Original: rcv_nxt when shadow mode began (the exported one). Every segment the clone
   *  sends acknowledges at least this much. */
  shadowRcvNxt = 0;
  /** Original: snd_max when shadow mode began. Only the clone sends beyond it, so a client
   *  ACK beyond it proves the client received a clone segment, and with it shadowRcvNxt. */
  shadowSndMax = 0;
  /**
   * On an original that resumes a response its failed clone had partly sent: an ACK beyond
   * what we sent but within what we have queued is taken as acknowledging those bytes (the
   * clone sent identical ones) instead of being dropped as "acks unsent data".
   */
  acceptAcksBeyondSent = false;
  /** On the original: our FIN at finSeq is sent by the clone (delegateFin); finSeq is then
   *  an absolute sequence number (the response end), not the end of the send queue. */
  finDelegated = false;
  clone: CloneBehaviour | undefined = undefined;
  /** Clone: the fixed right edge its window may never pass. */
  capEdge = 0;
  /** Clone: application data from this sequence number on is acknowledged and discarded. */
  discardFrom = 0;
  /** Clone: bytes acknowledged and discarded. */
  discardedBytes = 0;
}
