// --mode sc: Socket Cloning (paper sections 2 and 3; DESIGN.md section 3).
//
// On the node a connection arrived at (the ORIGINAL): each parsed request is mapped to the
// node whose cache should hold it. If that is another node, once everything sent so far is
// acknowledged the connection's TCP state is exported and sent with the request (the ASF) in
// a CLONE message over the persistent SC link; the connection goes into shadow mode and the
// Packet Router forwards the client's packets to the clone's node. The SC-ACK tells the
// response's exact length; when the client has acknowledged all of it, the original leaves
// shadow mode (its send state already synchronised from the client's ACKs) and handles the
// next request. If the clone's node dies or stalls mid-response, the original resumes the
// byte stream itself from the last byte the client acknowledged (it knows the response head
// from the SC-ACK and regenerates the body).
//
// On the node that receives a CLONE (the CLONE): the connection is rebuilt from the state and
// socket seed, the ASF parsed as the client's request, the response prepared, its length sent
// back in the SC-ACK, then the response is sent straight to the client (source: the VIP). The
// clone never sends FIN or RST: once its response is acknowledged it vanishes.
import dgram from "node:dgram";
import { Counter, Histogram } from "prom-client";
import { mirrorCounter, mirrorGauge } from "../metrics.js";
import {
  registerMode,
  type ConnectionControl,
  type Decision,
  type Mode,
  type ModeContext,
} from "../modes.js";
import { selfMember, type ClusterConfig, type ClusterMember } from "../cluster.js";
import type { UrlMapper } from "../mapper.js";
import type { HttpRequest } from "../http/parser.js";
import { RequestParser, ParseError, DEFAULT_LIMITS } from "../http/parser.js";
import { normalizePath } from "../http/url-path.js";
import type { PreparedResponse } from "../http/response.js";
import { sendPrepared } from "../send.js";
import type { PacketHandler, PacketSource } from "../conn-user.js";
import type { Conn } from "../conn.js";
import type { Logger } from "../log.js";
import { UserFacingError } from "../errors.js";
import { LINK_DROP_REASONS, ScTransport, type LinkDropReason } from "../../sc/clone/transport.js";
import {
  cloneAckLength,
  cloneMessageLength,
  CloneStatus,
  ScType,
  SC_MAX_MESSAGE,
  type CloneAckMessage,
  type CloneMessage,
} from "../../sc/clone/message.js";
import { linkKey } from "../../sc/auth/link.js";
import { PacketRouter, peekTcp, type RouterEntry, type TcpPeek } from "../../sc/router/router.js";
import { TcpSocket } from "../../sc/tcp/socket.js";
import { decodeState, encodeState, exportState, importState, STATE_SIZE } from "../../sc/tcp/state.js";
import { seqDiff } from "../../sc/tcp/seq.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import { isWireError } from "../../sc/wire/error.js";
import { ipv4FromString } from "../../sc/wire/addr.js";

export interface ScSettings {
  /** How long the original waits for the SC-ACK (the clone's start deadline) before serving itself. */
  cloneTimeoutMs: number;
  /** Documents known to be at most this many bytes are served where the request arrived. */
  localMaxBytes: number;
  /** After the client's FIN, forwarding stops once no progress was seen for this long (paper 2.3). */
  finLingerMs: number;
  /** A clone whose client makes no progress for this long is taken back by the original. */
  stallMs: number;
  /** Clones a node serves at once; more are refused (busy) and served by their original. */
  maxClones: number;
  /**
   * The node's send timeout (--send-timeout), applied where the mode drives a connection outside
   * the HTTP pipeline: the original waiting for its last response to be acknowledged before it
   * clones, the original resuming a failed clone's response, and a clone on this node. A client
   * that acknowledges nothing new for this long is dropped (the original resets it; a clone
   * vanishes without a packet, its original resumes or resets).
   */
  sendTimeoutMs: number;
}

export const SC_DEFAULTS: ScSettings = {
  cloneTimeoutMs: 2000,
  // Measured (docs/socket-cloning.md, bench/sc-clone.ts): serving a <= 4 KiB document where it
  // arrives takes 1.4-3.6x less than cloning it, and such documents are under 1% of the bytes
  // but 36-50% of the requests of the paper-shaped and NASA traces, so replicating them costs
  // almost no cache.
  localMaxBytes: 4096,
  finLingerMs: 10_000,
  stallMs: 5_000,
  maxClones: 10_000,
  // The node's own default (NODE_DEFAULTS.timeouts.sendMs); cli/node.ts passes --send-timeout.
  sendTimeoutMs: 30_000,
};

