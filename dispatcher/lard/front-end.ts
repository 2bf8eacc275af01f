// The LARD front-end (Pai et al., ASPLOS'98; docs/lard.md): the client's handshake ends on
// the front-end's own user-space TCP stack (SYN cookies when its backlog is full), the first
// request is parsed with the node's HTTP parser, the LARD policy picks the back-end, and the
// connection is handed off: its exported TCP state, socket seed and every byte received so far
// go to that node in a HANDOFF (handoff-message.ts) on an authenticated link. Once the node
// accepts, each of the client's packets is forwarded to it (GUE in the service); the node
// answers the client directly, so the front-end never sends a response byte.
//
// No I/O here: the stack, the links and the GUE output come in through FrontEndIo, packets
// come in through onClientPacket, time is a parameter. dispatcher/lard/service.ts wires it to
// a TUN device, a UDP socket and the handoff links; the tests run it on sc/tcp/sim.ts.
import { TcpServer, type TcpSocket } from "../../sc/tcp/socket.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import {
  decodeState,
  encodeState,
  exportState,
  importState,
  type TcpExportedState,
} from "../../sc/tcp/state.js";
import { isWireError } from "../../sc/wire/error.js";
import { ipv4FromString } from "../../sc/wire/index.js";
import { newTcpPeek, peekTcp } from "../../sc/router/router.js";
import { CloneStatus, CLONE_STATUS_NAMES, SC_MAX_MESSAGE } from "../../sc/clone/message.js";
import { DEFAULT_LIMITS, ParseError, RequestParser, type HttpRequest } from "../../server/http/parser.js";
import {
  HandoffType,
  handoffMessageLength,
  resumeMessageLength,
  type HandBackMessage,
  type HandoffAckMessage,
  type HandoffMessage,
  type ResponseMessage,
  type ResumeMessage,
} from "../../sc/handoff/message.js";
import { LardPolicy, type LardReason } from "./policy.js";
import {
  ClientTrack,
  planResume,
  UNRESUMABLE_REASONS,
  type AnnouncedResponse,
  type UnresumableReason,
} from "./resume.js";

const TCP_SYN = 0x02;
const STATE_SIZE = 96;
const SEED_MAX = 120;

export interface FrontEndIo {
  /** A client packet for the node a connection was handed to (the service wraps it in GUE). */
  forward(node: string, packet: Uint8Array): void;
  /** Sends a HANDOFF (or a RESUME) on the node's link; false when the link is down. */
  sendHandoff(node: string, msg: HandoffMessage | ResumeMessage): boolean;
  /** CLOCK_MONOTONIC microseconds, for the HANDOFF's send stamp. */
  monotonicUs(): number;
  /** Wall-clock ms (epoch), for the HANDOFF's start deadline (the nodes' clocks agree). */
  wallClockMs(): number;
}

/**
 * After a HANDOFF's start deadline the front-end waits this much longer before it takes the
 * connection back to reset it (the node refuses 50 ms before the deadline: SC's margins).
 */
export const HANDOFF_DEADLINE_MARGIN_MS = 250;

export interface FrontEndOptions {
  vip: string;
  port: number;
  /**
   * A HANDOFF's start deadline is this far ahead; not acknowledged by then (plus the margin),
   * it fails and the client's connection is reset.
   */
  handoffTimeoutMs: number;
  /** Client packets held per connection while its HANDOFF is in flight (more are dropped). */
  maxHeldPackets: number;
  /** A client that has not sent a whole first request in this time is reset. */
  requestTimeoutMs: number;
  /** A handed-off connection with no client packet for this long is forgotten (END lost). */
  idleMs: number;
  /** Handed-off connections remembered at most (new ones beyond are reset). */
  maxConnections: number;
}

export const FRONT_END_DEFAULTS: Omit<FrontEndOptions, "vip" | "port"> = {
  handoffTimeoutMs: 2000,
  maxHeldPackets: 64,
  requestTimeoutMs: 10_000,
  idleMs: 300_000,
  maxConnections: 65_536,
};

/** Why a connection was not handed off, or a handoff failed (counted; the client is reset). */
export const HANDOFF_FAILURES = [
  "no-node",
  "link-down",
  "refused",
  "timeout",
  "too-large",
  "bad-request",
  "request-timeout",
  "table-full",
  "not-exportable",
] as const;
export type HandoffFailure = (typeof HANDOFF_FAILURES)[number];

