// runReplay: the trace replay load generator. Compiles the trace into a plan (plan.ts),
// starts N worker threads with M connections each (worker.ts), and merges their counters
// and timings into one result (the `--json` shape, docs/loadgen.md). Closed loop by
// default; open loop with a rate (--rate) or the trace's own timestamps (--speed).
import { writeFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { QueryPolicy } from "../classify.js";
import { httpDate, readManifest, SITE_MTIME, type Manifest } from "../manifest.js";
import { nothingToReplay, NothingToReplayError, TraceReader, type FormatOption } from "../trace/reader.js";
import { PlanBuilder, type ReplayPlan } from "./plan.js";
import {
  mergeCounters,
  newCounters,
  type Counters,
  type ErrorSample,
  type LatencySummaryMs,
  type LoadOutcome,
  verifyParam,
} from "./stats.js";
import type {
  FromWorker,
  OpenLoopSnapshot,
  Pacing,
  ProgressSnapshot,
  ToWorker,
  WorkerInit,
} from "./worker.js";
import type { ScheduleSpec } from "../schedule.js";
import { percentilesMs, Timings, type Group, type PercentilesMs } from "./timings.js";
import type { Histogram } from "../histogram.js";
import { UserError } from "../../common/errors.js";
import { runLoadWorkers } from "../worker-pool.js";

/** Due requests that may wait for a free connection, in all workers, unless told otherwise. */
export const DEFAULT_MAX_BACKLOG = 10_000;
/** URLs the result gives their own figures for (the most frequent in the trace). */
export const TOP_URLS = 20;
/** A note says the client's own timers ran late when they did by this much (us). */
const CLIENT_LAG_NOTE_US = 50_000;
/** The open loop kept up if it sent at least this share of the requests that came due. */
const KEPT_UP_SHARE = 0.99;

/** Used when neither a request count nor a duration is given: one pass, at most this long. */
export const DEFAULT_TIME_CAP_S = 600;

export class ReplayError extends UserError {
  constructor(message: string) {
    super(message, "ERR_REPLAY");
  }
}

export interface ReplayOptions {
  /** Trace to replay (read once, streaming), or a plan built earlier with loadReplayPlan. */
  trace?: string;
  plan?: ReplayPlan;
  format?: FormatOption;
  query?: QueryPolicy;
  /** Base URL of the server: "http://127.0.0.1:8080" or https://... (a path prefix is allowed). */
  target: string;
  /** For an https:// target: a CA certificate (PEM text) to trust besides the system's. */
  ca?: string;
  /** Worker threads (N) and connections per worker (M). */
  clients?: number;
  conns?: number;
  keepalive?: boolean;
  /** Requests in flight per connection (HTTP pipelining; needs keepalive). */
  pipeline?: number;
  /** Stop after this many requests (the trace wraps around if shorter). */
  requests?: number;
  /** Stop issuing requests after this many seconds. */
  durationS?: number;
  /** Manifest to verify every response against (path, or one already read). */
  verify?: string | Manifest;
  /** Per-request timeout (connect, headers, and between body chunks), ms. */
  timeoutMs?: number;
  /** Open loop: this many requests per second in total, on a schedule. */
  rate?: number;
  schedule?: "constant" | "poisson";
  /** Seed of the Poisson schedule (the same seed gives the same send times). */
  seed?: number;
  /** Open loop on the trace's timestamps, this many times faster; 0 = closed loop. */
  speed?: number;
  /** Open loop: due requests that may wait for a free connection (the rest are dropped). */
  maxBacklog?: number;
  /** Write the latency percentile distribution (`.hgrm` text) here. */
  hgrmOut?: string;
  /** Write the per-second results (tab-separated) here. */
  logOut?: string;
  /** Called every progressIntervalMs with running totals. */
  onProgress?: (p: ReplayProgress) => void;
  progressIntervalMs?: number;
  /** Aborting stops issuing requests; in-flight ones finish (bounded by the timeout). */
  signal?: AbortSignal;
}

export interface ReplayProgress extends ProgressSnapshot {
  /** Open loop: sends, drops and backlog so far, and the intended rate (null: from the trace). */
  open?: (OpenLoopSnapshot & { intendedRps: number | null }) | null;
  elapsedS: number;
  /** Requests the run is bounded to, if a count bounds it. */
  limit: number | null;
  durationS: number | null;
}

export type StoppedBy = "requests" | "duration" | "time_cap" | "interrupted";

export interface ReplayResult extends LoadOutcome {
  mode: "replay";
  params: {
    trace: string | null;
    format: string | null;
    target: string;
    clients: number;
    conns: number;
    keepalive: boolean;
    pipeline: number;
    requests: number | null;
    duration_s: number | null;
    time_cap_s: number | null;
    verify: string | null;
    timeout_ms: number;
    query: QueryPolicy;
    /** closed: next request when the last answered; rate: --rate; trace: --speed. */
    pacing: "closed" | "rate" | "trace";
    rate: number | null;
    schedule: "constant" | "poisson" | null;
    seed: number | null;
    speed: number | null;
    max_backlog: number | null;
  };
  trace: {
    lines: number;
    records: number;
    bad_lines: number;
    bad_by_reason: Record<string, number>;
    bad_samples: { line: number; reason: string; text: string }[];
    /** Replayable entries in one pass over the trace. */
    replayable: number;
    distinct_requests: number;
    /** Seconds from the first to the last replayable record (null: no timestamps). */
    span_s: number | null;
    /** Records logged earlier than the one before them (sent with it under --speed). */
    out_of_order: number;
  } | null;
  stopped_by: StoppedBy;
  /** The first transport errors with their details (when sent, the client's port). */
  error_samples: ErrorSample[];
  /** Trace records not replayed (one pass), by reason. */
  skipped_by_reason: Record<string, number>;
  /** Open loop: latency from the intended send time (coordinated-omission corrected). */
  latency_from_intended_ms: PercentilesMs | null;
  /** Per phase: TCP connect (requests that opened a connection), time to first byte, total. */
  phases_ms: { connect: PercentilesMs; ttfb: PercentilesMs; total: PercentilesMs };
  open_loop: OpenLoopResult | null;
  /** By response class (status x body size bucket; "error" for transport errors). */
  by_class: GroupResult[];
  /** The TOP_URLS most frequent requests of the trace. */
  by_url: (GroupResult & { method: string; path: string; kind: string })[];
  /** One row per second of the run (by completion time; sends by send time). */
  per_second: PerSecondRow[];
}

export interface OpenLoopResult {
  intended_rps: number;
  /** Requests sent per second, over the time it took to send them. */
  achieved_rps: number;
  /** Requests that came due, were sent, were dropped (backlog full), were still waiting at the end. */
  due: number;
  sent: number;
  dropped: number;
  backlog_at_end: number;
  max_backlog: number;
  /** Delay from intended to actual send (the queueing the correction accounts for). */
  send_delay_ms: PercentilesMs;
  /** How late the client's send timers fired: its own CPU lag, counted in the corrected latency. */
  client_lag_ms: PercentilesMs;
  /** Sent at least 99% of the due requests and dropped none. */
  kept_up: boolean;
}

export interface GroupResult {
  key: string;
  requests: number;
  ok: number;
  errors: number;
  verify_failures: number;
  bytes: number;
  latency_ms: PercentilesMs;
  ttfb_ms: PercentilesMs;
}

export interface PerSecondRow {
  second: number;
  sent: number;
  completed: number;
  ok: number;
  errors: number;
  mbps: number;
  /** Latency percentiles of the responses completed in this second (from the intended time in the open loop). */
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Reads the trace once and compiles it (and the manifest's expectations) into a plan. */
export async function loadReplayPlan(options: {
  trace: string;
  format?: FormatOption;
  query?: QueryPolicy;
  verify?: string | Manifest;
}): Promise<ReplayPlan> {
  const manifest =
    options.verify === undefined
      ? null
      : typeof options.verify === "string"
        ? await readManifest(options.verify)
        : options.verify;
  const reader = await TraceReader.open(options.trace, { format: options.format ?? "auto" });
  const builder = new PlanBuilder(manifest, options.query ?? "skip");
  for await (const batch of reader.batches()) for (const rec of batch) builder.add(rec);
  return builder.build(reader.stats);
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ReplayError(`${name} must be a whole number >= 1, got ${v}`);
  return n;
}

function parseTarget(target: string): { origin: string; pathPrefix: string; https: boolean } {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new ReplayError(`target '${target}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new ReplayError(`target '${target}': only http:// and https:// are supported`);
  return { origin: u.origin, pathPrefix: u.pathname.replace(/\/+$/, ""), https: u.protocol === "https:" };
}

/** How requests are paced: closed loop, a rate (--rate), or the trace's timestamps (--speed). */
export type PacingSpec =
  | { kind: "closed" }
  | {
      kind: "rate";
      schedule: Extract<ScheduleSpec, { kind: "constant" | "poisson" }>;
      /** Due requests that may wait for a free connection, in all workers. */
      maxBacklog: number;
    }
  | { kind: "trace"; speed: number; maxBacklog: number };

function parsePacing(options: ReplayOptions): PacingSpec {
  const speed = options.speed ?? 0;
  if (!(speed >= 0) || !Number.isFinite(speed))
    throw new ReplayError(`speed must be >= 0, got ${options.speed}`);
  if (options.rate !== undefined && !(options.rate > 0 && options.rate <= 10_000_000)) {
    throw new ReplayError(`rate must be > 0 and <= 10000000 requests/s, got ${options.rate}`);
  }
  if (options.rate !== undefined && speed > 0)
    throw new ReplayError("give either a rate or a speed, not both");
  if (options.rate === undefined && (options.schedule !== undefined || options.seed !== undefined))
    throw new ReplayError("a schedule or seed needs a rate");
  if (options.seed !== undefined && !(Number.isSafeInteger(options.seed) && options.seed >= 0))
    throw new ReplayError(`seed must be a whole number >= 0, got ${options.seed}`);
  const maxBacklog = () => positiveInt("max backlog", options.maxBacklog, DEFAULT_MAX_BACKLOG);
  if (options.rate !== undefined) {
    const rate = options.rate;
    const schedule: Extract<PacingSpec, { kind: "rate" }>["schedule"] =
      options.schedule === "poisson"
        ? { kind: "poisson", rate, seed: options.seed ?? 1 }
        : { kind: "constant", rate };
    return { kind: "rate", schedule, maxBacklog: maxBacklog() };
  }
  if (speed > 0) return { kind: "trace", speed, maxBacklog: maxBacklog() };
  if (options.maxBacklog !== undefined) throw new ReplayError("a backlog bound needs a rate or a speed");
  return { kind: "closed" };
}

/** The options of a replay, checked: what the later phases work from. */
export interface ReplaySettings {
  clients: number;
  conns: number;
  pipeline: number;
  keepalive: boolean;
  timeoutMs: number;
  query: QueryPolicy;
  pacing: PacingSpec;
  origin: string;
  pathPrefix: string;
  /** An https:// target: the CA to trust (PEM) besides the system's, if given. */
  tls: { ca?: string } | null;
}

/** Checks the options (before any file is read) and fills in the defaults. */
export function replaySettings(options: ReplayOptions): ReplaySettings {
  const clients = positiveInt("clients", options.clients, 1);
  const conns = positiveInt("conns", options.conns, 1);
  const pipeline = positiveInt("pipeline", options.pipeline, 1);
  const keepalive = options.keepalive ?? false;
  const timeoutMs = positiveInt("timeout", options.timeoutMs, 10_000);
  if (pipeline > 1 && !keepalive)
    throw new ReplayError("pipelining needs keep-alive connections (--keepalive)");
  if (options.requests !== undefined) positiveInt("requests", options.requests, 1);
  if (options.durationS !== undefined && !(options.durationS > 0)) {
    throw new ReplayError(`duration must be > 0 seconds, got ${options.durationS}`);
  }
  const pacing = parsePacing(options);
  const { origin, pathPrefix, https } = parseTarget(options.target);
  if (options.ca !== undefined && !https) throw new ReplayError("a CA (--ca) is for an https:// target");
  const query = options.query ?? "skip";
  const tls = https ? { ...(options.ca !== undefined ? { ca: options.ca } : {}) } : null;
  return { clients, conns, pipeline, keepalive, timeoutMs, query, pacing, origin, pathPrefix, tls };
}

/** The plan given, or the trace read into one. */
async function obtainPlan(options: ReplayOptions, query: QueryPolicy): Promise<ReplayPlan> {
  if (options.plan) return options.plan;
  if (!options.trace) throw new ReplayError("a trace (or a plan) is required");
  return loadReplayPlan({ trace: options.trace, format: options.format, query, verify: options.verify });
}

/** Plan classes in order of frequency in the trace, the first `n`. */
export function topClasses(plan: ReplayPlan, n: number): number[] {
  const counts = new Uint32Array(plan.classes.length);
  for (const c of plan.entries) counts[c]!++;
  return [...counts.keys()]
    .filter((c) => counts[c]! > 0)
    .sort((a, b) => counts[b]! - counts[a]! || a - b)
    .slice(0, n);
}

/** How one replay runs: its open-loop schedule, its bounds, the URLs it keeps figures for. */
export interface ReplayRunPlan {
  /** The open loop's schedule and backlog bound (in all workers); null: the closed loop. */
  open: { schedule: ScheduleSpec; maxBacklog: number } | null;
  /** Requests in all workers (Infinity: no count bounds the run). */
  limit: number;
  /** --duration, and the time cap used when there is none (null: not capped). */
  durationS: number | null;
  timeCapS: number | null;
  /** When the workers stop issuing requests: the duration, else the time cap (s after the start). */
  deadlineS: number | null;
  trackedUrls: number[];
  /** Notes for the result, in the order they were found. */
  notes: string[];
}

/** The schedule of the open loop, or null for the closed loop. */
function openLoopSchedule(pacing: PacingSpec, plan: ReplayPlan, notes: string[]): ReplayRunPlan["open"] {
  if (pacing.kind === "closed") return null;
  if (pacing.kind === "rate") return { schedule: pacing.schedule, maxBacklog: pacing.maxBacklog };
  if (!plan.offsetsS)
    throw new ReplayError("--speed needs timestamps, and this trace has none (a URL list?)");
  if (plan.outOfOrder > 0)
    notes.push(`${plan.outOfOrder} records were logged earlier than the one before them; sent with it`);
  const schedule: ScheduleSpec = { kind: "trace", offsetsS: plan.offsetsS, speed: pacing.speed };
  return { schedule, maxBacklog: pacing.maxBacklog };
}

/** Plans the run from the checked options and the plan; refuses a plan with nothing to replay. */
export function planReplayRun(
  settings: ReplaySettings,
  plan: ReplayPlan,
  options: Pick<ReplayOptions, "trace" | "requests" | "durationS">,
): ReplayRunPlan {
  const entryCount = plan.entries.length;
  if (entryCount === 0) {
    throw plan.trace
      ? new NothingToReplayError(
          nothingToReplay(options.trace ?? "(trace)", plan.trace, plan.skippedByReason),
        )
      : new ReplayError(
          `nothing to replay: no trace line is replayable (${plan.skipped} skipped: ${JSON.stringify(plan.skippedByReason)})`,
        );
  }
  const notes: string[] = [];
  const open = openLoopSchedule(settings.pacing, plan, notes);

  // Bounds: always a count, a duration, or both; the open loop always has a time bound too
  // (a schedule can run for days: a month-long trace at --speed 1).
  let limit = options.requests ?? Infinity;
  const durationS = options.durationS ?? null;
  let timeCapS: number | null = null;
  if (options.requests === undefined && options.durationS === undefined) {
    limit = entryCount;
    timeCapS = DEFAULT_TIME_CAP_S;
    notes.push(
      `no --requests or --duration: one pass over the trace (${entryCount} requests), capped at ${DEFAULT_TIME_CAP_S} s`,
    );
  } else if (open && durationS === null) {
    timeCapS = DEFAULT_TIME_CAP_S;
  }
  if (open && limit === Infinity && durationS !== null) {
    // Bounded by the duration; the schedule is cut there.
    limit = Number.MAX_SAFE_INTEGER;
  }
  const deadlineS = durationS ?? timeCapS;
  return { open, limit, durationS, timeCapS, deadlineS, trackedUrls: topClasses(plan, TOP_URLS), notes };
}

/** What each worker is given: its connection slots, the shared plan entries and the pacing. */
export function replayWorkerInits(
  settings: ReplaySettings,
  plan: ReplayPlan,
  run: ReplayRunPlan,
  progressIntervalMs: number,
): WorkerInit[] {
  const { clients, conns } = settings;
  const entryCount = plan.entries.length;
  const shared = new SharedArrayBuffer(entryCount * 4);
  new Uint32Array(shared).set(plan.entries);
  const ifModifiedSince = httpDate(plan.manifest?.mtime ?? SITE_MTIME);
  return Array.from({ length: clients }, (_, w): WorkerInit => {
    const slots: number[] = [];
    for (let j = 0; j < conns; j++) slots.push(w + clients * j);
    const pacing: Pacing = run.open
      ? {
          kind: "open",
          schedule: run.open.schedule,
          worker: w,
          workers: clients,
          queueCapacity: Math.max(1, Math.ceil(run.open.maxBacklog / clients)),
        }
      : { kind: "closed" };
    return {
      origin: settings.origin,
      pathPrefix: settings.pathPrefix,
      tls: settings.tls,
      slots,
      totalSlots: clients * conns,
      entries: shared,
      entryCount,
      classes: plan.classes,
      limit: run.limit,
      keepalive: settings.keepalive,
      pipeline: settings.pipeline,
      timeoutMs: settings.timeoutMs,
      ifModifiedSince,
      progressIntervalMs,
      pacing,
      trackedUrls: run.trackedUrls,
    };
  });
}

/** A worker's progress before its first report. */
export function noProgress(): ProgressSnapshot {
  return { requests: 0, ok: 0, errors: 0, verifyFailures: 0, bytes: 0 };
}

/** Running totals over the workers' latest progress snapshots (kinds summed too). */
export function sumProgress(list: ProgressSnapshot[]): Required<ProgressSnapshot> {
  return list.reduce<Required<ProgressSnapshot>>(
    (a, p) => ({
      requests: a.requests + p.requests,
      ok: a.ok + p.ok,
      errors: a.errors + p.errors,
      verifyFailures: a.verifyFailures + p.verifyFailures,
      bytes: a.bytes + p.bytes,
      errorsByKind: addKinds(a.errorsByKind, p.errorsByKind),
      verifyFailuresByKind: addKinds(a.verifyFailuresByKind, p.verifyFailuresByKind),
    }),
    { ...noProgress(), errorsByKind: {}, verifyFailuresByKind: {} },
  );
}

/** Each worker's latest progress, and what onProgress is told: their sum so far. */
class ReplayProgressBoard {
  private readonly latest: ProgressSnapshot[];
  private readonly latestOpen: (OpenLoopSnapshot | null)[];
  /** The run's time zero (epoch ms), set when the workers start. */
  startEpoch = 0;

  constructor(
    workers: number,
    private readonly fixed: { intendedRps: number | null; limit: number | null; durationS: number | null },
  ) {
    this.latest = Array.from({ length: workers }, noProgress);
    this.latestOpen = Array.from({ length: workers }, () => null);
  }

  record(worker: number, progress: ProgressSnapshot, open: OpenLoopSnapshot | null): void {
    this.latest[worker] = progress;
    this.latestOpen[worker] = open;
  }

  totals(): ReplayProgress {
    const o = sumOpen(this.latestOpen);
    return {
      ...sumProgress(this.latest),
      open: o ? { ...o, intendedRps: this.fixed.intendedRps } : null,
      elapsedS: (performance.timeOrigin + performance.now() - this.startEpoch) / 1000,
      limit: this.fixed.limit,
      durationS: this.fixed.durationS,
    };
  }
}

type WorkerReport = Extract<FromWorker, { type: "done" }>;

/** Runs the workers to the end of the run (or the abort) and returns their reports. */
async function runReplayWorkers(
  options: ReplayOptions,
  settings: ReplaySettings,
  run: ReplayRunPlan,
  inits: WorkerInit[],
): Promise<WorkerReport[]> {
  const board = new ReplayProgressBoard(settings.clients, {
    intendedRps: intendedRate(settings.pacing),
    limit: Number.isFinite(run.limit) && run.limit < Number.MAX_SAFE_INTEGER ? run.limit : null,
    durationS: run.deadlineS,
  });
  const { done } = await runLoadWorkers<WorkerInit, FromWorker>({
    script: new URL("./worker.js", import.meta.url),
    inits,
    start: () => {
      // The open loop starts a little later, so that every worker holds the start
      // message when its first request comes due.
      const startEpoch = performance.timeOrigin + performance.now() + (run.open ? 20 : 0);
      board.startEpoch = startEpoch;
      return {
        type: "start",
        startEpochMs: startEpoch,
        deadlineEpochMs: run.deadlineS === null ? null : startEpoch + run.deadlineS * 1000,
      } satisfies ToWorker;
    },
    onProgress: (w, msg) => {
      board.record(w, msg.progress, msg.open);
      if (options.onProgress) options.onProgress(board.totals());
    },
    exitError: (w, code) => new ReplayError(`replay worker ${w} exited with code ${code}`),
    signal: options.signal,
  });
  return done;
}

/** The workers' reports merged into one. */
export interface MergedReports {
  counters: Counters;
  timings: Timings;
  /** From the first request sent to the last response ended (0: none). */
  elapsedS: number;
  /** Some worker was stopped (the abort), or stopped at the deadline. */
  stopped: boolean;
  hitDeadline: boolean;
  /** The open loop's sends, drops and backlog (null: the closed loop). */
  open: OpenLoopSnapshot | null;
}

export function mergeWorkerReports(done: WorkerReport[]): MergedReports {
  const counters: Counters = newCounters();
  const timings = new Timings();
  let first = Infinity;
  let last = -Infinity;
  for (const d of done) {
    mergeCounters(counters, d.counters);
    timings.add(d.timings);
    if (d.firstStartEpochMs !== null) first = Math.min(first, d.firstStartEpochMs);
    if (d.lastEndEpochMs !== null) last = Math.max(last, d.lastEndEpochMs);
  }
  return {
    counters,
    timings,
    elapsedS: Number.isFinite(first) && last > first ? (last - first) / 1000 : 0,
    stopped: done.some((d) => d.stopped),
    hitDeadline: done.some((d) => d.hitDeadline),
    open: sumOpen(done.map((d) => d.open)),
  };
}

/** What ended the run: the abort, else the deadline (a duration or the time cap), else the count. */
export function replayStoppedBy(
  merged: Pick<MergedReports, "stopped" | "hitDeadline">,
  run: ReplayRunPlan,
): StoppedBy {
  if (merged.stopped) return "interrupted";
  if (merged.hitDeadline) return run.durationS !== null ? "duration" : "time_cap";
  return "requests";
}

/** The rate the open loop was asked for (null: the trace's own, or the closed loop). */
function intendedRate(pacing: PacingSpec): number | null {
  return pacing.kind === "rate" ? pacing.schedule.rate : null;
}

/** The open loop's figures, and the note when the target did not keep up. */
export function openLoopResult(
  o: OpenLoopSnapshot,
  pacing: PacingSpec,
  timings: Timings,
): { result: OpenLoopResult; note: string | null } {
  const rate = intendedRate(pacing);
  // Windows: a constant schedule's n requests span n gaps of 1/R (the last one included).
  const gapS = rate ? 1 / rate : 0;
  const intendedWindowS = Math.max(0.001, o.lastIntendedMs / 1000 + gapS);
  const sendWindowS = Math.max(intendedWindowS, o.lastSentMs / 1000 + gapS);
  const intendedRps = rate ?? o.due / intendedWindowS;
  const achievedRps = o.sent / sendWindowS;
  const keptUp = o.dropped === 0 && o.sent >= KEPT_UP_SHARE * o.due;
  const result: OpenLoopResult = {
    intended_rps: round(intendedRps, 1),
    achieved_rps: round(achievedRps, 1),
    due: o.due,
    sent: o.sent,
    dropped: o.dropped,
    backlog_at_end: o.backlog,
    max_backlog: o.maxBacklog,
    send_delay_ms: percentilesMs(timings.wait),
    client_lag_ms: percentilesMs(timings.lag),
    kept_up: keptUp,
  };
  const backlogBound = pacing.kind === "closed" ? null : pacing.maxBacklog;
  const note = keptUp
    ? null
    : `the target did not keep up: sent ${o.sent} of ${o.due} due requests ` +
      `(${round(achievedRps, 1)} of ${round(intendedRps, 1)} req/s intended), ${o.dropped} dropped ` +
      `(backlog bound ${backlogBound}), ${o.backlog} still waiting at the end; ` +
      `latency_from_intended_ms counts the waiting, latency_ms does not`;
  return { result, note };
}

/** The notes the run's outcome adds to the plan's: the time cap, the open loop's shortfall, client lag. */
function outcomeNotes(
  run: ReplayRunPlan,
  stoppedBy: StoppedBy,
  openLoopNote: string | null,
  timings: Timings,
): string[] {
  const notes: string[] = [];
  if (stoppedBy === "time_cap")
    notes.push(
      `stopped by the ${run.timeCapS} s time cap before the end of the ${run.open ? "schedule" : "trace"}`,
    );
  if (openLoopNote !== null) notes.push(openLoopNote);
  if (run.open && timings.lag.max >= CLIENT_LAG_NOTE_US) {
    notes.push(
      `the client itself ran late (send timers up to ${Math.round(timings.lag.max / 1000)} ms behind: a busy CPU); ` +
        `latency_from_intended_ms counts that too: see open_loop.client_lag_ms and --log`,
    );
  }
  return notes;
}

/** The `params` of the result: the options as the run used them. */
function replayParams(
  options: ReplayOptions,
  settings: ReplaySettings,
  plan: ReplayPlan,
  run: ReplayRunPlan,
) {
  const p = settings.pacing;
  return {
    trace: options.trace ?? null,
    format: plan.trace?.format ?? null,
    target: options.target,
    clients: settings.clients,
    conns: settings.conns,
    keepalive: settings.keepalive,
    pipeline: settings.pipeline,
    requests: options.requests ?? null,
    duration_s: run.durationS,
    time_cap_s: run.timeCapS,
    verify: verifyParam(options.verify),
    timeout_ms: settings.timeoutMs,
    query: settings.query,
    pacing: p.kind,
    rate: intendedRate(p),
    schedule: p.kind === "rate" ? p.schedule.kind : null,
    seed: p.kind === "rate" && p.schedule.kind === "poisson" ? p.schedule.seed : null,
    speed: p.kind === "trace" ? p.speed : null,
    max_backlog: p.kind === "closed" ? null : p.maxBacklog,
  } satisfies ReplayResult["params"];
}

/** The `trace` of the result: what was read and what of it replays (null: a plan built in memory). */
function traceSummary(plan: ReplayPlan): ReplayResult["trace"] {
  const t = plan.trace;
  if (!t) return null;
  const entryCount = plan.entries.length;
  return {
    lines: t.lines,
    records: t.records,
    bad_lines: t.bad,
    bad_by_reason: { ...t.badByReason },
    bad_samples: t.badSamples,
    replayable: entryCount,
    distinct_requests: plan.classes.length,
    span_s: plan.offsetsS ? plan.offsetsS[entryCount - 1]! : null,
    out_of_order: plan.outOfOrder,
  };
}

/** Figures per response class (sorted by key) and for the tracked URLs (most frequent first). */
function groupResults(plan: ReplayPlan, run: ReplayRunPlan, timings: Timings) {
  return {
    by_class: [...timings.byClass]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, g]) => groupResult(key, g)),
    by_url: run.trackedUrls
      .filter((c) => timings.byUrl.has(c))
      .map((c) => {
        const cls = plan.classes[c]!;
        return {
          ...groupResult(`${cls.method} ${cls.path}`, timings.byUrl.get(c)!),
          method: cls.method,
          path: cls.path,
          kind: cls.kind,
        };
      }),
  } satisfies Pick<ReplayResult, "by_class" | "by_url">;
}

/** The result (the `--json` shape) from the run's plan and the merged reports. */
export function replayResult(
  options: ReplayOptions,
  settings: ReplaySettings,
  plan: ReplayPlan,
  run: ReplayRunPlan,
  merged: MergedReports,
): ReplayResult {
  const { counters, timings, elapsedS } = merged;
  const open = run.open !== null;
  const stoppedBy = replayStoppedBy(merged, run);
  const openLoop = merged.open ? openLoopResult(merged.open, settings.pacing, timings) : null;
  const responses = counters.ok + counters.verifyFailures;
  const all = timings.all;
  return {
    tool: "sc-cluster loadgen",
    mode: "replay",
    params: replayParams(options, settings, plan, run),
    trace: traceSummary(plan),
    stopped_by: stoppedBy,
    requests: counters.requests,
    ok: counters.ok,
    errors: counters.errors,
    errors_by_kind: counters.errorsByKind,
    verify_failures: counters.verifyFailures,
    verify_failures_by_kind: counters.verifyFailuresByKind,
    verify_failure_samples: counters.failureSamples,
    error_samples: counters.errorSamples,
    skipped: plan.skipped,
    skipped_by_reason: { ...plan.skippedByReason },
    status_counts: counters.statusCounts,
    bytes: counters.bytes,
    elapsed_s: round(elapsedS, 3),
    rps: elapsedS > 0 ? round(responses / elapsedS, 1) : 0,
    mbps: elapsedS > 0 ? round((counters.bytes * 8) / elapsedS / 1e6, 2) : 0,
    latency_ms: latencySummary(all.total),
    latency_from_intended_ms: open ? percentilesMs(all.corrected) : null,
    phases_ms: {
      connect: percentilesMs(timings.connect),
      ttfb: percentilesMs(all.ttfb),
      total: percentilesMs(all.total),
    },
    open_loop: openLoop?.result ?? null,
    ...groupResults(plan, run, timings),
    per_second: perSecondRows(timings, open),
    notes: [...run.notes, ...outcomeNotes(run, stoppedBy, openLoop?.note ?? null, timings)],
  };
}

/** The files asked for: the latency distribution (.hgrm; both, in the open loop) and the per-second log. */
async function writeReplayFiles(
  options: ReplayOptions,
  open: boolean,
  timings: Timings,
  perSecond: PerSecondRow[],
): Promise<void> {
  const all = timings.all;
  const main = open ? all.corrected : all.total;
  if (options.hgrmOut) {
    await writeFile(options.hgrmOut, main.percentileDistribution(1000));
    if (open) await writeFile(uncorrectedPath(options.hgrmOut), all.total.percentileDistribution(1000));
  }
  if (options.logOut) await writeFile(options.logOut, formatPerSecond(perSecond));
}

export async function runReplay(options: ReplayOptions): Promise<ReplayResult> {
  const settings = replaySettings(options);
  const plan = await obtainPlan(options, settings.query);
  const run = planReplayRun(settings, plan, options);
  const inits = replayWorkerInits(settings, plan, run, options.progressIntervalMs ?? 250);
  const reports = await runReplayWorkers(options, settings, run, inits);
  const merged = mergeWorkerReports(reports);
  const result = replayResult(options, settings, plan, run, merged);
  await writeReplayFiles(options, run.open !== null, merged.timings, result.per_second);
  return result;
}

/** Where the uncorrected distribution goes next to the corrected one: x.hgrm -> x.uncorrected.hgrm. */
export function uncorrectedPath(hgrmPath: string): string {
  return hgrmPath.endsWith(".hgrm") ? hgrmPath.slice(0, -5) + ".uncorrected.hgrm" : hgrmPath + ".uncorrected";
}

/** The `latency_ms` shape the closed loop always had (no count: that is `requests`). */
function latencySummary(h: Histogram): LatencySummaryMs {
  const p = percentilesMs(h);
  return { p50: p.p50, p90: p.p90, p99: p.p99, p999: p.p999, max: p.max, mean: p.mean };
}

function addKinds(
  a: Record<string, number> | undefined,
  b: Record<string, number> | undefined,
): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** The open-loop snapshots of the workers summed (latest times: the latest of any); null: none. */
export function sumOpen(list: (OpenLoopSnapshot | null)[]): OpenLoopSnapshot | null {
  const present = list.filter((x): x is OpenLoopSnapshot => x !== null);
  if (present.length === 0) return null;
  return present.reduce((a, b) => ({
    due: a.due + b.due,
    dropped: a.dropped + b.dropped,
    maxBacklog: a.maxBacklog + b.maxBacklog,
    sent: a.sent + b.sent,
    backlog: a.backlog + b.backlog,
    lastIntendedMs: Math.max(a.lastIntendedMs, b.lastIntendedMs),
    lastSentMs: Math.max(a.lastSentMs, b.lastSentMs),
  }));
}

function groupResult(key: string, g: Group): GroupResult {
  return {
    key,
    requests: g.requests,
    ok: g.ok,
    errors: g.errors,
    verify_failures: g.verifyFailures,
    bytes: g.bytes,
    latency_ms: percentilesMs(g.total),
    ttfb_ms: percentilesMs(g.ttfb),
  };
}

function perSecondRows(timings: Timings, open: boolean): PerSecondRow[] {
  const seconds = new Set([...timings.perSecond.keys(), ...timings.sentPerSecond.keys()]);
  const last = seconds.size ? Math.max(...seconds) : -1;
  const rows: PerSecondRow[] = [];
  for (let s = 0; s <= last; s++) {
    const g = timings.perSecond.get(s);
    const h: Histogram | null = g ? (open ? g.corrected : g.total) : null;
    const ms = (p: number) => (h ? Math.round(Math.min(h.max, h.valueAtPercentile(p))) / 1000 : 0);
    rows.push({
      second: s,
      sent: timings.sentPerSecond.get(s) ?? 0,
      completed: g?.requests ?? 0,
      ok: g?.ok ?? 0,
      errors: g?.errors ?? 0,
      mbps: round(((g?.bytes ?? 0) * 8) / 1e6, 2),
      p50_ms: ms(50),
      p90_ms: ms(90),
      p99_ms: ms(99),
      max_ms: h ? Math.round(h.max) / 1000 : 0,
    });
  }
  return rows;
}

/** The per-second log: a header line, then one tab-separated row per second. */
export function formatPerSecond(rows: PerSecondRow[]): string {
  const cols = [
    "second",
    "sent",
    "completed",
    "ok",
    "errors",
    "mbps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
  ] as const;
  return [cols.join("\t"), ...rows.map((r) => cols.map((c) => String(r[c])).join("\t"))].join("\n") + "\n";
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
