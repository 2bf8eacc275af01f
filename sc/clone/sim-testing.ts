// Test support: the SC engine (engine.ts) with real TcpStacks on sc/tcp/sim.ts's virtual
// network, under virtual time, without root. Three stacks: a client, node A (the original,
// owning the VIP; every packet to the VIP reaches A through the engine's packet path) and
// node B (the clone's node, also answering for the VIP but reached only by A's forwarding).
// SC messages go through the real codec with a delay of their own; B can be killed (its
// packets and messages vanish). Not product code.
import { VirtualNet } from "../tcp/sim.js";
import { TimerHeap } from "../tcp/timer-heap.js";
import type { TcpStack } from "../tcp/stack.js";
import { TcpServer, connectTcp, type TcpSocket } from "../tcp/socket.js";
import { decodeState, encodeState, exportState, importState } from "../tcp/state.js";
import { isWireError } from "../wire/error.js";
import { newTcpPeek, peekTcp } from "../router/router.js";
import { seqAdd } from "../tcp/seq.js";
import {
  CloneStatus,
  decodeScMessage,
  encodeScMessage,
  ScDecodeError,
  ScType,
  type ScMessage,
} from "./message.js";
import {
  CLONE_TAIL_PROBE_MIN_MS,
  CloneSide,
  DONE_DELAY_MS,
  OriginalSide,
  resumePoint,
  type OriginalFailure,
  type OutgoingClone,
  type CloneSideFailure,
} from "./engine.js";

export const SIM_VIP = "198.18.100.1";
export const SIM_CLIENT = "198.18.0.2";
const HTTP_PORT = 80;

export interface SimPeer {
  readonly id: string;
}

export interface ScSimOptions {
  seed?: number;
  /** One-way delay of an SC message, ms. */
  scDelayMs?: number;
  /** One-way delay of a packet A forwards to B, ms. */
  forwardDelayMs?: number;
  cloneTimeoutMs?: number;
  stallMs?: number;
  finLingerMs?: number;
  /** What B answers for a request (the ASF): the whole response, head included. */
  respond: (asf: Uint8Array) => { head: Uint8Array; body: Uint8Array } | "refuse";
}

/** A response the harness knows: for checking the client's bytes and resuming. */
interface Served {
  head: Uint8Array;
  body: Uint8Array;
}

export class ScSim {
  readonly net: VirtualNet;
  readonly client: TcpStack;
  readonly a: TcpStack;
  readonly b: TcpStack;
  readonly peerB: SimPeer = { id: "B" };
  readonly original: OriginalSide<SimPeer, TcpSocket>;
  readonly cloneSide: CloneSide<TcpSocket>;
  /** False once B is killed: nothing from or to it any more. */
  bAlive = true;
  /** Return false to drop a packet A forwards to B. */
  forwardFilter: ((p: Uint8Array) => boolean) | undefined;
  /** Effects the engine asked for, in order (settle, reset, cancel, counts, ...). */
  readonly events: string[] = [];
  readonly settled = new Map<TcpSocket, "serve" | "done">();
  /** The originals' server sockets, in accept order. */
  readonly originals: TcpSocket[] = [];
  /** Latencies (ms) of accepted clones. */
  readonly latencies: number[] = [];
  /** A range resume waits this long (the response being regenerated). */
  resumeDelayMs = 0.1;
  /** Whether DONE messages can be sent (false: as if the link were down at completion). */
  doneLink = true;
  /** B handles a CLONE after this long (its response being prepared). */
  cloneWorkMs = 0;
  /**
   * SC messages from B to A arrive no earlier than this (virtual ms), in order: a lossy SC link
   * whose kernel TCP holds them behind a retransmission. Infinity: they never arrive.
   */
  backStallUntil = 0;
  private lastToA = 0;
  private readonly rawReceiveA: (p: Uint8Array) => void;
  private readonly queue = new TimerHeap<() => void>();
  private readonly served = new Map<TcpSocket, Served>();
  /** Originals whose current request is the last on the connection (Connection: close). */
  private readonly lastOf = new Set<TcpSocket>();
  private readonly opts: Required<Omit<ScSimOptions, "seed">>;

