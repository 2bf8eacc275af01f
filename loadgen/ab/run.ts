// runSingleUrl: one document requested over and over (ApacheBench-style) by autocannon in
// N worker threads, for the micro-benchmark. Every response's status and Content-Length are
// checked; the full body (SHA-256 when a manifest knows it) is checked once before the run
// with undici. Result in the same JSON shape as the trace replay.
import { createHash } from "node:crypto";
import { request } from "undici";
import { readManifest, type Manifest, type ManifestEntry } from "../manifest.js";
import { canonicalizeTarget } from "../url.js";
import {
  decodeHistogram,
  latencySummary,
  mergeCounters,
  newCounters,
  newLatencyHistogram,
  type FailureSample,
  type LoadOutcome,
  verifyParam,
} from "../replay/stats.js";
import type { ProgressSnapshot } from "../replay/worker.js";
import { noProgress, sumProgress, type ReplayProgress } from "../replay/run.js";
import type { AbFromWorker, AbToWorker, AbWorkerInit } from "./worker.js";
import { UserError } from "../../common/errors.js";
import { runLoadWorkers } from "../worker-pool.js";

export const DEFAULT_SINGLE_URL_DURATION_S = 10;

export class SingleUrlError extends UserError {
  constructor(message: string) {
    super(message, "ERR_LOADGEN_URL");
  }
}

export interface SingleUrlOptions {
  url: string;
  /** Total connections, spread over the workers. */
  connections?: number;
  pipelining?: number;
  /** Worker threads, each running one autocannon instance. */
  workers?: number;
  requests?: number;
  durationS?: number;
  /** Manifest giving the document's expected status, size and SHA-256. */
  verify?: string | Manifest;
  /** Overrides of the expectations (else from the manifest, else status 200 and the size seen first). */
  expectStatus?: number;
  expectLength?: number;
  /** Per-request timeout; autocannon counts in whole seconds (at least 1). */
  timeoutMs?: number;
  onProgress?: (p: ReplayProgress) => void;
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

export interface SingleUrlResult extends LoadOutcome {
  mode: "single-url";
  params: {
    url: string;
    connections: number;
    pipelining: number;
    workers: number;
    requests: number | null;
    duration_s: number | null;
    timeout_ms: number;
    verify: string | null;
    expect_status: number;
    expect_length: number | null;
  };
  /** The one full-body check, made before the run. */
  preflight: { status: number; length: number; sha256: string; verified: "ok" | "mismatch" | "unchecked" };
  stopped_by: "requests" | "duration" | "interrupted";
}

async function preflight(url: string, timeoutMs: number) {
  const res = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }).catch(
    (err: Error) => {
      throw new SingleUrlError(`cannot fetch ${url}: ${err.message}`);
    },
  );
  const h = createHash("sha256");
  let length = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    h.update(chunk);
    length += chunk.length;
  }
  return { status: res.statusCode, length, sha256: h.digest("hex") };
}

