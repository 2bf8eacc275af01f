// The SC Client and SC Server transports (paper sections 2.1 and 3.2): persistent kernel TCP
// connections between nodes. Each node connects once to every peer's SC server (its outbound
// "SC Client" link) and sends CLONE/CANCEL on it; the peer answers CLONE-ACKs on the same
// connection. Links are re-opened with exponential backoff.
//
// Every connection is hostile until its handshake (sc/auth/link.ts) proves a configured peer
// at its configured address holding the cluster secret; after it every message is encrypted
// and carries a tag (AES-256-GCM, sc/auth/link.ts), so CLONEs (request bytes, TCP state) never
// cross the network in clear. --insecure-dev links are neither encrypted nor authenticated.
// The server bounds what an unauthenticated or misbehaving connection can hold: connections
// from non-member addresses are closed at once, at most `maxInbound` (and
// `maxInboundPerPeer` per member address) are open, a handshake has `handshakeMs`, a link
// that hears nothing for `idleMs` is closed (both ends send a KEEPALIVE every `keepaliveMs`),
// buffered input is at most one partial message (SC_MAX_MESSAGE), and a peer that stops
// reading loses its link once `maxOutboundBytes` are queued for it. Every refusal and drop is
// counted by reason (counters.drops) and reported to `onDrop`.
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import net from "node:net";
import {
  CLONE_STATUS_NAMES,
  CloneStatus,
  decodeScMessage,
  encodeScMessage,
  ScDecodeError,
  ScFramer,
  ScType,
  SC_NONCE_LEN,
  type CloneAckMessage,
  type CloneMessage,
  type ScFrame,
  type ScMessage,
} from "./message.js";
import {
  ClientHandshake,
  ServerHandshake,
  SC_LINK_MAX_MESSAGES,
  type HandshakeRefusal,
  type LinkKey,
  type LinkSession,
} from "../auth/link.js";

export interface PeerAddress {
  id: string;
  host: string;
  port: number;
}

export type CloneOutcome =
  | { kind: "accepted"; ack: CloneAckMessage }
  | { kind: "refused"; reason: string; ack: CloneAckMessage }
  | { kind: "timeout" }
  | { kind: "unreachable" };

/** Why this node refused or closed an SC connection. */
export type LinkDropReason =
  | HandshakeRefusal
  /** More inbound connections than maxInbound (or maxInboundPerPeer from one address). */
  | "connection-cap"
  /** An inbound connection from an address that is no member's. */
  | "unknown-address"
  /** The handshake (on the client: connect and handshake) did not finish in handshakeMs. */
  | "handshake-timeout"
  /** The peer speaks another protocol version (e.g. a version 1 node). */
  | "version"
  /** A message that does not decode, or one that has no place at this point. */
  | "bad-message"
  /** A message whose tag does not verify: altered, replayed, reordered, dropped on the way, or from another session. */
  | "bad-tag"
  /** The link's session key carried SC_LINK_MAX_MESSAGES in one direction; the next link has fresh keys. */
  | "key-exhausted"
  /** Nothing received for idleMs on an authenticated link. */
  | "idle-timeout"
  /** The peer stopped reading and maxOutboundBytes are queued for it. */
  | "output-overflow"
  /** The same peer authenticated a newer link; the older one is closed. */
  | "replaced";

export const LINK_DROP_REASONS: readonly LinkDropReason[] = [
  "connection-cap",
  "unknown-address",
  "handshake-timeout",
  "version",
  "unknown-peer",
  "wrong-address",
  "bad-mac",
  "peer-insecure",
  "peer-secure",
  "wrong-server",
  "bad-message",
  "bad-tag",
  "key-exhausted",
  "idle-timeout",
  "output-overflow",
  "replaced",
];

export interface ScTransportCounters {
  /** Outbound links that completed the handshake. */
  connects: number;
  /** Outbound links lost after they were up. */
  disconnects: number;
  /** Inbound links that completed the handshake. */
  accepted: number;
  /** CLONE-ACKs for no pending clone (late, after the clone timed out). */
  unexpectedAcks: number;
  /** Connections this node refused or closed, by reason. */
  drops: Record<LinkDropReason, number>;
}

