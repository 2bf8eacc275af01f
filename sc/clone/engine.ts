// The Socket Cloning engine (paper sections 2 and 3): both ends of a clone as state machines.
//
// ORIGINAL side (the node a connection arrived at): a clone is begun (shadow on, router entry,
// SC-ACK deadline), then driven by the SC-ACK (accepted: the response length is known;
// refused), the client's packets (routed through the Packet Router, completion when the
// client acknowledged start + length), the SC link going down, the connection closing, and
// deadlines (no SC-ACK in time, no progress, the client's FIN linger, send timeouts).
// CLONE side (the node a CLONE arrives at): admission (deadline, capacity, ownership of the
// 4-tuple by the sending peer), CANCEL, the start check, packets forwarded by peers, send
// timeouts.
//
// Pure: no I/O, no timers, no promises. Events come in as method calls with the time passed
// in; what must happen comes out as calls on an effects object the adapter implements
// (server/modes/sc.ts on a node, a recorder in tests). Deadlines are kept in lists the
// adapter polls: pollAt() says when, poll(now) acts. Generic over the peer (anything with an
// id) and over the connection handle H (the adapter's socket).
import { CloneStatus, CLONE_STATUS_NAMES } from "./message.js";
import { seqDiff } from "../tcp/seq.js";
import { newTcpPeek, PacketRouter, peekTcp, type RouterEntry, type RouterOptions } from "../router/router.js";

export interface Tuple {
  readonly remoteAddr: number;
  readonly remotePort: number;
  readonly localAddr: number;
  readonly localPort: number;
}

export interface Peer {
  readonly id: string;
}

export type OriginalFailure =
  | "peer-down"
  | "timeout"
  | "refused"
  | "not-exportable"
  | "resumed"
  | "reset"
  | "abandoned"
  /** The original reset a client that acknowledged nothing for sendTimeoutMs (before a clone, or resuming). */
  | "send-timeout";

export type CloneSideFailure =
  /** This node dropped a clone whose client acknowledged nothing for sendTimeoutMs. */
  | "clone-send-timeout"
  /** This node dropped a clone whose original's SC link closed (the original takes it back). */
  | "clone-link-lost";

export type FailureReason = OriginalFailure | CloneSideFailure;

export const FAILURE_REASONS: readonly FailureReason[] = [
  "peer-down",
  "timeout",
  "refused",
  "not-exportable",
  "resumed",
  "reset",
  "abandoned",
  "send-timeout",
  "clone-send-timeout",
  "clone-link-lost",
];

// ------------------------------------------------------------------ send deadlines

/** What a watched connection's send side looks like now (read by the adapter). */
export interface SendProgress {
  /** The acknowledged point (snd_una). */
  una: number;
  /** Nothing outstanding and nothing queued: the client owes no acknowledgement. */
  idle: boolean;
  /** The connection is gone: stop watching. */
  gone: boolean;
}

/**
 * Send timeouts of connections the mode drives itself (outside the HTTP pipeline, whose own
 * send timeout does not run then): a connection with bytes outstanding whose acknowledged
 * point does not move for `timeoutMs` expires.
 */
export class SendDeadlines<H> {
  private readonly watched = new Map<H, { una: number; since: number }>();

  constructor(private readonly timeoutMs: number) {}

  get size(): number {
    return this.watched.size;
  }

  watch(h: H, una: number, now: number): void {
    this.watched.set(h, { una, since: now });
  }

  unwatch(h: H): void {
    this.watched.delete(h);
  }

  has(h: H): boolean {
    return this.watched.has(h);
  }

  pollAt(): number {
    let at = Infinity;
    for (const d of this.watched.values()) at = Math.min(at, d.since + this.timeoutMs);
    return at;
  }

  /** The connections that expired now (no longer watched). */
  expire(now: number, probe: (h: H) => SendProgress): H[] {
    const out: H[] = [];
    for (const [h, d] of this.watched) {
      const p = probe(h);
      if (p.gone) {
        this.watched.delete(h);
        continue;
      }
      if (p.idle || p.una !== d.una) {
        d.una = p.una;
        d.since = now;
      } else if (now - d.since >= this.timeoutMs) {
        this.watched.delete(h);
        out.push(h);
      }
    }
    return out;
  }
}

