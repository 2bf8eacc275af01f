// --mode lard, the node's side of LARD with TCP handoff (docs/lard.md): the front-end
// (dispatcher/lard/) accepts the client's connection, reads the first request and hands the
// connection here in a HANDOFF on an authenticated link. This node imports it (the same
// validated import a Socket Cloning clone goes through, but as a plain socket: it owns the
// connection from now on), answers HANDOFF-ACK, and gives it to its HTTP server as if it had
// accepted it: the received bytes are the first data, later packets come from the front-end in
// GUE, responses go straight to the client. When the connection is gone here, an END tells the
// front-end (its load count and forwarding entry).
import { Histogram, type Registry } from "prom-client";
import type { Mode, ModeDefinition, UserStackContext } from "./mode.js";
import { selfMember } from "../membership/config.js";
import { UserError } from "../../common/errors.js";
import { byLabel, mirrorCounter, mirrorCounterBy, mirrorGauge } from "../metrics-mirror.js";
import { CloneStatus, CLONE_STATUS_NAMES, SC_MAX_MESSAGE } from "../../sc/clone/message.js";
import { linkKey } from "../../sc/auth/link.js";
import { decodeState, encodeState, exportState, importState, STATE_SIZE } from "../../sc/tcp/state.js";
import { SEED_MAX } from "../../sc/tcp/stack.js";
import { newTcpPeek, peekTcp } from "../../sc/router/router.js";
import { DEFAULT_LIMITS, ParseError, RequestParser, type HttpRequest } from "../http/parser.js";
import { errorResponse, type PreparedResponse } from "../http/response.js";
import { sendPrepared } from "../http/send.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import type { TcpSocket } from "../../sc/tcp/socket.js";
import { isWireError } from "../../sc/wire/error.js";
import { ipv4FromString, type Ipv4CidrSet } from "../../sc/wire/addr.js";
import { LINK_DROP_REASONS } from "../../sc/clone/transport.js";
import {
  HandoffType,
  handoffMessageLength,
  RESPONSE_HEAD_MAX,
  type HandoffMessage,
  type ResumeMessage,
} from "../../sc/handoff/message.js";
import { resumeOffsets, SendDeadlines } from "../../sc/clone/engine.js";
import { HANDOFF_PORT, HandoffServer, type HandoffReplyLink } from "../../sc/handoff/link.js";

/** A node stops taking a handoff this long before its start deadline (the front-end's view stays safe). */
export const HANDOFF_SAFETY_MS = 50;

export interface HandoffImportPolicy {
  stack: TcpStack;
  /** The VIP and port this node serves: the only local side a handed-off connection may have. */
  vip: number;
  port: number;
  /** Connections taken at most at once (more are refused busy). */
  maxConnections: number;
  /** Handed-off connections open here now. */
  open: number;
}

/**
 * Checks a HANDOFF and imports its connection, or says why not (nothing is sent to the client
 * either way). `wallNow` is the wall clock (ms) the start deadline is compared with.
 */
export function importHandoff(
  msg: HandoffMessage | ResumeMessage,
  p: HandoffImportPolicy,
  wallNow: number,
): { sock: TcpSocket } | { refused: CloneStatus } {
  if (wallNow > msg.startDeadline - HANDOFF_SAFETY_MS) return { refused: CloneStatus.Expired };
  if (p.open >= p.maxConnections) return { refused: CloneStatus.Busy };
  const snap = decodeState(msg.state);
  if (isWireError(snap)) return { refused: CloneStatus.BadState };
  const t = snap.tuple;
  if (t.localAddr !== p.vip || t.localPort !== p.port) return { refused: CloneStatus.NoListener };
  const old = p.stack.lookup(t.localAddr, t.localPort, t.remoteAddr, t.remotePort);
  if (old !== undefined && !old.isClosed() && old.state !== "TIME-WAIT")
    return { refused: CloneStatus.Exists };
  try {
    const sock = importState(p.stack, { ...snap, seed: msg.seed }, msg.data, {
      localEndpoints: [{ addr: p.vip, port: p.port }],
    });
    return { sock };
  } catch {
    return { refused: CloneStatus.BadState };
  }
}

