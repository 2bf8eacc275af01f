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
import { selfMember, type ClusterMember } from "../cluster.js";
import type { HttpRequest } from "../http/parser.js";
import { RequestParser, ParseError, DEFAULT_LIMITS } from "../http/parser.js";
import { normalizePath } from "../http/url-path.js";
import type { PreparedResponse } from "../http/response.js";
import { sendPrepared } from "../send.js";
import type { PacketSource } from "../conn-user.js";
import type { Conn } from "../conn.js";
import { ScTransport } from "../../sc/clone/transport.js";
import { CloneStatus, ScType, type CloneAckMessage, type CloneMessage } from "../../sc/clone/message.js";
import { PacketRouter, peekTcp, type RouterEntry, type TcpPeek } from "../../sc/router/router.js";
import { TcpSocket } from "../../sc/tcp/socket.js";
import { decodeState, encodeState, exportState, importState } from "../../sc/tcp/state.js";
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
};

/** Extra time, past the clone's start deadline, before the original serves on its own. */
const DEADLINE_MARGIN_MS = 250;
/** The clone stops before its start deadline by this much, so the original's view stays safe. */
const CLONE_SAFETY_MS = 50;
/** GUE variant 0, proto 4 (IPv4): the header put before packets forwarded to a clone. */
const GUE_IPV4 = Buffer.from([0x00, 0x04, 0x00, 0x00]);
const SIZE_HINTS_MAX = 65536;

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
}

/** A clone this node serves. */
interface IncomingClone {
  readonly id: number;
  readonly from: string;
  sock: TcpSocket | null;
  started: boolean;
  cancelled: boolean;
}

type FailureReason =
  "peer-down" | "timeout" | "refused" | "not-exportable" | "resumed" | "reset" | "abandoned";