// ------------------------------------------------------------------ original side

export type ClonePhase =
  /** CLONE sent, waiting for the SC-ACK (the clone may already be sending). */
  | "sent"
  /**
   * No SC-ACK by its deadline: CANCEL sent, waiting for the answer. The SC link is ordered, so
   * whatever the clone's node said about the CLONE (accepted, refused) arrives before the
   * answer to the CANCEL: an SC-ACK accepting it is taken late (the clone is sending), anything
   * else means the clone never started and the request is served here.
   */
  | "cancelling"
  /** SC-ACK received: the response length is known; waiting for the client's acknowledgement. */
  | "active"
  /** Taken back by the original to continue the byte stream (range resume). */
  | "resuming"
  /** Finished (completed, failed or abandoned): nothing more happens to it. */
  | "over";

/** A clone in flight, as the original sees it. */
export interface OutgoingClone<P extends Peer, H> {
  readonly id: number;
  readonly peer: P;
  readonly handle: H;
  readonly entry: RouterEntry<P>;
  phase: ClonePhase;
  /** When the CLONE left (the caller's clock, ms): the latency's origin. */
  readonly sentAt: number;
  /** The SC-ACK must arrive by then (the clone's start deadline plus a margin). */
  readonly ackBy: number;
  /** Cancelling: the answer to the CANCEL must arrive by then (0 before). */
  cancelBy: number;
  /**
   * The last response on the connection: the clone sends FIN with its last segment, so the
   * client's acknowledgement of the response covers length + 1 (FIN delegation).
   */
  readonly last: boolean;
  /** From the SC-ACK: the exact response length and head (for a range resume). */
  length: number;
  head: Uint8Array;
  /**
   * The bytes the response takes on the connection (OriginalEffects.streamLength): `length`,
   * or more under TLS (record headers and tags, close_notify). 0 before the SC-ACK.
   */
  streamLength: number;
  /** Completed and its node told by a DONE (else the completing ACK has to reach it). */
  doneSent: boolean;
}

/** An SC-ACK as the engine needs it. */
export interface AckEvent {
  cloneId: number;
  status: CloneStatus;
  responseLength: number;
  head: Uint8Array;
}

/**
 * How long completions wait to be sent together in one DONE (a message per clone cost both
 * nodes a wake-up, a write and two MACs). The completing ACK is not relayed (complete()), so
 * a clone holds its finished connection up to this long.
 */
export const DONE_DELAY_MS = 20;
/** A clone's tail loss probe waits at least this long: past a batched DONE with margin. */
export const CLONE_TAIL_PROBE_MIN_MS = DONE_DELAY_MS + 30;

/** What the original side asks of its adapter. */
export interface OriginalEffects<P extends Peer, H> {
  /**
   * Shadow mode on or off for the connection (off only while it is open). Leaving it after a
   * completed response, `ackedThrough` is the client's ACK the router counted: the stack may
   * have dropped the segment that carried it (an old duplicate fails the sequence check before
   * its ACK is read), and its send state must catch up before the next response starts.
   */
  shadow(h: H, on: boolean, ackedThrough?: number): void;
  /** Hands a client packet to the local stack (always, before any forwarding). */
  toStack(packet: Uint8Array): void;
  /** Sends a client packet to the clone's node (GUE). */
  forward(packet: Uint8Array, peer: P): void;
  /**
   * Tells a slow clone node to give up (no SC-ACK in time); the node answers every CANCEL (see
   * CloneSide.onCancel). False if it could not be sent (the link is down).
   */
  sendCancel(peer: P, cloneId: number): boolean;
  /**
   * Tells the clone's node that the client acknowledged the whole response (the clone may
   * vanish): the completion as a message, instead of relaying ACKs after the end. False if
   * the link is down.
   */
  sendDone(peer: P, cloneId: number): boolean;
  /** The clone is over; the HTTP pipeline continues with the request served here or done. */
  settle(h: H, decision: "serve" | "done"): void;
  /**
   * Resets the client's connection (nothing can be delivered exactly); `cause` is why the clone
   * failed (for the node's log: a reset is what a client notices).
   */
  reset(c: OutgoingClone<P, H>, cause: string): void;
  /**
   * The clone failed mid-response (its node died or stalled): continue the byte stream from
   * what the client acknowledged. The adapter regenerates the response and calls
   * resumed()/abandon() when it knows whether it can.
   */
  resume(c: OutgoingClone<P, H>): void;
  /**
   * The clone was accepted: its response is `length` bytes (the adapter may learn the size; for
   * the last response it delegates the connection's FIN at start + length).
   */
  accepted(c: OutgoingClone<P, H>, latencyMs: number): void;
  /**
   * The bytes a response of `length` bytes takes on the connection `h`: `length` for plain
   * TCP, the sealed length for TLS (sc/tls/sealed-stream.ts). The client's acknowledgement of
   * that many bytes (and the delegated FIN) completes the clone.
   */
  streamLength(h: H, length: number): number;
  count(reason: OriginalFailure, detail?: string): void;
}

