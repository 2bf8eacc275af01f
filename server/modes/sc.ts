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
import { registerMarkingMetrics, TrafficMarker, type MarkCounters } from "../../sc/net/priority.js";
import { Histogram, type Registry } from "prom-client";
import { byLabel, mirrorCounter, mirrorCounterBy, mirrorGauge } from "../metrics-mirror.js";
import type {
  ConnectionControl,
  Decision,
  Mode,
  ModeDefinition,
  NodeContext,
  UserStackContext,
} from "./mode.js";
import { selfMember, type ClusterConfig, type ClusterMember } from "../membership/config.js";
import type { UrlMapper } from "../membership/mapper.js";
import type { HttpRequest } from "../http/parser.js";
import { RequestParser, ParseError, DEFAULT_LIMITS } from "../http/parser.js";
import { normalizePath } from "../http/url-path.js";
import type { PreparedResponse } from "../http/response.js";
import { sendPrepared } from "../http/send.js";
import { TlsRecordConn } from "../transport/tls-takeover.js";
import { SealingConn } from "../transport/sealing-conn.js";
import type { Conn } from "../transport/conn.js";
import type { PacketHandler, PacketSource } from "../transport/user-stack.js";
import type { Logger } from "../log.js";
import { UserError } from "../../common/errors.js";
import { LINK_DROP_REASONS, ScTransport, type LinkDropReason } from "../../sc/clone/transport.js";
import {
  cloneAckLength,
  cloneMessageLength,
  CLONE_STATUS_NAMES,
  CloneStatus,
  ScType,
  SC_MAX_MESSAGE,
  DONE_MAX_IDS,
  type CloneAckMessage,
  type CloneMessage,
} from "../../sc/clone/message.js";
import { linkKey } from "../../sc/auth/link.js";
import { newTcpPeek, peekTcp } from "../../sc/router/router.js";
import {
  CLONE_TAIL_PROBE_MIN_MS,
  CloneSide,
  DONE_DELAY_MS,
  FAILURE_REASONS,
  OriginalSide,
  resumeOffsets,
  resumePoint,
  SendDeadlines,
  type FailureReason,
  type IncomingClone,
  type OriginalEffects,
  type OutgoingClone,
  type SendProgress,
} from "../../sc/clone/engine.js";
import { GueSender } from "../../sc/gue/sender.js";
import { steerClient } from "../../sc/gue/steering.js";
import { TcpSocket } from "../../sc/tcp/socket.js";
import { decodeState, encodeState, exportState, importState, STATE_SIZE } from "../../sc/tcp/state.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import { isWireError } from "../../sc/wire/error.js";
import { seqAdd } from "../../sc/tcp/seq.js";
import { ipv4FromString } from "../../sc/wire/addr.js";
import {
  fragmentForMss,
  resumeInStream,
  sealedLength,
  sealedRecords,
  StreamSealer,
  type StreamLayout,
} from "../../sc/tls/sealed-stream.js";
import type { WriteState } from "../../sc/tls/session.js";
import { cipherSuite } from "../../sc/tls/suites.js";

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
const SIZE_HINTS_MAX = 65536;
const EMPTY = new Uint8Array(0);

/**
 * What the mode works with besides its NodeContext: the node's user-space stack, the cluster,
 * and the two planes to the peers. create() builds them on the node; tests build them in process.
 */
export interface ScEdges {
  /** Counters of the SC sockets' DSCP/priority marking (sc/net/priority.ts), for /stats. */
  marking?: MarkCounters;
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
  /** Counters of the relay socket (packets queued, refused, dropped by the kernel), for /stats. */
  relayStats?(): { queued: number; refused: number; sendCalls: number; sendDrops: number };
  /** Releases what the edges opened (after the transport is closed). */
  close(): Promise<void>;
}

/** Why a TLS 1.3 connection's request was served where it arrived instead of cloned. */
export const TLS_NOT_CLONED = ["insecure-link", "key-update", "closing"] as const;
export type TlsNotCloned = (typeof TLS_NOT_CLONED)[number];

/** A TLS connection's side of a clone on the original (docs/tls.md, "Cloning"). */
interface HeldTls {
  readonly conn: TlsRecordConn;
  /** The write side where the clone starts (a resume re-seals from it); wiped when the clone ends. */
  readonly start: WriteState;
  readonly layout: StreamLayout;
}

/** A connection cloned away from this node, as the adapter holds it for the engine. */
interface Held {
  readonly sock: TcpSocket;
  /** A TLS connection (our record layer on `sock`), or null for plain HTTP. */
  readonly tls: HeldTls | null;
  readonly req: HttpRequest;
  /** Resolves the pipeline's decide() (once). */
  readonly settle: (d: Decision) => void;
  /** The pipeline's side of the connection (told where the request was served, for its log). */
  readonly ctl: ConnectionControl;
  /** On the connection's "close" until the clone is finished (then removed: a keep-alive
   *  connection cloned many times must not collect one listener per clone). */
  readonly onClose: () => void;
  settled: boolean;
}

/** A clone's TLS write side (from the CLONE's TLS block). */
interface CloneTlsState {
  readonly state: WriteState;
  readonly layout: StreamLayout;
}

/** A CLONE built into a connection on this node. */
interface ImportedClone {
  readonly clone: IncomingClone<TcpSocket>;
  readonly req: HttpRequest;
  readonly sock: TcpSocket;
  readonly tls: CloneTlsState | null;
}

