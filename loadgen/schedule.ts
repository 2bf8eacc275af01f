// Open-loop send schedules (pure: time is a parameter, nothing here reads a clock).
//
// A schedule says when each request of a run should be sent, in milliseconds from the start,
// whatever happened to the requests before it: the definition of an open loop. Three kinds:
//   constant  request i at i / R            (R requests per second in total)
//   poisson   exponential gaps of mean 1/R  (seeded, so a run can be repeated exactly)
//   trace     request i at its trace timestamp / X (--speed X), the trace wrapping around
//
// A run is split over W worker threads: worker w sends global requests w, w+W, w+2W, ...
// (the same dealing as the closed loop), and a Pacer walks one worker's share in time order.
// Because the latency of request i is measured from its intended time (not from when a busy
// client got around to sending it), a stalled server shows up in the percentiles instead of
// being hidden by coordinated omission (Gil Tene; wrk2).
//
// OpenLoopQueue holds the requests that are due but have no free connection yet; it is
// bounded, and requests arriving when it is full are dropped and counted (tail drop).

export type ScheduleSpec =
  | { kind: "constant"; rate: number }
  | { kind: "poisson"; rate: number; seed: number }
  | {
      kind: "trace";
      /** Seconds from the trace's first replayable request, per plan entry, non-decreasing. */
      offsetsS: Uint32Array;
      speed: number;
    };

export interface Due {
  /** Global request number (plan entry = index % entries). */
  index: number;
  /** Intended send time, ms from the start of the run. */
  intendedMs: number;
}

/** One pass of a trace lasts its span plus the last logged second (timestamps are whole seconds). */
export function tracePassS(offsetsS: Uint32Array): number {
  return offsetsS.length === 0 ? 0 : offsetsS[offsetsS.length - 1]! + 1;
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Walks worker `worker` of `workers`' share of a schedule, in time order, up to `limit` requests in all. */
export class Pacer {
  private k = 0;
  private nextMs: number;
  /** Uniform draws for the Poisson gaps (unused by the other kinds). */
  private readonly random: () => number;

  constructor(
    private readonly spec: ScheduleSpec,
    private readonly worker: number,
    private readonly workers: number,
    private readonly limit: number,
  ) {
    if (spec.kind !== "trace" && !(spec.rate > 0)) throw new RangeError(`rate must be > 0, got ${spec.rate}`);
    if (spec.kind === "trace" && !(spec.speed > 0))
      throw new RangeError(`speed must be > 0, got ${spec.speed}`);
    // Each worker's Poisson stream has rate R/W and its own seed; their superposition is a
    // Poisson process of rate R.
    const seed = spec.kind === "poisson" ? spec.seed : 0;
    this.random = seededRandom((seed * 0x9e3779b1 + worker * 0x85ebca6b) >>> 0);
    this.nextMs = this.timeOf(0, 0);
  }

  private timeOf(k: number, previousMs: number): number {
    const spec = this.spec;
    const i = k * this.workers + this.worker;
    switch (spec.kind) {
      case "constant":
        return (i * 1000) / spec.rate;
      case "poisson": {
        const u = this.random();
        return previousMs + (-Math.log(1 - u) * 1000 * this.workers) / spec.rate;
      }
      case "trace": {
        const n = spec.offsetsS.length;
        const pass = Math.floor(i / n);
        return ((spec.offsetsS[i % n]! + pass * tracePassS(spec.offsetsS)) * 1000) / spec.speed;
      }
    }
  }

  /** Global index of the next request, or null when this worker's share is done. */
  private get nextIndex(): number | null {
    const i = this.k * this.workers + this.worker;
    return i < this.limit ? i : null;
  }

  /** Intended time (ms) of the next request, or null when there is none. */
  peek(): number | null {
    return this.nextIndex === null ? null : this.nextMs;
  }

  /**
   * The next request if it is due at `nowMs` (intended <= nowMs; < nowMs when `before`: a
   * run's deadline is not part of it), advancing past it.
   */
  takeDue(nowMs: number, before = false): Due | null {
    const index = this.nextIndex;
    if (index === null || this.nextMs > nowMs || (before && this.nextMs === nowMs)) return null;
    const due = { index, intendedMs: this.nextMs };
    this.k++;
    this.nextMs = this.timeOf(this.k, this.nextMs);
    return due;
  }
}

export interface QueueStats {
  /** Requests that came due. */
  due: number;
  /** Due requests refused because the queue was full. */
  dropped: number;
  /** Most requests waiting at once. */
  maxBacklog: number;
}

/** Due requests waiting for a free connection: a bounded FIFO ring, tail drop when full. */
export class OpenLoopQueue {
  private readonly index: Float64Array;
  private readonly intended: Float64Array;
  private head = 0;
  private size = 0;
  /** Intended time of the latest request that came due (ms). */
  lastDueMs = 0;
  readonly stats: QueueStats = { due: 0, dropped: 0, maxBacklog: 0 };

  constructor(
    private readonly pacer: Pacer,
    readonly capacity: number,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`queue capacity must be >= 1, got ${capacity}`);
    this.index = new Float64Array(capacity);
    this.intended = new Float64Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Moves every request due at `nowMs` (before it, if `before`) into the queue, or drops it when full. */
  admit(nowMs: number, before = false): void {
    for (let d = this.pacer.takeDue(nowMs, before); d !== null; d = this.pacer.takeDue(nowMs, before)) {
      this.stats.due++;
      this.lastDueMs = d.intendedMs;
      if (this.size === this.capacity) {
        this.stats.dropped++;
        continue;
      }
      const slot = (this.head + this.size) % this.capacity;
      this.index[slot] = d.index;
      this.intended[slot] = d.intendedMs;
      this.size++;
    }
    if (this.size > this.stats.maxBacklog) this.stats.maxBacklog = this.size;
  }

  /** The oldest waiting request, removed. */
  shift(): Due | null {
    if (this.size === 0) return null;
    const d = { index: this.index[this.head]!, intendedMs: this.intended[this.head]! };
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return d;
  }

  /** When the next request comes due (ms), or null when the schedule is exhausted. */
  nextDueMs(): number | null {
    return this.pacer.peek();
  }

  /** True once the schedule has no more requests and none wait. */
  exhausted(): boolean {
    return this.pacer.peek() === null && this.size === 0;
  }
}
