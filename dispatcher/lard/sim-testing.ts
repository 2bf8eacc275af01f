// Test support: LARD with TCP handoff on sc/tcp/sim.ts's virtual network, under virtual time,
// without root. Stacks: a client, the front-end (owning the VIP: every client packet reaches it
// first) and N nodes (also answering for the VIP, reached only by the front-end's forwarding;
// their packets go straight to the client). The front-end and the nodes' mode are the real
// ones (LardFrontEnd, LardNode); HANDOFF / HANDOFF-ACK / END go through the real codec with a
// delay of their own. Each node's mode answers /size/N with N deterministic bytes (keep-alive
// and pipelining as the client asks). Not product code.
import { VirtualNet } from "../../sc/tcp/sim.js";
import { TimerHeap } from "../../sc/tcp/timer-heap.js";
import type { TcpStack } from "../../sc/tcp/stack.js";
import { ipv4FromString } from "../../sc/wire/addr.js";
import { ScDecodeError } from "../../sc/clone/message.js";
import type { PreparedResponse } from "../../server/http/response.js";
import { LardNode } from "../../server/modes/lard.js";
import type { HandoffReplyLink } from "../../sc/handoff/link.js";
import { LardFrontEnd, type FrontEndOptions } from "./front-end.js";
import { LardPolicy, type LardOptions } from "./policy.js";
import {
  decodeHandoffMessage,
  encodeHandoffMessage,
  HandoffType,
  type HandoffMessage,
  type ResumeMessage,
} from "../../sc/handoff/message.js";

export const SIM_VIP = "198.18.100.1";
export const SIM_CLIENT = "198.18.0.2";
export const SIM_PORT = 80;

/** The body /size/N answers: byte i is (i * 7 + N) & 0xff. */
export function simBody(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + n) & 0xff;
  return b;
}