/** Extra time, past the clone's start deadline, before the original serves on its own. */
const DEADLINE_MARGIN_MS = 250;
/** The clone stops before its start deadline by this much, so the original's view stays safe. */
const CLONE_SAFETY_MS = 50;
/** GUE variant 0, proto 4 (IPv4): the header put before packets forwarded to a clone. */
const GUE_IPV4 = Buffer.from([0x00, 0x04, 0x00, 0x00]);
const SIZE_HINTS_MAX = 65536;
const EMPTY = new Uint8Array(0);
/** How often the mode checks routing expiries and send deadlines while it has any. */
const SWEEP_MS = 250;

/**
 * What the mode works with besides its ModeContext: the node's user-space stack, the cluster,
 * and the two planes to the peers. create() builds them on the node; tests build them in process.
 */
export interface ScEdges {
  /** The stack that owns the VIP, and the hook every inbound client packet passes. */
  readonly stack: TcpStack;
  readonly vip: string;
  setPacketHandler(h: PacketHandler | null): void;
  readonly cluster: ClusterConfig;
  readonly mapper: UrlMapper;
  /** SC messages (CLONE, CLONE-ACK, CANCEL) to and from peers. */
  readonly transport: ScTransport;
  /** Sends a client packet to a clone on `peer` (GUE). */
  forward(packet: Uint8Array, peer: ClusterMember): void;
  /** Releases what the edges opened (after the transport is closed). */
  close(): Promise<void>;
}

/** A clone in flight on the original node. */
interface OutgoingClone {
  readonly id: number;
  readonly peer: ClusterMember;
  readonly sock: TcpSocket;
  readonly req: HttpRequest;
  readonly entry: RouterEntry<ClusterMember>;
  ack: CloneAckMessage | null;
  settle: (d: Decision) => void;
  settled: boolean;
  /** On the connection's "close" until the clone is finished (then removed: a keep-alive
   *  connection cloned many times must not collect one listener per clone). */
  readonly onClose: () => void;
}

/** A clone this node serves, owned by the peer that sent its CLONE. */
interface IncomingClone {
  readonly id: number;
  readonly from: string;
  readonly key: string;
  readonly sock: TcpSocket;
  started: boolean;
  cancelled: boolean;
}

/** A connection the mode drives outside the HTTP pipeline, and its last send progress. */
interface SendDeadline {
  /** The acknowledged point (snd_una) when progress was last seen. */
  una: number;
  since: number;
  readonly onExpired: () => void;
}

type FailureReason =
  | "peer-down"
  | "timeout"
  | "refused"
  | "not-exportable"
  | "resumed"
  | "reset"
  | "abandoned"
  /** The original reset a client that acknowledged nothing for sendTimeoutMs (before a clone, or resuming). */
  | "send-timeout"
  /** This node dropped a clone whose client acknowledged nothing for sendTimeoutMs. */
  | "clone-send-timeout";

export class SocketCloning implements Mode {
  readonly name = "sc";
  private readonly stack: TcpStack;
  private readonly transport: ScTransport;
  private readonly mapper: UrlMapper;
  private readonly self: ClusterMember;
  private readonly peers = new Map<string, ClusterMember>();
  private readonly peerAddrs = new Set<string>();
  private readonly router: PacketRouter<ClusterMember>;
  private readonly outgoing = new Map<RouterEntry<ClusterMember>, OutgoingClone>();
  /** Clones served here by `${peer}/${clone id}`: a peer can only name (cancel) its own. */
  private readonly incoming = new Map<string, IncomingClone>();
  private readonly incomingBySocket = new Map<TcpSocket, IncomingClone>();
  private readonly deadlines = new Map<TcpSocket, SendDeadline>();
  private readonly sizeHints = new Map<string, number>();
  private readonly scratch: TcpPeek = {
    src: 0,
    dst: 0,
    srcPort: 0,
    dstPort: 0,
    flags: 0,
    ack: 0,
    payloadLength: 0,
  };
  private nextCloneId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly vip: number;
  private readonly port: number;

  // Counters (also exported as Prometheus metrics).
  clonesSent = 0;
  clonesReceived = 0;
  readonly failures: Record<FailureReason, number> = {
    "peer-down": 0,
    timeout: 0,
    refused: 0,
    "not-exportable": 0,
    resumed: 0,
    reset: 0,
    abandoned: 0,
    "send-timeout": 0,
    "clone-send-timeout": 0,
  };
  readonly refusals: Record<string, number> = {};
  resumes = 0;
  servedLocally = 0;
  peerPacketsDropped = 0;
  /** CANCELs naming no clone of their sender here (late, or for another peer's clone). */
  cancelsIgnored = 0;
  private readonly latency: Histogram;
  /** The most recent clone latencies (us), for exact percentiles in /stats. */
  private readonly latencySamples = new SampleRing(16384);