/** Why a client packet was dropped by the front-end (not forwarded and not given to its stack). */
export const FRONT_END_DROPS = ["held-overflow"] as const;
export type FrontEndDrop = (typeof FRONT_END_DROPS)[number];

/** What every entry carries along the connection's life. */
interface History {
  /** Handoffs of this connection so far (1 for the first; a resume counts as one). */
  handoffs: number;
}

/** What a resume of the current request needs (docs/lard.md, range resume). */
interface ResumeBasis {
  /** The request's target, for the policy's choice of the resuming node. */
  target: string;
  /** The exported state at the handoff (its send point is where the response starts). */
  state: TcpExportedState;
  /** The HANDOFF's data: the request and what followed it then. */
  data: Uint8Array;
  /** The response announced for it (RESPONSE), or null. */
  response: AnnouncedResponse | null;
  /** The client's acknowledgements and later bytes, as they pass. */
  client: ClientTrack;
}

/** Nodes a new connection's handoff is offered to before the client gets a 503 (busy refusals). */
const MAX_HANDOFF_TRIES = 3;

/** Event-loop turns a handoff waits for its socket to hand out what it received. */
const MAX_DRAIN_WAITS = 16;

/** Room for the client's last pure ACK (IPv4 + TCP headers with options). */
const LAST_PACKET_ROOM = 120;

interface Pending extends History {
  phase: "pending";
  node: string;
  handoffId: number;
  sentAt: number;
  /** The exported connection as sent, to take it back if the handoff fails. */
  state: TcpExportedState;
  held: Uint8Array[];
  lastPacketAt: number;
  basis: ResumeBasis;
  /** A RESUME (mid-response: failing, it is reset, never answered with a 503). */
  resuming: boolean;
  /** Nodes that refused this handoff as busy (it is tried elsewhere, at most MAX_HANDOFF_TRIES in all). */
  refusedBy: string[];
}

interface Forwarding extends History {
  phase: "forwarding";
  node: string;
  handoffId: number;
  lastPacketAt: number;
  /**
   * The client's last packet that fits LAST_PACKET_ROOM (its ACKs), lastLength bytes: if the
   * node dies, this stack, which no longer has the connection, answers it with the RST
   * RFC 9293 prescribes (seq = its ACK number), which the client accepts.
   */
  last: Uint8Array;
  lastLength: number;
  /** The connection as it was handed off: for a RST when the client sent nothing since. */
  state: TcpExportedState;
  basis: ResumeBasis;
}

type Entry = Pending | Forwarding;

export interface FrontEndCounters {
  connectionsAccepted: number;
  handoffsSent: number;
  /** Connections a node gave back for their next request (each is handed off again). */
  handBacks: number;
  /** HANDBACKs naming no connection forwarded to their node (late, or a confused node). */
  handBacksIgnored: number;
  /** Client connections reset because their node's link went down while forwarding. */
  nodeLostResets: number;
  /** ... by why they could not be resumed. */
  unresumable: Record<UnresumableReason, number>;
  /** RESUMEs sent (a connection whose node died, continued on another node). */
  resumesSent: number;
  /** RESUMEs a node accepted. */
  resumesAccepted: number;
  /** RESPONSE messages naming no connection forwarded to their node. */
  responsesIgnored: number;
  handoffsAccepted: number;
  packetsForwarded: number;
  /** TCP payload bytes of the forwarded client packets (requests: the responses never pass here). */
  bytesForwarded: number;
  ends: number;
  idleExpired: number;
  failures: Record<HandoffFailure, number>;
  drops: Record<FrontEndDrop, number>;
  reasons: Record<LardReason, number>;
  refusals: Record<string, number>;
}

/** The remote side of a connection to the VIP:port (the local side is fixed). */
function clientKey(addr: number, port: number): number {
  return addr * 65536 + port;
}