/** What the mode counts (for /stats and the metrics). */
export interface LardNodeCounters {
  received: number;
  accepted: number;
  refused: Record<string, number>;
  ended: number;
  /** Connections given back to the front-end for their next request. */
  handedBack: number;
  /** A hand-back that could not be made (link down, state not exportable): connection reset. */
  handBackFailures: number;
  /** Forwarded packets for a connection given back (in flight then): dropped, never a RST. */
  tombstoneDrops: number;
  /** RESUMEs taken (a connection whose node died; `accepted` counts them too). */
  resumes: number;
  /** Resumed responses that could not be reproduced exactly (another length or head): reset. */
  resumeMismatches: number;
  /** Clients that acknowledged nothing for the send timeout while a response was out: reset. */
  sendTimeouts: number;
  /** Connections dropped without a packet because their front-end link went down. */
  linkLostDrops: number;
  /** Connections still open when a drain's time ran out: reset. */
  drainResets: number;
}

/** How the node answers a request (the node's responder and stats; tests give their own). */
export interface LardServing {
  respond(req: HttpRequest, keepAlive: boolean, nowMs: number): PreparedResponse | Promise<PreparedResponse>;
  /** A bodiless error response that closes the connection. */
  error(status: number): PreparedResponse;
  countResponse(status: number, bytes: number): void;
}

export interface LardNodeOptions extends Omit<HandoffImportPolicy, "open"> {
  /** Wall clock (ms) the HANDOFF's start deadline is compared with. */
  wallClock?: () => number;
  /** A HANDOFF's one-way latency from its CLOCK_MONOTONIC stamp (us), on one machine. */
  onOneWay?: (us: number) => void;
  monotonicUs?: () => number;
  /** A connection waiting for its next request this long is closed (ms). */
  idleMs?: number;
  /** A given-back connection's forwarded packets are dropped this long (ms). */
  tombstoneMs?: number;
  /** A client that acknowledges nothing of a response for this long is reset (--send-timeout, ms). */
  sendTimeoutMs?: number;
}

/** A drain (shutdown) waits at most this long for handed-off connections to finish. */
export const LARD_DRAIN_MS = 10_000;

/** Room for the data of a HANDBACK (everything after the fixed fields in SC_MAX_MESSAGE). */
const HANDBACK_DATA_ROOM = SC_MAX_MESSAGE - handoffMessageLength(STATE_SIZE, SEED_MAX, 0);

/**
 * The node's mode. Every request of a handed-off connection that this node holds is served
 * here; the connections arrive by HANDOFF, not through the HTTP listener (the front-end owns
 * the VIP's handshakes). A connection serves exactly one request per handoff: once its
 * response is acknowledged and the next request has begun, the node gives the connection back
 * to the front-end (HANDBACK) with the bytes received from that request on, and the front-end
 * hands it to the node that request's target maps to (which may be this one again).
 */
export class LardNode implements Mode {
  readonly name = "lard";
  readonly counters: LardNodeCounters = {
    received: 0,
    accepted: 0,
    refused: {},
    ended: 0,
    handedBack: 0,
    handBackFailures: 0,
    tombstoneDrops: 0,
    resumes: 0,
    resumeMismatches: 0,
    sendTimeouts: 0,
    linkLostDrops: 0,
    drainResets: 0,
  };
  /** Shutting down: no new handoffs, idle connections close, the rest finish their response. */
  draining = false;
  /** Responses out whose client must keep acknowledging (outside the HTTP pipeline's own timeout). */
  readonly sendDeadlines: SendDeadlines<HandedOff>;
  private readonly conns = new Set<HandedOff>();
  /** Given-back connections (remote addr * 65536 + port) -> until when their packets are dropped. */
  private readonly tombstones = new Map<number, number>();
  private readonly peek = newTcpPeek();
  private readonly wallClock: () => number;
  readonly idleMs: number;
  private readonly tombstoneMs: number;

  constructor(
    readonly policy: LardNodeOptions,
    readonly serving: LardServing,
  ) {
    this.wallClock = policy.wallClock ?? Date.now;
    this.idleMs = policy.idleMs ?? 60_000;
    this.tombstoneMs = policy.tombstoneMs ?? 10_000;
    this.sendDeadlines = new SendDeadlines(policy.sendTimeoutMs ?? 30_000);
  }

