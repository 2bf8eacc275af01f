// What a chaos run saw, second by second, and whose fault each error was. Pure: the runner
// hands in the replay's progress samples (running totals, about one a second) and what it
// did when (fault events); this builds the timeline, lays every error at the door of the
// fault in whose window it fell, checks it against what the client may see
// (docs/reliability.md), and draws the timeline (text and SVG).
import { niceAxis, renderPlot, type PlotSpec } from "../../loadgen/plot.js";
import type { Fault, FaultKind } from "./schedule.js";

/** Running totals of the replay at `elapsedS` seconds after its start. */
export interface ReplaySample {
  elapsedS: number;
  requests: number;
  ok: number;
  errors: number;
  verifyFailures: number;
  bytes: number;
  errorsByKind: Record<string, number>;
  verifyFailuresByKind: Record<string, number>;
}

/** A fault as it was carried out. */
export interface FaultEvent {
  fault: Fault;
  /** Seconds from the replay's start: the fault began (signal sent, rule added). */
  startedS: number;
  /** The fault was undone (restart answered, SIGCONT sent, rule removed). */
  endedS: number;
  /** What was done, e.g. "kill -9 pid 1234; restarted as pid 1250 in 1.3 s". */
  detail: string;
  /** Undoing it failed (e.g. the restarted process never became ready). */
  failure?: string;
}

/**
 * Which faults may cost the client an error (a transport error: RST, close, timeout), by kind.
 * Only a node's death: its connections are gone and the dispatcher resets them. Wrong bytes
 * (verification failures) are never allowed.
 */
export const ERRORS_ALLOWED: Record<FaultKind, boolean> = {
  node_kill: true,
  node_stop: false,
  dispatcher_restart: false,
  link_loss: false,
  origin_stop: false,
  purge: false,
};

/** An error arriving this long after its fault ended is still that fault's (> request timeout). */
export const DEFAULT_ATTRIBUTION_S = 12;

export interface TimelineRow {
  /** The sample's time (s from the replay's start), rounded to 0.1 s. */
  t: number;
  /** Requests finished since the previous row, and of those: */
  completed: number;
  ok: number;
  errors: number;
  verifyFailures: number;
  mbps: number;
  /** Responses per second over the row's interval. */
  rps: number;
  errorsByKind: Record<string, number>;
  verifyFailuresByKind: Record<string, number>;
  /** Index of the fault active at `t` (started, not yet ended), if any. */
  activeFault: number | null;
  /** Index of the fault the row's errors and failures are laid at; null: none (or no errors). */
  cause: number | null;
}

export interface CauseTotals {
  /** "node_kill", ..., or "none" (no fault in reach). */
  cause: FaultKind | "none";
  errors: number;
  errorsByKind: Record<string, number>;
  verifyFailures: number;
  verifyFailuresByKind: Record<string, number>;
  allowed: boolean;
}

/** What the summary needs of a replay error sample (loadgen/replay/stats.ts ErrorSample). */
export interface ErrorSampleLike {
  kind: string;
  sentS: number;
  failedS: number;
}

/** The replay's totals at its end (its result, or the last sample when none came). */
export interface ReplayTotals {
  requests: number;
  ok: number;
  errors: number;
  errorsByKind: Record<string, number>;
  verifyFailures: number;
  verifyFailuresByKind: Record<string, number>;
}

export interface ChaosSummary extends ReplayTotals {
  faults: number;
  faultsByKind: Partial<Record<FaultKind, number>>;
  /** Faults of each kind that cost no error and no verification failure at all. */
  faultsWithoutErrorsByKind: Partial<Record<FaultKind, number>>;
  /** Errors and failures by the kind of fault they were laid at. */
  byCause: CauseTotals[];
  /** Errors and failures per fault. */
  perFault: { index: number; kind: FaultKind; target: string; errors: number; verifyFailures: number }[];
  /** The replay's first errors with their details, each laid at the fault in reach when it was sent. */
  errorSamples: (ErrorSampleLike & { cause: number | null; causeKind: FaultKind | "none" })[];
  /** Faults that could not be carried out or undone. */
  faultFailures: string[];
  /** Everything that breaks docs/reliability.md; empty when the run passed. */
  violations: string[];
}