  constructor(o: ScSimOptions) {
    this.opts = {
      scDelayMs: 0.1,
      forwardDelayMs: 0.1,
      cloneTimeoutMs: 2000,
      stallMs: 5000,
      finLingerMs: 10_000,
      ...o,
    };
    const net = new VirtualNet(o.seed ?? 1);
    this.net = net;
    this.client = net.addStack([SIM_CLIENT]);
    this.a = net.addStack([SIM_VIP]);
    this.b = net.addStack([SIM_VIP], {
      config: { gsoMaxBytes: 0 },
      output: (p) => {
        if (this.bAlive) net.send(p);
      },
    });
    net.route(SIM_VIP, [this.a]);
    // Every client packet reaches A through the engine, as through the node's packet hook.
    const a = this.a;
    this.rawReceiveA = a.receive.bind(a);
    a.receive = (p: Uint8Array) => this.original.onClientPacket(p, net.now);
    this.original = new OriginalSide<SimPeer, TcpSocket>(
      {
        ackTimeoutMs: this.opts.cloneTimeoutMs + 250,
        router: { stallMs: this.opts.stallMs, finLingerMs: this.opts.finLingerMs },
      },
      {
        shadow: (s, on, ackedThrough) => {
          if (!s.destroyed) s.setShadow(on, ackedThrough);
        },
        toStack: (p) => this.rawReceiveA(p),
        forward: (p) => {
          if (this.forwardFilter !== undefined && !this.forwardFilter(p)) return;
          this.later(this.opts.forwardDelayMs, () => {
            if (!this.bAlive) return;
            // As the adapter: a forwarded packet for no clone here is dropped, never answered.
            const pk = peekTcp(p, newTcpPeek());
            if (pk !== undefined && !this.cloneSide.acceptsPeerPacket(pk.src, pk.srcPort, pk.dst, pk.dstPort))
              return;
            this.b.receive(p);
            this.b.flush();
          });
        },
        sendDone: (_peer, id) => {
          if (!this.bAlive || !this.doneLink) return false;
          this.events.push(`done:${id}`);
          // Sent after the adapter's batching delay, as the node does.
          this.later(DONE_DELAY_MS, () => this.toB({ type: ScType.Done, cloneIds: [id] }));
          return true;
        },
        sendCancel: (peer, id) => {
          this.events.push(`cancel:${id}`);
          this.toB({ type: ScType.Cancel, cloneId: id });
          return true;
        },
        settle: (s, d) => {
          this.events.push(`settle:${d}`);
          this.settled.set(s, d);
          // The HTTP side closes after the last response (no second FIN when it was delegated).
          if (d === "done" && this.lastOf.has(s) && !s.destroyed) s.end();
        },
        reset: (c) => {
          this.events.push("reset");
          c.handle.destroy();
        },
        resume: (c) => this.later(this.resumeDelayMs, () => this.resume(c)),
        streamLength: (_s, length) => length, // plain TCP: the response is the stream
        accepted: (c, ms) => {
          this.latencies.push(ms);
          if (c.last && !c.handle.destroyed) {
            const ok = c.handle.delegateFin(seqAdd(c.entry.start, c.length));
            this.events.push(ok ? "fin-delegated" : "fin-not-delegated");
          }
        },
        count: (r: OriginalFailure, detail) => this.events.push(detail ? `${r}:${detail}` : r),
      },
    );
    this.cloneSide = new CloneSide<TcpSocket>(
      { maxClones: 100, safetyMs: 50 },
      {
        drop: (s) => s.dropSilently(),
        count: (r: CloneSideFailure) => this.events.push(r),
      },
    );
    // B serves the VIP too (a clone is imported under its listener); nobody connects to it.
    new TcpServer(this.b).listen(HTTP_PORT, SIM_VIP);
    const server = new TcpServer(a, { allowHalfOpen: true });
    server.listen(HTTP_PORT, SIM_VIP);
    server.on("connection", (s: TcpSocket) => {
      this.originals.push(s);
      s.on("error", () => undefined);
      s.on("close", () => this.original.onConnectionClosed(s));
      let got = Buffer.alloc(0);
      s.on("data", (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const end = got.indexOf("\r\n\r\n");
        if (end < 0) return;
        const asf = got.subarray(0, end + 4);
        got = got.subarray(end + 4);
        this.cloneRequest(s, asf);
      });
    });
  }

  /** A client connection to the VIP and everything it receives. */
  connect(): { sock: TcpSocket; received: () => Buffer; closed: () => boolean } {
    const sock = connectTcp(this.client, { host: SIM_VIP, port: HTTP_PORT, noDelay: true });
    const chunks: Buffer[] = [];
    let isClosed = false;
    sock.on("data", (d: Buffer) => chunks.push(d));
    sock.on("error", () => undefined);
    sock.on("close", () => (isClosed = true));
    return { sock, received: () => Buffer.concat(chunks), closed: () => isClosed };
  }

  /** Kills node B: its packets, messages and timers have no effect any more; A hears of it. */
  killB(): void {
    this.bAlive = false;
    this.original.onPeerDown(this.peerB.id);
  }

  /** The original clones the connection `s` for this request (as the adapter's cloneTo does). */
  private cloneRequest(s: TcpSocket, asf: Uint8Array): void {
    const state = exportState(s);
    if (state.seed === undefined || state.sndUna !== state.sndNxt) throw new Error("not quiescent");
    const last = /\r\nconnection: *close\r\n/i.test(Buffer.from(asf).toString("latin1"));
    if (last) this.lastOf.add(s);
    const c = this.original.begin(s, this.peerB, state.tuple, state.sndNxt, this.net.now, last);
    this.toB({
      type: ScType.Clone,
      cloneId: c.id,
      last,
      startDeadline: Math.ceil(this.net.now + this.opts.cloneTimeoutMs),
      state: encodeState(state),
      seed: state.seed,
      asf,
    });
  }