  /** Handed-off connections open here now. */
  get open(): number {
    return this.conns.size;
  }

  decide(): "serve" {
    return "serve";
  }

  /**
   * A client packet (forwarded by the front-end). False: the node's stack should take it. True:
   * it belongs to a connection given back, still in flight; it is dropped, since the stack
   * would answer it with a RST and kill a connection that lives on.
   */
  dropsPacket(packet: Uint8Array, now: number): boolean {
    if (this.tombstones.size === 0) return false;
    const p = peekTcp(packet, this.peek);
    if (p === undefined) return false;
    const key = p.src * 65536 + p.srcPort;
    const until = this.tombstones.get(key);
    if (until === undefined) return false;
    if (now > until || this.policy.stack.lookup(p.dst, p.dstPort, p.src, p.srcPort) !== undefined) {
      this.tombstones.delete(key);
      return false;
    }
    this.counters.tombstoneDrops++;
    return true;
  }

  /**
   * A HANDOFF from the front-end (its link authenticated it), or a RESUME: a connection whose
   * node died, with the response the client has part of.
   */
  onHandoff(msg: HandoffMessage | ResumeMessage, link: HandoffReplyLink): void {
    this.counters.received++;
    // A draining node takes nothing new (its health check says so too: the front-end stops asking).
    const open = this.draining ? this.policy.maxConnections : this.open;
    const made = importHandoff(msg, { ...this.policy, open }, this.wallClock());
    if ("refused" in made) {
      const name = CLONE_STATUS_NAMES[made.refused] ?? String(made.refused);
      this.counters.refused[name] = (this.counters.refused[name] ?? 0) + 1;
      link.ack(msg.handoffId, made.refused);
      return;
    }
    this.counters.accepted++;
    const t = decodeState(msg.state);
    if (!isWireError(t)) this.tombstones.delete(t.tuple.remoteAddr * 65536 + t.tuple.remotePort);
    // The ACK first: the front-end forwards the client's packets from then on.
    link.ack(msg.handoffId, CloneStatus.Accepted);
    const { onOneWay, monotonicUs } = this.policy;
    if (onOneWay !== undefined && monotonicUs !== undefined && msg.sentAtUs > 0)
      onOneWay(monotonicUs() - msg.sentAtUs);
    let resume: Resume | null = null;
    if (msg.type === HandoffType.Resume) {
      this.counters.resumes++;
      if (msg.head.length > 0)
        resume = { offset: msg.offset, length: msg.responseLength, head: Buffer.from(msg.head) };
    }
    const c = new HandedOff(this, made.sock, msg.handoffId, link, resume);
    this.conns.add(c);
  }

  /**
   * The front-end's link went down: the front-end resumes these connections on other nodes (or
   * resets them), so they leave this node at once and without a packet: never two senders.
   */
  onLinkDown(link: HandoffReplyLink): void {
    for (const c of this.conns)
      if (c.link === link) {
        this.counters.linkLostDrops++;
        c.abandon();
      }
  }

  /** @internal HandedOff's end: it left this node (closed, or given back). */
  gone(c: HandedOff, givenBack: { key: number } | null, now: number): void {
    this.conns.delete(c);
    this.sendDeadlines.unwatch(c);
    this.drained?.();
    if (givenBack === null) {
      this.counters.ended++;
      return;
    }
    this.counters.handedBack++;
    if (this.tombstones.size >= 65_536) this.tombstones.clear(); // bounded; a stale one costs a RST at most
    this.tombstones.set(givenBack.key, now + this.tombstoneMs);
  }

  /**
   * Deadlines: connections idle too long are closed, clients that stopped acknowledging a
   * response are reset; expired tombstones go.
   */
  /** When poll() next has something to do (a send deadline, an idle connection's), for tests. */
  pollAt(): number {
    let t = this.sendDeadlines.pollAt();
    for (const c of this.conns) t = Math.min(t, c.idleDeadline());
    return t;
  }

