// Reading the Prometheus text the nodes' /metrics serve (pure): counters by name and labels,
// histogram buckets. Only what the benchmarks need; unknown lines are skipped.
import type { Bucket } from "./stats.js";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, "$1");
    const raw = m[3]!;
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (!Number.isNaN(value) || raw === "NaN") out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels` (0 when there are none). */
export function metricSum(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const s of samples)
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

/** Whether any sample has this name (a node without a mode's metrics has none). */
export function hasMetric(samples: readonly Sample[], name: string): boolean {
  return samples.some((s) => s.name === name);
}

/** The cumulative buckets of histogram `name` (its `_bucket` samples), sorted by bound. */
export function histogramBuckets(samples: readonly Sample[], name: string): Bucket[] {
  const out: Bucket[] = [];
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    out.push({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value });
  }
  return out.sort((a, b) => a.le - b.le);
}