export class LardFrontEnd {
  readonly counters: FrontEndCounters = {
    connectionsAccepted: 0,
    handoffsSent: 0,
    handBacks: 0,
    handBacksIgnored: 0,
    nodeLostResets: 0,
    unresumable: Object.fromEntries(UNRESUMABLE_REASONS.map((r) => [r, 0])) as Record<
      UnresumableReason,
      number
    >,
    resumesSent: 0,
    resumesAccepted: 0,
    responsesIgnored: 0,
    handoffsAccepted: 0,
    packetsForwarded: 0,
    bytesForwarded: 0,
    ends: 0,
    idleExpired: 0,
    failures: Object.fromEntries(HANDOFF_FAILURES.map((r) => [r, 0])) as Record<HandoffFailure, number>,
    drops: Object.fromEntries(FRONT_END_DROPS.map((r) => [r, 0])) as Record<FrontEndDrop, number>,
    reasons: { first: 0, local: 0, moved: 0, replicated: 0, elsewhere: 0 },
    refusals: {},
  };
  /** HANDOFF sent -> HANDOFF-ACK received, ms, each accepted handoff (the caller drains it). */
  readonly latencies: number[] = [];
  /** Handoffs each finished connection had (1: no re-handoff), as they end (the caller drains it). */
  readonly handoffsPerConnection: number[] = [];
  private readonly opts: FrontEndOptions;
  private readonly entries = new Map<number, Entry>();
  /** (node, handoff id) -> client key. */
  private readonly byHandoff = new Map<string, number>();
  private readonly server: TcpServer;
  private readonly vip: number;
  private readonly peek = newTcpPeek();
  private nextId = 1;
  /** Sockets still waiting for their first request: their deadline. */
  private readonly waiting = new Map<TcpSocket, number>();
  /** Nodes whose handoff link is up, and nodes the health checks found down. */
  private readonly linksUp = new Set<string>();
  private readonly unhealthy = new Set<string>();

  constructor(
    private readonly stack: TcpStack,
    readonly policy: LardPolicy,
    private readonly io: FrontEndIo,
    opts: Pick<FrontEndOptions, "vip" | "port"> & Partial<FrontEndOptions>,
  ) {
    this.opts = { ...FRONT_END_DEFAULTS, ...opts };
    const vip = ipv4FromString(opts.vip);
    if (typeof vip !== "number") throw new RangeError(`bad VIP ${opts.vip}`);
    this.vip = vip;
    this.server = new TcpServer(stack, { allowHalfOpen: true, noDelay: true });
    this.server.on("connection", (s: TcpSocket) => this.accept(s));
    this.server.listen(opts.port, opts.vip);
  }

  /** Handed-off connections known now (pending and forwarding). */
  get handedOff(): number {
    return this.entries.size;
  }

  /**
   * A packet from a client. True: it belongs to a handed-off connection and was forwarded to
   * its node (or held, or dropped); false: it is for the front-end's own stack (the caller
   * gives it to stack.receive).
   */
  take(packet: Uint8Array, now: number): boolean {
    const p = peekTcp(packet, this.peek);
    if (p === undefined || p.dst !== this.vip || p.dstPort !== this.opts.port) return false;
    const key = clientKey(p.src, p.srcPort);
    const e = this.entries.get(key);
    if (e === undefined) return false;
    if ((p.flags & TCP_SYN) !== 0) {
      // A handed-off connection's handshake is long over: a SYN is a new connection on a
      // reused port (its old one ended without an END reaching us).
      this.forget(key, e);
      return false;
    }
    e.lastPacketAt = now;
    e.basis.client.observe(p, tcpPayload(packet, p.payloadLength));
    if (e.phase === "forwarding") {
      this.counters.packetsForwarded++;
      this.counters.bytesForwarded += p.payloadLength;
      if (packet.length <= LAST_PACKET_ROOM) {
        e.last.set(packet);
        e.lastLength = packet.length;
      }
      this.io.forward(e.node, packet);
    } else if (e.held.length < this.opts.maxHeldPackets) e.held.push(Uint8Array.from(packet));
    else this.counters.drops["held-overflow"]++;
    return true;
  }

