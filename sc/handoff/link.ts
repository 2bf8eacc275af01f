// The handoff links (docs/lard.md): one persistent kernel TCP connection from the LARD
// front-end to each node's handoff port, secured exactly like an SC link (sc/auth/link.ts:
// CHALLENGE / HELLO / HELLO-ACK from the cluster secret, then every message encrypted and
// tagged, AES-256-GCM). The front-end's id on these links is FRONT_END_ID; a node admits it
// only from the addresses it was told (the dispatcher's, the same it takes GUE from). HANDOFF
// goes front-end -> node; HANDOFF-ACK and END come back on the same connection.
//
// Bounds as on SC links: handshake 3 s, KEEPALIVE every 2 s and 7 s of silence closes, one
// partial message buffered, 1 MiB queued for a peer that stops reading; each refusal is
// counted by reason.
import net from "node:net";
import { randomBytes } from "node:crypto";
import { ScDecodeError, ScType, SC_NONCE_LEN } from "../clone/message.js";
import { encodeScMessage, type ScMessage } from "../clone/message.js";
import { ClientHandshake, ServerHandshake, type LinkKey, type LinkSession } from "../auth/link.js";
import { LINK_DROP_REASONS, SC_LINK_DEFAULTS, type LinkDropReason } from "../clone/transport.js";
import {
  decodeHandoffMessage,
  encodeHandoffMessage,
  HandoffFramer,
  HandoffType,
  type HandoffAckMessage,
  type HandoffEndMessage,
  type HandoffLinkMessage,
  type HandoffMessage,
  type HandBackMessage,
  type HandoffOnlyMessage,
  type ResponseMessage,
  type ResumeMessage,
} from "./message.js";
import type { CloneStatus } from "../clone/message.js";

/** TCP port of every node's handoff endpoint (beside the SC port 6081 and the peer cache 6082). */
export const HANDOFF_PORT = 6083;

/** The front-end's node id in the handoff links' handshakes (never a member's id). */
export const FRONT_END_ID = "lard-front-end";

export interface HandoffLinkLimits {
  handshakeMs: number;
  keepaliveMs: number;
  idleMs: number;
  maxOutboundBytes: number;
  /** Inbound connections open at once on a node. */
  maxInbound: number;
}

export const HANDOFF_LINK_DEFAULTS: HandoffLinkLimits = {
  handshakeMs: SC_LINK_DEFAULTS.handshakeMs,
  keepaliveMs: SC_LINK_DEFAULTS.keepaliveMs,
  idleMs: SC_LINK_DEFAULTS.idleMs,
  // HANDOFFs are up to 32 KiB each; this is dozens unread beyond the kernel's buffer.
  maxOutboundBytes: 4 << 20,
  maxInbound: 8,
};

export type HandoffDrops = Record<LinkDropReason, number>;

function newDrops(): HandoffDrops {
  return Object.fromEntries(LINK_DROP_REASONS.map((r) => [r, 0])) as HandoffDrops;
}

type Outgoing = ScMessage | HandoffOnlyMessage;

function isHandoffOnly(m: Outgoing): m is HandoffOnlyMessage {
  const t = m.type as number;
  return t >= HandoffType.Handoff && t <= HandoffType.Resume;
}

function encode(m: Outgoing): Uint8Array {
  return isHandoffOnly(m) ? encodeHandoffMessage(m) : encodeScMessage(m);
}

const EMPTY = new Uint8Array(0);

function plainIpv4(addr: string | undefined): string {
  if (addr === undefined) return "";
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/** One handoff connection, either direction: framing, tags, output bound, timers. */
class Channel {
  private readonly framer = new HandoffFramer();
  private session: LinkSession | null = null;
  private lastRx = Date.now();
  private timer: NodeJS.Timeout;
  dropped = false;

  constructor(
    readonly sock: net.Socket,
    private readonly limits: HandoffLinkLimits,
    private readonly onDrop: (r: LinkDropReason) => void,
    private readonly onMessage: (m: HandoffLinkMessage) => void,
  ) {
    this.timer = setTimeout(() => this.drop("handshake-timeout"), limits.handshakeMs);
    this.timer.unref();
    sock.on("data", (chunk: Buffer) => this.receive(chunk));
    sock.on("error", () => undefined);
    sock.on("close", () => clearTimeout(this.timer));
  }

  get open(): boolean {
    return !this.dropped && !this.sock.destroyed;
  }

  authenticate(session: LinkSession): void {
    this.session = session;
    this.framer.tagLength = session.tagLength;
    clearTimeout(this.timer);
    this.lastRx = Date.now();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastRx > this.limits.idleMs) this.drop("idle-timeout");
      else this.send({ type: ScType.Keepalive });
    }, this.limits.keepaliveMs);
    this.timer.unref();
  }

  send(m: Outgoing): boolean {
    if (!this.open) return false;
    if (this.session?.exhausted === true) {
      this.drop("key-exhausted"); // the link's key carried its message limit; reconnect
      return false;
    }
    const bytes = encode(m);
    const tag = this.session?.seal(bytes) ?? EMPTY;
    if (this.sock.writableLength + bytes.length + tag.length > this.limits.maxOutboundBytes) {
      this.drop("output-overflow");
      return false;
    }
    this.sock.write(tag.length > 0 ? Buffer.concat([bytes, tag]) : bytes);
    return true;
  }

  drop(reason: LinkDropReason): void {
    if (this.dropped) return;
    this.dropped = true;
    clearTimeout(this.timer);
    this.onDrop(reason);
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
      if (f instanceof ScDecodeError) return this.drop(f.kind === "bad-version" ? "version" : "bad-message");
      if (this.session !== null && !this.session.open(f.bytes, f.tag)) return this.drop("bad-tag");
      const m = decodeHandoffMessage(f.bytes);
      if (m instanceof ScDecodeError) return this.drop("bad-message");
      this.onMessage(m);
      if (!this.open) return;
    }
  }
}