export interface ScLinkLimits {
  /** An inbound connection must complete the handshake within this; an outbound one, connect too. */
  handshakeMs: number;
  /** An authenticated link sends a KEEPALIVE this often. */
  keepaliveMs: number;
  /** An authenticated link that received nothing for this long is closed. */
  idleMs: number;
  /** Inbound connections open at once, handshaking or authenticated (default 2 x peers + 4). */
  maxInbound: number;
  /** Inbound connections open at once from one member's address. */
  maxInboundPerPeer: number;
  /** Bytes queued for sending on one link beyond which the link is closed. */
  maxOutboundBytes: number;
  /** Messages one direction of a link may carry under its session key; then it closes and re-opens. */
  maxMessagesPerKey: number;
}

export const SC_LINK_DEFAULTS: Omit<ScLinkLimits, "maxInbound"> = {
  handshakeMs: 3000,
  keepaliveMs: 2000,
  // Three and a half keepalives: an event-loop stall of a few seconds does not cut a link.
  idleMs: 7000,
  maxInboundPerPeer: 4,
  // CLONE-ACKs are a few hundred bytes; this is thousands of them unread on top of the
  // kernel's own socket buffer.
  maxOutboundBytes: 1 << 20,
  maxMessagesPerKey: SC_LINK_MAX_MESSAGES,
};

