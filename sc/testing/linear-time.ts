// Checks that a parser's cost grows linearly with the length of its worst-case input, up to the
// configured limit (header block, request line, trace line). Pure: the clock is a parameter
// (tests pass cpuClockMs), nothing is read or written. Not used by production code.
//
// Sizes grow by 4 from limit/4^(steps-1) to the limit, smallest first, and each size is checked
// before the next is tried, so a cubic parser fails in a second instead of running for minutes.
// Two measures:
//   - counts: an operation count the code reports (exact; preferred where the code can count);
//   - time: per-call time is the minimum over several samples, each repeating the call until it
//     lasts `sampleMs` (noise on a shared machine only ever adds time, so the minimum is the
//     honest figure); a step that looks non-linear is measured again before it fails.
// Linear growth is a ratio of about 4 per step, quadratic 16, cubic 64: the default bound of
// 10 passes a linear parser under load and fails a quadratic one wherever its n^2 term matters.

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
}

export interface LinearTimeOptions extends SizeCheckOptions {
  /** Milliseconds, monotonic; CPU time of this process is best on a shared machine. */
  clock: () => number;
  /** Samples per size; the minimum counts. Default 5. */
  samples?: number;
  /** Each sample repeats the call until it lasts this long, in ms. Default 2. */
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

/** Checks operation counts: count(n) for each size, with a tight default bound (5 per 4x). */
export function checkLinearCounts(count: (n: number) => number, opts: SizeCheckOptions): LinearVerdict {
  const maxRatio = opts.maxStepRatio ?? 5;
  const costs: SizeCost[] = [];
  for (const size of sizesUpTo(opts.limit, opts.steps)) {
    costs.push({ size, cost: count(size) });
    const bad = stepFailure(costs, maxRatio, "operations");
    if (bad !== null) return { ok: false, reason: bad, costs };
  }
  return { ok: true, costs };
}

/** Times `c.run` on `c.make(n)` for each size and checks the growth and the budget. */
export function checkLinearTime<T>(c: LinearCase<T>, opts: LinearTimeOptions): LinearVerdict {
  const maxRatio = opts.maxStepRatio ?? 10;
  const budget = opts.budgetMs ?? 50;
  const samples = opts.samples ?? 5;
  const sampleMs = opts.sampleMs ?? 2;
  const retries = opts.retries ?? 2;
  const sizes = sizesUpTo(opts.limit, opts.steps);
  const inputs = new Map<number, T>();
  const inputOf = (n: number): T => {
    let v = inputs.get(n);
    if (v === undefined) inputs.set(n, (v = c.make(n)));
    return v;
  };
  // Warm the JIT on the smallest input, so the first size is not timed in the interpreter.
  timeCalls(c, inputOf(sizes[0]!), opts.clock, 5 * sampleMs);

  const costs: SizeCost[] = [];
  for (const size of sizes) {
    const input = inputOf(size);
    // One call first: a parser that blows the budget fails now, before any repetition.
    const first = timeCalls(c, input, opts.clock, 0);
    if (first > budget) {
      costs.push({ size, cost: first });
      return {
        ok: false,
        reason: `one call at n=${size} took ${first.toFixed(1)} ms (budget ${budget} ms): ${describeCosts(costs)}`,
        costs,
      };
    }
    costs.push({ size, cost: minPerCall(c, input, opts.clock, samples, sampleMs, first) });
    for (let r = 0; r < retries && stepFailure(costs, maxRatio, "ms") !== null; r++) {
      // Noise only adds time: more samples of both sizes can only lower their minima.
      const prev = costs[costs.length - 2]!;
      prev.cost = minPerCall(c, inputOf(prev.size), opts.clock, samples, sampleMs, prev.cost);
      const last = costs[costs.length - 1]!;
      last.cost = minPerCall(c, input, opts.clock, samples, sampleMs, last.cost);
    }
    const bad = stepFailure(costs, maxRatio, "ms");
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

/** Why the last step is not linear, or null. Only the ratio to the previous size is checked. */
function stepFailure(costs: readonly SizeCost[], maxRatio: number, unit: string): string | null {
  if (costs.length < 2) return null;
  const a = costs[costs.length - 2]!;
  const b = costs[costs.length - 1]!;
  // Costs too small to measure (0 ops, sub-tick) cannot show a trend; the budget still applies.
  const ratio = a.cost > 0 ? b.cost / a.cost : b.cost > 0 ? Infinity : 1;
  const sizeRatio = b.size / a.size;
  if (ratio <= maxRatio * (sizeRatio / 4)) return null;
  return (
    `cost grew ${ratio.toFixed(1)}x from n=${a.size} to n=${b.size} (${sizeRatio}x input; ` +
    `bound ${maxRatio} per 4x) in ${unit}: ${describeCosts(costs)}`
  );
}

/** Per-call time: the minimum over `samples` samples (and `best`, a previous minimum). */
function minPerCall<T>(
  c: LinearCase<T>,
  input: T,
  clock: () => number,
  samples: number,
  sampleMs: number,
  best: number,
): number {
  let min = best;
  for (let s = 0; s < samples; s++) min = Math.min(min, timeCalls(c, input, clock, sampleMs));
  return min;
}

/**
 * Calls `c.run(input)` in doubling batches until `minMs` has passed (at least once); returns ms
 * per call. The clock is read once per batch, so its own cost does not flatten small calls.
 */
function timeCalls<T>(c: LinearCase<T>, input: T, clock: () => number, minMs: number): number {
  let calls = 0;
  let sink = 0;
  const start = clock();
  for (let batch = 1; ; batch *= 2) {
    for (let i = 0; i < batch; i++) if (c.run(input) !== undefined) sink++;
    calls += batch;
    const elapsed = clock() - start;
    // `sink` is read so the calls have an observable effect.
    if (elapsed >= minMs) return sink >= 0 ? elapsed / calls : NaN;
  }
}