/** With `date`, a Date line that differs per node (a resume must send the dead node's head). */
function simHead(n: number, keepAlive: boolean, date?: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 200 OK\r\n${date === undefined ? "" : `Date: ${date}\r\n`}Content-Length: ${n}\r\n${keepAlive ? "" : "Connection: close\r\n"}\r\n`,
    "latin1",
  );
}

/** The whole response to GET /size/N (keep-alive or not; `date`: the node's, if the sim has dates). */
export function simResponse(n: number, keepAlive: boolean, date?: string): Buffer {
  return Buffer.concat([simHead(n, keepAlive, date), simBody(n)]);
}

function simPrepared(n: number, keepAlive: boolean, date?: string): PreparedResponse {
  const head = simHead(n, keepAlive, date);
  const body = simBody(n);
  return { status: 200, head, body, stream: null, length: head.length + n, close: !keepAlive };
}

export interface LardSimOptions {
  nodes?: number;
  seed?: number;
  /** One-way delay of a handoff-link message, ms. */
  linkDelayMs?: number;
  /** One-way delay of a packet the front-end forwards to a node, ms. */
  forwardDelayMs?: number;
  policy?: Partial<LardOptions>;
  frontEnd?: Partial<FrontEndOptions>;
  /** Handed-off connections each node takes at once (more are refused busy). */
  nodeMaxConnections?: number;
  /** The nodes' send timeout (ms). */
  sendTimeoutMs?: number;
  /** The nodes' idle timeout between requests (default: the mode's). */
  nodeIdleMs?: number;
  /** Each node's responses carry `Date: <node id>` (so that nodes answer different heads). */
  dates?: boolean;
}

interface SimNode {
  id: string;
  stack: TcpStack;
  mode: LardNode;
  /** Paths of the requests it served, in order. */
  served: string[];
  /** False: its link messages vanish (it never answers a HANDOFF). */
  answers: boolean;
  /** False once killed: nothing from or to it any more. */
  alive: boolean;
  /** Its end of the handoff link. */
  link: HandoffReplyLink;
  /** TCP segments it sent (to the client). */
  packetsOut: number;
}

export class LardSim {
  readonly net: VirtualNet;
  readonly client: TcpStack;
  readonly fe: TcpStack;
  readonly frontEnd: LardFrontEnd;
  readonly nodes: SimNode[] = [];
  /** Payload bytes the front-end's stack sent towards clients (should stay at error pages only). */
  frontEndPayloadBytes = 0;
  private readonly queue = new TimerHeap<() => void>();
  private readonly stuck = new Set<string>();
  /** Nodes whose /size/N documents changed (one byte longer). */
  private readonly changed = new Set<string>();
  private readonly linkDelay: number;
  private readonly forwardDelay: number;

  constructor(o: LardSimOptions = {}) {
    const net = new VirtualNet(o.seed ?? 1);
    this.net = net;
    this.linkDelay = o.linkDelayMs ?? 0.1;
    this.forwardDelay = o.forwardDelayMs ?? 0.05;
    this.client = net.addStack([SIM_CLIENT]);
    this.fe = net.addStack([SIM_VIP], {
      config: { gsoMaxBytes: 0 },
      output: (p) => {
        this.frontEndPayloadBytes += tcpPayloadLength(p);
        net.send(p);
      },
    });
    net.route(SIM_VIP, [this.fe]);
    const n = o.nodes ?? 4;
    const vip = ipv4FromString(SIM_VIP) as number;
    for (let i = 1; i <= n; i++) {
      const id = `node${i}`;
      const alive = { node: undefined as SimNode | undefined };
      const stack = net.addStack([SIM_VIP], {
        config: { gsoMaxBytes: 0 },
        output: (p) => {
          if (alive.node === undefined || !alive.node.alive) return;
          alive.node.packetsOut++;
          net.send(p);
        },
      });
      const node: SimNode = {
        id,
        stack,
        mode: undefined as unknown as LardNode,
        served: [],
        answers: true,
        alive: true,
        link: undefined as unknown as HandoffReplyLink,
        packetsOut: 0,
      };
      node.link = this.linkOf(node);
      alive.node = node;
      node.mode = new LardNode(
        {
          stack,
          vip,
          port: SIM_PORT,
          maxConnections: o.nodeMaxConnections ?? 1000,
          ...(o.sendTimeoutMs !== undefined ? { sendTimeoutMs: o.sendTimeoutMs } : {}),
          ...(o.nodeIdleMs !== undefined ? { idleMs: o.nodeIdleMs } : {}),
          wallClock: () => net.now,
        },
        {
          respond: (req, keepAlive) => {
            node.served.push(req.path);
            // A response that never comes (a node stuck before its first byte).
            if (req.path === "/hang") return new Promise<PreparedResponse>(() => undefined);
            // /stuck-once/N: the first node asked never answers, the next ones answer /size/N.
            const once = /^\/stuck-once\/(\d+)$/.exec(req.path);
            if (once !== null) {
              if (!this.stuck.has(req.path)) {
                this.stuck.add(req.path);
                return new Promise<PreparedResponse>(() => undefined);
              }
              return simPrepared(Number(once[1]), keepAlive, o.dates === true ? id : undefined);
            }
            const m = /^\/size\/(\d+)$/.exec(req.path);
            const n = m === null ? 0 : Number(m[1]) + (this.changed.has(id) ? 1 : 0);
            return simPrepared(n, keepAlive, o.dates === true ? id : undefined);
          },
          error: (status) => {
            const head = Buffer.from(
              `HTTP/1.1 ${status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
            );
            return { status, head, body: null, stream: null, length: head.length, close: true };
          },
          countResponse: () => undefined,
        },
      );
      // Forwarded packets of a connection given back never reach the stack (no RST).
      const receive = stack.receive.bind(stack);
      stack.receive = (p: Uint8Array) => {
        if (!node.mode.dropsPacket(p, net.now)) receive(p);
      };
      this.nodes.push(node);
    }
    // The addStack calls above routed the VIP to the last node: every client packet goes to
    // the front-end, which hands off or forwards.
    net.route(SIM_VIP, [this.fe]);
    const policy = new LardPolicy(
      this.nodes.map((x) => x.id),
      o.policy,
    );
    this.frontEnd = new LardFrontEnd(
      this.fe,
      policy,
      {
        forward: (node, packet) => {
          const n = this.node(node);
          const copy = Uint8Array.from(packet);
          this.later(this.forwardDelay, () => {
            if (!n.alive) return;
            n.stack.receive(copy);
            n.stack.flush();
          });
        },
        sendHandoff: (node, msg) => {
          this.toNode(node, msg);
          return true;
        },
        monotonicUs: () => Math.round(net.now * 1000),
        wallClockMs: () => net.now,
      },
      { vip: SIM_VIP, port: SIM_PORT, ...o.frontEnd },
    );
    net.accept = (to, packet) => to !== this.fe || !this.frontEnd.take(packet, net.now);
    for (const n of this.nodes) this.frontEnd.onLinkUp(n.id);
  }

  /** The node dies: its packets and messages vanish, and its link goes down after `linkDownMs`. */
  kill(id: string, linkDownMs: number): void {
    const n = this.node(id);
    n.alive = false;
    n.answers = false;
    this.later(linkDownMs, () => {
      this.frontEnd.onLinkDown(id);
      this.fe.flush();
    });
  }

  /** From now on the node answers /size/N with N+1 bytes (its copy of every document changed). */
  changeDocuments(id: string): void {
    this.changed.add(id);
  }

  node(id: string): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** A HANDOFF crosses the link (through the codec) and the node answers on the way back. */
  private toNode(id: string, msg: HandoffMessage | ResumeMessage): void {
    const bytes = encodeHandoffMessage(msg);
    const node = this.node(id);
    this.later(this.linkDelay, () => {
      if (!node.answers) return;
      const m = decodeHandoffMessage(bytes);
      if (m instanceof ScDecodeError || (m.type !== HandoffType.Handoff && m.type !== HandoffType.Resume))
        throw new Error("bad HANDOFF");
      node.mode.onHandoff(m, node.link);
      node.stack.flush();
    });
  }

  /** The node's end of its link (one per node, as a node has one link to the front-end). */
  private linkOf(node: SimNode): HandoffReplyLink {
    const id = node.id;
    return {
      ack: (handoffId, status) => {
        const b = encodeHandoffMessage({ type: HandoffType.HandoffAck, handoffId, status });
        this.later(this.linkDelay, () => {
          const a = decodeHandoffMessage(b);
          if (a instanceof ScDecodeError || a.type !== HandoffType.HandoffAck) throw new Error("bad ACK");
          this.frontEnd.onAck(id, a, this.net.now);
          this.fe.flush();
        });
      },
      end: (handoffId) =>
        this.later(this.linkDelay, () => {
          if (node.answers) this.frontEnd.onEnd(id, handoffId);
        }),
      response: (handoffId, length, head) => {
        if (!node.answers) return;
        const b = encodeHandoffMessage({ type: HandoffType.Response, handoffId, length, head });
        this.later(this.linkDelay, () => {
          const r = decodeHandoffMessage(b);
          if (r instanceof ScDecodeError || r.type !== HandoffType.Response) throw new Error("bad RESPONSE");
          this.frontEnd.onResponse(id, r);
        });
      },
      handBack: (back) => {
        if (!node.answers) return false;
        const b = encodeHandoffMessage(back);
        this.later(this.linkDelay, () => {
          const m2 = decodeHandoffMessage(b);
          if (m2 instanceof ScDecodeError || m2.type !== HandoffType.HandBack)
            throw new Error("bad HANDBACK");
          this.frontEnd.onHandBack(id, m2);
          this.fe.flush();
        });
        return true;
      },
    };
  }

  /**
   * The link between the front-end and a live node breaks (a partition, a stalled process):
   * both ends see it down; the node stays up, and later messages of it are lost.
   */
  cutLink(id: string): void {
    const n = this.node(id);
    n.answers = false;
    this.frontEnd.onLinkDown(id);
    n.mode.onLinkDown(n.link);
    n.stack.flush();
    this.fe.flush();
  }

  private later(ms: number, f: () => void): void {
    this.queue.push(this.net.now + ms, f);
  }

  private nextAt(): number {
    let t = Math.min(this.queue.peek()?.at ?? Infinity, this.frontEnd.pollAt());
    for (const n of this.nodes) if (n.alive) t = Math.min(t, n.mode.pollAt());
    return t;
  }

  /** Advances virtual time (packets, stack timers, link messages, the front-end's deadlines). */
  async run(done: () => boolean, limit = 60_000): Promise<boolean> {
    const net = this.net;
    const end = net.now + limit;
    for (;;) {
      await net.settle();
      if (done()) return true;
      if (net.now >= end) return false;
      const target = Math.min(this.nextAt(), end);
      if (target > net.now)
        await net.run(() => net.now >= target || this.nextAt() < target || done(), target - net.now);
      if (done()) return true;
      if (net.now < target && target !== Infinity && this.nextAt() >= target) net.now = target;
      for (;;) {
        const t = this.queue.peek();
        if (t === undefined || t.at > net.now) break;
        this.queue.pop();
        t.item();
      }
      if (this.frontEnd.pollAt() <= net.now) this.frontEnd.poll(net.now);
      for (const n of this.nodes) if (n.alive && n.mode.pollAt() <= net.now) n.mode.poll(net.now);
      for (const s of [this.fe, this.client, ...this.nodes.map((x) => x.stack)]) s.flush();
      if (target === Infinity && this.queue.peek() === undefined) {
        await net.settle();
        return done();
      }
    }
  }
}

/** TCP payload bytes of an IPv4+TCP packet (0 for anything else). */
function tcpPayloadLength(p: Uint8Array): number {
  if (p.length < 40 || p[0]! >> 4 !== 4 || p[9] !== 6) return 0;
  const ihl = (p[0]! & 15) * 4;
  const total = (p[2]! << 8) | p[3]!;
  const doff = (p[ihl + 12]! >> 4) * 4;
  return Math.max(0, total - ihl - doff);
}