export interface ScTransportOptions {
  nodeId: string;
  listenHost: string;
  listenPort: number;
  /** Every member (this node included): ids, and the addresses links must come from. */
  peers: PeerAddress[];
  /** How links authenticate (sc/auth/link.ts). */
  key: LinkKey;
  /** Source address of outbound links: this node's member address, which peers check. */
  localAddress?: string;
  limits?: Partial<ScLinkLimits>;
  /** Called for each CLONE received from a peer; `reply` sends the CLONE-ACK. */
  onClone: (msg: CloneMessage, from: string, reply: (ack: CloneAckMessage) => void) => void;
  /**
   * Called for each CLONE-ACK on a link that no requestClone() waits for: the caller keeps
   * its own deadlines (sc/clone/engine.ts) and sends with sendOnLink(). Without it such
   * CLONE-ACKs are counted as unexpected.
   */
  onCloneAck?: (ack: CloneAckMessage, from: string) => void;
  /** Called for each DONE received from a peer (its client acknowledged the clone's response). */
  onDone?: (cloneId: number, from: string) => void;
  /** Called for each CANCEL received from a peer. */
  onCancel?: (cloneId: number, from: string, reply: (ack: CloneAckMessage) => void) => void;
  /**
   * The authenticated inbound link from `peer` closed, or a newer one from it replaced it (the
   * peer reconnects only after its end of the older one went down): whatever that peer asked of
   * this node over the older link is void (its side took it back). Called before anything
   * arrives over the newer link.
   */
  onInboundLost?: (peer: string) => void;
  /** Told of every refused or closed connection (the node logs them). */
  onDrop?: (reason: LinkDropReason, who: { peer?: string; address?: string }) => void;
  /** Called with every SC link's socket, outbound (as it connects) and accepted: the node marks them (sc/net/priority.ts). */
  onSocket?: (sock: net.Socket) => void;
  /** Fresh handshake nonces; default crypto.randomBytes. */
  nonce?: () => Uint8Array;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface PendingClone {
  resolve: (o: CloneOutcome) => void;
  timer: NodeJS.Timeout;
}

const EMPTY = new Uint8Array(0);

/** IPv4 as the kernel reports it on a dual-stack socket ("::ffff:a.b.c.d") or plain. */
function plainIpv4(addr: string | undefined): string {
  if (addr === undefined) return "";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/**
 * One SC connection, either direction: framing, encryption and tags once authenticated, the
 * output bound, and the timers (handshake deadline, then keepalive and idle timeout).
 * `onMessage` gets each verified, decrypted message; it may authenticate the channel (then
 * sealing starts with the next message).
 */
class Channel {
  readonly framer = new ScFramer();
  session: LinkSession | null = null;
  private lastRx = Date.now();
  private timer: NodeJS.Timeout;
  dropped = false;
  /** Messages sent in one tick leave in one write (the socket is corked until the next tick). */
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.sock.uncork();
  };

  constructor(
    readonly sock: net.Socket,
    private readonly transport: ScTransport,
    private readonly who: { peer?: string; address?: string },
    private readonly onMessage: (m: ScMessage) => void,
  ) {
    const limits = transport.limits;
    this.timer = setTimeout(() => this.drop("handshake-timeout"), limits.handshakeMs);
    this.timer.unref();
    sock.on("data", (chunk: Buffer) => this.receive(chunk));
    sock.on("error", () => {
      /* reported through 'close' */
    });
    sock.on("close", () => {
      clearTimeout(this.timer);
      // The keys go with the connection (the next link has fresh ones).
      this.session?.destroy();
    });
  }

  get open(): boolean {
    return !this.dropped && !this.sock.destroyed;
  }

  /** The handshake is done: sealing from the next message on, keepalives, idle timeout. */
  authenticate(session: LinkSession, peer: string): void {
    this.session = session;
    this.framer.tagLength = session.tagLength;
    this.who.peer = peer;
    clearTimeout(this.timer);
    const { keepaliveMs, idleMs } = this.transport.limits;
    this.lastRx = Date.now();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastRx > idleMs) this.drop("idle-timeout");
      else this.send({ type: ScType.Keepalive });
    }, keepaliveMs);
    this.timer.unref();
  }

  /** Sends one message (sealed once authenticated); false if the channel is closed or was closed now. */
  send(msg: ScMessage): boolean {
    if (!this.open) return false;
    if (this.session?.exhausted === true) {
      this.drop("key-exhausted");
      return false;
    }
    const bytes = encodeScMessage(msg);
    const tag = this.session?.seal(bytes) ?? EMPTY; // encrypts `bytes` in place
    if (this.sock.writableLength + bytes.length + tag.length > this.transport.limits.maxOutboundBytes) {
      this.drop("output-overflow");
      return false;
    }
    if (!this.corked) {
      // Several CLONEs or SC-ACKs come from one batch of packets: one writev for all of them.
      this.corked = true;
      this.sock.cork();
      process.nextTick(this.uncork);
    }
    this.sock.write(bytes);
    if (tag.length > 0) this.sock.write(tag);
    return true;
  }

  /** Closes the connection for `reason` (counted once). */
  drop(reason: LinkDropReason): void {
    if (this.dropped) return;
    this.dropped = true;
    clearTimeout(this.timer);
    this.transport.countDrop(reason, this.who);
    this.sock.destroy();
  }

  close(): void {
    clearTimeout(this.timer);
    this.sock.destroy();
  }

  private receive(chunk: Buffer): void {
    if (!this.open) return;
    this.lastRx = Date.now();
    this.framer.push(chunk);
    for (;;) {
      const f = this.framer.next();
      if (f === null) return;
      if (f instanceof ScDecodeError) {
        this.drop(f.kind === "bad-version" ? "version" : "bad-message");
        return;
      }
      const m = this.verify(f);
      if (m === null) return;
      this.onMessage(m);
      if (!this.open) return;
    }
  }

  /** Checks the frame's tag and decrypts it (verify before parsing), then decodes it; null if the link was dropped. */
  private verify(f: ScFrame): ScMessage | null {
    if (this.session !== null && !this.session.open(f.bytes, f.tag)) {
      this.drop("bad-tag");
      return null;
    }
    const m = decodeScMessage(f.bytes);
    if (m instanceof ScDecodeError) {
      this.drop("bad-message");
      return null;
    }
    return m;
  }
}