/** The TLS side of a clone about to start: the session's write state now and the records' layout. */
function heldTls(conn: TlsRecordConn, sock: TcpSocket, last: boolean): HeldTls {
  return {
    conn,
    start: conn.session.writeState(),
    layout: { fragment: fragmentForMss(sock.conn.snd.mss), closeNotify: last },
  };
}

/**
 * An accepted clone seals the response's records: the session's write side continues after
 * them, and is closed if they end with close_notify.
 */
function advanceSession(tls: HeldTls, length: number, last: boolean): void {
  const session = tls.conn.session;
  session.advanceWrite({ secret: tls.start.secret, seq: tls.start.seq + sealedRecords(length, tls.layout) });
  if (last) session.endWrite();
}

export class SocketCloning implements Mode {
  readonly name = "sc";
  private readonly stack: TcpStack;
  private readonly transport: ScTransport;
  private readonly mapper: UrlMapper;
  private readonly self: ClusterMember;
  private readonly peers = new Map<string, ClusterMember>();
  private readonly peerAddrs = new Set<string>();
  /** The engine (sc/clone/engine.ts): both ends of a clone, pure; this class feeds it. */
  private readonly original: OriginalSide<ClusterMember, Held>;
  private readonly clones: CloneSide<TcpSocket>;
  /** Send timeouts where the mode drives a connection: the original's, and the clones'. */
  private readonly ownDeadlines: SendDeadlines<TcpSocket>;
  private readonly cloneDeadlines: SendDeadlines<TcpSocket>;
  private readonly sizeHints = new Map<string, number>();
  private readonly scratch = newTcpPeek();
  /** Clone ids completed since the last DONE, by peer; one timer sends them all. */
  private readonly doneQueue = new Map<string, number[]>();
  private doneTimer: NodeJS.Timeout | undefined;
  /** One timer for the earliest deadline of the engine (none while it has none). */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  private readonly vip: number;
  private readonly port: number;

  // Counters (also exported as Prometheus metrics).
  clonesSent = 0;
  clonesReceived = 0;
  readonly failures: Record<FailureReason, number> = Object.fromEntries(
    FAILURE_REASONS.map((r) => [r, 0]),
  ) as Record<FailureReason, number>;
  readonly refusals: Record<string, number> = {};
  resumes = 0;
  servedLocally = 0;
  /** DONEs that found their clone still here (it had not yet seen the last ACK itself). */
  donesApplied = 0;
  /** Last responses whose FIN the clone sent (FIN delegation), and ones the original could not delegate. */
  finsDelegated = 0;
  finsNotDelegated = 0;
  /** TLS 1.3 requests cloned (their session continued by the clone), and ones served here instead. */
  tlsClonesSent = 0;
  tlsClonesReceived = 0;
  readonly tlsNotCloned: Record<TlsNotCloned, number> = { "insecure-link": 0, "key-update": 0, closing: 0 };
  /** CLONE sent -> SC-ACK received, on the original. */
  private readonly latency: Histogram;
  /** The most recent round trips (us), for exact percentiles in /stats. */
  private readonly latencySamples = new SampleRing(16384);
  /** CLONE sent -> the clone's first response segment handed to the TUN, on the clone's node. */
  private readonly oneWay: Histogram;
  private readonly oneWaySamples = new SampleRing(16384);
  /** The one-way latency's two parts: CLONE sent -> handed to this node's onClone (link, wake-up, read, tag), and onClone -> first segment (import, response). */
  private readonly transitSamples = new SampleRing(16384);
  private readonly serveSamples = new SampleRing(16384);
  private readonly resetLog = new ThrottledLog<string>();

  constructor(
    private readonly ctx: NodeContext,
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
    this.ownDeadlines = new SendDeadlines(settings.sendTimeoutMs);
    this.cloneDeadlines = new SendDeadlines(settings.sendTimeoutMs);
    this.original = new OriginalSide(
      {
        ackTimeoutMs: settings.cloneTimeoutMs + DEADLINE_MARGIN_MS,
        router: { finLingerMs: settings.finLingerMs, stallMs: settings.stallMs },
      },
      this.originalEffects(),
    );
    this.clones = new CloneSide(
      { maxClones: settings.maxClones, safetyMs: CLONE_SAFETY_MS },
      {
        drop: (sock) => sock.dropSilently(),
        count: (reason) => this.failures[reason]++,
      },
    );
    [this.latency, this.oneWay] = this.registerMetrics();
    this.transport.on("peer-down", (id: string) => {
      this.original.onPeerDown(id);
      this.arm();
    });
    edges.setPacketHandler(this.onPacket);
  }

  /**
   * Runtime membership (server/membership/runtime.ts): the peers clones may go to. Addresses are only
   * added: packets a leaving peer still forwards for its clones here stay peer packets.
   */
  setMembers(members: readonly ClusterMember[]): void {
    this.peers.clear();
    for (const m of members) {
      if (m.id === this.self.id) continue;
      this.peers.set(m.id, m);
      this.peerAddrs.add(m.addr);
    }
  }

  /** CLONE-ACKs for this node's clones (the transport hands them over as they come). */
  readonly onCloneAck = (ack: CloneAckMessage, from: string): void => {
    this.original.onAck(from, ack, performance.now());
    this.arm();
  };