  constructor(
    private readonly ctx: ModeContext,
    private readonly settings: ScSettings,
    private readonly edges: ScEdges,
  ) {
    this.stack = edges.stack;
    this.transport = edges.transport;
    this.mapper = edges.mapper;
    this.self = selfMember(edges.cluster);
    for (const m of edges.cluster.members) {
      if (m.id === this.self.id) continue;
      this.peers.set(m.id, m);
      this.peerAddrs.add(m.addr);
    }
    this.vip = ipv4FromString(edges.vip) as number;
    this.port = ctx.httpPort;
    this.router = new PacketRouter({ finLingerMs: settings.finLingerMs, stallMs: settings.stallMs });
    this.latency = this.registerMetrics();
    this.transport.on("peer-down", (id: string) => this.peerDown(id));
    edges.setPacketHandler(this.onPacket);
  }

  // ------------------------------------------------------------------ original node

  decide(req: HttpRequest, ctl: ConnectionControl): Decision | Promise<Decision> {
    if (req.method !== "GET" && req.method !== "HEAD") return "serve";
    if (req.bodyBytes > 0) return "serve";
    const norm = normalizePath(req.path);
    if (!norm.ok) return "serve";
    const home = this.mapper.lookup(norm.path);
    if (home === undefined || home === this.self.id) return "serve";
    const hint = this.sizeHints.get(norm.path);
    if (hint !== undefined && hint <= this.settings.localMaxBytes) {
      this.servedLocally++;
      return "serve";
    }
    const peer = this.peers.get(home);
    if (peer === undefined) return "serve";
    if (!this.transport.isPeerUp(home)) {
      this.failures["peer-down"]++;
      return "serve";
    }
    if (!(ctl.conn instanceof TcpSocket)) return "serve";
    return this.cloneTo(peer, req, ctl, ctl.conn, norm.path);
  }

  private async cloneTo(
    peer: ClusterMember,
    req: HttpRequest,
    ctl: ConnectionControl,
    sock: TcpSocket,
    path: string,
  ): Promise<Decision> {
    // Only a connection with nothing in flight can be continued elsewhere: the clone has none
    // of the bytes the original may still have to retransmit. The HTTP pipeline's send
    // timeout does not run while the mode decides, so the wait has its own.
    this.watchSend(sock, () => this.sendTimedOut(sock));
    await ctl.flushed();
    this.deadlines.delete(sock);
    if (sock.destroyed) return "done";
    let state;
    try {
      state = exportState(sock);
    } catch {
      this.failures["not-exportable"]++;
      return "serve";
    }
    if (
      state.sndUna !== state.sndNxt ||
      state.seed === undefined ||
      cloneMessageLength(STATE_SIZE, state.seed.length, req.raw.length) > SC_MAX_MESSAGE
    ) {
      this.failures["not-exportable"]++;
      return "serve";
    }
    const now = Date.now();
    const entry = this.router.add(state.tuple, peer, state.sndNxt, now);
    // Shadow before the CLONE goes out: the client's ACKs for the clone's first bytes may
    // overtake the SC-ACK, and must already find the original silent and routing.
    sock.setShadow(true);
    const id = this.nextCloneId;
    this.nextCloneId = (this.nextCloneId % 0xffffffff) + 1;
    const msg: CloneMessage = {
      type: ScType.Clone,
      cloneId: id,
      startDeadline: now + this.settings.cloneTimeoutMs,
      state: encodeState(state),
      seed: state.seed,
      asf: req.raw,
    };
    let settle!: (d: Decision) => void;
    const result = new Promise<Decision>((r) => (settle = r));
    const clone: OutgoingClone = {
      id,
      peer,
      sock,
      req,
      entry,
      ack: null,
      settle,
      settled: false,
      onClose: () => this.connectionClosed(clone),
    };
    this.outgoing.set(entry, clone);
    sock.once("close", clone.onClose);
    this.clonesSent++;
    this.armSweep();
    const t0 = performance.now();
    const outcome = await this.transport.requestClone(
      peer.id,
      msg,
      this.settings.cloneTimeoutMs + DEADLINE_MARGIN_MS,
    );
    if (clone.settled) return result; // the connection went away meanwhile
    if (outcome.kind !== "accepted") {
      const reason =
        outcome.kind === "refused" ? "refused" : outcome.kind === "timeout" ? "timeout" : "peer-down";
      if (outcome.kind === "refused")
        this.refusals[outcome.reason] = (this.refusals[outcome.reason] ?? 0) + 1;
      this.failures[reason]++;
      if (entry.ackedBytes > 0) {
        // The client acknowledged bytes we never learnt the layout of: nothing can be
        // resumed exactly. Reset rather than risk wrong bytes.
        this.finish(clone, "abandoned");
        sock.destroy();
        return result;
      }
      this.finish(clone, null);
      return "serve";
    }
    const took = performance.now() - t0;
    this.latency.observe(took / 1000);
    this.latencySamples.add(took * 1000);
    clone.ack = outcome.ack;
    this.remember(path, outcome.ack.responseLength);
    this.router.activate(entry, outcome.ack.responseLength, Date.now());
    if (this.router.isComplete(entry)) this.complete(clone);
    return result;
  }