  poll(now: number): void {
    for (const c of this.conns) c.checkIdle(now);
    const probe = (c: HandedOff) => {
      const conn = c.sock.conn;
      return {
        una: conn.sndUna,
        idle: conn.sndUna === conn.sndMax && c.sock.writableLength === 0,
        gone: c.sock.destroyed,
      };
    };
    for (const c of this.sendDeadlines.expire(now, probe)) {
      this.counters.sendTimeouts++;
      c.sock.destroy();
    }
    for (const [k, until] of this.tombstones) if (now > until) this.tombstones.delete(k);
  }

  stats(): Record<string, unknown> {
    return { ...this.counters, open: this.open, tombstones: this.tombstones.size, draining: this.draining };
  }

  private drained: (() => void) | undefined;

  /**
   * Shutdown: no new handoffs; a connection waiting for its next request closes (FIN, as a
   * plain server closes idle keep-alive connections), one with a response out finishes it and
   * closes, one whose next request has begun is given back (another node serves it). Resolves
   * when none is left, or after `ms`, when the rest are reset.
   */
  async drain(ms: number): Promise<void> {
    this.draining = true;
    for (const c of this.conns) c.drain();
    if (this.conns.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.drained = () => {
          if (this.conns.size === 0) resolve();
        };
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.drained = undefined;
    }
    for (const c of this.conns) {
      this.counters.drainResets++;
      c.sock.destroy();
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
  }
}

/** A response to continue: the client acknowledged `offset` of its `length` bytes; `head` as sent. */
interface Resume {
  offset: number;
  length: number;
  head: Buffer;
}

/**
 * The regenerated response matches what the dead node announced: same length, same head
 * apart from Date and Expires (as SC's range resume checks, server/modes/sc.ts).
 */
export function sameResponse(head: Buffer, length: number, resp: PreparedResponse): boolean {
  if (resp.length !== length || resp.head.length !== head.length) return false;
  return stripDate(resp.head) === stripDate(head);
}

function stripDate(head: Buffer): string {
  return head.toString("latin1").replace(/\r\n(?:Date|Expires): [^\r]*/gi, "");
}

/**
 * What is left of `resp` once `offset` bytes of it reached the client: the announced head from
 * there (the bytes the client has the start of), then the body from the right offset.
 */
export function responseTail(resp: PreparedResponse, head: Buffer, offset: number): PreparedResponse {
  const at = resumeOffsets(head.length, offset);
  const tail: PreparedResponse = { ...resp, head: head.subarray(at.headFrom), body: null, stream: null };
  if (resp.body !== null) tail.body = resp.body.subarray(at.bodyFrom);
  else if (resp.stream !== null && resp.stream.start + at.bodyFrom <= resp.stream.end)
    tail.stream = { ...resp.stream, start: resp.stream.start + at.bodyFrom };
  return tail;
}

/** One handed-off connection on this node: it serves one request, then gives the connection back. */
class HandedOff {
  /** Bytes received from the current request's first byte on (not yet consumed), in chunks. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** The first request's parser, fed as bytes arrive (linear in the input). */
  private readonly parser = new RequestParser(DEFAULT_LIMITS);
  private phase: "request" | "responding" | "next" | "leaving" | "ending" | "closed" = "request";
  /** The client sent its FIN: no further request will come. */
  private clientEnded = false;
  private drainWaits = 0;
  private idleSince: number;