// ------------------------------------------------------------------ node side

export interface HandoffServerOptions {
  nodeId: string;
  listenHost: string;
  listenPort: number;
  key: LinkKey;
  /** Whether the front-end may connect from this address (the node's GUE allow-list). */
  admit(address: string): boolean;
  limits?: Partial<HandoffLinkLimits>;
  /**
   * A HANDOFF or RESUME arrived: answer it with `link.ack` (at once or later); `end` reports
   * the connection gone.
   */
  onHandoff(msg: HandoffMessage | ResumeMessage, link: HandoffReplyLink): void;
  /** An authenticated link closed: the front-end takes the connections handed off on it as lost. */
  onLinkDown?(link: HandoffReplyLink): void;
  nonce?: () => Uint8Array;
}

/** What a node answers a HANDOFF on: the link it came on. */
export interface HandoffReplyLink {
  ack(handoffId: number, status: CloneStatus): void;
  end(handoffId: number): void;
  /** Announces the response the connection's request gets (before its first byte leaves). */
  response(handoffId: number, length: number, head: Uint8Array): void;
  /** Gives the connection back to the front-end; false if the link is down. */
  handBack(msg: HandBackMessage): boolean;
}

/** A node's handoff endpoint: accepts the front-end's authenticated links. */
export class HandoffServer {
  readonly drops = newDrops();
  accepted = 0;
  private readonly server: net.Server;
  private readonly channels = new Set<Channel>();
  private readonly limits: HandoffLinkLimits;
  private readonly nonce: () => Uint8Array;

  constructor(private readonly opts: HandoffServerOptions) {
    this.limits = { ...HANDOFF_LINK_DEFAULTS, ...opts.limits };
    this.nonce = opts.nonce ?? (() => randomBytes(SC_NONCE_LEN));
    this.server = net.createServer({ noDelay: true }, (s) => this.accept(s));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.listenPort, this.opts.listenHost, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
  }

  get address(): net.AddressInfo {
    return this.server.address() as net.AddressInfo;
  }

  get linksUp(): number {
    return this.channels.size;
  }

  private accept(sock: net.Socket): void {
    const address = plainIpv4(sock.remoteAddress);
    const refuse = (r: LinkDropReason) => {
      this.drops[r]++;
      sock.on("error", () => undefined);
      sock.destroy();
    };
    if (!this.opts.admit(address)) return refuse("unknown-address");
    if (this.channels.size >= this.limits.maxInbound) return refuse("connection-cap");
    const hs = new ServerHandshake(this.opts.key, this.opts.nodeId, this.nonce());
    let up = false;
    const link: HandoffReplyLink = {
      ack: (handoffId, status) => void channel.send({ type: HandoffType.HandoffAck, handoffId, status }),
      end: (handoffId) => void channel.send({ type: HandoffType.End, handoffId }),
      response: (handoffId, length, head) =>
        void channel.send({ type: HandoffType.Response, handoffId, length, head }),
      handBack: (msg) => channel.send(msg),
    };
    const channel: Channel = new Channel(
      sock,
      this.limits,
      (r) => this.drops[r]++,
      (m) => {
        if (!up) {
          if (m.type !== ScType.Hello) return channel.drop("bad-message");
          const r = hs.onHello(m, (id) => (id === FRONT_END_ID ? null : "unknown-peer"));
          if ("refused" in r) return channel.drop(r.refused);
          channel.send(r.reply);
          channel.authenticate(r.session);
          up = true;
          this.accepted++;
          return;
        }
        if (m.type === HandoffType.Handoff || m.type === HandoffType.Resume) this.opts.onHandoff(m, link);
        else if (m.type !== ScType.Keepalive) channel.drop("bad-message");
      },
    );
    this.channels.add(channel);
    sock.on("close", () => {
      this.channels.delete(channel);
      if (up) this.opts.onLinkDown?.(link);
    });
    channel.send(hs.challenge);
  }