export interface OriginalOptions {
  /** How long after sending the CLONE the SC-ACK may still arrive (start deadline + margin). */
  ackTimeoutMs: number;
  /**
   * How long after a CANCEL its answer may still arrive (a lossy SC link delays both). With
   * none by then the link is stuck: the clone counts as timed out (served here, or reset if
   * the client acknowledged bytes of it). Default: ackTimeoutMs.
   */
  cancelWaitMs?: number;
  router: Partial<RouterOptions>;
}

export class OriginalSide<P extends Peer, H> {
  readonly router: PacketRouter<P>;
  private readonly byEntry = new Map<RouterEntry<P>, OutgoingClone<P, H>>();
  private readonly byHandle = new Map<H, OutgoingClone<P, H>>();
  /** Clones waiting for their SC-ACK, by id, in the order sent (= the order of their deadlines). */
  private readonly awaiting = new Map<number, OutgoingClone<P, H>>();
  /** Clones waiting for the answer to their CANCEL, by id, in the order cancelled (= deadline order). */
  private readonly cancelling = new Map<number, OutgoingClone<P, H>>();
  private readonly cancelWaitMs: number;
  private readonly scratch = newTcpPeek();
  private nextId = 1;
  /** SC-ACKs naming no clone waiting for one (late, after a timeout, or from another peer). */
  unexpectedAcks = 0;
  /** Clones accepted after their SC-ACK deadline, while their CANCEL was out (the clone was sending). */
  lateAccepts = 0;
  /** CANCELs with no answer by cancelWaitMs (the SC link stuck). */
  cancelsUnanswered = 0;

  constructor(
    private readonly opts: OriginalOptions,
    private readonly fx: OriginalEffects<P, H>,
  ) {
    this.router = new PacketRouter(opts.router);
    this.cancelWaitMs = opts.cancelWaitMs ?? opts.ackTimeoutMs;
  }

  /** Clones in flight (sent, active or resuming). */
  get size(): number {
    return this.byHandle.size;
  }

  cloneOf(h: H): OutgoingClone<P, H> | undefined {
    return this.byHandle.get(h);
  }

