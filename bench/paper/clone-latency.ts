// Clone latency as `bench micro` reports it (pure): per size, idle (a one-connection probe) and
// under the Figure 8 load, from every node. Two sources, both read by name so that measures
// the nodes add later (the one-way CLONE -> first response segment) appear without a change
// here:
//   - every `sc_clone_*_seconds` histogram in a node's /metrics, as the delta over the phase
//     (windowed; quantiles interpolated inside buckets);
//   - every latency summary ({samples, p50, p90, p99, max} in us) in a node's /stats `sc`
//     section, e.g. `cloneLatencyUs`, as it stands at the end of the phase (exact quantiles,
//     but over the node's last N samples, which may reach back before the phase).
import { histogramBuckets, metricSum, type Sample } from "./metrics.js";
import { bucketDelta, histogramQuantile, type Bucket } from "./stats.js";

export interface LatencySummary {
  /** Where the observations come from. */
  what: string;
  samples: number;
  /** Estimated from the histogram buckets (linear inside a bucket), microseconds. */
  p50_us: number;
  p90_us: number;
  p99_us: number;
  buckets: { le_us: number; count: number }[];
}

/** A latency summary from a node's /stats: exact percentiles over its recent samples, us. */
export interface StatsLatency {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface CloneLatencyPhase {
  size: number;
  /** "figure8": during the measured runs at this size; "idle": the one-connection probe after them. */
  load: "figure8" | "idle";
  what: string;
  /** By node, then histogram name: the observations made during the phase. */
  histograms: Record<string, Record<string, LatencySummary>>;
  /**
   * By node, then /stats key: the summaries at the end of the phase, with how many clones the
   * node sent or received during the phase (`phase_clones`, from its counters); when that is
   * at least the summary's `samples`, the summary covers this phase only.
   */
  stats: Record<string, Record<string, StatsLatency & { phase_clones: number }>>;
}

const HISTOGRAM = /^sc_clone_\w+_seconds$/;

/** Names of the clone latency histograms in a node's metrics. */
export function cloneLatencyHistograms(samples: readonly Sample[]): string[] {
  const names = new Set<string>();
  for (const s of samples) {
    const base = s.name.endsWith("_bucket") ? s.name.slice(0, -"_bucket".length) : null;
    if (base !== null && HISTOGRAM.test(base)) names.add(base);
  }
  return [...names].sort();
}

/** Clone latency quantiles (microseconds) estimated from histogram buckets in seconds. */
export function latencySummary(what: string, buckets: Bucket[]): LatencySummary {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  const q = (x: number) => Math.round(histogramQuantile(buckets, x) * 1e6 * 10) / 10;
  return {
    what,
    samples: total,
    p50_us: q(0.5),
    p90_us: q(0.9),
    p99_us: q(0.99),
    buckets: buckets.map((b) => ({
      le_us: b.le === Infinity ? Infinity : Math.round(b.le * 1e6),
      count: b.count,
    })),
  };
}

/** The latency summaries in a /stats document's `sc` section, by key (anything else is ignored). */
export function statsLatencies(stats: unknown): Record<string, StatsLatency> {
  const sc = (stats as { sc?: unknown } | null)?.sc;
  const out: Record<string, StatsLatency> = {};
  if (typeof sc !== "object" || sc === null) return out;
  for (const [key, v] of Object.entries(sc)) {
    if (typeof v !== "object" || v === null) continue;
    const x = v as Record<string, unknown>;
    const fields = ["samples", "p50", "p90", "p99", "max"] as const;
    if (fields.every((f) => typeof x[f] === "number"))
      out[key] = { samples: x.samples, p50: x.p50, p90: x.p90, p99: x.p99, max: x.max } as StatsLatency;
  }
  return out;
}

/**
 * One phase's figures from every node's metrics before and after it and its /stats after it
 * (index i = node `nodes[i]`). Histograms without observations in the phase are left out.
 */
export function clonePhase(
  phase: Pick<CloneLatencyPhase, "size" | "load" | "what">,
  nodes: readonly string[],
  before: readonly Sample[][],
  after: readonly Sample[][],
  stats: readonly unknown[],
): CloneLatencyPhase {
  const histograms: CloneLatencyPhase["histograms"] = {};
  const statsOut: CloneLatencyPhase["stats"] = {};
  nodes.forEach((node, i) => {
    const d = (name: string) => metricSum(after[i] ?? [], name) - metricSum(before[i] ?? [], name);
    const clones = d("sc_clones_sent_total") + d("sc_clones_received_total");
    for (const name of cloneLatencyHistograms(after[i] ?? [])) {
      const delta = bucketDelta(histogramBuckets(after[i]!, name), histogramBuckets(before[i] ?? [], name));
      const s = latencySummary(`${node}, ${phase.what}`, delta);
      if (s.samples <= 0) continue;
      (histograms[node] ??= {})[name] = s;
    }
    for (const [key, l] of Object.entries(statsLatencies(stats[i])))
      (statsOut[node] ??= {})[key] = { ...l, phase_clones: clones };
  });
  return { ...phase, histograms, stats: statsOut };
}

/** The paper's one-way clone latency: in-kernel SC on a Pentium III 733 MHz (section 4.1). */
export const PAPER_ONE_WAY_US = 46;

/** The nodes' one-way clone latency histogram: CLONE sent by the original -> the clone's first response segment. */
export const ONE_WAY_HISTOGRAM = "sc_clone_one_way_seconds";

/** One-way clone latency of one phase, from the clone's node (the node that observed the most). */
export interface OneWayRow {
  size: number;
  load: CloneLatencyPhase["load"];
  node: string;
  samples: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
}

/**
 * The one-way clone latency per phase (size and load), as the paper measured it, from the
 * node that observed it (clones land on one node in Figure 8's arrangement; if several did,
 * the one with the most samples). Phases whose nodes export no one-way histogram are left out.
 */
export function oneWayLatency(phases: readonly CloneLatencyPhase[]): OneWayRow[] {
  const out: OneWayRow[] = [];
  for (const p of phases) {
    let best: { node: string; l: LatencySummary } | null = null;
    for (const [node, byName] of Object.entries(p.histograms)) {
      const l = byName[ONE_WAY_HISTOGRAM];
      if (l && l.samples > 0 && (best === null || l.samples > best.l.samples)) best = { node, l };
    }
    if (best)
      out.push({
        size: p.size,
        load: p.load,
        node: best.node,
        samples: best.l.samples,
        p50_us: best.l.p50_us,
        p90_us: best.l.p90_us,
        p99_us: best.l.p99_us,
      });
  }
  return out;
}