  /** The node's answer to a HANDOFF. */
  onAck(node: string, ack: HandoffAckMessage, now: number): void {
    const key = this.byHandoff.get(`${node}/${ack.handoffId}`);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (key === undefined || e === undefined || e.phase !== "pending") return;
    if (ack.status !== CloneStatus.Accepted) {
      const name = CLONE_STATUS_NAMES[ack.status] ?? String(ack.status);
      this.counters.refusals[name] = (this.counters.refusals[name] ?? 0) + 1;
      // A busy node (at its connection limit, or draining) never had the connection: another
      // may take it. Anything else (expired, bad state, ...) would fail there too.
      if (ack.status === CloneStatus.Busy && !e.resuming && this.offerElsewhere(e, now)) return;
      this.fail(key, e, "refused");
      return;
    }
    this.counters.handoffsAccepted++;
    if (e.resuming) this.counters.resumesAccepted++;
    this.latencies.push(now - e.sentAt);
    const held = e.held;
    const f: Forwarding = {
      phase: "forwarding",
      node,
      handoffId: e.handoffId,
      handoffs: e.handoffs,
      lastPacketAt: e.lastPacketAt,
      last: new Uint8Array(LAST_PACKET_ROOM),
      lastLength: 0,
      state: e.state,
      basis: e.basis,
    };
    this.entries.set(key, f);
    for (const pkt of held) {
      this.counters.packetsForwarded++;
      this.counters.bytesForwarded += peekTcp(pkt, this.peek)?.payloadLength ?? 0;
      if (pkt.length <= LAST_PACKET_ROOM) {
        f.last.set(pkt);
        f.lastLength = pkt.length;
      }
      this.io.forward(node, pkt);
    }
  }

  /** The node's connection is gone: stop forwarding, its load goes down. */
  onEnd(node: string, handoffId: number): void {
    const key = this.byHandoff.get(`${node}/${handoffId}`);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (key === undefined || e === undefined) return;
    this.counters.ends++;
    // (An END for a pending handoff: the node took it and it is already over.)
    this.forget(key, e);
    this.handoffsPerConnection.push(e.handoffs);
  }

  /** A node announced the response of a connection's current request: kept for a resume. */
  onResponse(node: string, msg: ResponseMessage): void {
    const key = this.byHandoff.get(`${node}/${msg.handoffId}`);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (e === undefined) {
      this.counters.responsesIgnored++;
      return;
    }
    e.basis.response = { length: msg.length, head: Uint8Array.from(msg.head) };
  }

  /**
   * A node's link went down: handoffs waiting on it fail, it takes no new ones, and the
   * connections it was serving are resumed on another node from what their clients
   * acknowledged (range resume), or reset when that cannot be exact.
   */
  onLinkDown(node: string): void {
    this.linksUp.delete(node);
    this.policy.removeNode(node);
    // A pending handoff too: the node may have begun (it announces its response first), so it
    // is resumed from what the client acknowledged, or answered afresh elsewhere.
    for (const [key, e] of this.entries) if (e.node === node) this.resume(key, e);
  }

  /**
   * A node gives a connection back: its next request has begun. The connection is imported
   * here again with the bytes the node had received, and handed off for that request to the
   * node its target now maps to (Aron et al.'s multiple handoff, through the front-end).
   */
  onHandBack(node: string, msg: HandBackMessage): void {
    const key = this.byHandoff.get(`${node}/${msg.handoffId}`);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (key === undefined || e === undefined || e.phase !== "forwarding") {
      this.counters.handBacksIgnored++;
      return;
    }
    this.forget(key, e);
    const snap = decodeState(msg.state);
    let s: TcpSocket;
    try {
      if (isWireError(snap)) throw new Error(snap.detail);
      s = importState(this.stack, { ...snap, seed: msg.seed }, msg.data);
    } catch {
      // Nothing can continue the connection: the client's next packet meets no connection (RST).
      this.counters.failures["not-exportable"]++;
      return;
    }
    this.counters.handBacks++;
    this.adopt(s, { handoffs: e.handoffs });
  }

  onLinkUp(node: string): void {
    this.linksUp.add(node);
    this.updateEligible(node);
  }

  /**
   * A health verdict (dispatcher/health.ts on the node's /healthz). A node found down takes no
   * new handoffs; the connections it serves stay (it may only be slow, or draining): only its
   * link going down makes the front-end resume them elsewhere, so a node is never one of two
   * senders because a check timed out.
   */
  onHealth(node: string, healthy: boolean): void {
    if (healthy) this.unhealthy.delete(node);
    else this.unhealthy.add(node);
    this.updateEligible(node);
  }