  private remember(path: string, length: number): void {
    if (this.settings.localMaxBytes <= 0) return;
    if (this.sizeHints.size >= SIZE_HINTS_MAX) this.sizeHints.delete(this.sizeHints.keys().next().value!);
    this.sizeHints.set(path, length);
  }

  /** The client acknowledged the whole response: the original takes the connection back. */
  private complete(clone: OutgoingClone): void {
    if (clone.settled) return;
    clone.settled = true;
    clone.sock.removeListener("close", clone.onClose);
    this.router.complete(clone.entry, Date.now()); // lingers: pure ACKs still reach the clone
    this.outgoing.delete(clone.entry);
    if (!clone.sock.destroyed) clone.sock.setShadow(false);
    clone.settle("done");
  }

  /** Ends a clone on the original: routing stops, shadow mode ends, the pipeline continues. */
  private finish(clone: OutgoingClone, decision: Decision | "abandoned" | null): void {
    if (clone.settled) return;
    clone.settled = true;
    clone.sock.removeListener("close", clone.onClose);
    this.router.remove(clone.entry);
    this.outgoing.delete(clone.entry);
    if (!clone.sock.destroyed) clone.sock.setShadow(false);
    if (decision === "abandoned") {
      this.failures.abandoned++;
      clone.settle("done");
    } else if (decision !== null) clone.settle(decision);
  }

  private connectionClosed(clone: OutgoingClone): void {
    if (clone.settled) return;
    this.failures.reset++;
    this.finish(clone, "done");
  }

  private peerDown(id: string): void {
    for (const clone of [...this.outgoing.values()]) {
      if (clone.peer.id === id && clone.ack !== null) void this.resume(clone);
    }
  }

  /**
   * The clone's node died or stalled mid-response: continue the byte stream from the last
   * byte the client acknowledged. The head is the clone's own (from the SC-ACK); the body is
   * regenerated here and must match it in length and validator, else the connection is reset.
   */
  private async resume(clone: OutgoingClone): Promise<void> {
    const ack = clone.ack;
    if (clone.settled || ack === null) return;
    const entry = clone.entry;
    this.router.remove(entry); // stop forwarding to the failed node first
    this.failures.resumed++;
    const sock = clone.sock;
    let resp: PreparedResponse | null = null;
    try {
      resp = await this.ctx.responder.respond(clone.req, clone.req.keepAlive, Date.now());
    } catch {
      // The origin is unreachable: nothing to resume from (reset below).
    }
    if (clone.settled) return;
    const head = Buffer.from(ack.head);
    if (resp === null || !sameResponse(head, ack.responseLength, resp)) {
      this.ctx.log.warn({ path: clone.req.path }, "clone failed and the response cannot be resumed: reset");
      this.finish(clone, "abandoned");
      sock.destroy();
      return;
    }
    this.resumes++;
    // Leave shadow first: the stack's send state is the client's acknowledged point. ACKs that
    // came while the body was regenerated reached the stack but no longer the router, so
    // the stack's highest acknowledged sequence number says where the stream continues.
    clone.settled = true;
    this.outgoing.delete(entry);
    sock.setShadow(false);
    // The failed clone may have sent beyond what the client acknowledged so far; ACKs for
    // those bytes (identical to ours) must advance us rather than be dropped.
    sock.conn.acceptAcksBeyondSent = true;
    const sent = entry.ackedBytes + seqDiff(sock.conn.sndMax, entry.acked);
    const headLen = head.length;
    const tail: PreparedResponse = {
      ...resp,
      head: sent < headLen ? head.subarray(sent) : Buffer.alloc(0),
      body: null,
      stream: null,
    };
    const bodyFrom = Math.max(0, sent - headLen);
    if (resp.body !== null) tail.body = resp.body.subarray(bodyFrom);
    else if (resp.stream !== null && resp.stream.start + bodyFrom <= resp.stream.end) {
      tail.stream = { ...resp.stream, start: resp.stream.start + bodyFrom };
    }
    // Outside the HTTP pipeline, so the send timeout is the mode's: a client that stopped
    // reading (the likely reason the clone stalled) is reset, not served forever.
    this.watchSend(sock, () => this.sendTimedOut(sock));
    try {
      await sendPrepared(asConn(sock), tail);
      await new Promise<void>((r) => (sock.destroyed ? r() : sock.write(Buffer.alloc(0), () => r())));
    } finally {
      this.deadlines.delete(sock);
      sock.conn.acceptAcksBeyondSent = false;
      clone.settle("done");
    }
  }

