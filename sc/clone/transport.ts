// The SC Client and SC Server transports (paper sections 2.1 and 3.2): persistent
// kernel TCP connections between nodes. Each node connects once to every peer's SC
// server (its outbound "SC Client" link) and sends CLONE/CANCEL on it; the peer answers
// CLONE-ACKs on the same connection. Links are re-opened with exponential backoff.
import { EventEmitter } from "node:events";
import net from "node:net";
import {
  CLONE_STATUS_NAMES,
  CloneStatus,
  encodeScMessage,
  ScDecodeError,
  ScFramer,
  ScType,
  type CloneAckMessage,
  type CloneMessage,
  type ScMessage,
} from "./message.js";

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

export interface ScTransportCounters {
  badMessages: number;
  connects: number;
  disconnects: number;
  unexpectedAcks: number;
}

export interface ScTransportOptions {
  nodeId: string;
  listenHost: string;
  listenPort: number;
  peers: PeerAddress[];
  /** Called for each CLONE received from a peer; `reply` sends the CLONE-ACK. */
  onClone: (msg: CloneMessage, from: string, reply: (ack: CloneAckMessage) => void) => void;
  /** Called for each CANCEL received from a peer. */
  onCancel?: (cloneId: number, from: string, reply: (ack: CloneAckMessage) => void) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface PendingClone {
  resolve: (o: CloneOutcome) => void;
  timer: NodeJS.Timeout;
}

/** One outbound link to a peer's SC server. */
class PeerLink {
  socket: net.Socket | null = null;
  up = false;
  backoff: number;
  retryTimer: NodeJS.Timeout | null = null;
  readonly pending = new Map<number, PendingClone>();

  constructor(
    readonly peer: PeerAddress,
    readonly transport: ScTransport,
  ) {
    this.backoff = transport.minBackoffMs;
  }

  connect(): void {
    if (this.transport.closed) return;
    const sock = net.connect({ host: this.peer.host, port: this.peer.port, noDelay: true });
    this.socket = sock;
    const framer = new ScFramer();
    sock.on("connect", () => {
      this.up = true;
      this.backoff = this.transport.minBackoffMs;
      this.transport.counters.connects++;
      sock.write(encodeScMessage({ type: ScType.Hello, nodeId: this.transport.nodeId }));
      this.transport.emit("peer-up", this.peer.id);
    });
    sock.on("data", (chunk: Buffer) => {
      const msgs = framer.push(chunk);
      if (msgs instanceof ScDecodeError) {
        this.transport.counters.badMessages++;
        sock.destroy();
        return;
      }
      for (const m of msgs) this.onMessage(m);
    });
    sock.on("error", () => {
      /* reported through 'close' */
    });
    sock.on("close", () => {
      const wasUp = this.up;
      this.up = false;
      this.socket = null;
      if (wasUp) {
        this.transport.counters.disconnects++;
        this.transport.emit("peer-down", this.peer.id);
      }
      // Clones waiting on this link will never get their ACK.
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.resolve({ kind: "unreachable" });
      }
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.transport.closed || this.retryTimer) return;
    const delay = this.backoff * (0.5 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, this.transport.maxBackoffMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private onMessage(m: ScMessage): void {
    if (m.type !== ScType.CloneAck) {
      this.transport.counters.badMessages++;
      return;
    }
    const p = this.pending.get(m.cloneId);
    if (!p) {
      this.transport.counters.unexpectedAcks++;
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
    this.socket?.destroy();
  }
}

/**
 * A node's SC endpoint: the server for inbound clone requests and one client link per
 * peer. Emits "peer-up"/"peer-down" with the peer id.
 */
export class ScTransport extends EventEmitter {
  readonly nodeId: string;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly counters: ScTransportCounters = { badMessages: 0, connects: 0, disconnects: 0, unexpectedAcks: 0 };
  closed = false;
  private readonly server: net.Server;
  private readonly links = new Map<string, PeerLink>();
  private readonly inbound = new Set<net.Socket>();

  constructor(private readonly opts: ScTransportOptions) {
    super();
    this.nodeId = opts.nodeId;
    this.minBackoffMs = opts.minBackoffMs ?? 100;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5000;
    this.server = net.createServer({ noDelay: true }, (sock) => this.accept(sock));
    for (const p of opts.peers) if (p.id !== opts.nodeId) this.links.set(p.id, new PeerLink(p, this));
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
    if (!link || !link.up || !link.socket) return Promise.resolve({ kind: "unreachable" });
    const sock = link.socket;
    return new Promise<CloneOutcome>((resolve) => {
      const timer = setTimeout(() => {
        link.pending.delete(msg.cloneId);
        if (link.socket === sock && link.up)
          sock.write(encodeScMessage({ type: ScType.Cancel, cloneId: msg.cloneId }));
        resolve({ kind: "timeout" });
      }, timeoutMs);
      link.pending.set(msg.cloneId, { resolve, timer });
      sock.write(encodeScMessage(msg));
    });
  }

  private accept(sock: net.Socket): void {
    this.inbound.add(sock);
    const framer = new ScFramer();
    let from: string | null = null;
    const reply = (ack: CloneAckMessage) => {
      if (!sock.destroyed) sock.write(encodeScMessage(ack));
    };
    sock.on("data", (chunk: Buffer) => {
      const msgs = framer.push(chunk);
      if (msgs instanceof ScDecodeError) {
        this.counters.badMessages++;
        sock.destroy();
        return;
      }
      for (const m of msgs) {
        if (from === null) {
          if (m.type !== ScType.Hello) {
            this.counters.badMessages++;
            sock.destroy();
            return;
          }
          from = m.nodeId;
          continue;
        }
        if (m.type === ScType.Clone) this.opts.onClone(m, from, reply);
        else if (m.type === ScType.Cancel) this.opts.onCancel?.(m.cloneId, from, reply);
        else {
          this.counters.badMessages++;
          sock.destroy();
          return;
        }
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => this.inbound.delete(sock));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of this.links.values()) l.close();
    for (const s of this.inbound) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
