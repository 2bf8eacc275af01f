// runReplay: the trace replay load generator. Compiles the trace into a plan (plan.ts),
// starts N worker threads with M connections each (worker.ts), and merges their counters
// and latency histograms into one result (the `--json` shape, docs/loadgen.md).
import { Worker } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import type { QueryPolicy } from "../classify.js";
import { httpDate, readManifest, SITE_MTIME, type Manifest } from "../manifest.js";
import { nothingToReplay, NothingToReplayError, TraceReader, type FormatOption } from "../trace/reader.js";
import { PlanBuilder, type ReplayPlan } from "./plan.js";
import {
  decodeHistogram,
  latencySummary,
  mergeCounters,
  newCounters,
  newLatencyHistogram,
  type Counters,
  type FailureSample,
  type LatencySummaryMs,
} from "./stats.js";
import type { FromWorker, ProgressSnapshot, ToWorker, WorkerInit } from "./worker.js";

/** Used when neither a request count nor a duration is given: one pass, at most this long. */
export const DEFAULT_TIME_CAP_S = 600;

export class ReplayError extends Error {
  readonly userFacing = true;
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
  /** Called every progressIntervalMs with running totals. */
  onProgress?: (p: ReplayProgress) => void;
  progressIntervalMs?: number;
  /** Aborting stops issuing requests; in-flight ones finish (bounded by the timeout). */
  signal?: AbortSignal;
}

export interface ReplayProgress extends ProgressSnapshot {
  elapsedS: number;
  /** Requests the run is bounded to, if a count bounds it. */
  limit: number | null;
  durationS: number | null;
}

export type StoppedBy = "requests" | "duration" | "time_cap" | "interrupted";

export interface ReplayResult {
  tool: "sc-cluster loadgen";
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
  } | null;
  stopped_by: StoppedBy;
  /** Requests replayed (responses + transport errors). */
  requests: number;
  /** Responses that passed verification. */
  ok: number;
  /** Transport errors and timeouts (no complete response). */
  errors: number;
  errors_by_kind: Record<string, number>;
  /** Complete responses with the wrong status, length or bytes. */
  verify_failures: number;
  verify_failures_by_kind: Record<string, number>;
  verify_failure_samples: FailureSample[];
  /** Trace records not replayed (one pass), in total and by reason. */
  skipped: number;
  skipped_by_reason: Record<string, number>;
  status_counts: Record<string, number>;
  /** Response body bytes. */
  bytes: number;
  elapsed_s: number;
  /** Responses (ok + verify failures) per second. */
  rps: number;
  /** Response body megabits (10^6) per second. */
  mbps: number;
  latency_ms: LatencySummaryMs;
  notes: string[];
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

  // Bounds: always a count, a duration, or both.
  let limit = options.requests ?? Infinity;
  const durationS = options.durationS ?? null;
  let timeCapS: number | null = null;
  if (options.requests === undefined && options.durationS === undefined) {
    limit = entryCount;
    timeCapS = DEFAULT_TIME_CAP_S;
    notes.push(
      `no --requests or --duration: one pass over the trace (${entryCount} requests), capped at ${DEFAULT_TIME_CAP_S} s`,
    );
  }
  const effectiveDurationS = durationS ?? timeCapS;

  const totalSlots = clients * conns;
  const shared = new SharedArrayBuffer(entryCount * 4);
  new Uint32Array(shared).set(plan.entries);
  const ifModifiedSince = httpDate(plan.manifest?.mtime ?? SITE_MTIME);
  const progressIntervalMs = options.progressIntervalMs ?? 250;

  const workers: Worker[] = [];
  const latest: ProgressSnapshot[] = [];
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
      };
      const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: init });
      workers.push(worker);
      latest.push({ requests: 0, ok: 0, errors: 0, verifyFailures: 0, bytes: 0 });
      worker.on("message", (msg: FromWorker) => {
        if (msg.type === "ready") {
          if (++ready === clients) {
            startEpoch = performance.timeOrigin + performance.now();
            const start: ToWorker = {
              type: "start",
              deadlineEpochMs: effectiveDurationS === null ? null : startEpoch + effectiveDurationS * 1000,
            };
            for (const x of workers) x.postMessage(start);
          }
        } else if (msg.type === "progress") {
          latest[w] = msg.progress;
          if (options.onProgress) {
            const sum = latest.reduce(
              (a, p) => ({
                requests: a.requests + p.requests,
                ok: a.ok + p.ok,
                errors: a.errors + p.errors,
                verifyFailures: a.verifyFailures + p.verifyFailures,
                bytes: a.bytes + p.bytes,
              }),
              { requests: 0, ok: 0, errors: 0, verifyFailures: 0, bytes: 0 },
            );
            options.onProgress({
              ...sum,
              elapsedS: (performance.timeOrigin + performance.now() - startEpoch) / 1000,
              limit: Number.isFinite(limit) ? limit : null,
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
  const histogram = newLatencyHistogram();
  let first = Infinity;
  let last = -Infinity;
  for (const d of done) {
    mergeCounters(counters, d.counters);
    histogram.add(decodeHistogram(d.histogram));
    if (d.firstStartEpochMs !== null) first = Math.min(first, d.firstStartEpochMs);
    if (d.lastEndEpochMs !== null) last = Math.max(last, d.lastEndEpochMs);
  }
  const elapsedS = Number.isFinite(first) && last > first ? (last - first) / 1000 : 0;
  const responses = counters.ok + counters.verifyFailures;
  let stoppedBy: StoppedBy = "requests";
  if (done.some((d) => d.stopped)) stoppedBy = "interrupted";
  else if (done.some((d) => d.hitDeadline)) stoppedBy = durationS !== null ? "duration" : "time_cap";
  if (stoppedBy === "time_cap")
    notes.push(`stopped by the ${timeCapS} s time cap before the end of the trace`);

  const t = plan.trace;
  return {
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
    skipped: plan.skipped,
    skipped_by_reason: { ...plan.skippedByReason },
    status_counts: counters.statusCounts,
    bytes: counters.bytes,
    elapsed_s: round(elapsedS, 3),
    rps: elapsedS > 0 ? round(responses / elapsedS, 1) : 0,
    mbps: elapsedS > 0 ? round((counters.bytes * 8) / elapsedS / 1e6, 2) : 0,
    latency_ms: latencySummary(histogram, counters.maxLatencyUs),
    notes,
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