function split(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

/** The options of a single-URL run, checked, with the notes their defaults call for. */
export interface SingleUrlSettings {
  path: string;
  workers: number;
  /** Total connections (no more than the requests asked for). */
  connections: number;
  pipelining: number;
  timeoutMs: number;
  /** null: bounded by the request count alone. */
  durationS: number | null;
  notes: string[];
}

export function singleUrlSettings(options: SingleUrlOptions): SingleUrlSettings {
  let u: URL;
  try {
    u = new URL(options.url);
  } catch {
    throw new SingleUrlError(`'${options.url}' is not a URL`);
  }
  if (u.protocol !== "http:") throw new SingleUrlError(`'${options.url}': only http:// is supported`);
  const workers = options.workers ?? 1;
  let connections = options.connections ?? 10;
  const pipelining = options.pipelining ?? 1;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const notes: string[] = [];
  if (options.requests !== undefined && options.requests < connections) {
    connections = options.requests;
    notes.push(`connections reduced to ${connections}: no more than the requests asked for`);
  }
  if (connections < workers) throw new SingleUrlError(`need at least one connection per worker (${workers})`);
  let durationS = options.durationS ?? null;
  if (options.requests === undefined && durationS === null) {
    durationS = DEFAULT_SINGLE_URL_DURATION_S;
    notes.push(`no --requests or --duration: ran for ${DEFAULT_SINGLE_URL_DURATION_S} s`);
  }
  return { path: u.pathname, workers, connections, pipelining, timeoutMs, durationS, notes };
}

/** The manifest's entry for the URL (null: no manifest, or the URL is not in it: then a note says so). */
async function manifestEntry(options: SingleUrlOptions, settings: SingleUrlSettings) {
  const manifest =
    options.verify === undefined
      ? null
      : typeof options.verify === "string"
        ? await readManifest(options.verify)
        : options.verify;
  const canon = canonicalizeTarget(settings.path);
  const entry = manifest && canon.ok ? manifest.entries.get(canon.url) : undefined;
  if (manifest && !entry)
    settings.notes.push(`${settings.path} is not in the manifest: checking status and length only`);
  return entry ?? null;
}

type Preflight = Awaited<ReturnType<typeof preflight>>;

/** What every response is checked against, and the verdict on the preflight's full body. */
export interface Expectations {
  expectStatus: number;
  expectLength: number | null;
  verified: SingleUrlResult["preflight"]["verified"];
  /** The preflight's failure (null: it passed or was not checked). */
  failure: FailureSample | null;
}

/** The expectations (given, else the manifest's, else status 200 and the size the preflight saw), and the preflight judged by them. */
export function expectations(
  options: Pick<SingleUrlOptions, "expectStatus" | "expectLength">,
  path: string,
  entry: ManifestEntry | null,
  pre: Preflight,
): Expectations {
  const expectStatus = options.expectStatus ?? entry?.status ?? 200;
  const expectLength =
    options.expectLength ??
    (entry?.status === 200 ? entry.size : expectStatus === pre.status ? pre.length : null);
  let verified: Expectations["verified"] = "unchecked";
  if (entry?.status === 200) {
    verified =
      pre.status === 200 && pre.length === entry.size && pre.sha256 === entry.sha256 ? "ok" : "mismatch";
  } else if (options.expectStatus !== undefined || options.expectLength !== undefined) {
    verified =
      pre.status === expectStatus && (expectLength === null || pre.length === expectLength)
        ? "ok"
        : "mismatch";
  }
  if (verified !== "mismatch") return { expectStatus, expectLength, verified, failure: null };
  const failure = pre.status !== expectStatus ? "status" : pre.length !== expectLength ? "length" : "sha256";
  return {
    expectStatus,
    expectLength,
    verified,
    failure: {
      path,
      method: "GET",
      failure,
      expected: `status ${expectStatus}, ${expectLength ?? "?"} bytes${entry?.status === 200 ? `, sha256 ${entry.sha256}` : ""}`,
      got: `status ${pre.status}, ${pre.length} bytes, sha256 ${pre.sha256} (preflight)`,
    },
  };
}

/** Each worker's share of the connections (and of the requests, if counted), and what it checks. */
export function abWorkerInits(
  options: Pick<SingleUrlOptions, "url" | "requests" | "progressIntervalMs">,
  settings: SingleUrlSettings,
  expect: Pick<Expectations, "expectStatus" | "expectLength">,
): AbWorkerInit[] {
  const { workers, connections } = settings;
  return Array.from({ length: workers }, (_, w) => ({
    url: options.url,
    connections: split(connections, workers, w),
    pipelining: settings.pipelining,
    amount: options.requests === undefined ? undefined : split(options.requests, workers, w),
    durationS: settings.durationS ?? 86_400,
    timeoutS: Math.max(1, Math.ceil(settings.timeoutMs / 1000)),
    expectStatus: expect.expectStatus,
    expectLength: expect.expectLength,
    progressIntervalMs: options.progressIntervalMs ?? 250,
  }));
}

/** The workers' progress counts summed (no kinds: autocannon reports them only at the end). */
export function sumProgressCounts(list: ProgressSnapshot[]): ProgressSnapshot {
  const { errorsByKind: _e, verifyFailuresByKind: _v, ...counts } = sumProgress(list);
  return counts;
}

type AbReport = Extract<AbFromWorker, { type: "done" }>;

/** Runs the autocannon workers to the end (or the abort): their reports, and whether it was aborted. */
async function runAbWorkers(options: SingleUrlOptions, settings: SingleUrlSettings, inits: AbWorkerInit[]) {
  const latest: ProgressSnapshot[] = inits.map(noProgress);
  let startEpoch = 0;
  return runLoadWorkers<AbWorkerInit, AbFromWorker>({
    script: new URL("./worker.js", import.meta.url),
    inits,
    start: () => {
      startEpoch = performance.timeOrigin + performance.now();
      return { type: "start" } satisfies AbToWorker;
    },
    onProgress: (w, msg) => {
      latest[w] = msg.progress;
      if (options.onProgress) {
        options.onProgress({
          ...sumProgressCounts(latest),
          elapsedS: (performance.timeOrigin + performance.now() - startEpoch) / 1000,
          limit: options.requests ?? null,
          durationS: settings.durationS,
        });
      }
    },
    signal: options.signal,
    // A worker that dies without an error message must fail the run, not leave it waiting.
    exitError: (w, code) => new SingleUrlError(`load worker ${w} exited with code ${code}`),
  });
}

/** The reports merged, after the preflight's failure (if any); a worker's autocannon error fails the run. */
function mergeAbReports(done: AbReport[], preflightFailure: FailureSample | null) {
  const counters = newCounters();
  if (preflightFailure) {
    counters.verifyFailures++;
    counters.verifyFailuresByKind[preflightFailure.failure] = 1;
    counters.failureSamples.push(preflightFailure);
  }
  const histogram = newLatencyHistogram();
  let first = Infinity;
  let last = -Infinity;
  for (const d of done) {
    if (d.error) throw new SingleUrlError(`autocannon: ${d.error}`);
    mergeCounters(counters, d.counters);
    histogram.add(decodeHistogram(d.histogram));
    first = Math.min(first, d.startEpochMs);
    last = Math.max(last, d.endEpochMs);
  }
  return { counters, histogram, elapsedS: last > first ? (last - first) / 1000 : 0 };
}

/** What ended the run: the abort, else the request count if reached, else the duration. */
export function singleUrlStoppedBy(
  aborted: boolean,
  requestsAsked: number | undefined,
  requestsDone: number,
  durationS: number | null,
): SingleUrlResult["stopped_by"] {
  return aborted
    ? "interrupted"
    : requestsAsked !== undefined && requestsDone >= requestsAsked
      ? "requests"
      : durationS !== null
        ? "duration"
        : "requests";
}

function singleUrlResult(
  options: SingleUrlOptions,
  settings: SingleUrlSettings,
  pre: Preflight,
  expect: Expectations,
  outcome: { aborted: boolean; merged: ReturnType<typeof mergeAbReports> },
): SingleUrlResult {
  const { counters, histogram, elapsedS } = outcome.merged;
  const responses = counters.ok + counters.verifyFailures;
  return {
    tool: "sc-cluster loadgen",
    mode: "single-url",
    params: {
      url: options.url,
      connections: settings.connections,
      pipelining: settings.pipelining,
      workers: settings.workers,
      requests: options.requests ?? null,
      duration_s: settings.durationS,
      timeout_ms: settings.timeoutMs,
      verify: verifyParam(options.verify),
      expect_status: expect.expectStatus,
      expect_length: expect.expectLength,
    },
    preflight: { ...pre, verified: expect.verified },
    stopped_by: singleUrlStoppedBy(outcome.aborted, options.requests, counters.requests, settings.durationS),
    requests: counters.requests,
    ok: counters.ok,
    errors: counters.errors,
    errors_by_kind: counters.errorsByKind,
    verify_failures: counters.verifyFailures,
    verify_failures_by_kind: counters.verifyFailuresByKind,
    verify_failure_samples: counters.failureSamples,
    skipped: 0,
    status_counts: counters.statusCounts,
    bytes: counters.bytes,
    elapsed_s: Math.round(elapsedS * 1000) / 1000,
    rps: elapsedS > 0 ? Math.round((responses / elapsedS) * 10) / 10 : 0,
    mbps: elapsedS > 0 ? Math.round(((counters.bytes * 8) / elapsedS / 1e6) * 100) / 100 : 0,
    latency_ms: latencySummary(histogram, counters.maxLatencyUs),
    notes: settings.notes,
  };
}

export async function runSingleUrl(options: SingleUrlOptions): Promise<SingleUrlResult> {
  const settings = singleUrlSettings(options);
  const entry = await manifestEntry(options, settings);
  const pre = await preflight(options.url, settings.timeoutMs);
  const expect = expectations(options, settings.path, entry, pre);
  const { done, aborted } = await runAbWorkers(options, settings, abWorkerInits(options, settings, expect));
  const merged = mergeAbReports(done, expect.failure);
  return singleUrlResult(options, settings, pre, expect, { aborted, merged });
}
