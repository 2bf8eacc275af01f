// Test support: several TcpStacks on a virtual network under virtual time. Packets are
// routed by destination address, each link direction can lose, duplicate, delay and reorder
// packets with a seeded PRNG, and run() advances the clock from event to event (packet
// arrivals and the stacks' timer deadlines), draining microtasks in between so socket
// events and deferred flushes happen as they would on a real event loop. Not product code.

import { TcpStack, type TcpStackOptions } from "./stack.js";
import { TimerHeap } from "./timer-heap.js";
import { gsoSegment } from "./gso.js";
import { readIpv4 } from "../wire/addr.js";

/** mulberry32: small, fast, good enough for test randomness; deterministic per seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (this.next() * 256) | 0;
    return b;
  }
}

export interface LinkImpairment {
  /** Probability a packet is lost. */
  loss?: number;
  /** Probability a packet is delivered twice. */
  duplicate?: number;
  /** Probability a packet gets extra delay (0..reorderDelay ms), overtaking later ones. */
  reorder?: number;
  reorderDelay?: number;
  /** Base one-way delay in ms. */
  delay?: number;
  /** Uniform jitter added to the delay, ms. */
  jitter?: number;
}

export interface SimStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
}

interface InFlight {
  to: TcpStack;
  packet: Uint8Array;
}

export class VirtualNet {
  now = 0;
  readonly rng: Rng;
  readonly stats: SimStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0 };
  /** Every packet sent, when tracing is on (for assertions on the wire). */
  trace: Array<{ at: number; packet: Uint8Array }> | undefined = undefined;
  private readonly byAddr = new Map<number, TcpStack>();
  private readonly stacks: TcpStack[] = [];
  private readonly queue = new TimerHeap<InFlight>();
  private impair: LinkImpairment = {};
  /** Optional tap: return false to drop a packet (tests of specific losses). */
  filter: ((packet: Uint8Array, at: number) => boolean) | undefined = undefined;
  /** Optional check at arrival: return false to drop a packet at the receiving stack (e.g.
   *  a cloning node, which drops forwarded packets for connections it does not have). */
  accept: ((to: TcpStack, packet: Uint8Array) => boolean) | undefined = undefined;

  constructor(seed = 1) {
    this.rng = new Rng(seed);
  }

  setImpairment(i: LinkImpairment): void {
    this.impair = i;
  }

  /** Adds a stack owning `addresses`; its output goes onto this network. */
  addStack(addresses: string[], opts: Partial<TcpStackOptions> = {}): TcpStack {
    const stack = new TcpStack({
      addresses,
      clock: () => this.now,
      output: (p, gso) => {
        if (gso === 0) this.send(p);
        else for (const seg of gsoSegment(p, gso)) this.send(seg);
      },
      secret: new Uint8Array(16).fill(this.stacks.length + 1),
      ...opts,
    });
    this.stacks.push(stack);
    for (const a of addresses) {
      const n = readIpv4(Uint8Array.from(a.split(".").map(Number)), 0);
      this.byAddr.set(n, stack);
    }
    return stack;
  }

  /**
   * Routes packets for `addr` to these stacks (several: each gets a copy, as the Packet
   * Router does for a cloned connection). Replaces the route set by addStack.
   */
  route(addr: string, stacks: TcpStack[]): void {
    const n = readIpv4(Uint8Array.from(addr.split(".").map(Number)), 0);
    this.routes.set(n, stacks);
  }

  private readonly routes = new Map<number, TcpStack[]>();

  /** Sends a packet onto the network (routing by destination address). */
  send(packet: Uint8Array): void {
    this.stats.sent++;
    this.trace?.push({ at: this.now, packet });
    if (this.filter !== undefined && !this.filter(packet, this.now)) {
      this.stats.lost++;
      return;
    }
    const dst = readIpv4(packet, 16);
    const multi = this.routes.get(dst);
    if (multi !== undefined) {
      for (const to of multi) this.deliver(to, packet);
      return;
    }
    const to = this.byAddr.get(dst);
    if (to === undefined) return;
    this.deliver(to, packet);
  }

  private deliver(to: TcpStack, packet: Uint8Array): void {
    const i = this.impair;
    const rng = this.rng;
    if (i.loss !== undefined && rng.next() < i.loss) {
      this.stats.lost++;
      return;
    }
    const copies = i.duplicate !== undefined && rng.next() < i.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let c = 0; c < copies; c++) {
      let delay = (i.delay ?? 0.5) + (i.jitter !== undefined ? rng.next() * i.jitter : 0);
      if (i.reorder !== undefined && rng.next() < i.reorder) {
        delay += rng.next() * (i.reorderDelay ?? 5);
        this.stats.reordered++;
      }
      this.queue.push(this.now + delay, { to, packet });
    }
  }

  /** Lets queued microtasks (socket events, deferred flushes) run. */
  async settle(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
  }

  /**
   * Advances virtual time event by event until `done()` or `limit` ms of virtual time.
   * Returns true if done() became true.
   */
  async run(done: () => boolean, limit = 60_000): Promise<boolean> {
    const end = this.now + limit;
    for (;;) {
      await this.settle();
      if (done()) return true;
      let t = Infinity;
      const top = this.queue.peek();
      if (top !== undefined) t = top.at;
      for (const s of this.stacks) {
        const p = s.pollAt();
        if (p !== undefined && p < t) t = p;
      }
      if (t === Infinity) {
        await this.settle();
        if (done()) return true;
        return false;
      }
      if (t > end) {
        this.now = end;
        return done();
      }
      if (t > this.now) this.now = t;
      this.step();
    }
  }

  /** Runs for `ms` of virtual time. */
  async advance(ms: number): Promise<void> {
    await this.run(() => false, ms);
  }

  private step(): void {
    const now = this.now;
    const touched = new Set<TcpStack>();
    for (;;) {
      const top = this.queue.peek();
      if (top === undefined || top.at > now) break;
      const { to, packet } = top.item;
      this.queue.pop();
      if (this.accept !== undefined && !this.accept(to, packet)) {
        this.stats.lost++;
        continue;
      }
      this.stats.delivered++;
      to.receive(packet);
      touched.add(to);
    }
    for (const s of touched) s.flush();
    for (const s of this.stacks) {
      const p = s.pollAt();
      if (p !== undefined && p <= now) s.poll(now);
    }
  }
}