  get cancelsIgnored(): number {
    return this.clones.cancelsIgnored;
  }

  get peerPacketsDropped(): number {
    return this.clones.peerPacketsDropped;
  }

  private originalEffects(): OriginalEffects<ClusterMember, Held> {
    const stack = this.stack;
    return {
      shadow: (h, on, ackedThrough) => {
        if (!h.sock.destroyed) h.sock.setShadow(on, ackedThrough);
      },
      toStack: (packet) => stack.receive(packet),
      forward: (packet, peer) => this.edges.forward(packet, peer),
      sendCancel: (peer, cloneId) => this.transport.sendOnLink(peer.id, { type: ScType.Cancel, cloneId }),
      sendDone: (peer, cloneId) => this.queueDone(peer.id, cloneId),
      settle: (h, d) => this.settle(h, d),
      reset: (c, cause) => {
        const { sock, req } = c.handle;
        this.logReset(sock, "clone abandoned", { cause, path: req.path, peer: c.peer.id, cloneId: c.id });
        sock.destroy();
      },
      resume: (c) => void this.resume(c),
      accepted: (c, ms) => {
        this.latency.observe(ms / 1000);
        this.latencySamples.add(ms * 1000);
        const norm = normalizePath(c.handle.req.path);
        if (norm.ok) this.remember(norm.path, c.length);
        const { sock, tls } = c.handle;
        // The clone seals the response's records: the session's next record follows them.
        if (tls !== null) advanceSession(tls, c.length, c.last);
        // FIN delegation: the clone's FIN at the response end is this connection's; the HTTP
        // side's end() then sends none of its own (docs/tcp.md hook (d)).
        c.handle.ctl.servedBy?.(c.peer.id, c.head, c.length);
        if (c.last && !sock.destroyed) {
          if (sock.delegateFin(seqAdd(c.entry.start, c.streamLength))) this.finsDelegated++;
          else this.finsNotDelegated++;
        }
      },
      streamLength: (h, length) => (h.tls === null ? length : sealedLength(length, h.tls.layout)),
      count: (reason, detail) => {
        this.failures[reason]++;
        if (detail !== undefined) this.refusals[detail] = (this.refusals[detail] ?? 0) + 1;
        if (detail === CLONE_STATUS_NAMES[CloneStatus.WrongWorker]) this.warnWrongWorker();
      },
    };
  }

  private wrongWorkerWarnedAt = -Infinity;

  /** A peer runs another --workers count: clones to it are served here; say so once a minute. */
  private warnWrongWorker(): void {
    const now = performance.now();
    if (now - this.wrongWorkerWarnedAt < 60_000) return;
    this.wrongWorkerWarnedAt = now;
    this.ctx.log.warn(
      "a peer refused a clone as wrong-worker: every member must run the same --workers count " +
        "(the request was served here)",
    );
  }

  /**
   * DONEs are batched per peer and sent DONE_DELAY_MS later in one message (engine.ts says why
   * the clone can wait that long).
   */
  private queueDone(peerId: string, cloneId: number): boolean {
    if (!this.transport.isPeerUp(peerId)) return false;
    let ids = this.doneQueue.get(peerId);
    if (ids === undefined) {
      ids = [];
      this.doneQueue.set(peerId, ids);
    }
    ids.push(cloneId);
    if (ids.length >= DONE_MAX_IDS) this.flushDones();
    else if (this.doneTimer === undefined) {
      this.doneTimer = setTimeout(this.flushDones, DONE_DELAY_MS);
      this.doneTimer.unref();
    }
    return true;
  }

  private readonly flushDones = (): void => {
    if (this.doneTimer !== undefined) clearTimeout(this.doneTimer);
    this.doneTimer = undefined;
    for (const [peerId, cloneIds] of this.doneQueue) {
      if (cloneIds.length > 0) this.transport.sendOnLink(peerId, { type: ScType.Done, cloneIds });
    }
    this.doneQueue.clear();
  };

  private settle(h: Held, d: Decision): void {
    if (h.settled) return;
    h.settled = true;
    h.tls?.start.secret.fill(0);
    h.sock.removeListener("close", h.onClose);
    h.settle(d);
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
    const conn = ctl.conn;
    if (conn instanceof TcpSocket) return this.cloneTo(peer, req, ctl, conn, null);
    if (conn instanceof TlsRecordConn && conn.socket instanceof TcpSocket) {
      const why = this.tlsNotCloneable(conn);
      if (why === null) return this.cloneTo(peer, req, ctl, conn.socket, conn);
      this.tlsNotCloned[why]++;
    }
    return "serve";
  }

  /**
   * Whether a TLS connection's next response can be sealed by a clone: only over an encrypted
   * SC link (the message carries the write secret), and not while our KeyUpdate is owed to the
   * client (it has to precede our next record, and a clone would not know the new secret).
   */
  private tlsNotCloneable(conn: TlsRecordConn): TlsNotCloned | null {
    if (this.transport.key.kind !== "secret") return "insecure-link";
    if (conn.session.keyUpdatePending) return "key-update";
    if (!conn.session.writeOpen) return "closing";
    return null;
  }