  /** Starts (or restarts) the send deadline of a connection the mode drives itself. */
  private watchSend(sock: TcpSocket, onExpired: () => void): void {
    this.deadlines.set(sock, { una: sock.conn.sndUna, since: Date.now(), onExpired });
    this.armSweep();
  }

  /** The original's client acknowledged nothing for sendTimeoutMs: reset, as the pipeline would. */
  private sendTimedOut(sock: TcpSocket): void {
    this.failures["send-timeout"]++;
    this.ctx.stats.sendTimeouts++;
    sock.destroy();
  }

  /** Expires send deadlines: no acknowledgement progress with data outstanding for sendTimeoutMs. */
  private checkDeadlines(now: number): void {
    for (const [sock, d] of this.deadlines) {
      if (sock.destroyed) {
        this.deadlines.delete(sock);
        continue;
      }
      const conn = sock.conn;
      const idle = conn.sndUna === conn.sndMax && sock.writableLength === 0;
      if (idle || conn.sndUna !== d.una) {
        d.una = conn.sndUna;
        d.since = now;
      } else if (now - d.since >= this.settings.sendTimeoutMs) {
        this.deadlines.delete(sock);
        d.onExpired();
      }
    }
  }

  // ------------------------------------------------------------------ packet path

  /** Every inbound client packet (TUN or GUE) passes here before the stack. */
  private readonly onPacket = (packet: Uint8Array, source: PacketSource, from: string): void => {
    const stack = this.stack;
    const pk = peekTcp(packet, this.scratch);
    if (pk === undefined) {
      stack.receive(packet);
      return;
    }
    if (source === "gue" && this.peerAddrs.has(from)) {
      // Forwarded by an original node for a clone here. Before the clone exists (the CLONE
      // message may come after) or after it vanished, drop it: never answer with a RST, the
      // connection lives on elsewhere.
      const conn = stack.lookup(pk.dst, pk.dstPort, pk.src, pk.srcPort);
      if (conn !== undefined && conn.clone !== undefined) stack.receive(packet);
      else this.peerPacketsDropped++;
      return;
    }
    const { verdict, entry } = this.router.route(pk, Date.now());
    // The original's stack sees the packet first (shadow mode): its ACK advances snd_una and
    // snd_nxt, the paper's implicit state synchronisation; then the clone gets it.
    stack.receive(packet);
    if (verdict === "forward") {
      const peer = entry!.peer;
      this.edges.forward(packet, peer);
      if (this.router.isComplete(entry!)) {
        const clone = this.outgoing.get(entry!);
        if (clone !== undefined) this.complete(clone);
      }
    }
  };

  private armSweep(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const { entry, why } of this.router.expire(now)) {
      const clone = this.outgoing.get(entry);
      if (clone === undefined) continue;
      if (why === "stalled") void this.resume(clone);
      else {
        // The client closed and stopped acknowledging: nothing more to deliver.
        this.finish(clone, "done");
      }
    }
    this.checkDeadlines(now);
    if (this.router.size === 0 && this.outgoing.size === 0 && this.deadlines.size === 0) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  // ------------------------------------------------------------------ clone node

