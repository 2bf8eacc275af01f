// Checks that a parser's cost grows linearly with the length of its worst-case input, up to the
// configured limit (header block, request line, trace line). Pure: the clock is a parameter
// (tests pass cpuClockMs), nothing is read or written. Not used by production code.
//
// Sizes grow by 4 from limit/4^(steps-1) to the limit, smallest first, and each size is checked
// before the next is tried, so a cubic parser fails in a second instead of running for minutes.
// Two measures:
//   - counts: an operation count the code reports (exact; preferred where the code can count);
//   - time: per-call time is the minimum over many short batches of calls (noise on a shared
//     machine and garbage collections only ever add time, so the minimum is the parser's own
//     work); a step that looks non-linear is measured again before it fails.
// Linear growth is a ratio of about 4 per 4x step and 16 per 16x span; quadratic 16 and 256;
// cubic 64 and 4096. The default bounds are 32 per step and 100 per span: a cubic parser fails on
// one step, a quadratic one on the span, and a linear one passes with room for noise and for one
// jump (V8 allocates arrays of more than 16K elements differently, ~15x dearer for that step).

import { AssertionError } from "node:assert";

export interface LinearCase<T, R = unknown> {
  /** The input's shape, for messages: "bytes=" + n/2 spaces + "-" + n/2 spaces + "x". */
  name: string;
  /** The worst-case input of about n units (bytes or characters). */
  make(n: number): T;
  /** Parses one input; the result is returned so the call cannot be optimised away. */
  run(input: T): R;
}

export interface SizeCheckOptions {
  /** The largest size: the configured limit of the input. */
  limit: number;
  /** How many sizes: limit/4^(steps-1) .. limit. Default 4 (a 64x span). */
  steps?: number;
  /** Largest cost(4n)/cost(n) accepted. */
  maxStepRatio?: number;
  /** Largest cost(16n)/cost(n) accepted (two steps). */
  maxSpanRatio?: number;
}

export interface LinearTimeOptions extends SizeCheckOptions {
  /** Milliseconds, monotonic; CPU time of this process is best on a shared machine. */
  clock: () => number;
  /** Batches timed per size; the minimum counts. Default 25. */
  samples?: number;
  /** How long one batch of calls lasts, in ms (at least one call). Default 0.25. */
  sampleMs?: number;
  /** One call at any size, the limit included, must cost less than this (ms). Default 50. */
  budgetMs?: number;
  /** Extra measurements of a step that failed the ratio before it counts as failed. Default 2. */
  retries?: number;
}

export interface SizeCost {
  size: number;
  /** Operations (count mode) or ms per call (time mode). */
  cost: number;
}

export type LinearVerdict =
  { ok: true; costs: SizeCost[] } | { ok: false; reason: string; costs: SizeCost[] };

/** The sizes checked: limit / 4^k, smallest first, each at least 1. */
export function sizesUpTo(limit: number, steps = 4): number[] {
  const out: number[] = [];
  for (let k = steps - 1; k >= 0; k--) out.push(Math.max(1, Math.floor(limit / 4 ** k)));
  return out;
}

/** Checks operation counts: count(n) for each size, with tight default bounds (5 per step, 20 per span). */
export function checkLinearCounts(count: (n: number) => number, opts: SizeCheckOptions): LinearVerdict {
  const bounds = { step: opts.maxStepRatio ?? 5, span: opts.maxSpanRatio ?? 20 };
  const costs: SizeCost[] = [];
  for (const size of sizesUpTo(opts.limit, opts.steps)) {
    costs.push({ size, cost: count(size) });
    const bad = growthFailure(costs, bounds, "operations");
    if (bad !== null) return { ok: false, reason: bad, costs };
  }
  return { ok: true, costs };
}

