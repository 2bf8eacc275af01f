// Rate sweeps (`--rate A..B --steps N`): one open-loop run per rate, each bounded by the
// same duration, and the latency percentiles (from the intended send time) against the
// achieved throughput: where they turn up is the knee, the server's usable capacity.
// The sweep works against any HTTP server; the plot uses the benchmarks' SVG renderer.
import type { PlotSpec } from "../plot.js";
import { niceAxis } from "../plot.js";
import { loadReplayPlan, ReplayError, runReplay, type ReplayOptions, type ReplayResult } from "./run.js";

/** Most steps a sweep may take (each is a full run). */
export const MAX_SWEEP_STEPS = 50;

/** "A..B" -> the two rates, or null when `text` is not a range. */
export function parseRateRange(text: string): { from: number; to: number } | null {
  const m = /^(\d+(?:\.\d+)?)\.\.(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!m) return null;
  return { from: Number(m[1]), to: Number(m[2]) };
}

/** `steps` rates evenly spaced from `from` to `to`, both included. */
export function sweepRates(from: number, to: number, steps: number): number[] {
  if (!(from > 0 && to > from)) throw new ReplayError(`a rate range needs 0 < A < B, got ${from}..${to}`);
  if (!Number.isSafeInteger(steps) || steps < 2 || steps > MAX_SWEEP_STEPS)
    throw new ReplayError(`--steps must be 2..${MAX_SWEEP_STEPS}, got ${steps}`);
  return Array.from(
    { length: steps },
    (_, i) => Math.round((from + ((to - from) * i) / (steps - 1)) * 1000) / 1000,
  );
}

export interface SweepStep {
  intended_rps: number;
  achieved_rps: number;
  /** Responses per second. */
  rps: number;
  kept_up: boolean;
  dropped: number;
  errors: number;
  verify_failures: number;
  latency_ms: ReplayResult["latency_ms"];
  latency_from_intended_ms: NonNullable<ReplayResult["latency_from_intended_ms"]>;
}

export interface SweepResult {
  tool: "sc-cluster loadgen";
  mode: "sweep";
  target: string;
  rates: number[];
  duration_s: number;
  steps: SweepStep[];
  /** The full result of every step. */
  runs: ReplayResult[];
}

export type SweepOptions = Omit<ReplayOptions, "rate" | "speed" | "hgrmOut" | "logOut"> & {
  rates: number[];
  durationS: number;
  /** Called after each step. */
  onStep?: (step: SweepStep, index: number) => void;
};

export async function runSweep(options: SweepOptions): Promise<SweepResult> {
  const { rates, onStep, ...rest } = options;
  if (!(options.durationS > 0)) throw new ReplayError("a sweep needs a duration per step");
  // The trace is read once for all steps.
  const plan =
    rest.plan ??
    (rest.trace
      ? await loadReplayPlan({
          trace: rest.trace,
          format: rest.format,
          query: rest.query,
          verify: rest.verify,
        })
      : undefined);
  const runs: ReplayResult[] = [];
  const steps: SweepStep[] = [];
  for (const [i, rate] of rates.entries()) {
    if (options.signal?.aborted) break;
    const r = await runReplay({ ...rest, plan, rate });
    const o = r.open_loop!;
    const step: SweepStep = {
      intended_rps: o.intended_rps,
      achieved_rps: o.achieved_rps,
      rps: r.rps,
      kept_up: o.kept_up,
      dropped: o.dropped,
      errors: r.errors,
      verify_failures: r.verify_failures,
      latency_ms: r.latency_ms,
      latency_from_intended_ms: r.latency_from_intended_ms!,
    };
    runs.push(r);
    steps.push(step);
    onStep?.(step, i);
  }
  return {
    tool: "sc-cluster loadgen",
    mode: "sweep",
    target: options.target,
    rates,
    duration_s: options.durationS,
    steps,
    runs,
  };
}

/** Latency percentiles (from the intended send time) against achieved throughput. */
export function sweepPlotSpec(r: SweepResult): PlotSpec {
  const series = [
    { key: "p50", name: "p50", color: "#1f77b4", marker: "circle" },
    { key: "p90", name: "p90", color: "#2ca02c", marker: "square" },
    { key: "p99", name: "p99", color: "#d62728", marker: "triangle" },
  ] as const;
  const xMax = niceAxis(Math.max(1, ...r.steps.map((s) => Math.max(s.rps, s.intended_rps))));
  const yMax = niceAxis(Math.max(1, ...r.steps.map((s) => s.latency_from_intended_ms.p99)));
  return {
    xLabel: "Achieved throughput (responses/s)",
    yLabel: "Latency from intended send (ms)",
    xScale: "linear",
    x: [0, xMax.top],
    y: [0, yMax.top],
    xTicks: xMax.ticks,
    yTicks: yMax.ticks,
    series: series.map((s) => ({
      name: s.name,
      color: s.color,
      marker: s.marker,
      points: r.steps.map((st) => ({ x: st.rps, y: st.latency_from_intended_ms[s.key] })),
    })),
    legend: "top-left",
    caption: `Rate sweep ${r.rates[0]}..${r.rates.at(-1)} req/s, ${r.duration_s} s per step: ${r.target}`,
    notes: r.steps.some((s) => !s.kept_up)
      ? [
          `did not keep up at ${r.steps
            .filter((s) => !s.kept_up)
            .map((s) => s.intended_rps)
            .join(", ")} req/s intended`,
        ]
      : [],
  };
}