  /**
   * A CLONE from the peer `from` (the transport authenticated it). Every refusal is answered
   * with its status and sends nothing to the client.
   */
  readonly onClone = (msg: CloneMessage, from: string, reply: (ack: CloneAckMessage) => void): void => {
    const refuse = (status: CloneStatus) => {
      this.refusals[`sent-${status}`] = (this.refusals[`sent-${status}`] ?? 0) + 1;
      reply({ type: ScType.CloneAck, cloneId: msg.cloneId, status, responseLength: 0, head: EMPTY });
    };
    const made = this.importClone(msg, from);
    if (!("clone" in made)) return refuse(made.refused);
    const { clone, req } = made;
    const sock = clone.sock;
    this.clonesReceived++;
    const fail = (status: CloneStatus) => {
      sock.dropSilently();
      this.forgetClone(clone);
      refuse(status);
    };
    const go = (resp: PreparedResponse) => {
      if (clone.cancelled || sock.destroyed || Date.now() > msg.startDeadline - CLONE_SAFETY_MS)
        return fail(clone.cancelled ? CloneStatus.Cancelled : CloneStatus.Expired);
      if (cloneAckLength(resp.head.length) > SC_MAX_MESSAGE) return fail(CloneStatus.ServerError);
      clone.started = true;
      // The SC-ACK goes before the first byte to the client (both leave in this tick; the SC
      // link is a separate path, so the original enters routing before it: see cloneTo).
      reply({
        type: ScType.CloneAck,
        cloneId: msg.cloneId,
        status: CloneStatus.Accepted,
        responseLength: resp.length,
        head: resp.head,
      });
      this.ctx.stats.countResponse(resp.status, resp.length);
      void sendPrepared(asConn(sock), resp).then(() => sock.end());
    };
    let prepared: PreparedResponse | Promise<PreparedResponse>;
    try {
      prepared = this.ctx.responder.respond(req, req.keepAlive, Date.now());
    } catch {
      return fail(CloneStatus.ServerError);
    }
    if (prepared instanceof Promise) prepared.then(go, () => fail(CloneStatus.ServerError));
    else go(prepared);
  };

  /** Checks a CLONE and builds the clone connection, or says why not (nothing sent either way). */
  private importClone(
    msg: CloneMessage,
    from: string,
  ): { clone: IncomingClone; req: HttpRequest } | { refused: CloneStatus } {
    if (Date.now() > msg.startDeadline - CLONE_SAFETY_MS) return { refused: CloneStatus.Expired };
    if (this.incoming.size >= this.settings.maxClones) return { refused: CloneStatus.Busy };
    const key = `${from}/${msg.cloneId}`;
    if (this.incoming.has(key)) return { refused: CloneStatus.Exists };
    const snap = decodeState(msg.state);
    if (isWireError(snap)) return { refused: CloneStatus.BadState };
    const t = snap.tuple;
    if (t.localAddr !== this.vip || t.localPort !== this.port) return { refused: CloneStatus.NoListener };
    const parser = new RequestParser(DEFAULT_LIMITS);
    parser.feed(Buffer.from(msg.asf));
    const req = parser.next();
    if (req === null || req instanceof ParseError) return { refused: CloneStatus.BadState };

    const old = this.stack.lookup(t.localAddr, t.localPort, t.remoteAddr, t.remotePort);
    if (old !== undefined) {
      const oldSock = old.socket instanceof TcpSocket ? old.socket : undefined;
      if (old.clone === undefined) {
        // A connection of this node's own: only a dead one (closed, TIME-WAIT) gives way.
        if (!old.isClosed() && old.state !== "TIME-WAIT") return { refused: CloneStatus.Exists };
        if (oldSock !== undefined) oldSock.dropSilently();
        else old.dropSilently();
      } else {
        // A previous clone of the same connection may still wait for its last ACK (which can
        // arrive after this message): its original's new state is authoritative. Only that
        // original's: another peer's CLONE never replaces a clone in progress.
        const owner = oldSock !== undefined ? this.incomingBySocket.get(oldSock) : undefined;
        if (owner === undefined || owner.from !== from) return { refused: CloneStatus.Exists };
        owner.sock.dropSilently();
        this.forgetClone(owner);
      }
    }
    let sock: TcpSocket;
    try {
      sock = importState(this.stack, { ...snap, seed: msg.seed }, undefined, { clone: {} });
    } catch {
      return { refused: CloneStatus.BadState };
    }
    sock.on("error", () => undefined);
    const clone: IncomingClone = { id: msg.cloneId, from, key, sock, started: false, cancelled: false };
    this.incoming.set(key, clone);
    this.incomingBySocket.set(sock, clone);
    sock.once("close", () => this.forgetClone(clone));
    // Its client must keep acknowledging; else it vanishes (its original resumes or resets).
    this.watchSend(sock, () => {
      this.failures["clone-send-timeout"]++;
      sock.dropSilently();
    });
    return { clone, req };
  }

  private forgetClone(clone: IncomingClone): void {
    if (this.incoming.get(clone.key) === clone) this.incoming.delete(clone.key);
    this.incomingBySocket.delete(clone.sock);
    this.deadlines.delete(clone.sock);
  }