/** Times `c.run` on `c.make(n)` for each size and checks the growth and the budget. */
export function checkLinearTime<T>(c: LinearCase<T>, opts: LinearTimeOptions): LinearVerdict {
  const bounds = { step: opts.maxStepRatio ?? 32, span: opts.maxSpanRatio ?? 100 };
  const budget = opts.budgetMs ?? 50;
  const samples = opts.samples ?? 25;
  const sampleMs = opts.sampleMs ?? 0.25;
  const retries = opts.retries ?? 2;
  const sizes = sizesUpTo(opts.limit, opts.steps);
  const inputs = new Map<number, T>();
  const inputOf = (n: number): T => {
    let v = inputs.get(n);
    if (v === undefined) inputs.set(n, (v = c.make(n)));
    return v;
  };
  // Warm the JIT on the smallest input, so the first size is not timed in the interpreter.
  calibrate(c, inputOf(sizes[0]!), opts.clock, 20 * sampleMs);

  const costs: SizeCost[] = [];
  const measure = (size: number, best: number) => {
    const input = inputOf(size);
    const batch = calibrate(c, input, opts.clock, sampleMs);
    return minPerCall(c, input, opts.clock, samples, batch, Math.min(best, batch.perCall));
  };
  for (const size of sizes) {
    // One call first: a parser that blows the budget fails now, before any repetition.
    const first = timeBatch(c, inputOf(size), opts.clock, 1);
    if (first > budget) {
      costs.push({ size, cost: first });
      return {
        ok: false,
        reason: `one call at n=${size} took ${first.toFixed(1)} ms (budget ${budget} ms): ${describeCosts(costs)}`,
        costs,
      };
    }
    // Not min'ed with `first`: one short call can read 0 on a microsecond clock.
    costs.push({ size, cost: measure(size, Infinity) });
    for (let r = 0; r < retries && growthFailure(costs, bounds, "ms") !== null; r++) {
      // Noise only adds time: more samples can only lower the minima.
      for (const sc of costs.slice(-3)) sc.cost = measure(sc.size, sc.cost);
    }
    const bad = growthFailure(costs, bounds, "ms");
    if (bad !== null) return { ok: false, reason: bad, costs };
    const last = costs[costs.length - 1]!;
    if (last.cost > budget) {
      return {
        ok: false,
        reason: `n=${size} costs ${last.cost.toFixed(2)} ms a call (budget ${budget} ms): ${describeCosts(costs)}`,
        costs,
      };
    }
  }
  return { ok: true, costs };
}

/** checkLinearTime, failing with the case's name, the reason and the costs measured. */
export function assertLinearTime<T>(c: LinearCase<T>, opts: LinearTimeOptions): void {
  const v = checkLinearTime(c, opts);
  if (!v.ok) throw new AssertionError({ message: `${c.name}: not linear: ${v.reason}` });
}

/** A table of the costs, for assertion messages. */
export function describeCosts(costs: readonly SizeCost[]): string {
  return costs
    .map((s) => `n=${s.size}: ${s.cost < 0.01 ? s.cost.toExponential(2) : s.cost.toFixed(3)}`)
    .join(", ");
}

/** Why the growth up to the last size is not linear, or null: its step, then its span. */
function growthFailure(
  costs: readonly SizeCost[],
  bounds: { step: number; span: number },
  unit: string,
): string | null {
  const n = costs.length;
  if (n >= 2) {
    const bad = ratioFailure(costs[n - 2]!, costs[n - 1]!, bounds.step, 4);
    if (bad !== null) return `${bad} in ${unit}: ${describeCosts(costs)}`;
  }
  if (n >= 3) {
    const bad = ratioFailure(costs[n - 3]!, costs[n - 1]!, bounds.span, 16);
    if (bad !== null) return `${bad} in ${unit}: ${describeCosts(costs)}`;
  }
  return null;
}

/** Why b's cost is too large next to a's for their sizes (the bound is for `per`x input). */
function ratioFailure(a: SizeCost, b: SizeCost, bound: number, per: number): string | null {
  // Costs too small to measure (0 ops, below a clock tick) cannot show a trend; the budget still applies.
  const ratio = a.cost > 0 ? b.cost / a.cost : b.cost > 0 ? Infinity : 1;
  const sizeRatio = b.size / a.size;
  if (ratio <= bound * (sizeRatio / per)) return null;
  return `cost grew ${ratio.toFixed(1)}x from n=${a.size} to n=${b.size} (${sizeRatio}x input; bound ${bound} per ${per}x)`;
}

/**
 * Per-call time: the minimum over `samples` batches of `batch.calls` calls (and `best`). The
 * batches are short, so most of them run between two garbage collections: the minimum is the
 * parser's own work, which is what grows quadratically when a parser does.
 */
function minPerCall<T>(
  c: LinearCase<T>,
  input: T,
  clock: () => number,
  samples: number,
  batch: Batch,
  best: number,
): number {
  let min = best;
  for (let s = 0; s < samples; s++) min = Math.min(min, timeBatch(c, input, clock, batch.calls));
  return min;
}

interface Batch {
  /** Calls per batch: enough for the batch to last about the sample time. */
  calls: number;
  perCall: number;
}

/** Doubles the batch until it lasts `minMs` (at least one call). */
function calibrate<T>(c: LinearCase<T>, input: T, clock: () => number, minMs: number): Batch {
  for (let calls = 1; ; calls *= 2) {
    const perCall = timeBatch(c, input, clock, calls);
    if (perCall * calls >= minMs) return { calls, perCall };
  }
}

/** Runs `calls` calls between two clock readings; ms per call. */
function timeBatch<T>(c: LinearCase<T>, input: T, clock: () => number, calls: number): number {
  let sink = 0;
  const start = clock();
  for (let i = 0; i < calls; i++) if (c.run(input) !== undefined) sink++;
  const elapsed = clock() - start;
  // `sink` is read so the calls have an observable effect.
  return sink >= 0 ? elapsed / calls : NaN;
}