  /** Whether the policy may pick the node: its link is up and its health checks pass. */
  eligible(node: string): boolean {
    return this.linksUp.has(node) && !this.unhealthy.has(node);
  }

  private updateEligible(node: string): void {
    if (!this.eligible(node)) {
      this.policy.removeNode(node);
      return;
    }
    let load = 0;
    for (const e of this.entries.values()) if (e.node === node) load++;
    this.policy.addNode(node, load);
  }

  /** The earliest deadline, for the caller's timer. */
  pollAt(): number {
    let t = Infinity;
    for (const d of this.waiting.values()) t = Math.min(t, d);
    for (const e of this.entries.values())
      t = Math.min(t, e.phase === "pending" ? this.giveUpAt(e) : e.lastPacketAt + this.opts.idleMs);
    return t;
  }

  /** Runs the deadlines due at `now`. */
  poll(now: number): void {
    for (const [s, d] of this.waiting) {
      if (d > now) continue;
      this.waiting.delete(s);
      this.counters.failures["request-timeout"]++;
      s.destroy();
    }
    for (const [key, e] of this.entries) {
      if (e.phase === "pending" && now >= this.giveUpAt(e)) this.fail(key, e, "timeout");
      else if (e.phase === "forwarding" && now >= e.lastPacketAt + this.opts.idleMs) {
        this.counters.idleExpired++;
        this.forget(key, e);
      }
    }
    this.stack.flush();
  }

  close(): void {
    this.server.close();
  }

  private giveUpAt(e: Pending): number {
    return e.sentAt + this.opts.handoffTimeoutMs + HANDOFF_DEADLINE_MARGIN_MS;
  }

  private accept(s: TcpSocket): void {
    this.counters.connectionsAccepted++;
    this.adopt(s, { handoffs: 0 });
  }

  /**
   * Reads the connection's next request (accepted here, or given back by a node) and hands
   * the connection off for it. The decision waits for the socket to hand out everything it
   * received (a microtask after the request completes): the HANDOFF must carry every byte the
   * exported state acknowledges.
   */
  private adopt(s: TcpSocket, history: History): void {
    const parser = new RequestParser(DEFAULT_LIMITS);
    const received: Buffer[] = [];
    let size = 0;
    let decided = false;
    // The HANDOFF carries everything received; beyond this it would not fit in one message.
    const room = SC_MAX_MESSAGE - handoffMessageLength(STATE_SIZE, SEED_MAX, 0);
    this.waiting.set(s, this.stack.now() + this.opts.requestTimeoutMs);
    s.on("error", () => undefined);
    s.on("close", () => this.waiting.delete(s));
    let waits = 0;
    const decide = (req: HttpRequest | ParseError): void => {
      if (s.destroyed) return;
      if (s.readableLength > 0) {
        // More arrived than was handed out: take it first (it comes as 'data' events), for a
        // bounded number of turns.
        if (++waits > MAX_DRAIN_WAITS) return this.refuse(s, "not-exportable", 503);
        setImmediate(() => decide(req));
        return;
      }
      s.removeListener("data", onData);
      this.waiting.delete(s);
      if (req instanceof ParseError) return this.refuse(s, "bad-request", req.status);
      if (size > room) return this.refuse(s, "too-large", 413);
      this.handOff(s, req.path, Buffer.concat(received, size), history);
    };
    const onData = (chunk: Buffer): void => {
      received.push(chunk);
      size += chunk.length;
      if (decided) return;
      parser.feed(chunk);
      const req = parser.next();
      if (req === null) {
        if (size > room) {
          decided = true;
          s.removeListener("data", onData);
          this.refuse(s, "too-large", 431);
        }
        return;
      }
      decided = true;
      queueMicrotask(() => decide(req));
    };
    s.on("data", onData);
  }

  /** The client gets a short error from the front-end itself (no node saw the request). */
  private refuse(s: TcpSocket, why: HandoffFailure, status: number): void {
    this.counters.failures[why]++;
    this.waiting.delete(s);
    s.end(errorResponse(status));
  }