function diffKinds(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) {
    const d = v - (b[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

function addKinds(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * The event whose window holds time `t`: it started at or before `t` and ended at most
 * `attributionS` before it; the latest such (faults do not overlap, so there is one).
 */
export function causeAt(
  events: readonly FaultEvent[],
  t: number,
  attributionS: number,
): FaultEvent | undefined {
  let best: FaultEvent | undefined;
  for (const e of events)
    if (e.startedS <= t && t <= e.endedS + attributionS && (!best || e.startedS > best.startedS)) best = e;
  return best;
}

/**
 * One row per sample (deltas of the running totals). A row's errors are laid at the fault
 * whose window holds the row's *start* or end: a row spans about a second, and an error
 * counted in it happened somewhere inside. A row whose errors are all timeouts is laid where
 * those requests were sent, `timeoutS` earlier: a timeout says when the request went out, not
 * what happened at the moment it expired (the hour run's one timeout was first laid at a loss
 * burst that began 20 s after its request, sent 0.7 s after a node kill).
 */
export function buildTimeline(
  samples: readonly ReplaySample[],
  events: readonly FaultEvent[],
  attributionS = DEFAULT_ATTRIBUTION_S,
  timeoutS?: number,
): TimelineRow[] {
  const rows: TimelineRow[] = [];
  let prev: ReplaySample = {
    elapsedS: 0,
    requests: 0,
    ok: 0,
    errors: 0,
    verifyFailures: 0,
    bytes: 0,
    errorsByKind: {},
    verifyFailuresByKind: {},
  };
  for (const s of samples) {
    const dt = Math.max(1e-3, s.elapsedS - prev.elapsedS);
    const errors = s.errors - prev.errors;
    const verifyFailures = s.verifyFailures - prev.verifyFailures;
    const active = events.find((e) => e.startedS <= s.elapsedS && s.elapsedS < e.endedS);
    let cause: number | null = null;
    const errorsByKind = diffKinds(s.errorsByKind, prev.errorsByKind);
    if (errors > 0 || verifyFailures > 0) {
      const onlyTimeouts = verifyFailures === 0 && errorsByKind.timeout === errors && timeoutS !== undefined;
      const at = onlyTimeouts ? timeoutS : 0;
      const e =
        causeAt(events, s.elapsedS - at, attributionS) ?? causeAt(events, prev.elapsedS - at, attributionS);
      cause = e ? e.fault.index : null;
    }
    rows.push({
      t: round(s.elapsedS, 1),
      completed: s.requests - prev.requests,
      ok: s.ok - prev.ok,
      errors,
      verifyFailures,
      mbps: round(((s.bytes - prev.bytes) * 8) / dt / 1e6, 2),
      rps: round((s.ok + s.verifyFailures - prev.ok - prev.verifyFailures) / dt, 1),
      errorsByKind,
      verifyFailuresByKind: diffKinds(s.verifyFailuresByKind, prev.verifyFailuresByKind),
      activeFault: active ? active.fault.index : null,
      cause,
    });
    prev = s;
  }
  return rows;
}

/** Errors and verification failures laid at one fault. */
export interface FaultTotals {
  errors: number;
  verifyFailures: number;
}

/** The rows' errors and failures by the kind of fault they were laid at, and per fault. */
export interface CauseTally {
  causes: Map<FaultKind | "none", CauseTotals>;
  perFault: Map<number, FaultTotals>;
}

/** Totals, errors by cause, and the verdict against docs/reliability.md. */
export function summarize(
  rows: readonly TimelineRow[],
  events: readonly FaultEvent[],
  final: ReplayTotals,
  errorSamples: readonly ErrorSampleLike[] = [],
  attributionS = DEFAULT_ATTRIBUTION_S,
): ChaosSummary {
  const tally = tallyByCause(rows, events);
  addUntimedErrors(tally.causes, rows, final);
  const counts = countFaults(events, tally.perFault);
  const faultFailures = faultFailuresOf(events);
  return {
    requests: final.requests,
    ok: final.ok,
    errors: final.errors,
    errorsByKind: final.errorsByKind,
    verifyFailures: final.verifyFailures,
    verifyFailuresByKind: final.verifyFailuresByKind,
    faults: events.length,
    faultsByKind: counts.byKind,
    faultsWithoutErrorsByKind: counts.withoutErrorsByKind,
    byCause: [...tally.causes.values()],
    perFault: events.map((e) => ({
      index: e.fault.index,
      kind: e.fault.kind,
      target: e.fault.target,
      ...(tally.perFault.get(e.fault.index) ?? { errors: 0, verifyFailures: 0 }),
    })),
    errorSamples: attributeErrorSamples(errorSamples, events, attributionS),
    faultFailures,
    violations: findViolations(final, tally.causes.values(), faultFailures),
  };
}

function emptyCause(cause: FaultKind | "none"): CauseTotals {
  return {
    cause,
    errors: 0,
    errorsByKind: {},
    verifyFailures: 0,
    verifyFailuresByKind: {},
    allowed: cause !== "none" && ERRORS_ALLOWED[cause],
  };
}

/** Adds up the rows' errors and failures by the kind of fault each row was laid at, and per fault. */
export function tallyByCause(rows: readonly TimelineRow[], events: readonly FaultEvent[]): CauseTally {
  const byIndex = new Map(events.map((e) => [e.fault.index, e]));
  const causes = new Map<FaultKind | "none", CauseTotals>();
  const perFault = new Map<number, FaultTotals>();
  for (const r of rows) {
    if (r.errors === 0 && r.verifyFailures === 0) continue;
    const e = r.cause === null ? undefined : byIndex.get(r.cause);
    const cause: FaultKind | "none" = e ? e.fault.kind : "none";
    let c = causes.get(cause);
    if (!c) {
      c = emptyCause(cause);
      causes.set(cause, c);
    }
    c.errors += r.errors;
    c.verifyFailures += r.verifyFailures;
    addKinds(c.errorsByKind, r.errorsByKind);
    addKinds(c.verifyFailuresByKind, r.verifyFailuresByKind);
    if (e) {
      const p = perFault.get(e.fault.index) ?? { errors: 0, verifyFailures: 0 };
      p.errors += r.errors;
      p.verifyFailures += r.verifyFailures;
      perFault.set(e.fault.index, p);
    }
  }
  return { causes, perFault };
}

/** Errors the samples did not see (finished after the last sample) have no time: no cause. */
export function addUntimedErrors(
  causes: Map<FaultKind | "none", CauseTotals>,
  rows: readonly TimelineRow[],
  final: Pick<ReplayTotals, "errors" | "verifyFailures">,
): void {
  const seenErrors = rows.reduce((a, r) => a + r.errors, 0);
  const seenFailures = rows.reduce((a, r) => a + r.verifyFailures, 0);
  if (final.errors <= seenErrors && final.verifyFailures <= seenFailures) return;
  const c = causes.get("none") ?? emptyCause("none");
  c.errors += Math.max(0, final.errors - seenErrors);
  c.verifyFailures += Math.max(0, final.verifyFailures - seenFailures);
  causes.set("none", c);
}

/** Faults carried out by kind, and of those the ones that cost no error and no failure at all. */
export function countFaults(
  events: readonly FaultEvent[],
  perFault: ReadonlyMap<number, FaultTotals>,
): { byKind: Partial<Record<FaultKind, number>>; withoutErrorsByKind: Partial<Record<FaultKind, number>> } {
  const byKind: Partial<Record<FaultKind, number>> = {};
  const clean: Partial<Record<FaultKind, number>> = {};
  for (const e of events) {
    const k = e.fault.kind;
    byKind[k] = (byKind[k] ?? 0) + 1;
    const p = perFault.get(e.fault.index);
    if (!p || (p.errors === 0 && p.verifyFailures === 0)) clean[k] = (clean[k] ?? 0) + 1;
  }
  return { byKind, withoutErrorsByKind: clean };
}

/** "#3 node_kill node2: <why>" for every fault that could not be carried out or undone. */
export function faultFailuresOf(events: readonly FaultEvent[]): string[] {
  return events
    .filter((e) => e.failure)
    .map((e) => `#${e.fault.index} ${e.fault.kind} ${e.fault.target}: ${e.failure}`);
}

/** Everything in the run that breaks docs/reliability.md. */
export function findViolations(
  final: Pick<ReplayTotals, "errorsByKind" | "verifyFailures" | "verifyFailuresByKind">,
  causes: Iterable<CauseTotals>,
  faultFailures: readonly string[],
): string[] {
  const violations: string[] = [];
  if (final.verifyFailures > 0)
    violations.push(
      `${final.verifyFailures} verification failures (wrong status, length or bytes): ${JSON.stringify(final.verifyFailuresByKind)}`,
    );
  for (const c of causes)
    if (c.errors > 0 && !c.allowed)
      violations.push(
        c.cause === "none"
          ? `${c.errors} errors with no fault in reach: ${JSON.stringify(c.errorsByKind)}`
          : `${c.errors} errors during ${c.cause} faults, which may cost none: ${JSON.stringify(c.errorsByKind)}`,
      );
  // A hang is never what a client may see, whatever the fault (docs/reliability.md point 1).
  const timeouts = final.errorsByKind.timeout ?? 0;
  if (timeouts > 0)
    violations.push(
      `${timeouts} requests timed out (a request may end in an error only by a clean reset or close, never by hanging)`,
    );
  violations.push(...faultFailures);
  return violations;
}

/** Each error sample laid at the fault in reach when its request was sent. */
export function attributeErrorSamples(
  samples: readonly ErrorSampleLike[],
  events: readonly FaultEvent[],
  attributionS: number,
): ChaosSummary["errorSamples"] {
  return samples.map((x) => {
    const e = causeAt(events, x.sentS, attributionS);
    return { ...x, cause: e ? e.fault.index : null, causeKind: e ? e.fault.kind : "none" };
  });
}

/** "node_kill node2 4.1 s (10% loss)" */
export function describeFault(f: Fault): string {
  return `${f.kind} ${f.target} ${f.durationS} s${f.lossPercent !== undefined ? ` ${f.lossPercent}%` : ""}`;
}

export const TIMELINE_HEADER = "     t  resp/s  Mbit/s  errors  verify  fault";

/** One line of the printed timeline; `started`/`ended` are faults beginning or ending in the row. */
export function formatRow(r: TimelineRow, notes: readonly string[]): string {
  const kinds = Object.entries(r.errorsByKind)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const cols = [
    r.t.toFixed(1).padStart(6),
    String(r.rps).padStart(7),
    r.mbps.toFixed(2).padStart(7),
    (String(r.errors) + (kinds ? ` ${kinds}` : "")).padStart(7),
    String(r.verifyFailures).padStart(7),
  ];
  return `${cols.join(" ")}  ${notes.join("; ")}`.trimEnd();
}

/** The whole timeline as text: a row per sample, faults beside the second they began and ended in. */
export function formatTimeline(rows: readonly TimelineRow[], events: readonly FaultEvent[]): string {
  const lines = [TIMELINE_HEADER];
  let prevT = 0;
  for (const r of rows) {
    const notes: string[] = [];
    for (const e of events) {
      if (e.startedS > prevT && e.startedS <= r.t)
        notes.push(`#${e.fault.index} ${describeFault(e.fault)} begins`);
      if (e.endedS > prevT && e.endedS <= r.t) notes.push(`#${e.fault.index} ends: ${e.detail}`);
    }
    lines.push(formatRow(r, notes));
    prevT = r.t;
  }
  return lines.join("\n") + "\n";
}

export const FAULT_COLORS: Record<FaultKind, { color: string; name: string }> = {
  node_kill: { color: "#d62728", name: "red" },
  node_stop: { color: "#ff7f0e", name: "orange" },
  dispatcher_restart: { color: "#9467bd", name: "purple" },
  link_loss: { color: "#8c564b", name: "brown" },
  origin_stop: { color: "#17becf", name: "cyan" },
  purge: { color: "#2ca02c", name: "green" },
};

/** The timeline plot: responses/s and errors/s over time, a shaded band per fault. */
export function timelinePlotSpec(
  rows: readonly TimelineRow[],
  events: readonly FaultEvent[],
  caption: string,
  notes: readonly string[] = [],
): PlotSpec {
  const tMax = Math.max(1, ...rows.map((r) => r.t), ...events.map((e) => e.endedS));
  const x = niceAxis(tMax);
  const y = niceAxis(Math.max(1, ...rows.map((r) => Math.max(r.rps, r.errors, r.verifyFailures))));
  const kinds = [...new Set(events.map((e) => e.fault.kind))];
  return {
    xLabel: "Time since the replay started (s)",
    yLabel: "Per second",
    xScale: "linear",
    x: [0, x.top],
    y: [0, y.top],
    xTicks: x.ticks,
    yTicks: y.ticks,
    series: [
      {
        name: "responses/s",
        color: "#1f77b4",
        marker: "none",
        points: rows.map((r) => ({ x: r.t, y: r.rps })),
      },
      {
        name: "errors/s",
        color: "#d62728",
        marker: "none",
        points: rows.map((r) => ({ x: r.t, y: r.errors })),
      },
      {
        name: "verification failures/s",
        color: "#000000",
        marker: "none",
        dash: "4 2",
        points: rows.map((r) => ({ x: r.t, y: r.verifyFailures })),
      },
    ],
    bands: events.map((e) => ({
      x0: e.startedS,
      x1: Math.max(e.endedS, e.startedS + 0.2),
      color: FAULT_COLORS[e.fault.kind].color,
      label: e.fault.kind === "dispatcher_restart" ? "dispatcher" : e.fault.target,
    })),
    legend: "top-right",
    caption,
    notes: [...notes, `faults shaded: ${kinds.map((k) => `${k} ${FAULT_COLORS[k].name}`).join(", ")}`],
    width: 900,
  };
}

export function renderTimelineSvg(
  rows: readonly TimelineRow[],
  events: readonly FaultEvent[],
  caption: string,
  notes: readonly string[] = [],
): string {
  return renderPlot(timelinePlotSpec(rows, events, caption, notes));
}