  constructor(
    private readonly node: LardNode,
    readonly sock: TcpSocket,
    private readonly handoffId: number,
    readonly link: HandoffReplyLink,
    /** A RESUME's response: the first request's answer continues it (null: answered afresh). */
    private resume: Resume | null = null,
  ) {
    this.idleSince = node.policy.stack.now();
    sock.on("error", () => undefined);
    sock.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      // Bounded: beyond what a HANDBACK carries, stop reading (TCP holds the client back); the
      // hand-back then fails and the connection closes.
      if (this.size > HANDBACK_DATA_ROOM) sock.pause();
      if (this.phase === "request") this.parser.feed(chunk);
      this.pump();
    });
    sock.on("end", () => {
      this.clientEnded = true;
      // The client is done sending: no next request will come; close once our response is out.
      if (this.phase === "next" || (this.phase === "request" && this.size === 0)) sock.end();
    });
    sock.once("close", () => {
      if (this.phase === "leaving") return;
      this.phase = "closed";
      this.node.gone(this, null, this.node.policy.stack.now());
      this.link.end(this.handoffId);
    });
  }

  /** Drain: closes at once if nothing is under way, else after the current response. */
  drain(): void {
    if (this.phase === "next" && this.size === 0) this.end();
  }

  /** Leaves without a packet (the front-end lost this node: the connection lives on elsewhere). */
  abandon(): void {
    this.phase = "leaving";
    this.node.gone(this, null, this.node.policy.stack.now());
    this.sock.dropSilently();
  }

  /** Our FIN: no hand-back after it (a request racing it is the client's to retry). */
  private end(): void {
    this.phase = "ending";
    this.sock.end();
  }

  idleDeadline(): number {
    return this.phase === "request" || this.phase === "next"
      ? this.idleSince + this.node.idleMs + 1
      : Infinity;
  }

  checkIdle(now: number): void {
    if (now < this.idleDeadline()) return;
    // Between requests: a FIN, as a plain server closes an idle keep-alive connection; a
    // request that never completed: a reset.
    if (this.phase === "next" && this.size === 0) this.end();
    else this.sock.destroy();
  }

  private pump(): void {
    if (this.phase === "request") return this.serveFirst();
    if (this.phase === "next" && this.size > 0) this.handBackWhenAcked();
  }

  /** The request the front-end handed this connection for. */
  private serveFirst(): void {
    const req = this.parser.next();
    if (req === null) return; // the rest of it comes from the client
    const serving = this.node.serving;
    if (req instanceof ParseError) return this.answer(serving.error(req.status), false);
    // A request with a body is served here and the connection closes after it: its exact end in
    // the byte stream (chunked framing) is not worth tracking for a hand-back.
    const hasBody = req.bodyBytes > 0 || req.headers.some((v, i) => i % 2 === 0 && v === "transfer-encoding");
    const consumed = req.raw.length + req.bodyBytes;
    const rest = Buffer.concat(this.chunks, this.size).subarray(Math.min(consumed, this.size));
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    const keepAlive = req.keepAlive && !hasBody;
    this.phase = "responding";
    let resp: PreparedResponse | Promise<PreparedResponse>;
    try {
      resp = serving.respond(req, keepAlive, Date.now());
    } catch {
      return this.answer(serving.error(500), false);
    }
    if (resp instanceof Promise)
      resp.then(
        (r) => this.answer(r, keepAlive),
        () => this.answer(serving.error(500), false),
      );
    else this.answer(resp, keepAlive);
  }

  private answer(resp: PreparedResponse, keepAlive: boolean): void {
    if (this.sock.destroyed) return;
    this.phase = "responding";
    let out = resp;
    const resume = this.resume;
    this.resume = null;
    if (resume !== null) {
      // A resume: the client holds the first `offset` bytes of the dead node's response. Only
      // the same response can continue it (its head as the dead node sent it); anything else
      // (another length, status or validator; an error page) would be wrong bytes: reset.
      if (!sameResponse(resume.head, resume.length, resp)) {
        this.node.counters.resumeMismatches++;
        this.phase = "closed";
        this.sock.destroy();
        return;
      }
      out = responseTail(resp, resume.head, resume.offset);
      // The dead node may have sent beyond the client's ACK: ACKs of those bytes (the same as
      // ours) advance this side rather than being dropped as acknowledging unsent data.
      this.sock.conn.acceptAcksBeyondSent = true;
      this.announce(resume.length, resume.head);
    } else this.announce(resp.length, resp.head);
    this.node.serving.countResponse(resp.status, out.length);
    this.node.sendDeadlines.watch(this, this.sock.conn.sndUna, this.node.policy.stack.now());
    const done = () => {
      if (this.sock.destroyed || this.phase !== "responding") return;
      if (resume !== null) this.sock.write(EMPTY, () => (this.sock.conn.acceptAcksBeyondSent = false));
      if (!keepAlive || resp.close) return this.end();
      this.phase = "next";
      this.idleSince = this.node.policy.stack.now();
      if (this.size > 0) this.handBackWhenAcked();
      else if (this.clientEnded || this.node.draining) this.end();
    };
    if (out.stream === null) {
      if (out.head.length > 0) this.sock.write(out.head);
      if (out.body !== null && out.body.length > 0) this.sock.write(out.body);
      done();
    } else void sendPrepared(this.sock, out).then(done);
  }

  /**
   * Tells the front-end the response's length and head before its first byte leaves, so that
   * another node can resume it if this one dies (a head too large for the message is not
   * announced: that response cannot be resumed, the connection would be reset).
   */
  private announce(length: number, head: Buffer): void {
    if (head.length > 0 && head.length <= RESPONSE_HEAD_MAX) this.link.response(this.handoffId, length, head);
  }

  /**
   * The next request has begun. Once the client acknowledged everything sent (the front-end
   * imports a quiescent connection) and the socket handed out all it received, the connection
   * goes back to the front-end with those bytes; this node forgets it without a packet.
   */
  private handBackWhenAcked(): void {
    if (this.phase !== "next") return;
    this.phase = "leaving";
    // A zero-length write completes once the client acknowledged everything before it.
    this.sock.write(EMPTY, () => queueMicrotask(() => this.handBack()));
  }

  private handBack(): void {
    const sock = this.sock;
    if (sock.destroyed) return;
    if (sock.readableLength > 0 && ++this.drainWaits <= MAX_DRAIN_WAITS) {
      // Bytes received but not handed out yet: take them first (they come as 'data'), for a
      // bounded number of turns (then the export check below fails and the connection closes).
      setImmediate(() => this.handBack());
      return;
    }
    let ok = false;
    const state = exportState(sock);
    if (state.seed !== undefined && state.sndNxt === state.sndUna && this.size <= HANDBACK_DATA_ROOM) {
      ok = this.link.handBack({
        type: HandoffType.HandBack,
        handoffId: this.handoffId,
        startDeadline: 0,
        sentAtUs: 0,
        state: encodeState(state),
        seed: state.seed,
        data: Buffer.concat(this.chunks, this.size),
      });
    }
    if (!ok) {
      // The front-end cannot take it: close cleanly (the front-end's END resets its view).
      this.node.counters.handBackFailures++;
      this.phase = "closed";
      sock.destroy();
      return;
    }
    this.node.gone(
      this,
      { key: state.tuple.remoteAddr * 65536 + state.tuple.remotePort },
      this.node.policy.stack.now(),
    );
    sock.dropSilently();
  }
}