class SocketCloning implements Mode {
  readonly name = "sc";
  private readonly stack: TcpStack;
  private readonly self: ClusterMember;
  private readonly peers = new Map<string, ClusterMember>();
  private readonly peerAddrs = new Set<string>();
  private readonly router: PacketRouter<ClusterMember>;
  private readonly outgoing = new Map<RouterEntry<ClusterMember>, OutgoingClone>();
  private readonly incoming = new Map<string, IncomingClone>();
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
  };
  readonly refusals: Record<string, number> = {};
  resumes = 0;
  servedLocally = 0;
  peerPacketsDropped = 0;
  private readonly latency: Histogram;
  /** The most recent clone latencies (us), for exact percentiles in /stats. */
  private readonly latencySamples = new SampleRing(16384);

  constructor(
    private readonly ctx: ModeContext,
    private readonly settings: ScSettings,
    private readonly transport: ScTransport,
    private readonly udp: dgram.Socket,
    httpPort: number,
  ) {
    this.stack = ctx.userStack!.stack;
    const cluster = ctx.cluster!;
    this.self = selfMember(cluster);
    for (const m of cluster.members) {
      if (m.id === this.self.id) continue;
      this.peers.set(m.id, m);
      this.peerAddrs.add(m.addr);
    }
    this.vip = ipv4FromString(ctx.userStack!.address) as number;
    this.port = httpPort;
    this.router = new PacketRouter({ finLingerMs: settings.finLingerMs, stallMs: settings.stallMs });
    this.latency = this.registerMetrics();
    transport.on("peer-down", (id: string) => this.peerDown(id));
    ctx.userStack!.setPacketHandler(this.onPacket);
  }

  // ------------------------------------------------------------------ original node

  decide(req: HttpRequest, ctl: ConnectionControl): Decision | Promise<Decision> {
    const mapper = this.ctx.mapper!;
    if (req.method !== "GET" && req.method !== "HEAD") return "serve";
    if (req.bodyBytes > 0) return "serve";
    const norm = normalizePath(req.path);
    if (!norm.ok) return "serve";
    const home = mapper.lookup(norm.path);
    if (home === undefined || home === this.self.id) return "serve";
    const hint = this.sizeHints.get(norm.path);
    if (hint !== undefined && hint <= this.settings.localMaxBytes) {
      this.servedLocally++;
      return "serve";
    }
    const peer = this.peers.get(home)!;
    if (!this.transport.isPeerUp(home)) {
      this.failures["peer-down"]++;
      return "serve";
    }
    if (!(ctl.conn instanceof TcpSocket)) return "serve";
    return this.cloneTo(peer, req, ctl, norm.path);
  }

  private async cloneTo(
    peer: ClusterMember,
    req: HttpRequest,
    ctl: ConnectionControl,
    path: string,
  ): Promise<Decision> {
    // Only a connection with nothing in flight can be continued elsewhere: the clone has none
    // of the bytes the original may still have to retransmit.
    await ctl.flushed();
    const sock = ctl.conn as unknown as TcpSocket;
    if (sock.destroyed) return "done";
    let state;
    try {
      state = exportState(sock);
    } catch {
      this.failures["not-exportable"]++;
      return "serve";
    }
    if (state.sndUna !== state.sndNxt || state.seed === undefined) {
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
    const clone: OutgoingClone = { id, peer, sock, req, entry, ack: null, settle, settled: false };
    this.outgoing.set(entry, clone);
    const onClose = () => this.connectionClosed(clone);
    sock.once("close", onClose);
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
      sock.removeListener("close", onClose);
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
    this.router.complete(clone.entry, Date.now()); // lingers: pure ACKs still reach the clone
    this.outgoing.delete(clone.entry);
    if (!clone.sock.destroyed) clone.sock.setShadow(false);
    clone.settle("done");
  }

  /** Ends a clone on the original: routing stops, shadow mode ends, the pipeline continues. */
  private finish(clone: OutgoingClone, decision: Decision | "abandoned" | null): void {
    if (clone.settled) return;
    clone.settled = true;
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
    if (clone.settled) return;
    const ack = clone.ack!;
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
    try {
      await sendPrepared(asConn(sock), tail);
      await new Promise<void>((r) => (sock.destroyed ? r() : sock.write(Buffer.alloc(0), () => r())));
    } finally {
      sock.conn.acceptAcksBeyondSent = false;
      clone.settle("done");
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
      this.udp.send([GUE_IPV4, Buffer.from(packet)], this.ctx.cluster!.guePort, peer.addr);
      if (this.router.isComplete(entry!)) {
        const clone = this.outgoing.get(entry!);
        if (clone !== undefined) this.complete(clone);
      }
    }
  };

  private armSweep(): void {
    if (this.sweepTimer !== undefined) return;
    this.sweepTimer = setInterval(() => this.sweep(), 250);
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
    if (this.router.size === 0 && this.outgoing.size === 0) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  // ------------------------------------------------------------------ clone node

  readonly onClone = (msg: CloneMessage, from: string, reply: (ack: CloneAckMessage) => void): void => {
    const refuse = (status: CloneStatus) => {
      this.refusals[`sent-${status}`] = (this.refusals[`sent-${status}`] ?? 0) + 1;
      reply({
        type: ScType.CloneAck,
        cloneId: msg.cloneId,
        status,
        responseLength: 0,
        head: new Uint8Array(0),
      });
    };
    if (Date.now() > msg.startDeadline - CLONE_SAFETY_MS) return refuse(CloneStatus.Expired);
    if (this.incoming.size >= this.settings.maxClones) return refuse(CloneStatus.Busy);
    const snap = decodeState(msg.state);
    if (isWireError(snap)) return refuse(CloneStatus.BadState);
    const t = snap.tuple;
    if (t.localAddr !== this.vip || t.localPort !== this.port) return refuse(CloneStatus.NoListener);
    const parser = new RequestParser(DEFAULT_LIMITS);
    parser.feed(Buffer.from(msg.asf));
    const req = parser.next();
    if (req === null || req instanceof ParseError) return refuse(CloneStatus.BadState);

    // A previous clone of the same connection may still wait for its last ACK (which can
    // arrive after this message): the new state is authoritative.
    const old = this.stack.lookup(t.localAddr, t.localPort, t.remoteAddr, t.remotePort);
    if (old !== undefined) {
      if (old.clone === undefined && !old.isClosed() && old.state !== "TIME-WAIT")
        return refuse(CloneStatus.Exists);
      const owner = old.socket;
      if (owner instanceof TcpSocket) owner.dropSilently();
      else old.dropSilently();
    }
    let sock: TcpSocket;
    try {
      sock = importState(this.stack, { ...snap, seed: msg.seed }, undefined, { clone: {} });
    } catch {
      return refuse(CloneStatus.BadState);
    }
    sock.on("error", () => undefined);
    const key = `${from}/${msg.cloneId}`;
    const clone: IncomingClone = { id: msg.cloneId, from, sock, started: false, cancelled: false };
    this.incoming.set(key, clone);
    sock.once("close", () => this.incoming.delete(key));
    this.clonesReceived++;
    const prepared = this.ctx.responder.respond(req, req.keepAlive, Date.now());
    const go = (resp: PreparedResponse) => {
      if (clone.cancelled || sock.destroyed || Date.now() > msg.startDeadline - CLONE_SAFETY_MS) {
        sock.dropSilently();
        this.incoming.delete(key);
        return refuse(clone.cancelled ? CloneStatus.Cancelled : CloneStatus.Expired);
      }
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
    if (prepared instanceof Promise) {
      prepared.then(go, () => {
        sock.dropSilently();
        this.incoming.delete(key);
        refuse(CloneStatus.ServerError);
      });
    } else go(prepared);
  };

  readonly onCancel = (cloneId: number, from: string, reply: (ack: CloneAckMessage) => void): void => {
    const c = this.incoming.get(`${from}/${cloneId}`);
    if (c === undefined || c.started) return;
    c.cancelled = true;
    reply({
      type: ScType.CloneAck,
      cloneId,
      status: CloneStatus.Cancelled,
      responseLength: 0,
      head: new Uint8Array(0),
    });
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
        this.inc({ reason: "bad-message" }, transport.counters.badMessages);
      },
    });
    const failures = this.failures;
    const transport = this.transport;
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
      peersUp: this.transport.peersUp(),
      cloneLatencyUs: this.latencySamples.summary(),
      transport: { ...this.transport.counters },
    };
  }

  async close(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.ctx.userStack?.setPacketHandler(null);
    await this.transport.close();
    await new Promise<void>((r) => this.udp.close(() => r()));
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

registerMode({
  name: "sc",
  summary: "Socket Cloning: clone the connection to the node the URL maps to",
  needsCluster: true,
  needsUserStack: true,
  async create(ctx: ModeContext): Promise<Mode> {
    const cluster = ctx.cluster!;
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
    const transport = new ScTransport({
      nodeId: self.id,
      listenHost: self.addr,
      listenPort: cluster.scPort,
      peers: cluster.members.map((m) => ({ id: m.id, host: m.addr, port: cluster.scPort })),
      // Callbacks run only after start(), when `mode` exists.
      onClone: (msg, from, reply) => mode.onClone(msg, from, reply),
      onCancel: (id, from, reply) => mode.onCancel(id, from, reply),
    });
    const mode = new SocketCloning(ctx, settings, transport, udp, ctx.httpPort);
    try {
      await transport.start();
    } catch (err) {
      udp.close();
      throw Object.assign(
        new Error(`SC server on ${self.addr}:${cluster.scPort}: ${(err as Error).message}`),
        {
          userFacing: true,
        },
      );
    }
    return mode;
  },
});