/** One outbound link to a peer's SC server, re-opened with backoff. */
class PeerLink {
  channel: Channel | null = null;
  up = false;
  backoff: number;
  retryTimer: NodeJS.Timeout | null = null;
  readonly pending = new Map<number, PendingClone>();
  /** Taken out of the membership (setPeers): closed for good, never re-opened. */
  retired = false;

  constructor(
    readonly peer: PeerAddress,
    readonly transport: ScTransport,
  ) {
    this.backoff = transport.minBackoffMs;
  }

  connect(): void {
    const t = this.transport;
    if (t.closed) return;
    const sock = net.connect({
      host: this.peer.host,
      port: this.peer.port,
      noDelay: true,
      ...(t.localAddress !== undefined ? { localAddress: t.localAddress } : {}),
    });
    t.onSocket?.(sock);
    const handshake = new ClientHandshake(
      t.key,
      t.nodeId,
      this.peer.id,
      t.nonce(),
      t.limits.maxMessagesPerKey,
    );
    let stage: "challenge" | "hello-ack" | "up" = "challenge";
    const channel = new Channel(sock, t, { peer: this.peer.id, address: this.peer.host }, (m) => {
      if (stage === "challenge") {
        if (m.type !== ScType.Challenge) return channel.drop("bad-message");
        const r = handshake.onChallenge(m);
        if ("refused" in r) return channel.drop(r.refused);
        stage = "hello-ack";
        channel.send(r.hello);
      } else if (stage === "hello-ack") {
        if (m.type !== ScType.HelloAck) return channel.drop("bad-message");
        const r = handshake.onHelloAck(m);
        if ("refused" in r) return channel.drop(r.refused);
        stage = "up";
        channel.authenticate(r.session, this.peer.id);
        this.up = true;
        this.backoff = t.minBackoffMs;
        t.counters.connects++;
        t.emit("peer-up", this.peer.id);
      } else if (m.type === ScType.CloneAck) this.onAck(m);
      else if (m.type !== ScType.Keepalive) channel.drop("bad-message");
    });
    this.channel = channel;
    sock.on("close", () => {
      const wasUp = this.up;
      this.up = false;
      this.channel = null;
      if (wasUp) {
        t.counters.disconnects++;
        t.emit("peer-down", this.peer.id);
      }
      this.failPending();
      this.scheduleReconnect();
    });
  }