  /**
   * The connection's node is gone mid-connection: another node continues the response from
   * the client's acknowledged point (the same bytes: the dead node's head, the body from the
   * right offset), or the client gets a clean reset, never bytes from another sender.
   */
  private resume(key: number, e: Entry): void {
    this.forget(key, e);
    if (e.phase === "pending") this.counters.failures["link-down"]++;
    const b = e.basis;
    const room = SC_MAX_MESSAGE - resumeMessageLength(STATE_SIZE, SEED_MAX, 0, 0);
    const plan = planResume({ state: b.state, data: b.data, response: b.response, client: b.client, room });
    let why: UnresumableReason | null = plan.kind === "reset" ? plan.reason : null;
    if (plan.kind === "resume") {
      const choice = this.policy.assign(b.target, this.stack.now());
      if (choice === null) why = "no-node";
      else {
        const handoffId = this.takeId();
        const msg: ResumeMessage = {
          type: HandoffType.Resume,
          handoffId,
          startDeadline: Math.ceil(this.io.wallClockMs() + this.opts.handoffTimeoutMs),
          sentAtUs: this.io.monotonicUs(),
          state: encodeState(plan.state),
          seed: plan.seed,
          data: plan.data,
          offset: plan.response === null ? 0 : plan.offset,
          responseLength: plan.response?.length ?? 0,
          head: plan.response?.head ?? new Uint8Array(0),
        };
        if (this.io.sendHandoff(choice.node, msg)) {
          this.counters.resumesSent++;
          this.counters.handoffsSent++;
          this.counters.reasons[choice.reason]++;
          const state = { ...plan.state, seed: b.state.seed };
          this.track(key, {
            phase: "pending",
            node: choice.node,
            handoffId,
            sentAt: this.stack.now(),
            state,
            // (Client packets held for a pending handoff go to the new node once it accepts.)
            held: e.phase === "pending" ? e.held : [],
            lastPacketAt: e.lastPacketAt,
            handoffs: e.handoffs + 1,
            basis: b,
            resuming: true,
            refusedBy: [],
          });
          return;
        }
        this.policy.release(choice.node);
        why = "no-node";
      }
    }
    this.counters.nodeLostResets++;
    this.counters.unresumable[why ?? "no-node"]++;
    if (e.phase === "pending") this.takeBack(e, false);
    else if (e.lastLength > 0) this.stack.receive(e.last.subarray(0, e.lastLength));
    else this.resetFrom(e.state);
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return id;
  }

  private track(key: number, e: Entry): void {
    this.entries.set(key, e);
    this.byHandoff.set(`${e.node}/${e.handoffId}`, key);
  }

  /**
   * Offers a refused new connection's handoff to the least loaded node that has not refused it
   * (the same state and request; client packets stay held meanwhile). False when none is left,
   * the tries are used up or the link is down: the caller answers the 503.
   */
  private offerElsewhere(e: Pending, now: number): boolean {
    const refusedBy = [...e.refusedBy, e.node];
    if (refusedBy.length >= MAX_HANDOFF_TRIES) return false;
    const seed = e.state.seed;
    if (seed === undefined) return false;
    const choice = this.policy.assignElsewhere(e.basis.target, refusedBy, now);
    if (choice === null) return false;
    const handoffId = this.takeId();
    if (!this.io.sendHandoff(choice.node, this.handoffMessage(handoffId, e.state, seed, e.basis.data))) {
      this.policy.release(choice.node);
      return false;
    }
    this.byHandoff.delete(`${e.node}/${e.handoffId}`);
    this.policy.release(e.node);
    e.refusedBy = refusedBy;
    e.node = choice.node;
    e.handoffId = handoffId;
    e.sentAt = now;
    this.byHandoff.set(
      `${e.node}/${e.handoffId}`,
      clientKey(e.state.tuple.remoteAddr, e.state.tuple.remotePort),
    );
    this.counters.handoffsSent++;
    this.counters.reasons[choice.reason]++;
    return true;
  }

  private handoffMessage(
    handoffId: number,
    state: TcpExportedState,
    seed: Uint8Array,
    data: Uint8Array,
  ): HandoffMessage {
    return {
      type: HandoffType.Handoff,
      handoffId,
      startDeadline: Math.ceil(this.io.wallClockMs() + this.opts.handoffTimeoutMs),
      sentAtUs: this.io.monotonicUs(),
      state: encodeState(state),
      seed,
      data,
    };
  }