  /**
   * Starts a clone of the quiescent connection `h` (everything it sent is acknowledged; the
   * response starts at `start`): shadow mode and routing begin BEFORE the CLONE goes out, since
   * the client's ACK of the clone's first segment may overtake the SC-ACK. The caller sends the
   * CLONE with the returned id.
   */
  begin(h: H, peer: P, tuple: Tuple, start: number, now: number, last = false): OutgoingClone<P, H> {
    const entry = this.router.add(tuple, peer, start, now);
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffffffff) + 1;
    const c: OutgoingClone<P, H> = {
      id,
      peer,
      handle: h,
      entry,
      phase: "sent",
      sentAt: now,
      ackBy: now + this.opts.ackTimeoutMs,
      cancelBy: 0,
      last,
      length: 0,
      head: EMPTY,
      streamLength: 0,
      doneSent: false,
    };
    this.byEntry.set(entry, c);
    this.byHandle.set(h, c);
    this.awaiting.set(id, c);
    this.fx.shadow(h, true);
    return c;
  }

  /** The CLONE could not even be sent (the link went away at that moment). */
  unsent(c: OutgoingClone<P, H>): void {
    if (c.phase !== "sent") return;
    this.awaiting.delete(c.id);
    this.fail(c, "peer-down");
  }

  /** An SC-ACK from peer `from`. */
  onAck(from: string, ack: AckEvent, now: number): void {
    const c = this.awaiting.get(ack.cloneId) ?? this.cancelling.get(ack.cloneId);
    if (c === undefined || c.peer.id !== from) {
      this.unexpectedAcks++;
      return;
    }
    this.awaiting.delete(c.id);
    this.cancelling.delete(c.id);
    if (ack.status !== CloneStatus.Accepted) {
      // After a CANCEL any refusal (its answer "cancelled" included) says the clone never
      // started: the deadline passed, which is what is counted.
      if (c.phase === "cancelling") this.fail(c, "timeout");
      else this.fail(c, "refused", CLONE_STATUS_NAMES[ack.status] ?? String(ack.status));
      return;
    }
    if (c.phase === "cancelling") this.lateAccepts++;
    c.phase = "active";
    c.length = ack.responseLength;
    c.head = ack.head;
    c.streamLength = this.fx.streamLength(c.handle, ack.responseLength);
    this.router.activate(c.entry, c.streamLength + (c.last ? 1 : 0), now);
    this.fx.accepted(c, now - c.sentAt);
    if (this.router.isComplete(c.entry)) this.complete(c, null);
  }

  /**
   * A packet from a client (TUN or the dispatcher's GUE): the local stack sees it first (shadow
   * mode: its ACK advances snd_una/snd_nxt, the paper's implicit synchronisation), then the
   * clone gets it if the router says so.
   */
  onClientPacket(packet: Uint8Array, now: number): void {
    const pk = peekTcp(packet, this.scratch);
    if (pk === undefined) {
      this.fx.toStack(packet);
      return;
    }
    const { verdict, entry } = this.router.route(pk, now);
    // Looked up first: the stack may end the clone while it takes the packet (the close of
    // FIN delegation, onConnectionClosed).
    const c = entry === undefined ? undefined : this.byEntry.get(entry);
    this.fx.toStack(packet);
    if (verdict === "local" || entry === undefined) return;
    if (verdict === "forward" || c === undefined) this.fx.forward(packet, entry.peer);
    else if (c.phase === "active") this.complete(c, packet);
    else if (c.doneSent) this.router.countNotRelayed();
    else {
      // Ended in the stack with no DONE possible: the ACK itself ends the clone.
      this.fx.forward(packet, entry.peer);
      this.router.countForwarded(entry);
    }
  }

  /** The SC link to `peerId` went down: clones waiting for an SC-ACK fail, active ones resume. */
  onPeerDown(peerId: string): void {
    for (const c of [...this.byHandle.values()]) {
      if (c.peer.id !== peerId) continue;
      if (c.phase === "sent" || c.phase === "cancelling") {
        this.awaiting.delete(c.id);
        this.cancelling.delete(c.id);
        this.fail(c, "peer-down");
      } else if (c.phase === "active") this.startResume(c);
    }
  }

  /** The client's connection closed (reset or closed) while cloned: the original ends it. */
  onConnectionClosed(h: H): void {
    const c = this.byHandle.get(h);
    if (c === undefined) return;
    if (c.phase === "active" && this.router.isComplete(c.entry)) {
      // FIN delegation: the client's ACK of the clone's FIN (routed just before the stack saw
      // it) closed the connection normally, in the same tick: the clone's job is done.
      this.complete(c, null);
      return;
    }
    this.fx.count("reset");
    this.finish(c);
    this.fx.settle(h, "done");
  }

  /** The adapter could not reproduce the response for a resume (or the origin failed). */
  abandon(c: OutgoingClone<P, H>, cause = "resume impossible"): void {
    if (c.phase === "over") return;
    this.fx.count("abandoned");
    this.finish(c);
    this.fx.settle(c.handle, "done");
    this.fx.reset(c, cause);
  }

  /** The adapter took the connection back for a resume (it now sends the rest itself). */
  resumed(c: OutgoingClone<P, H>): void {
    if (c.phase !== "resuming") return;
    this.finish(c);
  }

  pollAt(): number {
    let at = this.router.pollAt();
    for (const c of this.awaiting.values()) {
      at = Math.min(at, c.ackBy);
      break; // in deadline order
    }
    for (const c of this.cancelling.values()) {
      at = Math.min(at, c.cancelBy);
      break; // in deadline order
    }
    return at;
  }

  poll(now: number): void {
    for (const c of this.awaiting.values()) {
      if (c.ackBy > now) break;
      this.awaiting.delete(c.id);
      // The SC-ACK may only be late (a lossy link): the clone could be sending. Ask, and act on
      // the answer; serving here at once could make two senders of one byte stream.
      if (this.fx.sendCancel(c.peer, c.id)) {
        c.phase = "cancelling";
        c.cancelBy = now + this.cancelWaitMs;
        this.cancelling.set(c.id, c);
      } else this.fail(c, "timeout");
    }
    for (const c of this.cancelling.values()) {
      if (c.cancelBy > now) break;
      this.cancelling.delete(c.id);
      this.cancelsUnanswered++;
      this.fail(c, "timeout");
    }
    for (const { entry, why } of this.router.expire(now)) {
      const c = this.byEntry.get(entry);
      if (c === undefined) continue;
      if (why === "stalled") {
        if (c.phase === "active") this.startResume(c);
      } else {
        // The client closed and stopped acknowledging: nothing more to deliver.
        this.finish(c);
        this.fx.settle(c.handle, "done");
      }
    }
  }

  /**
   * The client acknowledged the whole response. DONE tells the clone's node on the SC link
   * (batched with other completions by the adapter); the completing ACK `packet` is not
   * relayed, one GUE packet and one wake-up of the clone's node fewer per clone: the clone
   * holds its finished connection until the DONE comes, and its tail loss probe waits longer
   * than that (CloneBehaviour.tailProbeMinMs). Only when no DONE can be sent (the SC link is
   * down) does the ACK go to the clone, which then vanishes on it. The original takes the
   * connection back at once.
   */
  private complete(c: OutgoingClone<P, H>, packet: Uint8Array | null): void {
    if (c.phase !== "active") return;
    c.phase = "over";
    this.router.complete(c.entry);
    this.forget(c);
    c.doneSent = this.fx.sendDone(c.peer, c.id);
    if (packet !== null) {
      if (c.doneSent) this.router.countNotRelayed();
      else {
        this.fx.forward(packet, c.peer);
        this.router.countForwarded(c.entry);
      }
    }
    this.fx.shadow(c.handle, false, c.entry.acked);
    this.fx.settle(c.handle, "done");
  }

  /** A clone that never started answering (refused, timed out, its peer down). */
  private fail(c: OutgoingClone<P, H>, reason: OriginalFailure, detail?: string): void {
    this.fx.count(reason, detail);
    if (c.entry.ackedBytes > 0) {
      // The client acknowledged bytes whose layout we never learnt: nothing can be resumed
      // exactly. Reset rather than risk wrong bytes.
      this.abandon(c, `${reason} after the client acknowledged ${c.entry.ackedBytes} bytes of the clone`);
      return;
    }
    this.finish(c);
    this.fx.settle(c.handle, "serve");
  }

  private startResume(c: OutgoingClone<P, H>): void {
    c.phase = "resuming";
    this.router.remove(c.entry); // stop forwarding to the failed node first
    this.fx.count("resumed");
    this.fx.resume(c);
  }

  private finish(c: OutgoingClone<P, H>): void {
    c.phase = "over";
    this.awaiting.delete(c.id);
    this.cancelling.delete(c.id);
    this.router.remove(c.entry);
    this.forget(c);
    this.fx.shadow(c.handle, false);
  }

  private forget(c: OutgoingClone<P, H>): void {
    this.byEntry.delete(c.entry);
    if (this.byHandle.get(c.handle) === c) this.byHandle.delete(c.handle);
  }
}