  /**
   * Clones the connection once nothing it sent is in flight: the clone has none of the bytes the
   * original may still have to retransmit. The usual case, a request on an idle connection,
   * starts at once, in the tick the request arrived: shadow mode is on before the stack's flush
   * of that tick, so the original sends nothing of its own (no ACK or window update a plain
   * server would have put on its response, which the clone now sends).
   */
  private cloneTo(
    peer: ClusterMember,
    req: HttpRequest,
    ctl: ConnectionControl,
    sock: TcpSocket,
    tls: TlsRecordConn | null,
  ): Decision | Promise<Decision> {
    if (sock.writableLength === 0 && sock.conn.sndUna === sock.conn.sndMax)
      return this.startClone(peer, req, ctl, sock, tls);
    return this.cloneWhenFlushed(peer, req, ctl, sock, tls);
  }

  /** An earlier response is still in flight: wait for it (with the mode's own send timeout). */
  private async cloneWhenFlushed(
    peer: ClusterMember,
    req: HttpRequest,
    ctl: ConnectionControl,
    sock: TcpSocket,
    tls: TlsRecordConn | null,
  ): Promise<Decision> {
    this.watchOwn(sock);
    await ctl.flushed();
    this.ownDeadlines.unwatch(sock);
    if (sock.destroyed) return "done";
    return this.startClone(peer, req, ctl, sock, tls);
  }

  /** Exports the connection, puts it in shadow mode and sends the CLONE; settles when it ends. */
  private startClone(
    peer: ClusterMember,
    req: HttpRequest,
    ctl: ConnectionControl,
    sock: TcpSocket,
    tlsConn: TlsRecordConn | null,
  ): Decision | Promise<Decision> {
    let state;
    try {
      state = exportState(sock);
    } catch {
      this.failures["not-exportable"]++;
      return "serve";
    }
    // The last response on the connection: the clone closes it with its last segment (and,
    // under TLS, the session with close_notify).
    const last = !req.keepAlive;
    const tls = tlsConn === null ? null : heldTls(tlsConn, sock, last);
    if (
      state.sndUna !== state.sndNxt ||
      state.seed === undefined ||
      cloneMessageLength(STATE_SIZE, state.seed.length, req.raw.length, tls?.start.secret.length) >
        SC_MAX_MESSAGE
    ) {
      tls?.start.secret.fill(0);
      this.failures["not-exportable"]++;
      return "serve";
    }
    let resolve!: (d: Decision) => void;
    const result = new Promise<Decision>((r) => (resolve = r));
    const held: Held = {
      sock,
      tls,
      req,
      settle: resolve,
      ctl,
      settled: false,
      onClose: () => {
        this.original.onConnectionClosed(held);
        this.arm();
      },
    };
    sock.once("close", held.onClose);
    const c = this.original.begin(held, peer, state.tuple, state.sndNxt, performance.now(), last);
    this.clonesSent++;
    if (tls !== null) this.tlsClonesSent++;
    const sent = this.transport.sendOnLink(peer.id, {
      type: ScType.Clone,
      cloneId: c.id,
      startDeadline: Date.now() + this.settings.cloneTimeoutMs,
      sentAtUs: monotonicUs(),
      last,
      state: encodeState(state),
      seed: state.seed,
      asf: req.raw,
      ...(tls === null
        ? {}
        : {
            tls: {
              suite: tls.start.suite.code,
              secret: tls.start.secret,
              seq: tls.start.seq,
              fragment: tls.layout.fragment,
            },
          }),
    });
    if (!sent) this.original.unsent(c);
    this.arm();
    return result;
  }

  private remember(path: string, length: number): void {
    if (this.settings.localMaxBytes <= 0) return;
    if (this.sizeHints.size >= SIZE_HINTS_MAX) this.sizeHints.delete(this.sizeHints.keys().next().value!);
    this.sizeHints.set(path, length);
  }

  /**
   * The clone's node died or stalled mid-response (the engine stopped routing): continue the
   * byte stream from the last byte the client acknowledged. The head is the clone's own (from
   * the SC-ACK); the body is regenerated here and must match it in length and validator, else
   * the connection is reset.
   */
  private async resume(c: OutgoingClone<ClusterMember, Held>): Promise<void> {
    const { sock, req } = c.handle;
    let resp: PreparedResponse | null = null;
    try {
      resp = await this.ctx.responder.respond(req, req.keepAlive, Date.now());
    } catch {
      // The origin is unreachable: nothing to resume from (reset below).
    }
    if (c.phase !== "resuming") return; // the connection went away meanwhile
    const head = Buffer.from(c.head);
    if (resp === null || !sameResponse(head, c.length, resp)) {
      this.original.abandon(
        c,
        resp === null
          ? "resume: no response (origin failed)"
          : "resume: the response changed (length or validator)",
      );
      return;
    }
    this.resumes++;
    // Leave shadow first: the stack's send state is the client's acknowledged point. ACKs that
    // came while the body was regenerated reached the stack but no longer the router, so
    // the stack's highest acknowledged sequence number says where the stream continues.
    this.original.resumed(c);
    // The failed clone may have sent beyond what the client acknowledged so far; ACKs for
    // those bytes (identical to ours) must advance us rather than be dropped.
    sock.conn.acceptAcksBeyondSent = true;
    const sent = resumePoint(c.entry, sock.conn.sndMax);
    // Under TLS the stream is records: seal again from the record the point falls in (the
    // same key, nonce and bytes give the clone's very bytes) and skip what the client has.
    const tls = c.handle.tls;
    const inStream = tls === null ? null : resumeInStream(sent, c.length, tls.layout.fragment);
    const at = resumeOffsets(head.length, inStream === null ? sent : inStream.contentFrom);
    const tail: PreparedResponse = {
      ...resp,
      head: head.subarray(at.headFrom),
      body: null,
      stream: null,
    };
    if (resp.body !== null) tail.body = resp.body.subarray(at.bodyFrom);
    else if (resp.stream !== null && resp.stream.start + at.bodyFrom <= resp.stream.end) {
      tail.stream = { ...resp.stream, start: resp.stream.start + at.bodyFrom };
    }
    // Outside the HTTP pipeline, so the send timeout is the mode's: a client that stopped
    // reading (the likely reason the clone stalled) is reset, not served forever.
    this.watchOwn(sock);
    try {
      if (tls === null || inStream === null) await sendPrepared(sock, tail);
      else {
        const from = { ...tls.start, seq: tls.start.seq + inStream.record };
        const out = new SealingConn(sock, new StreamSealer(from, tls.layout), inStream.skip);
        await sendPrepared(out, tail);
        out.flush();
      }
      await new Promise<void>((r) => (sock.destroyed ? r() : sock.write(Buffer.alloc(0), () => r())));
    } finally {
      this.ownDeadlines.unwatch(sock);
      sock.conn.acceptAcksBeyondSent = false;
      this.settle(c.handle, "done");
    }
  }