  private handOff(s: TcpSocket, target: string, data: Uint8Array, history: History): void {
    const now = this.stack.now();
    if (this.entries.size >= this.opts.maxConnections) return this.refuse(s, "table-full", 503);
    const choice = this.policy.assign(target, now);
    if (choice === null) return this.refuse(s, "no-node", 503);
    const state = exportState(s);
    if (state.seed === undefined || state.sndNxt !== state.sndUna) {
      // Nothing of ours may be unacknowledged (we sent only the SYN-ACK), and the seed is the
      // client's last header: both hold for any connection that got this far.
      this.policy.release(choice.node);
      return this.refuse(s, "not-exportable", 503);
    }
    const handoffId = this.takeId();
    if (!this.io.sendHandoff(choice.node, this.handoffMessage(handoffId, state, state.seed, data))) {
      this.policy.release(choice.node);
      return this.refuse(s, "link-down", 503);
    }
    this.counters.handoffsSent++;
    this.counters.reasons[choice.reason]++;
    // The connection lives on at the node: it leaves this stack without a packet.
    s.dropSilently();
    const key = clientKey(state.tuple.remoteAddr, state.tuple.remotePort);
    const wscale = state.wscaleSeen ? state.sndWscale : 0;
    this.track(key, {
      phase: "pending",
      node: choice.node,
      handoffId,
      sentAt: now,
      state,
      held: [],
      lastPacketAt: now,
      handoffs: history.handoffs + 1,
      basis: {
        target,
        state,
        data,
        response: null,
        client: new ClientTrack(state.rcvNxt, state.sndNxt, state.sndWnd, wscale),
      },
      resuming: false,
      refusedBy: [],
    });
  }

  /**
   * A handoff that did not happen. The connection comes back to this stack: refused by the
   * node (it never took it), the client gets a 503; lost with a link or timed out (the node may
   * have started answering), it is reset, which can cut a response short but never mix two
   * senders' bytes. A failed RESUME is always reset (the client has part of a response).
   */
  private fail(key: number, e: Pending, why: HandoffFailure): void {
    this.counters.failures[why]++;
    if (e.resuming) {
      this.counters.nodeLostResets++;
      this.counters.unresumable.refused++;
    }
    this.forget(key, e);
    this.takeBack(e, why === "refused" && !e.resuming);
  }

  /**
   * A pending handoff's connection comes back to this stack: answered 503 (the node never had
   * it and the client has nothing of a response) or reset (state as sent: its send point is
   * what the client acknowledged); the client's held packets then meet it.
   */
  private takeBack(e: Pending, with503: boolean): void {
    let s: TcpSocket;
    try {
      s = importState(this.stack, e.state);
    } catch {
      return; // the 4-tuple is taken again (a new connection): nothing to take back
    }
    s.on("error", () => undefined);
    if (with503) s.end(HTTP_503);
    else s.destroy();
    for (const p of e.held) this.stack.receive(p);
    this.stack.flush();
  }

  /**
   * Resets a connection from its state at handoff (the client sent nothing since): its RST's
   * sequence number is where the node started, which the client accepts, or answers with a
   * challenge ACK that this stack then resets exactly (it has no such connection).
   */
  private resetFrom(state: TcpExportedState): void {
    try {
      importState(this.stack, state)
        .on("error", () => undefined)
        .destroy();
    } catch {
      // the 4-tuple is taken again (a new connection): nothing to reset
    }
  }

  private forget(key: number, e: Entry): void {
    this.entries.delete(key);
    this.byHandoff.delete(`${e.node}/${e.handoffId}`);
    this.policy.release(e.node);
  }
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** The TCP payload of an IPv4 packet whose payload length peekTcp read (at its IP end). */
function tcpPayload(packet: Uint8Array, length: number): Uint8Array {
  if (length === 0) return EMPTY;
  const end = Math.min(packet.length, (packet[2]! << 8) | packet[3]!);
  return packet.subarray(Math.max(0, end - length), end);
}

const EMPTY = new Uint8Array(0);

/** The front-end's own answers: a status, no body, and the connection closes. */
function errorResponse(status: number): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}

const HTTP_503 = errorResponse(503);