const EMPTY = new Uint8Array(0);
/** Event-loop turns a hand-back waits for the socket to hand out what it received. */
const MAX_DRAIN_WAITS = 16;

/** --send-timeout / --idle-timeout as the node passes them to every mode (cli/node.ts), else the node's default. */
function positiveSetting(settings: Readonly<Record<string, unknown>>, key: string, fallback: number): number {
  const v = settings[key];
  return typeof v === "number" && v > 0 ? v : fallback;
}

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export const LARD_MODE: ModeDefinition = {
  name: "lard",
  summary: "LARD back-end: serve connections the LARD front-end hands off (dispatcher --mode lard)",
  needs: "user-stack",
  async create(ctx: UserStackContext): Promise<Mode> {
    const { userStack } = ctx;
    const gue = userStack.gue;
    if (gue === null)
      throw new UserError(
        "--mode lard needs GUE input (--gue-port): the front-end forwards the client's packets in GUE",
      );
    const mode = lardNode(ctx);
    // Forwarded packets of connections given back (still in flight) never reach the stack.
    const stack = userStack.stack;
    userStack.setPacketHandler((packet) => {
      if (!mode.dropsPacket(packet, stack.now())) stack.receive(packet);
    });
    const sweep = setInterval(() => mode.poll(stack.now()), 1000);
    sweep.unref();
    const server = handoffServer(ctx, mode, gue.allow);
    registerLardNodeMetrics(ctx.registry, mode, server);
    const self = selfMember(ctx.cluster);
    try {
      await server.start();
    } catch (err) {
      throw new UserError(`LARD handoff server on ${self.addr}:${HANDOFF_PORT}: ${(err as Error).message}`);
    }
    const stats = mode.stats.bind(mode);
    return Object.assign(mode, {
      stats: () => ({ ...stats(), links: server.linksUp, linkDrops: server.drops }),
      close: async () => {
        clearInterval(sweep);
        userStack.setPacketHandler(null);
        // The link stays up while the connections finish (their ENDs, the client's packets).
        await mode.drain(LARD_DRAIN_MS);
        await mode.close();
        await server.close();
      },
    });
  },
};