  private toB(m: ScMessage): void {
    const bytes = encodeScMessage(m);
    this.later(this.opts.scDelayMs, () => {
      if (!this.bAlive) return;
      const got = decodeScMessage(bytes);
      if (got instanceof ScDecodeError) throw new Error(got.detail);
      if (got.type === ScType.Clone) this.later(this.cloneWork(), () => this.onCloneAtB(got));
      else if (got.type === ScType.Done) for (const id of got.cloneIds) this.cloneSide.onDone("A", id);
      else if (got.type === ScType.Cancel && this.cloneSide.onCancel("A", got.cloneId) !== "started")
        this.toA({
          type: ScType.CloneAck,
          cloneId: got.cloneId,
          status: CloneStatus.Cancelled,
          responseLength: 0,
          head: new Uint8Array(0),
        });
    });
  }

  private cloneWork(): number {
    return this.cloneWorkMs;
  }

  private toA(m: ScMessage): void {
    const bytes = encodeScMessage(m);
    if (this.backStallUntil === Infinity) return;
    // In order, as on the TCP link: never before an earlier message.
    const at = Math.max(this.net.now + this.opts.scDelayMs, this.backStallUntil, this.lastToA + 1e-3);
    this.lastToA = at;
    this.later(at - this.net.now, () => {
      if (!this.bAlive) return;
      const got = decodeScMessage(bytes);
      if (got instanceof ScDecodeError || got.type !== ScType.CloneAck) throw new Error("bad ack");
      this.original.onAck("B", got, this.net.now);
    });
  }

  /** B's side of a CLONE (as the adapter's onClone does). */
  private onCloneAtB(m: Extract<ScMessage, { type: ScType.Clone }>): void {
    if (!this.bAlive) return;
    const refuse = (status: CloneStatus) =>
      this.toA({
        type: ScType.CloneAck,
        cloneId: m.cloneId,
        status,
        responseLength: 0,
        head: new Uint8Array(0),
      });
    const snap = decodeState(m.state);
    if (isWireError(snap)) return refuse(CloneStatus.BadState);
    const rec = this.cloneSide.admit("A", m.cloneId, snap.tuple, m.startDeadline, this.net.now);
    if (typeof rec === "number") return refuse(rec);
    const resp = this.opts.respond(m.asf);
    if (resp === "refuse") return refuse(CloneStatus.Busy);
    const sock = importState(this.b, { ...snap, seed: m.seed }, undefined, {
      clone: { finWithLastSegment: m.last === true, tailProbeMinMs: CLONE_TAIL_PROBE_MIN_MS },
    });
    sock.on("error", () => undefined);
    sock.on("close", () => this.cloneSide.gone(sock));
    this.cloneSide.attach(rec, sock);
    const no = this.cloneSide.start(rec, this.net.now);
    if (no !== null) {
      this.cloneSide.vanish(rec);
      return refuse(no);
    }
    const length = resp.head.length + resp.body.length;
    this.toA({
      type: ScType.CloneAck,
      cloneId: m.cloneId,
      status: CloneStatus.Accepted,
      responseLength: length,
      head: resp.head,
    });
    const origin = this.originalOfTuple(snap.tuple.remotePort);
    if (origin !== undefined) this.served.set(origin, resp);
    sock.write(Buffer.concat([resp.head, resp.body]));
    sock.end();
    this.b.flush();
  }

  private originalOfTuple(remotePort: number): TcpSocket | undefined {
    return this.originals.find((s) => s.remotePort === remotePort && !s.destroyed);
  }

  /** The original continues the byte stream itself (as the adapter's resume does). */
  private resume(c: OutgoingClone<SimPeer, TcpSocket>): void {
    if (c.phase !== "resuming") return;
    const s = c.handle;
    const resp = this.served.get(s);
    if (resp === undefined) {
      this.original.abandon(c);
      return;
    }
    this.original.resumed(c);
    s.conn.acceptAcksBeyondSent = true;
    const sent = resumePoint(c.entry, s.conn.sndMax);
    s.write(Buffer.concat([resp.head, resp.body]).subarray(sent), () => {
      s.conn.acceptAcksBeyondSent = false;
      this.settled.set(s, "done");
      this.events.push("resumed-sent");
    });
    if (this.lastOf.has(s)) s.end();
    this.a.flush();
  }

  private nextAt(): number {
    return Math.min(this.queue.peek()?.at ?? Infinity, this.original.pollAt());
  }

  private later(ms: number, f: () => void): void {
    this.queue.push(this.net.now + ms, f);
  }

  /**
   * Advances virtual time event by event (network packets, stack timers, SC messages, the
   * engine's deadlines) until `done()` or `limit` ms pass. True if done() became true.
   */
  async run(done: () => boolean, limit = 60_000): Promise<boolean> {
    const net = this.net;
    const end = net.now + limit;
    for (;;) {
      await net.settle();
      if (done()) return true;
      if (net.now >= end) return false;
      const target = Math.min(this.nextAt(), end);
      // The network runs its own events up to the target (it stops short when it has none, and
      // when one of them queued an SC message or a deadline before the target).
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
      if (this.original.pollAt() <= net.now) this.original.poll(net.now);
      for (const s of [this.a, this.b, this.client]) s.flush();
      if (target === Infinity && this.queue.peek() === undefined) {
        await net.settle();
        return done();
      }
    }
  }
}