  /** A CANCEL names the sender's own clone: another peer's clone ids are not in its namespace. */
  readonly onCancel = (cloneId: number, from: string, reply: (ack: CloneAckMessage) => void): void => {
    const c = this.incoming.get(`${from}/${cloneId}`);
    if (c === undefined) {
      this.cancelsIgnored++;
      return;
    }
    if (c.started) return;
    c.cancelled = true;
    reply({ type: ScType.CloneAck, cloneId, status: CloneStatus.Cancelled, responseLength: 0, head: EMPTY });
  };

  // ------------------------------------------------------------------ bookkeeping

  private registerMetrics(): Histogram {
    const registers = [this.ctx.registry];
    const registry = this.ctx.registry;
    mirrorCounter(
      registry,
      "sc_clones_sent_total",
      "CLONE messages sent by this node (requests it handed to another node)",
      () => this.clonesSent,
    );
    mirrorCounter(
      registry,
      "sc_clones_received_total",
      "CLONE messages received (clones built and served here, or refused)",
      () => this.clonesReceived,
    );
    new Counter({
      name: "sc_clone_failures_total",
      help: "Requests that could not be (or stay) cloned, by reason",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(failures)) this.inc({ reason }, n);
        // Undecodable SC messages (the link is closed and re-opened: docs/sc-protocol.md).
        this.inc({ reason: "bad-message" }, transport.counters.drops["bad-message"]);
      },
    });
    const failures = this.failures;
    const transport = this.transport;
    new Counter({
      name: "sc_link_drops_total",
      help: "SC connections this node refused or closed, by reason (docs/sc-protocol.md)",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        for (const reason of LINK_DROP_REASONS) this.inc({ reason }, transport.counters.drops[reason]);
      },
    });
    mirrorCounter(
      registry,
      "sc_link_handshakes_total",
      "SC links authenticated (inbound and outbound)",
      () => transport.counters.accepted + transport.counters.connects,
    );
    mirrorCounter(
      registry,
      "sc_router_forwarded_packets_total",
      "Client packets the Packet Router forwarded to clones",
      () => this.router.forwarded,
    );
    mirrorGauge(
      registry,
      "sc_router_entries",
      "Connections currently cloned away from this node",
      () => this.router.size,
    );
    return new Histogram({
      name: "sc_clone_latency_seconds",
      help: "Time from sending a CLONE message to receiving its SC-ACK",
      buckets: [
        25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3, 12.8e-3, 25.6e-3, 0.1, 1,
      ],
      registers,
    });
  }

  stats(): Record<string, unknown> {
    return {
      clonesSent: this.clonesSent,
      clonesReceived: this.clonesReceived,
      failures: { ...this.failures },
      refusals: { ...this.refusals },
      resumes: this.resumes,
      servedLocally: this.servedLocally,
      routerEntries: this.router.size,
      routerForwarded: this.router.forwarded,
      routerCompleted: this.router.completed,
      routerExpired: this.router.expired,
      peerPacketsDropped: this.peerPacketsDropped,
      clonesActive: this.incoming.size,
      cancelsIgnored: this.cancelsIgnored,
      sendDeadlines: this.deadlines.size,
      peersUp: this.transport.peersUp(),
      cloneLatencyUs: this.latencySamples.summary(),
      transport: {
        ...this.transport.counters,
        drops: { ...this.transport.counters.drops },
        inbound: this.transport.inboundCount,
      },
    };
  }

  async close(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.edges.setPacketHandler(null);
    await this.transport.close();
    await this.edges.close();
  }
}

/** Keeps the last `size` samples; percentiles over them on demand (for /stats). */
class SampleRing {
  private readonly buf: Float64Array;
  private n = 0;
  constructor(size: number) {
    this.buf = new Float64Array(size);
  }
  add(v: number): void {
    this.buf[this.n % this.buf.length] = v;
    this.n++;
  }
  summary(): { samples: number; p50: number; p90: number; p99: number; max: number } | null {
    const k = Math.min(this.n, this.buf.length);
    if (k === 0) return null;
    const sorted = this.buf.slice(0, k).sort();
    const at = (q: number) => Math.round(sorted[Math.min(k - 1, Math.floor(q * k))]!);
    return { samples: k, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: Math.round(sorted[k - 1]!) };
  }
}

/** TcpSocket follows node:net's Socket, the shape the server's Conn describes. */
function asConn(sock: TcpSocket): Conn {
  return sock as unknown as Conn;
}

/** The regenerated response matches what the clone announced: same head, same length. */
function sameResponse(head: Buffer, length: number, resp: PreparedResponse): boolean {
  if (resp.length !== length) return false;
  if (resp.head.length !== head.length) return false;
  // Status line and validators must agree; the Date header may differ by a second.
  return stripDate(resp.head) === stripDate(head);
}