  /** Clones waiting on a link that went away will never get their ACK. */
  failPending(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.resolve({ kind: "unreachable" });
    }
  }

  private scheduleReconnect(): void {
    if (this.transport.closed || this.retired || this.retryTimer) return;
    const delay = this.backoff * (0.5 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, this.transport.maxBackoffMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private onAck(m: CloneAckMessage): void {
    const p = this.pending.get(m.cloneId);
    if (!p) {
      const handler = this.transport.ackHandler;
      if (handler !== undefined) handler(m, this.peer.id);
      else this.transport.counters.unexpectedAcks++;
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(m.cloneId);
    if (m.status === CloneStatus.Accepted) p.resolve({ kind: "accepted", ack: m });
    else p.resolve({ kind: "refused", reason: CLONE_STATUS_NAMES[m.status] ?? String(m.status), ack: m });
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.channel?.close();
  }
}

/**
 * A node's SC endpoint: the server for inbound clone requests and one client link per
 * peer. Emits "peer-up"/"peer-down" with the peer id.
 */
export class ScTransport extends EventEmitter {
  readonly nodeId: string;
  readonly key: LinkKey;
  readonly localAddress: string | undefined;
  readonly limits: ScLinkLimits;
  readonly nonce: () => Uint8Array;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly onSocket: ((sock: net.Socket) => void) | undefined;
  readonly counters: ScTransportCounters = {
    connects: 0,
    disconnects: 0,
    accepted: 0,
    unexpectedAcks: 0,
    drops: Object.fromEntries(LINK_DROP_REASONS.map((r) => [r, 0])) as Record<LinkDropReason, number>,
  };
  closed = false;
  private started = false;
  readonly ackHandler: ((ack: CloneAckMessage, from: string) => void) | undefined;
  private readonly server: net.Server;
  private readonly links = new Map<string, PeerLink>();
  /** Member address -> member id, for the source check (this node excluded). */
  private readonly memberAt = new Map<string, string>();
  private readonly inbound = new Set<Channel>();
  /** Inbound connections open per remote address. */
  private readonly inboundFrom = new Map<string, number>();
  /** The authenticated inbound link of each peer (a newer one replaces it). */
  private readonly inboundOf = new Map<string, Channel>();

  constructor(private readonly opts: ScTransportOptions) {
    super();
    this.nodeId = opts.nodeId;
    this.key = opts.key;
    this.localAddress = opts.localAddress;
    this.nonce = opts.nonce ?? (() => randomBytes(SC_NONCE_LEN));
    this.minBackoffMs = opts.minBackoffMs ?? 100;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5000;
    this.onSocket = opts.onSocket;
    this.ackHandler = opts.onCloneAck;
    const others = opts.peers.filter((p) => p.id !== opts.nodeId);
    this.limits = { maxInbound: 2 * others.length + 4, ...SC_LINK_DEFAULTS, ...opts.limits };
    this.server = net.createServer({ noDelay: true }, (sock) => this.accept(sock));
    for (const p of others) {
      this.links.set(p.id, new PeerLink(p, this));
      this.memberAt.set(p.host, p.id);
    }
  }

  /**
   * Runtime membership (server/membership/runtime.ts): opens links to new peers and closes the links of
   * peers no longer listed (their pending clones fail as "unreachable", a "peer-down" lets the
   * original resume them). A peer whose address changed gets a new link.
   */
  setPeers(peers: readonly PeerAddress[]): void {
    const next = new Map(peers.filter((p) => p.id !== this.nodeId).map((p) => [p.id, p]));
    for (const [id, link] of this.links) {
      const p = next.get(id);
      if (p !== undefined && p.host === link.peer.host && p.port === link.peer.port) continue;
      link.retired = true;
      link.close();
      this.links.delete(id);
      this.inboundOf.get(id)?.close();
    }
    this.memberAt.clear();
    for (const p of next.values()) {
      this.memberAt.set(p.host, p.id);
      if (this.links.has(p.id)) continue;
      const link = new PeerLink(p, this);
      this.links.set(p.id, link);
      if (this.started && !this.closed) link.connect();
    }
  }

  /** Starts listening and connecting; resolves once the server listens (links come up on their own). */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.listenPort, this.opts.listenHost, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.started = true;
    for (const l of this.links.values()) l.connect();
  }

  get address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  isPeerUp(id: string): boolean {
    return this.links.get(id)?.up ?? false;
  }

  peersUp(): string[] {
    return [...this.links.values()].filter((l) => l.up).map((l) => l.peer.id);
  }

  /** Inbound connections open now (handshaking or authenticated). */
  get inboundCount(): number {
    return this.inbound.size;
  }

  /** Resolves when every peer link is up, or rejects after `timeoutMs`. */
  async waitForPeers(timeoutMs: number): Promise<void> {
    const missing = () => [...this.links.values()].filter((l) => !l.up).map((l) => l.peer.id);
    if (missing().length === 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("peer-up", check);
        reject(new Error(`SC peers not reachable after ${timeoutMs} ms: ${missing().join(", ")}`));
      }, timeoutMs);
      const check = () => {
        if (missing().length === 0) {
          clearTimeout(timer);
          this.off("peer-up", check);
          resolve();
        }
      };
      this.on("peer-up", check);
    });
  }

  /** Sends a CLONE to `peerId` and waits for its CLONE-ACK for at most `timeoutMs`. */
  requestClone(peerId: string, msg: CloneMessage, timeoutMs: number): Promise<CloneOutcome> {
    const link = this.links.get(peerId);
    const channel = link?.channel;
    if (!link || !link.up || !channel) return Promise.resolve({ kind: "unreachable" });
    return new Promise<CloneOutcome>((resolve) => {
      const timer = setTimeout(() => {
        link.pending.delete(msg.cloneId);
        if (link.channel === channel && link.up) channel.send({ type: ScType.Cancel, cloneId: msg.cloneId });
        resolve({ kind: "timeout" });
      }, timeoutMs);
      link.pending.set(msg.cloneId, { resolve, timer });
      if (!channel.send(msg)) {
        // The link was just closed for a peer that stopped reading.
        clearTimeout(timer);
        link.pending.delete(msg.cloneId);
        resolve({ kind: "unreachable" });
      }
    });
  }

  /**
   * Sends a CLONE, CANCEL or DONE on the outbound link to `peerId` without waiting for anything
   * (CLONE-ACKs go to onCloneAck). False if the link is not up or was just closed.
   */
  sendOnLink(peerId: string, msg: ScMessage): boolean {
    const link = this.links.get(peerId);
    const channel = link?.channel;
    if (!link || !link.up || !channel) return false;
    return channel.send(msg);
  }

  /** Counts (and reports) a refused or closed connection. */
  countDrop(reason: LinkDropReason, who: { peer?: string; address?: string }): void {
    this.counters.drops[reason]++;
    this.opts.onDrop?.(reason, who);
  }

  private accept(sock: net.Socket): void {
    this.onSocket?.(sock);
    const address = plainIpv4(sock.remoteAddress);
    const refuse = (reason: LinkDropReason) => {
      this.countDrop(reason, { address });
      sock.on("error", () => undefined);
      sock.destroy();
    };
    if (this.closed) {
      sock.destroy();
      return;
    }
    if (this.inbound.size >= this.limits.maxInbound) return refuse("connection-cap");
    if (!this.memberAt.has(address)) return refuse("unknown-address");
    const fromHere = this.inboundFrom.get(address) ?? 0;
    if (fromHere >= this.limits.maxInboundPerPeer) return refuse("connection-cap");
    this.inboundFrom.set(address, fromHere + 1);

    const handshake = new ServerHandshake(this.key, this.nodeId, this.nonce(), this.limits.maxMessagesPerKey);
    let peer: string | null = null;
    const reply = (ack: CloneAckMessage) => {
      channel.send(ack);
    };
    const admit = (id: string) =>
      !this.links.has(id) ? "unknown-peer" : this.memberAt.get(address) !== id ? "wrong-address" : null;
    const channel: Channel = new Channel(sock, this, { address }, (m) => {
      if (peer === null) {
        if (m.type !== ScType.Hello) return channel.drop("bad-message");
        const r = handshake.onHello(m, admit);
        if ("refused" in r) return channel.drop(r.refused);
        channel.send(r.reply);
        channel.authenticate(r.session, r.peerId);
        peer = r.peerId;
        this.counters.accepted++;
        const older = this.inboundOf.get(peer);
        this.inboundOf.set(peer, channel);
        if (older !== undefined) {
          older.drop("replaced");
          // The peer only dials again once its own end of the older link is gone, and it took
          // back whatever it had asked over it; nothing has come over the new link yet.
          this.opts.onInboundLost?.(peer);
        }
        return;
      }
      if (m.type === ScType.Clone) this.opts.onClone(m, peer, reply);
      else if (m.type === ScType.Cancel) this.opts.onCancel?.(m.cloneId, peer, reply);
      else if (m.type === ScType.Done) for (const id of m.cloneIds) this.opts.onDone?.(id, peer);
      else if (m.type !== ScType.Keepalive) channel.drop("bad-message");
    });
    this.inbound.add(channel);
    sock.on("close", () => {
      this.inbound.delete(channel);
      const n = (this.inboundFrom.get(address) ?? 1) - 1;
      if (n > 0) this.inboundFrom.set(address, n);
      else this.inboundFrom.delete(address);
      if (peer !== null && this.inboundOf.get(peer) === channel) {
        this.inboundOf.delete(peer);
        if (!this.closed) this.opts.onInboundLost?.(peer);
      }
    });
    channel.send(handshake.challenge);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of this.links.values()) l.close();
    for (const c of this.inbound) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
