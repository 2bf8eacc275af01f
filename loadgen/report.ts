// Human-readable output for the load generators: the live progress line and the final table.
import type { LoadOutcome } from "./replay/stats.js";

/** Open-loop state on the progress line. */
export interface OpenProgressView {
  /** Null when the rate comes from the trace's timestamps. */
  intendedRps: number | null;
  due: number;
  sent: number;
  dropped: number;
  backlog: number;
}

export interface ProgressView {
  elapsedS: number;
  requests: number;
  ok: number;
  errors: number;
  verifyFailures: number;
  bytes: number;
  limit: number | null;
  durationS: number | null;
  open?: OpenProgressView | null;
}

interface Percentiles {
  count?: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** The shape both load generator modes report (replay and single-URL), as the table reads it. */
export interface LoadResultView extends Omit<
  LoadOutcome,
  "tool" | "verify_failure_samples" | "status_counts" | "notes"
> {
  mode: string;
  stopped_by?: string;
  verify_failure_samples?: LoadOutcome["verify_failure_samples"];
  skipped_by_reason?: Record<string, number>;
  status_counts?: Record<string, number>;
  latency_from_intended_ms?: Percentiles | null;
  phases_ms?: { connect: Percentiles; ttfb: Percentiles; total: Percentiles };
  open_loop?: {
    intended_rps: number;
    achieved_rps: number;
    due: number;
    sent: number;
    dropped: number;
    backlog_at_end: number;
    max_backlog: number;
    kept_up: boolean;
  } | null;
  by_class?: { key: string; requests: number; errors: number; latency_ms: Percentiles }[];
  notes?: string[];
}

function bar(fraction: number, width = 20): string {
  const f = Math.max(0, Math.min(1, fraction));
  const n = Math.round(f * width);
  return "[" + "#".repeat(n) + "-".repeat(width - n) + "]";
}

export function formatProgress(p: ProgressView): string {
  const fractions: number[] = [];
  if (p.limit) fractions.push(p.requests / p.limit);
  if (p.durationS) fractions.push(p.elapsedS / p.durationS);
  const frac = fractions.length ? Math.max(...fractions) : 0;
  const rate = p.elapsedS > 0 ? p.requests / p.elapsedS : 0;
  const mbps = p.elapsedS > 0 ? (p.bytes * 8) / p.elapsedS / 1e6 : 0;
  let open = "";
  if (p.open) {
    const o = p.open;
    const sentRate = p.elapsedS > 0 ? o.sent / p.elapsedS : 0;
    open =
      `  sent ${sentRate.toFixed(0)}/${o.intendedRps === null ? "trace" : o.intendedRps} req/s` +
      `  backlog ${o.backlog}  dropped ${o.dropped}`;
  }
  return (
    `${bar(frac)} ${(frac * 100).toFixed(0).padStart(3)}%  ${p.elapsedS.toFixed(1)}s  ` +
    `${p.requests} req  ${rate.toFixed(0)} req/s  ${mbps.toFixed(1)} Mbit/s  ` +
    `ok ${p.ok}  err ${p.errors}  verify-fail ${p.verifyFailures}${open}`
  );
}

const pct = (l: Percentiles) =>
  `p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  mean ${l.mean}`;

function byKind(m: Record<string, number> | undefined): string {
  const e = Object.entries(m ?? {});
  return e.length ? " (" + e.map(([k, v]) => `${k} ${v}`).join(", ") + ")" : "";
}

export function formatResult(r: LoadResultView): string {
  const rows: [string, string][] = [
    ["requests", `${r.requests}${r.stopped_by ? `  (stopped by ${r.stopped_by})` : ""}`],
    ["ok", String(r.ok)],
    ["errors", `${r.errors}${byKind(r.errors_by_kind)}`],
    ["verify failures", `${r.verify_failures}${byKind(r.verify_failures_by_kind)}`],
    ["skipped (trace)", `${r.skipped}${byKind(r.skipped_by_reason)}`],
    ["statuses", byKind(r.status_counts).slice(2, -1) || "-"],
    ["elapsed", `${r.elapsed_s.toFixed(3)} s`],
    ["throughput", `${r.rps.toFixed(1)} req/s, ${r.mbps.toFixed(2)} Mbit/s (${r.bytes} body bytes)`],
    ["latency ms", pct(r.latency_ms)],
  ];
  const o = r.open_loop;
  if (o) {
    rows.push(
      [
        "open loop",
        `intended ${o.intended_rps} req/s, achieved ${o.achieved_rps} req/s: ` +
          `sent ${o.sent} of ${o.due} due, dropped ${o.dropped}, ` +
          `backlog max ${o.max_backlog}, at end ${o.backlog_at_end}` +
          (o.kept_up ? "" : "  -- DID NOT KEEP UP"),
      ],
      ["from intended ms", r.latency_from_intended_ms ? pct(r.latency_from_intended_ms) : "-"],
    );
  }
  if (r.phases_ms) {
    const c = r.phases_ms.connect;
    rows.push(
      ["connect ms", c.count ? `${pct(c)}  (${c.count} connections)` : "-"],
      ["first byte ms", pct(r.phases_ms.ttfb)],
    );
  }
  // Per response class (status x size): transport errors have no latency.
  for (const c of r.by_class ?? []) {
    rows.push([
      `  ${c.key}`,
      c.key === "error" ? `${c.requests} req` : `${c.requests} req  ${pct(c.latency_ms)}`,
    ]);
  }
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}${v}`);
  for (const s of r.verify_failure_samples ?? []) {
    lines.push(`  verify failure: ${s.method} ${s.path}: ${s.failure}: expected ${s.expected}, got ${s.got}`);
  }
  for (const n of r.notes ?? []) lines.push(`  note: ${n}`);
  return lines.join("\n");
}