/** The node's side of LARD on the user stack, answering with the node's responder. */
function lardNode(ctx: UserStackContext): LardNode {
  const { userStack } = ctx;
  const vip = ipv4FromString(userStack.address);
  if (isWireError(vip)) throw new UserError(`--mode lard: bad VIP ${userStack.address}`);
  const oneWay = new Histogram({
    name: "sc_lard_handoff_one_way_seconds",
    help: "HANDOFF sent by the front-end (CLOCK_MONOTONIC stamp) -> imported here; one machine only",
    buckets: [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2],
    registers: [ctx.registry],
  });
  return new LardNode(
    {
      stack: userStack.stack,
      vip,
      port: ctx.httpPort,
      maxConnections: 100_000,
      onOneWay: (us) => oneWay.observe(us / 1e6),
      monotonicUs,
      idleMs: positiveSetting(ctx.modeSettings, "idleTimeoutMs", 30_000),
      sendTimeoutMs: positiveSetting(ctx.modeSettings, "sendTimeoutMs", 30_000),
    },
    {
      respond: (req, keepAlive, now) => ctx.responder.respond(req, keepAlive, now),
      error: (status) => errorResponse(status, false, ctx.dates.dateLine(Date.now())),
      countResponse: (status, bytes) => ctx.stats.countResponse(status, bytes),
    },
  );
}

/** The handoff link server: the front-end connects from an address the node takes GUE from (the dispatcher's). */
function handoffServer(ctx: UserStackContext, mode: LardNode, allow: Ipv4CidrSet): HandoffServer {
  const self = selfMember(ctx.cluster);
  const stack = ctx.userStack.stack;
  return new HandoffServer({
    nodeId: self.id,
    listenHost: self.addr,
    listenPort: HANDOFF_PORT,
    key: linkKey(ctx.trust),
    admit: (addr) => {
      const a = ipv4FromString(addr);
      return !isWireError(a) && allow.has(a);
    },
    onHandoff: (msg, link) => mode.onHandoff(msg, link),
    onLinkDown: (link) => {
      mode.onLinkDown(link);
      stack.flush();
    },
  });
}

function registerLardNodeMetrics(registry: Registry, mode: LardNode, server: HandoffServer): void {
  const counters = mode.counters;
  mirrorCounter(
    registry,
    "sc_lard_handoffs_received_total",
    "HANDOFF messages received",
    () => counters.received,
  );
  mirrorCounter(
    registry,
    "sc_lard_handoffs_accepted_total",
    "Connections handed off to this node and imported",
    () => counters.accepted,
  );
  mirrorGauge(registry, "sc_lard_connections", "Handed-off connections open on this node", () => mode.open);
  mirrorCounter(
    registry,
    "sc_lard_resumes_received_total",
    "RESUMEs taken: connections whose node died, continued here from the client's ACK",
    () => counters.resumes,
  );
  mirrorCounterBy(
    registry,
    "sc_lard_handoffs_refused_total",
    "HANDOFF messages refused, by status",
    ["status"],
    () => Object.entries(counters.refused).map(([status, n]) => [{ status }, n] as const),
  );
  mirrorCounterBy(
    registry,
    "sc_lard_connection_drops_total",
    "Handed-off connections this node ended early, by reason (docs/lard.md)",
    ["reason"],
    () => [
      [{ reason: "resume-mismatch" }, counters.resumeMismatches],
      [{ reason: "send-timeout" }, counters.sendTimeouts],
      [{ reason: "link-lost" }, counters.linkLostDrops],
      [{ reason: "drain" }, counters.drainResets],
      [{ reason: "hand-back-failed" }, counters.handBackFailures],
    ],
  );
  mirrorCounterBy(
    registry,
    "sc_lard_link_drops_total",
    "Handoff links this node refused or closed, by reason (docs/lard.md)",
    ["reason"],
    () => byLabel("reason", LINK_DROP_REASONS, server.drops),
  );
}