function stripDate(head: Buffer): string {
  return head.toString("latin1").replace(/\r\nDate: [^\r]*/i, "");
}

/**
 * Logs refused or closed SC connections: at most one line per reason every LOG_EVERY_MS with
 * how many were left out (a LAN host can open connections faster than anyone reads logs).
 */
class DropLog {
  private static readonly LOG_EVERY_MS = 10_000;
  private readonly last = new Map<LinkDropReason, { at: number; suppressed: number }>();

  constructor(private readonly log: Logger) {}

  report(reason: LinkDropReason, who: { peer?: string; address?: string }, now: number): void {
    const l = this.last.get(reason);
    if (l !== undefined && now - l.at < DropLog.LOG_EVERY_MS) {
      l.suppressed++;
      return;
    }
    this.last.set(reason, { at: now, suppressed: 0 });
    const fields = {
      reason,
      ...who,
      ...(l !== undefined && l.suppressed > 0 ? { suppressed: l.suppressed } : {}),
    };
    const why = DROP_EXPLAINED[reason];
    if (reason === "replaced" || reason === "idle-timeout") this.log.info(fields, `SC link closed: ${why}`);
    else this.log.warn(fields, `SC link refused: ${why}`);
  }
}

const DROP_EXPLAINED: Record<LinkDropReason, string> = {
  "connection-cap": "too many SC connections open",
  "unknown-address": "connection from an address that is no member's",
  "handshake-timeout": "no handshake within the deadline (a version 1 peer, or not an SC peer)",
  version: "the peer speaks another SC protocol version (upgrade every member)",
  "unknown-peer": "HELLO names no configured peer",
  "wrong-address": "HELLO names a member but comes from another member's address",
  "bad-mac": "the handshake MAC does not verify (another cluster secret, or a forgery)",
  "peer-insecure":
    "the peer runs --insecure-dev and this node has a cluster secret (give every member the same --secret-file)",
  "peer-secure":
    "this node runs --insecure-dev and the peer has a cluster secret (give every member the same --secret-file)",
  "wrong-server": "the node at a peer's address is another node",
  "bad-message": "a message that does not decode or is out of place",
  "bad-tag": "a message whose tag does not verify (altered, replayed or reordered)",
  "idle-timeout": "nothing heard from the peer within the idle timeout",
  "output-overflow": "the peer stopped reading",
  replaced: "the peer opened a newer link",
};

registerMode({
  name: "sc",
  summary: "Socket Cloning: clone the connection to the node the URL maps to",
  needsCluster: true,
  needsUserStack: true,
  async create(ctx: ModeContext): Promise<Mode> {
    const { cluster, mapper, userStack, trust } = ctx;
    // startNode checks all three for a mode that needs a cluster and the user stack.
    if (cluster === null || mapper === null || userStack === null || trust === null)
      throw new UserFacingError("--mode sc needs --peer members, --stack user and the cluster secret");
    const self = selfMember(cluster);
    const settings: ScSettings = { ...SC_DEFAULTS, ...(ctx.modeSettings as Partial<ScSettings>) };
    const udp = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(0, self.addr, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    udp.on("error", () => undefined);
    const drops = new DropLog(ctx.log);
    const transport = new ScTransport({
      nodeId: self.id,
      listenHost: self.addr,
      listenPort: cluster.scPort,
      peers: cluster.members.map((m) => ({ id: m.id, host: m.addr, port: cluster.scPort })),
      key: linkKey(trust),
      // Peers check that a link comes from the member address of the id it claims.
      localAddress: self.addr,
      // Callbacks run only after start(), when `mode` exists.
      onClone: (msg, from, reply) => mode.onClone(msg, from, reply),
      onCancel: (id, from, reply) => mode.onCancel(id, from, reply),
      onDrop: (reason, who) => drops.report(reason, who, Date.now()),
    });
    const mode = new SocketCloning(ctx, settings, {
      stack: userStack.stack,
      vip: userStack.address,
      setPacketHandler: (h) => userStack.setPacketHandler(h),
      cluster,
      mapper,
      transport,
      forward: (packet, peer) => udp.send([GUE_IPV4, Buffer.from(packet)], cluster.guePort, peer.addr),
      close: () => new Promise<void>((r) => udp.close(() => r())),
    });
    try {
      await transport.start();
    } catch (err) {
      udp.close();
      throw new UserFacingError(`SC server on ${self.addr}:${cluster.scPort}: ${(err as Error).message}`);
    }
    return mode;
  },
});
