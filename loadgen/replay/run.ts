// runReplay: the trace replay load generator. Compiles the trace into a plan (plan.ts),
// starts N worker threads with M connections each (worker.ts), and merges their counters
// and timings into one result (the `--json` shape, docs/loadgen.md). Closed loop by
// default; open loop with a rate (--rate) or the trace's own timestamps (--speed).
import { Worker } from "node:worker_threads";
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
  /** Base URL of the server: "http://127.0.0.1:8080" (a path prefix is allowed). */
  target: string;
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

function parseTarget(target: string): { origin: string; pathPrefix: string } {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new ReplayError(`target '${target}' is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== "http:") throw new ReplayError(`target '${target}': only http:// is supported`);
  return { origin: u.origin, pathPrefix: u.pathname.replace(/\/+$/, "") };
}

function parsePacing(options: ReplayOptions): {
  kind: "closed" | "rate" | "trace";
  rate: number | null;
  schedule: "constant" | "poisson" | null;
  seed: number | null;
  speed: number | null;
} {
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
  if (options.rate !== undefined) {
    const schedule = options.schedule ?? "constant";
    return {
      kind: "rate",
      rate: options.rate,
      schedule,
      seed: schedule === "poisson" ? (options.seed ?? 1) : null,
      speed: null,
    };
  }
  if (speed > 0) return { kind: "trace", rate: null, schedule: null, seed: null, speed };
  if (options.maxBacklog !== undefined) throw new ReplayError("a backlog bound needs a rate or a speed");
  return { kind: "closed", rate: null, schedule: null, seed: null, speed: null };
}

/** Plan classes in order of frequency in the trace, the first `n`. */
function topClasses(plan: ReplayPlan, n: number): number[] {
  const counts = new Uint32Array(plan.classes.length);
  for (const c of plan.entries) counts[c]!++;
  return [...counts.keys()]
    .filter((c) => counts[c]! > 0)
    .sort((a, b) => counts[b]! - counts[a]! || a - b)
    .slice(0, n);
}

export async function runReplay(options: ReplayOptions): Promise<ReplayResult> {
  const clients = positiveInt("clients", options.clients, 1);
  const conns = positiveInt("conns", options.conns, 1);
  const pipeline = positiveInt("pipeline", options.pipeline, 1);
  const keepalive = options.keepalive ?? false;
  const timeoutMs = positiveInt("timeout", options.timeoutMs, 10_000);
  const query = options.query ?? "skip";
  if (pipeline > 1 && !keepalive)
    throw new ReplayError("pipelining needs keep-alive connections (--keepalive)");
  if (options.requests !== undefined) positiveInt("requests", options.requests, 1);
  if (options.durationS !== undefined && !(options.durationS > 0)) {
    throw new ReplayError(`duration must be > 0 seconds, got ${options.durationS}`);
  }
  const pacingSpec = parsePacing(options);
  const open = pacingSpec.kind !== "closed";
  const maxBacklog = open ? positiveInt("max backlog", options.maxBacklog, DEFAULT_MAX_BACKLOG) : null;
  const { origin, pathPrefix } = parseTarget(options.target);
  const notes: string[] = [];

  let plan = options.plan;
  if (!plan) {
    if (!options.trace) throw new ReplayError("a trace (or a plan) is required");
    plan = await loadReplayPlan({
      trace: options.trace,
      format: options.format,
      query,
      verify: options.verify,
    });
  }
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
  let schedule: ScheduleSpec | null = null;
  if (pacingSpec.kind === "rate") {
    schedule =
      pacingSpec.schedule === "poisson"
        ? { kind: "poisson", rate: pacingSpec.rate!, seed: pacingSpec.seed! }
        : { kind: "constant", rate: pacingSpec.rate! };
  } else if (pacingSpec.kind === "trace") {
    if (!plan.offsetsS)
      throw new ReplayError("--speed needs timestamps, and this trace has none (a URL list?)");
    schedule = { kind: "trace", offsetsS: plan.offsetsS, speed: pacingSpec.speed! };
    if (plan.outOfOrder > 0)
      notes.push(`${plan.outOfOrder} records were logged earlier than the one before them; sent with it`);
  }

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
  const effectiveDurationS = durationS ?? timeCapS;

  const totalSlots = clients * conns;
  const shared = new SharedArrayBuffer(entryCount * 4);
  new Uint32Array(shared).set(plan.entries);
  const ifModifiedSince = httpDate(plan.manifest?.mtime ?? SITE_MTIME);
  const progressIntervalMs = options.progressIntervalMs ?? 250;
  const trackedUrls = topClasses(plan, TOP_URLS);

  const workers: Worker[] = [];
  const latest: ProgressSnapshot[] = [];
  const latestOpen: (OpenLoopSnapshot | null)[] = [];
  const done: Extract<FromWorker, { type: "done" }>[] = [];
  let startEpoch = 0;

  const finished = new Promise<void>((resolve, reject) => {
    let ready = 0;
    const fail = (err: Error) => {
      for (const w of workers) void w.terminate();
      reject(err);
    };
    for (let w = 0; w < clients; w++) {
      const slots: number[] = [];
      for (let j = 0; j < conns; j++) slots.push(w + clients * j);
      const pacing: Pacing = schedule
        ? {
            kind: "open",
            schedule,
            worker: w,
            workers: clients,
            queueCapacity: Math.max(1, Math.ceil(maxBacklog! / clients)),
          }
        : { kind: "closed" };
      const init: WorkerInit = {
        origin,
        pathPrefix,
        slots,
        totalSlots,
        entries: shared,
        entryCount,
        classes: plan.classes,
        limit,
        keepalive,
        pipeline,
        timeoutMs,
        ifModifiedSince,
        progressIntervalMs,
        pacing,
        trackedUrls,
      };
      const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: init });
      workers.push(worker);
      latest.push({ requests: 0, ok: 0, errors: 0, verifyFailures: 0, bytes: 0 });
      latestOpen.push(null);
      worker.on("message", (msg: FromWorker) => {
        if (msg.type === "ready") {
          if (++ready === clients) {
            // The open loop starts a little later, so that every worker holds the start
            // message when its first request comes due.
            startEpoch = performance.timeOrigin + performance.now() + (open ? 20 : 0);
            const start: ToWorker = {
              type: "start",
              startEpochMs: startEpoch,
              deadlineEpochMs: effectiveDurationS === null ? null : startEpoch + effectiveDurationS * 1000,
            };
            for (const x of workers) x.postMessage(start);
          }
        } else if (msg.type === "progress") {
          latest[w] = msg.progress;
          latestOpen[w] = msg.open;
          if (options.onProgress) {
            const sum = latest.reduce(
              (a, p) => ({
                requests: a.requests + p.requests,
                ok: a.ok + p.ok,
                errors: a.errors + p.errors,
                verifyFailures: a.verifyFailures + p.verifyFailures,
                bytes: a.bytes + p.bytes,
                errorsByKind: addKinds(a.errorsByKind, p.errorsByKind),
                verifyFailuresByKind: addKinds(a.verifyFailuresByKind, p.verifyFailuresByKind),
              }),
              {
                requests: 0,
                ok: 0,
                errors: 0,
                verifyFailures: 0,
                bytes: 0,
                errorsByKind: {},
                verifyFailuresByKind: {},
              },
            );
            const o = sumOpen(latestOpen);
            options.onProgress({
              ...sum,
              open: o ? { ...o, intendedRps: pacingSpec.rate } : null,
              elapsedS: (performance.timeOrigin + performance.now() - startEpoch) / 1000,
              limit: Number.isFinite(limit) && limit < Number.MAX_SAFE_INTEGER ? limit : null,
              durationS: effectiveDurationS,
            });
          }
        } else if (msg.type === "done") {
          done.push(msg);
          if (done.length === clients) resolve();
        }
      });
      worker.on("error", (err) => fail(err));
      worker.on("exit", (code) => {
        if (done.length < clients && code !== 0)
          fail(new ReplayError(`replay worker ${w} exited with code ${code}`));
      });
    }
  });

  const onAbort = () => {
    for (const w of workers) w.postMessage({ type: "stop" } satisfies ToWorker);
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    await finished;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }

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
  const elapsedS = Number.isFinite(first) && last > first ? (last - first) / 1000 : 0;
  const responses = counters.ok + counters.verifyFailures;
  let stoppedBy: StoppedBy = "requests";
  if (done.some((d) => d.stopped)) stoppedBy = "interrupted";
  else if (done.some((d) => d.hitDeadline)) stoppedBy = durationS !== null ? "duration" : "time_cap";
  if (stoppedBy === "time_cap")
    notes.push(`stopped by the ${timeCapS} s time cap before the end of the ${open ? "schedule" : "trace"}`);

  let openLoop: OpenLoopResult | null = null;
  const o = sumOpen(done.map((d) => d.open));
  if (o) {
    // Windows: a constant schedule's n requests span n gaps of 1/R (the last one included).
    const gapS = pacingSpec.rate ? 1 / pacingSpec.rate : 0;
    const intendedWindowS = Math.max(0.001, o.lastIntendedMs / 1000 + gapS);
    const sendWindowS = Math.max(intendedWindowS, o.lastSentMs / 1000 + gapS);
    const intendedRps = pacingSpec.rate ?? o.due / intendedWindowS;
    const achievedRps = o.sent / sendWindowS;
    const keptUp = o.dropped === 0 && o.sent >= KEPT_UP_SHARE * o.due;
    openLoop = {
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
    if (!keptUp) {
      notes.push(
        `the target did not keep up: sent ${o.sent} of ${o.due} due requests ` +
          `(${round(achievedRps, 1)} of ${round(intendedRps, 1)} req/s intended), ${o.dropped} dropped ` +
          `(backlog bound ${maxBacklog}), ${o.backlog} still waiting at the end; ` +
          `latency_from_intended_ms counts the waiting, latency_ms does not`,
      );
    }
  }

  if (open && timings.lag.max >= CLIENT_LAG_NOTE_US) {
    notes.push(
      `the client itself ran late (send timers up to ${Math.round(timings.lag.max / 1000)} ms behind: a busy CPU); ` +
        `latency_from_intended_ms counts that too: see open_loop.client_lag_ms and --log`,
    );
  }
  const t = plan.trace;
  const all = timings.all;
  const result: ReplayResult = {
    tool: "sc-cluster loadgen",
    mode: "replay",
    params: {
      trace: options.trace ?? null,
      format: t?.format ?? null,
      target: options.target,
      clients,
      conns,
      keepalive,
      pipeline,
      requests: options.requests ?? null,
      duration_s: durationS,
      time_cap_s: timeCapS,
      verify: typeof options.verify === "string" ? options.verify : options.verify ? "(in memory)" : null,
      timeout_ms: timeoutMs,
      query,
      pacing: pacingSpec.kind,
      rate: pacingSpec.rate,
      schedule: pacingSpec.schedule,
      seed: pacingSpec.seed,
      speed: pacingSpec.speed,
      max_backlog: maxBacklog,
    },
    trace: t
      ? {
          lines: t.lines,
          records: t.records,
          bad_lines: t.bad,
          bad_by_reason: { ...t.badByReason },
          bad_samples: t.badSamples,
          replayable: entryCount,
          distinct_requests: plan.classes.length,
          span_s: plan.offsetsS ? plan.offsetsS[entryCount - 1]! : null,
          out_of_order: plan.outOfOrder,
        }
      : null,
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
    open_loop: openLoop,
    by_class: [...timings.byClass]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, g]) => groupResult(key, g)),
    by_url: trackedUrls
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
    per_second: perSecondRows(timings, open),
    notes,
  };
  const main = open ? all.corrected : all.total;
  if (options.hgrmOut) {
    await writeFile(options.hgrmOut, main.percentileDistribution(1000));
    if (open) await writeFile(uncorrectedPath(options.hgrmOut), all.total.percentileDistribution(1000));
  }
  if (options.logOut) await writeFile(options.logOut, formatPerSecond(result.per_second));
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

function sumOpen(list: (OpenLoopSnapshot | null)[]): OpenLoopSnapshot | null {
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