  async close(): Promise<void> {
    for (const c of this.channels) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ front-end side

export interface HandoffNode {
  id: string;
  host: string;
  port: number;
}

export interface HandoffClientOptions {
  nodes: readonly HandoffNode[];
  key: LinkKey;
  /** Source address of the links (what the nodes admit). */
  localAddress?: string;
  limits?: Partial<HandoffLinkLimits>;
  onAck(node: string, ack: HandoffAckMessage): void;
  onEnd(node: string, end: HandoffEndMessage): void;
  /** A node gave a connection back (its next request begins). */
  onHandBack(node: string, msg: HandBackMessage): void;
  /** A node announced a response (for a resume if it dies). */
  onResponse(node: string, msg: ResponseMessage): void;
  /** A link came up (authenticated): the node can take handoffs. */
  onUp?(node: string): void;
  /** A link went down: every handoff pending on it is lost. */
  onDown(node: string): void;
  nonce?: () => Uint8Array;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface OutLink {
  node: HandoffNode;
  channel: Channel | null;
  up: boolean;
  backoff: number;
  retry: NodeJS.Timeout | null;
}

/** The front-end's links, one per node, re-opened with backoff. */
export class HandoffClient {
  readonly drops = newDrops();
  connects = 0;
  private readonly links = new Map<string, OutLink>();
  private readonly limits: HandoffLinkLimits;
  private readonly nonce: () => Uint8Array;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private closed = false;

  constructor(private readonly opts: HandoffClientOptions) {
    this.limits = { ...HANDOFF_LINK_DEFAULTS, ...opts.limits };
    this.nonce = opts.nonce ?? (() => randomBytes(SC_NONCE_LEN));
    this.minBackoff = opts.minBackoffMs ?? 100;
    this.maxBackoff = opts.maxBackoffMs ?? 5000;
    for (const n of opts.nodes)
      this.links.set(n.id, { node: n, channel: null, up: false, backoff: this.minBackoff, retry: null });
  }

  start(): void {
    for (const l of this.links.values()) this.connect(l);
  }

  isUp(node: string): boolean {
    return this.links.get(node)?.up ?? false;
  }

  nodesUp(): string[] {
    return [...this.links.values()].filter((l) => l.up).map((l) => l.node.id);
  }

  /** Resolves once every link is up, or rejects after `timeoutMs`. */
  async waitUp(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.nodesUp().length < this.links.size) {
      if (Date.now() > deadline) throw new Error(`handoff links not up after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends a HANDOFF or RESUME; false if the node's link is not up (or was just closed). */
  send(node: string, msg: HandoffMessage | ResumeMessage): boolean {
    const l = this.links.get(node);
    if (l === undefined || !l.up || l.channel === null) return false;
    return l.channel.send(msg);
  }

  private connect(l: OutLink): void {
    if (this.closed) return;
    const sock = net.connect({
      host: l.node.host,
      port: l.node.port,
      noDelay: true,
      ...(this.opts.localAddress !== undefined ? { localAddress: this.opts.localAddress } : {}),
    });
    const hs = new ClientHandshake(this.opts.key, FRONT_END_ID, l.node.id, this.nonce());
    let stage: "challenge" | "hello-ack" | "up" = "challenge";
    const channel: Channel = new Channel(
      sock,
      this.limits,
      (r) => this.drops[r]++,
      (m) => {
        if (stage === "challenge") {
          if (m.type !== ScType.Challenge) return channel.drop("bad-message");
          const r = hs.onChallenge(m);
          if ("refused" in r) return channel.drop(r.refused);
          stage = "hello-ack";
          channel.send(r.hello);
        } else if (stage === "hello-ack") {
          if (m.type !== ScType.HelloAck) return channel.drop("bad-message");
          const r = hs.onHelloAck(m);
          if ("refused" in r) return channel.drop(r.refused);
          stage = "up";
          channel.authenticate(r.session);
          l.up = true;
          l.backoff = this.minBackoff;
          this.connects++;
          this.opts.onUp?.(l.node.id);
        } else if (m.type === HandoffType.HandoffAck) this.opts.onAck(l.node.id, m);
        else if (m.type === HandoffType.End) this.opts.onEnd(l.node.id, m);
        else if (m.type === HandoffType.HandBack) this.opts.onHandBack(l.node.id, m);
        else if (m.type === HandoffType.Response) this.opts.onResponse(l.node.id, m);
        else if (m.type !== ScType.Keepalive) channel.drop("bad-message");
      },
    );
    l.channel = channel;
    sock.on("close", () => {
      const wasUp = l.up;
      l.up = false;
      l.channel = null;
      if (wasUp) this.opts.onDown(l.node.id);
      if (this.closed || l.retry !== null) return;
      const delay = l.backoff * (0.5 + Math.random() * 0.5);
      l.backoff = Math.min(l.backoff * 2, this.maxBackoff);
      l.retry = setTimeout(() => {
        l.retry = null;
        this.connect(l);
      }, delay);
    });
  }

  close(): void {
    this.closed = true;
    for (const l of this.links.values()) {
      if (l.retry !== null) clearTimeout(l.retry);
      l.channel?.close();
    }
  }
}