/**
 * How many response bytes a resuming original has behind it once it left shadow mode: what
 * the router saw acknowledged, plus what the stack's own send state holds beyond that (ACKs
 * that reached the stack after routing stopped). `sndMax` is the stack's highest sent point.
 */
export function resumePoint(entry: { ackedBytes: number; acked: number }, sndMax: number): number {
  return entry.ackedBytes + seqDiff(sndMax, entry.acked);
}

/**
 * Where a range resume continues: `sent` bytes of the response (head + body) already reached
 * or were sent towards the client; the rest is the head from `headFrom` (if any is left),
 * then the body from `bodyFrom`.
 */
export function resumeOffsets(headLength: number, sent: number): { headFrom: number; bodyFrom: number } {
  return { headFrom: Math.min(sent, headLength), bodyFrom: Math.max(0, sent - headLength) };
}

// ------------------------------------------------------------------ clone side

/** A clone this node serves, owned by the peer that sent its CLONE. */
export interface IncomingClone<H> {
  readonly id: number;
  readonly from: string;
  readonly tuple: Tuple;
  /** The start deadline (wall clock ms) from the CLONE. */
  readonly startDeadline: number;
  handle: H | null;
  started: boolean;
  cancelled: boolean;
}

export interface CloneSideEffects<H> {
  /** Removes a clone's connection with no FIN and no RST. */
  drop(h: H): void;
  count(reason: CloneSideFailure): void;
}