  /** Starts (or restarts) the send deadline of a connection the original drives itself. */
  private watchOwn(sock: TcpSocket): void {
    this.ownDeadlines.watch(sock, sock.conn.sndUna, performance.now());
    this.arm();
  }

  // ------------------------------------------------------------------ deadlines

  /** Arms the one timer for the earliest deadline, if it is earlier than the one armed. */
  private arm(): void {
    if (this.closed) return;
    const at = Math.min(this.original.pollAt(), this.ownDeadlines.pollAt(), this.cloneDeadlines.pollAt());
    if (at >= this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    if (at === Infinity) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(at - performance.now())));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.poll(performance.now());
    this.arm();
  };

  private poll(now: number): void {
    this.original.poll(now);
    const probe = (sock: TcpSocket): SendProgress => ({
      una: sock.conn.sndUna,
      idle: sock.conn.sndUna === sock.conn.sndMax && sock.writableLength === 0,
      gone: sock.destroyed,
    });
    for (const sock of this.ownDeadlines.expire(now, probe)) {
      // The original's client acknowledged nothing for sendTimeoutMs: reset, as the pipeline would.
      this.failures["send-timeout"]++;
      this.ctx.stats.sendTimeouts++;
      this.logReset(sock, "send timeout", { timeoutMs: this.settings.sendTimeoutMs });
      sock.destroy();
    }
    for (const sock of this.cloneDeadlines.expire(now, probe)) this.clones.sendTimedOut(sock);
  }

  /**
   * A reset is what a client notices: one line per kind (throttled) with the connection's
   * 4-tuple, so a client-side error can be matched to its cause.
   */
  private logReset(sock: TcpSocket, kind: string, fields: Record<string, unknown>): void {
    this.resetLog.report(kind, performance.now(), (suppressed) =>
      this.ctx.log.warn(
        { client: `${sock.remoteAddress}:${sock.remotePort}`, ...fields, ...suppressed },
        `client connection reset: ${kind}`,
      ),
    );
  }

  // ------------------------------------------------------------------ packet path

  /** Every inbound client packet (TUN or GUE) passes here before the stack. */
  private readonly onPacket = (packet: Uint8Array, source: PacketSource, from: string): void => {
    if (source === "gue" && this.peerAddrs.has(from)) {
      // Forwarded by an original node for a clone here. Before the clone exists (the CLONE
      // message may come after) or after it vanished, drop it: never answer with a RST, the
      // connection lives on elsewhere.
      const pk = peekTcp(packet, this.scratch);
      if (pk === undefined || this.clones.acceptsPeerPacket(pk.src, pk.srcPort, pk.dst, pk.dstPort))
        this.stack.receive(packet);
      return;
    }
    this.original.onClientPacket(packet, performance.now());
  };

  // ------------------------------------------------------------------ clone node

  /**
   * A CLONE from the peer `from` (the transport authenticated it). Every refusal is answered
   * with its status and sends nothing to the client.
   */
  readonly onClone = (msg: CloneMessage, from: string, reply: (ack: CloneAckMessage) => void): void => {
    const arrivedUs = monotonicUs();
    const refuse = (status: CloneStatus) => {
      this.refusals[`sent-${status}`] = (this.refusals[`sent-${status}`] ?? 0) + 1;
      reply({ type: ScType.CloneAck, cloneId: msg.cloneId, status, responseLength: 0, head: EMPTY });
    };
    const made = this.importClone(msg, from);
    if (!("clone" in made)) return refuse(made.refused);
    const { clone, req, sock, tls } = made;
    this.clonesReceived++;
    if (tls !== null) {
      this.tlsClonesReceived++;
      sock.once("close", () => tls.state.secret.fill(0));
    }
    const fail = (status: CloneStatus) => {
      this.clones.vanish(clone);
      refuse(status);
    };
    const go = (resp: PreparedResponse) => {
      if (sock.destroyed) return fail(CloneStatus.Expired);
      if (cloneAckLength(resp.head.length) > SC_MAX_MESSAGE) return fail(CloneStatus.ServerError);
      // A clone sends no KeyUpdate (its original would not learn the new secret).
      if (tls !== null && !StreamSealer.fits(tls.state, resp.length, tls.layout))
        return fail(CloneStatus.BadState);
      const refused = this.clones.start(clone, Date.now());
      if (refused !== null) return fail(refused);
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
      const sndMax = sock.conn.sndMax;
      // Under TLS the response is sealed in the layout its original computes (docs/tls.md).
      const out: Conn = tls === null ? sock : new SealingConn(sock, new StreamSealer(tls.state, tls.layout));
      if (resp.stream === null) {
        // In one tick: the stack's flush sends the last data segment with the FIN of a
        // delegated close, as a plain server's does.
        out.write(resp.head);
        if (resp.body !== null) out.write(resp.body);
        out.end();
      } else void sendPrepared(out, resp).then(() => out.end());
      if (msg.sentAtUs !== undefined && msg.sentAtUs > 0)
        this.timeFirstSegment(sock, sndMax, msg.sentAtUs, arrivedUs);
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

  /**
   * The one-way clone latency (the paper's measure): from the CLONE leaving the original to the
   * clone's first response segment handed to the TUN. The stack sends in its flush, a microtask
   * queued by the first write, so a microtask queued after it sees the segment gone (sndMax
   * moved); a response that could not start at once (closed window, a body still being read)
   * is looked at again in the next turn, then not sampled.
   */
  private timeFirstSegment(sock: TcpSocket, sndMax: number, sentAtUs: number, arrivedUs: number): void {
    const sample = (): boolean => {
      if (sock.conn.sndMax === sndMax) return false;
      const nowUs = monotonicUs();
      const us = nowUs - sentAtUs;
      this.oneWay.observe(us / 1e6);
      this.oneWaySamples.add(us);
      this.transitSamples.add(arrivedUs - sentAtUs);
      this.serveSamples.add(nowUs - arrivedUs);
      return true;
    };
    queueMicrotask(() => {
      if (!sample()) setImmediate(sample);
    });
  }

  /** Checks a CLONE and builds the clone connection, or says why not (nothing sent either way). */
  private importClone(msg: CloneMessage, from: string): ImportedClone | { refused: CloneStatus } {
    const now = Date.now();
    if (now > msg.startDeadline - CLONE_SAFETY_MS) return { refused: CloneStatus.Expired };
    const snap = decodeState(msg.state);
    if (isWireError(snap)) return { refused: CloneStatus.BadState };
    const tls = msg.tls === undefined ? null : this.cloneTls(msg.tls, msg.last === true);
    if (tls === "refused") return { refused: CloneStatus.BadState };
    const t = snap.tuple;
    const port = tls === null ? this.port : this.ctx.tlsPort;
    if (t.localAddr !== this.vip || t.localPort !== port) return { refused: CloneStatus.NoListener };
    // With workers the client's packets (relayed in GUE) reach the worker the steering names;
    // a clone anywhere else would never hear its client (members with other --workers).
    const w = this.ctx.worker;
    if (w && steerClient(t.remoteAddr, t.remotePort, w.count) !== w.index)
      return { refused: CloneStatus.WrongWorker };
    const parser = new RequestParser(DEFAULT_LIMITS);
    parser.feed(Buffer.from(msg.asf));
    const req = parser.next();
    if (req === null || req instanceof ParseError) return { refused: CloneStatus.BadState };

    const old = this.stack.lookup(t.localAddr, t.localPort, t.remoteAddr, t.remotePort);
    if (old !== undefined && (old.clone === undefined || this.clones.ownerOf(t) === undefined)) {
      // A connection of this node's own, or a clone the engine has let go (it vanished, or a
      // DONE dropped it) that the stack has not removed yet: only a dead one gives way.
      if (!old.isClosed() && old.state !== "TIME-WAIT") return { refused: CloneStatus.Exists };
      if (old.socket instanceof TcpSocket) old.socket.dropSilently();
      else old.dropSilently();
    }
    // A previous clone of the same connection may still wait for its last ACK (which can
    // arrive after this message): its original's new state is authoritative. Only that
    // original's: another peer's CLONE never replaces a clone in progress.
    const clone = this.clones.admit(from, msg.cloneId, t, msg.startDeadline, now);
    if (typeof clone === "number") return { refused: clone };
    let sock: TcpSocket;
    try {
      sock = importState(this.stack, { ...snap, seed: msg.seed }, undefined, {
        clone: { finWithLastSegment: msg.last === true, tailProbeMinMs: CLONE_TAIL_PROBE_MIN_MS },
      });
    } catch {
      return { refused: CloneStatus.BadState };
    }
    sock.on("error", () => undefined);
    this.clones.attach(clone, sock);
    sock.once("close", () => {
      this.clones.gone(sock);
      this.cloneDeadlines.unwatch(sock);
    });
    // Its client must keep acknowledging; else it vanishes (its original resumes or resets).
    this.cloneDeadlines.watch(sock, sock.conn.sndUna, performance.now());
    this.arm();
    return { clone, req, sock, tls };
  }

  /**
   * A CLONE's TLS block as the clone seals with it, or "refused": the secret travels only on an
   * encrypted link (an --insecure-dev peer sending one is refused), of a suite we know.
   */
  private cloneTls(block: NonNullable<CloneMessage["tls"]>, last: boolean): CloneTlsState | "refused" {
    const suite = cipherSuite(block.suite);
    const ok =
      this.transport.key.kind === "secret" && suite !== undefined && block.secret.length === suite.hashLength;
    // A copy, wiped with the connection; the message's own bytes (the link's decrypted buffer) now.
    const secret = ok ? Buffer.from(block.secret) : null;
    block.secret.fill(0);
    if (secret === null || suite === undefined) return "refused";
    return {
      state: { suite, secret, seq: block.seq },
      layout: { fragment: block.fragment, closeNotify: last },
    };
  }

  /** The SC link from `peer` closed: its clones here vanish (it takes them back). */
  readonly onInboundLost = (peer: string): void => {
    this.clones.linkLost(peer);
  };

  /** A DONE: the client acknowledged the clone's whole response; the clone vanishes silently. */
  readonly onDone = (cloneId: number, from: string): void => {
    if (this.clones.onDone(from, cloneId)) this.donesApplied++;
  };

  /**
   * A CANCEL names the sender's own clone: another peer's clone ids are not in its namespace.
   * Answered unless the clone started (its accepting SC-ACK went ahead on the same link).
   */
  readonly onCancel = (cloneId: number, from: string, reply: (ack: CloneAckMessage) => void): void => {
    if (this.clones.onCancel(from, cloneId) === "started") return;
    reply({ type: ScType.CloneAck, cloneId, status: CloneStatus.Cancelled, responseLength: 0, head: EMPTY });
  };

  // ------------------------------------------------------------------ bookkeeping

  private registerMetrics(): [Histogram, Histogram] {
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
    const failures = this.failures;
    const transport = this.transport;
    mirrorCounterBy(
      registry,
      "sc_clone_failures_total",
      "Requests that could not be (or stay) cloned, by reason",
      ["reason"],
      () => [
        ...Object.entries(failures).map(([reason, n]) => [{ reason }, n] as const),
        // Undecodable SC messages (the link is closed and re-opened: docs/sc-protocol.md).
        [{ reason: "bad-message" }, transport.counters.drops["bad-message"]] as const,
      ],
    );
    mirrorCounterBy(
      registry,
      "sc_link_drops_total",
      "SC connections this node refused or closed, by reason (docs/sc-protocol.md)",
      ["reason"],
      () => byLabel("reason", LINK_DROP_REASONS, transport.counters.drops),
    );
    mirrorCounterBy(
      registry,
      "sc_tls_clones_total",
      "TLS 1.3 requests cloned with their session (sent: by this node as the original; received: sealed here as the clone)",
      ["side"],
      () => [
        [{ side: "sent" }, this.tlsClonesSent],
        [{ side: "received" }, this.tlsClonesReceived],
      ],
    );
    mirrorCounterBy(
      registry,
      "sc_tls_not_cloned_total",
      "TLS 1.3 requests homed elsewhere but served here, by reason (docs/tls.md)",
      ["reason"],
      () => byLabel("reason", TLS_NOT_CLONED, this.tlsNotCloned),
    );
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
      () => this.original.router.forwarded,
    );
    mirrorGauge(
      registry,
      "sc_router_entries",
      "Connections currently cloned away from this node",
      () => this.original.router.size,
    );
    return cloneLatencyHistograms(registry);
  }

  stats(): Record<string, unknown> {
    return {
      clonesSent: this.clonesSent,
      clonesReceived: this.clonesReceived,
      failures: { ...this.failures },
      refusals: { ...this.refusals },
      resumes: this.resumes,
      servedLocally: this.servedLocally,
      routerEntries: this.original.router.size,
      routerForwarded: this.original.router.forwarded,
      routerCompleted: this.original.router.completed,
      routerExpired: this.original.router.expired,
      peerPacketsDropped: this.peerPacketsDropped,
      clonesActive: this.clones.size,
      cancelsIgnored: this.cancelsIgnored,
      lateAccepts: this.original.lateAccepts,
      cancelsUnanswered: this.original.cancelsUnanswered,
      unexpectedAcks: this.original.unexpectedAcks,
      sendDeadlines: this.ownDeadlines.size + this.cloneDeadlines.size,
      peersUp: this.transport.peersUp(),
      cloneLatencyUs: this.latencySamples.summary(),
      cloneOneWayUs: this.oneWaySamples.summary(),
      cloneTransitUs: this.transitSamples.summary(),
      cloneServeUs: this.serveSamples.summary(),
      marking: this.edges.marking ?? null,
      donesApplied: this.donesApplied,
      finsDelegated: this.finsDelegated,
      finsNotDelegated: this.finsNotDelegated,
      tls: {
        clonesSent: this.tlsClonesSent,
        clonesReceived: this.tlsClonesReceived,
        notCloned: { ...this.tlsNotCloned },
      },
      routerNotRelayed: this.original.router.notRelayed,
      relay: this.edges.relayStats?.() ?? null,
      transport: {
        ...this.transport.counters,
        drops: { ...this.transport.counters.drops },
        inbound: this.transport.inboundCount,
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.doneTimer !== undefined) clearTimeout(this.doneTimer);
    this.edges.setPacketHandler(null);
    await this.transport.close();
    await this.edges.close();
  }
}

/** Keeps the last `size` samples; percentiles over them on demand (for /stats). */
/** The clone's round trip (original) and one-way latency (clone's node). */
function cloneLatencyHistograms(registry: Registry): [Histogram, Histogram] {
  // Sub-millisecond buckets: the paper's clone took 46 us.
  const buckets = [
    10e-6, 25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3, 12.8e-3, 25.6e-3, 0.1, 1,
  ];
  return [
    new Histogram({
      name: "sc_clone_latency_seconds",
      help: "Time from sending a CLONE message to receiving its SC-ACK (on the original)",
      buckets,
      registers: [registry],
    }),
    new Histogram({
      name: "sc_clone_one_way_seconds",
      help:
        "Time from the original sending a CLONE to the clone's first response segment handed to " +
        "the TUN (on the clone's node; CLOCK_MONOTONIC, shared by nodes on one machine)",
      buckets,
      registers: [registry],
    }),
  ];
}

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

/** CLOCK_MONOTONIC in microseconds: the same clock in every process on the machine. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The regenerated response matches what the clone announced: same head, same length. */
function sameResponse(head: Buffer, length: number, resp: PreparedResponse): boolean {
  if (resp.length !== length) return false;
  if (resp.head.length !== head.length) return false;
  // Status line and validators must agree; the Date header may differ by a second.
  return stripDate(resp.head) === stripDate(head);
}

function stripDate(head: Buffer): string {
  // Expires moves with Date (per-path Cache-Control with max-age).
  return head.toString("latin1").replace(/\r\n(?:Date|Expires): [^\r]*/gi, "");
}

/**
 * At most one log line per key every LOG_EVERY_MS, with how many were left out (a LAN host can
 * open connections, and a lossy link cost resets, faster than anyone reads logs).
 */
class ThrottledLog<K> {
  private static readonly LOG_EVERY_MS = 10_000;
  private readonly last = new Map<K, { at: number; suppressed: number }>();

  /** Calls `emit` with the number of lines left out since the last one, unless throttled. */
  report(key: K, now: number, emit: (suppressed: Record<string, number>) => void): void {
    const l = this.last.get(key);
    if (l !== undefined && now - l.at < ThrottledLog.LOG_EVERY_MS) {
      l.suppressed++;
      return;
    }
    this.last.set(key, { at: now, suppressed: 0 });
    emit(l !== undefined && l.suppressed > 0 ? { suppressed: l.suppressed } : {});
  }
}

/** Logs refused or closed SC connections. */
class DropLog {
  private readonly throttle = new ThrottledLog<LinkDropReason>();

  constructor(private readonly log: Logger) {}

  report(reason: LinkDropReason, who: { peer?: string; address?: string }, now: number): void {
    this.throttle.report(reason, now, (suppressed) => {
      const fields = { reason, ...who, ...suppressed };
      const why = DROP_EXPLAINED[reason];
      if (reason === "replaced" || reason === "idle-timeout") this.log.info(fields, `SC link closed: ${why}`);
      else this.log.warn(fields, `SC link refused: ${why}`);
    });
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
  "key-exhausted": "the link's session key carried its message limit; the link reconnects with fresh keys",
  "idle-timeout": "nothing heard from the peer within the idle timeout",
  "output-overflow": "the peer stopped reading",
  replaced: "the peer opened a newer link",
};

export const SC_MODE: ModeDefinition = {
  name: "sc",
  summary: "Socket Cloning: clone the connection to the node the URL maps to",
  needs: "user-stack",
  async create(ctx: UserStackContext): Promise<Mode> {
    const { cluster, mapper, userStack, trust } = ctx;
    const self = selfMember(cluster);
    const settings: ScSettings = { ...SC_DEFAULTS, ...(ctx.modeSettings as Partial<ScSettings>) };
    let udp: GueSender;
    try {
      udp = new GueSender(self.addr);
    } catch (err) {
      throw new UserError(`SC relay socket on ${self.addr}: ${(err as Error).message}`);
    }
    // SC traffic ahead of response data in every queue that honours DSCP or socket priority.
    const marker = new TrafficMarker((m) => ctx.log.warn(m));
    registerMarkingMetrics(marker, [ctx.registry]);
    marker.mark(udp);
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
      onCloneAck: (ack, from) => mode.onCloneAck(ack, from),
      onDone: (id, from) => mode.onDone(id, from),
      onInboundLost: (peer) => mode.onInboundLost(peer),
      onDrop: (reason, who) => drops.report(reason, who, Date.now()),
      onSocket: (sock) => marker.mark(sock),
    });
    const mode = new SocketCloning(ctx, settings, {
      stack: userStack.stack,
      vip: userStack.address,
      setPacketHandler: (h) => userStack.setPacketHandler(h),
      cluster,
      mapper,
      transport,
      marking: marker.counters,
      forward: (packet, peer) => udp.forward(packet, peer.addr, cluster.guePort),
      relayStats: () => {
        const { queued, refused, socket } = udp.stats;
        return { queued, refused, sendCalls: socket.sendCalls, sendDrops: socket.sendDrops };
      },
      close: async () => udp.close(),
    });
    ctx.membership.on("change", (v: { members: ClusterMember[] }) => {
      transport.setPeers(v.members.map((m) => ({ id: m.id, host: m.addr, port: cluster.scPort })));
      mode.setMembers(v.members);
    });
    try {
      await transport.start();
    } catch (err) {
      udp.close();
      throw new UserError(`SC server on ${self.addr}:${cluster.scPort}: ${(err as Error).message}`);
    }
    return mode;
  },
};