export interface CloneSideOptions {
  /** Clones at once; more are refused (busy). */
  maxClones: number;
  /** A clone must not start sending later than this before its start deadline. */
  safetyMs: number;
}

export type CancelOutcome = "ignored" | "started" | "cancelled";

export class CloneSide<H> {
  /** By `${peer}/${clone id}`: a peer can only name (cancel) its own clones. */
  private readonly byKey = new Map<string, IncomingClone<H>>();
  private readonly byTuple = new Map<number, IncomingClone<H>>();
  private readonly byHandle = new Map<H, IncomingClone<H>>();
  /** CANCELs naming no clone of their sender here (late, or for another peer's clone). */
  cancelsIgnored = 0;
  /** Packets forwarded by a peer for no clone here (before the CLONE, or after it vanished). */
  peerPacketsDropped = 0;

  constructor(
    private readonly opts: CloneSideOptions,
    private readonly fx: CloneSideEffects<H>,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  /**
   * Admission of a CLONE from `from` (wall-clock `now`): the record to import into, or the
   * status to refuse with. A previous clone of the same connection from the same peer is
   * replaced (its original's new state is authoritative); another peer's is not.
   */
  admit(
    from: string,
    id: number,
    tuple: Tuple,
    startDeadline: number,
    now: number,
  ): IncomingClone<H> | CloneStatus {
    if (now > startDeadline - this.opts.safetyMs) return CloneStatus.Expired;
    if (this.byKey.size >= this.opts.maxClones) return CloneStatus.Busy;
    const key = `${from}/${id}`;
    if (this.byKey.has(key)) return CloneStatus.Exists;
    const old = this.byTuple.get(tupleKey(tuple));
    if (old !== undefined && sameTuple(old.tuple, tuple)) {
      if (old.from !== from) return CloneStatus.Exists;
      this.vanish(old);
    }
    return { id, from, tuple, startDeadline, handle: null, started: false, cancelled: false };
  }

  /** The connection was imported: the clone exists from now on. */
  attach(c: IncomingClone<H>, h: H): void {
    c.handle = h;
    this.byKey.set(`${c.from}/${c.id}`, c);
    this.byTuple.set(tupleKey(c.tuple), c);
    this.byHandle.set(h, c);
  }

  /** Whether the clone may start sending now (wall clock): null if so, else the refusal. */
  start(c: IncomingClone<H>, now: number): CloneStatus | null {
    if (c.cancelled) return CloneStatus.Cancelled;
    if (now > c.startDeadline - this.opts.safetyMs) return CloneStatus.Expired;
    c.started = true;
    return null;
  }

  /**
   * A CANCEL from `from`: only its own clone, and only before it started. Every CANCEL must be
   * answered on the link it came on except "started" (the SC-ACK accepting the clone went
   * before it on that link): "cancelled" and "ignored" (no such clone: refused, or gone) with a
   * Cancelled SC-ACK, which the original, waiting for it, takes as "never started".
   */
  onCancel(from: string, id: number): CancelOutcome {
    const c = this.byKey.get(`${from}/${id}`);
    if (c === undefined) {
      this.cancelsIgnored++;
      return "ignored";
    }
    if (c.started) return "started";
    c.cancelled = true;
    return "cancelled";
  }

  /** The peer whose clone holds this connection, if any. */
  ownerOf(t: Tuple): string | undefined {
    const c = this.byTuple.get(tupleKey(t));
    return c !== undefined && sameTuple(c.tuple, t) ? c.from : undefined;
  }

  /**
   * A DONE from `from`: its client acknowledged the whole response, the clone vanishes (it
   * may have gone already on the last ACK; then nothing happens).
   */
  onDone(from: string, id: number): boolean {
    const c = this.byKey.get(`${from}/${id}`);
    if (c === undefined) return false;
    this.vanish(c);
    return true;
  }

  /** Whether a packet a peer forwarded for this connection has a clone to go to. */
  acceptsPeerPacket(remoteAddr: number, remotePort: number, localAddr: number, localPort: number): boolean {
    const c = this.byTuple.get(remoteAddr * 65536 + remotePort);
    if (
      c !== undefined &&
      c.handle !== null &&
      c.tuple.localAddr === localAddr &&
      c.tuple.localPort === localPort
    )
      return true;
    this.peerPacketsDropped++;
    return false;
  }

  /** The clone's connection is gone (it vanished, or was dropped). */
  gone(h: H): void {
    const c = this.byHandle.get(h);
    if (c !== undefined) this.forget(c);
  }

  /** The clone's send deadline expired: it vanishes without a packet. */
  sendTimedOut(h: H): void {
    const c = this.byHandle.get(h);
    if (c === undefined) return;
    this.fx.count("clone-send-timeout");
    this.vanish(c);
  }

  /**
   * The link from `from` closed or was replaced by a newer one: its clones vanish. Their
   * original saw the same link go down and takes each one back (serves the request, or resumes
   * an answering clone from what the client acknowledged); a clone that kept sending would be a
   * second sender of the same byte stream.
   */
  linkLost(from: string): number {
    let n = 0;
    for (const c of [...this.byKey.values()]) {
      if (c.from !== from) continue;
      this.fx.count("clone-link-lost");
      this.vanish(c);
      n++;
    }
    return n;
  }

  /** Drops the clone silently (refused after import, replaced, or timed out). */
  vanish(c: IncomingClone<H>): void {
    this.forget(c);
    if (c.handle !== null) this.fx.drop(c.handle);
  }

  private forget(c: IncomingClone<H>): void {
    const key = `${c.from}/${c.id}`;
    if (this.byKey.get(key) === c) this.byKey.delete(key);
    const tk = tupleKey(c.tuple);
    if (this.byTuple.get(tk) === c) this.byTuple.delete(tk);
    if (c.handle !== null && this.byHandle.get(c.handle) === c) this.byHandle.delete(c.handle);
  }
}

function tupleKey(t: Tuple): number {
  // 48 bits: exact in a double.
  return t.remoteAddr * 65536 + t.remotePort;
}

function sameTuple(a: Tuple, b: Tuple): boolean {
  return (
    a.remoteAddr === b.remoteAddr &&
    a.remotePort === b.remotePort &&
    a.localAddr === b.localAddr &&
    a.localPort === b.localPort
  );
}

const EMPTY = new Uint8Array(0);
