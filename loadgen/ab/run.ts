// runSingleUrl: one document requested over and over (ApacheBench-style) by autocannon in
// N worker threads, for the micro-benchmark. Every response's status and Content-Length are
// checked; the full body (SHA-256 when a manifest knows it) is checked once before the run
// with undici. Result in the same JSON shape as the trace replay.
import { Worker } from "node:worker_threads";
import { createHash } from "node:crypto";
import { request } from "undici";
import { readManifest, type Manifest } from "../manifest.js";
import { canonicalizeTarget } from "../url.js";
import {
  decodeHistogram,
  latencySummary,
  mergeCounters,
  newCounters,
  newLatencyHistogram,
  type LoadOutcome,
} from "../replay/stats.js";
import type { ProgressSnapshot } from "../replay/worker.js";
import type { ReplayProgress } from "../replay/run.js";
import type { AbFromWorker, AbToWorker, AbWorkerInit } from "./worker.js";
import { UserError } from "../../common/errors.js";

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

export async function runSingleUrl(options: SingleUrlOptions): Promise<SingleUrlResult> {
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

  const manifest =
    options.verify === undefined
      ? null
      : typeof options.verify === "string"
        ? await readManifest(options.verify)
        : options.verify;
  const canon = canonicalizeTarget(u.pathname);
  const entry = manifest && canon.ok ? manifest.entries.get(canon.url) : undefined;
  if (manifest && !entry) notes.push(`${u.pathname} is not in the manifest: checking status and length only`);

  const pre = await preflight(options.url, timeoutMs);
  const expectStatus = options.expectStatus ?? entry?.status ?? 200;
  const expectLength =
    options.expectLength ??
    (entry?.status === 200 ? entry.size : expectStatus === pre.status ? pre.length : null);
  const counters = newCounters();
  let verified: SingleUrlResult["preflight"]["verified"] = "unchecked";
  if (entry?.status === 200) {
    verified =
      pre.status === 200 && pre.length === entry.size && pre.sha256 === entry.sha256 ? "ok" : "mismatch";
  } else if (options.expectStatus !== undefined || options.expectLength !== undefined) {
    verified =
      pre.status === expectStatus && (expectLength === null || pre.length === expectLength)
        ? "ok"
        : "mismatch";
  }
  if (verified === "mismatch") {
    counters.verifyFailures++;
    const failure =
      pre.status !== expectStatus ? "status" : pre.length !== expectLength ? "length" : "sha256";
    counters.verifyFailuresByKind[failure] = 1;
    counters.failureSamples.push({
      path: u.pathname,
      method: "GET",
      failure,
      expected: `status ${expectStatus}, ${expectLength ?? "?"} bytes${entry?.status === 200 ? `, sha256 ${entry.sha256}` : ""}`,
      got: `status ${pre.status}, ${pre.length} bytes, sha256 ${pre.sha256} (preflight)`,
    });
  }

  const progressIntervalMs = options.progressIntervalMs ?? 250;
  const threads: Worker[] = [];
  const latest: ProgressSnapshot[] = [];
  const done: Extract<AbFromWorker, { type: "done" }>[] = [];
  let startEpoch = 0;
  const finished = new Promise<void>((resolve, reject) => {
    let ready = 0;
    for (let w = 0; w < workers; w++) {
      const init: AbWorkerInit = {
        url: options.url,
        connections: split(connections, workers, w),
        pipelining,
        amount: options.requests === undefined ? undefined : split(options.requests, workers, w),
        durationS: durationS ?? 86_400,
        timeoutS: Math.max(1, Math.ceil(timeoutMs / 1000)),
        expectStatus,
        expectLength,
        progressIntervalMs,
      };
      const t = new Worker(new URL("./worker.js", import.meta.url), { workerData: init });
      threads.push(t);
      latest.push({ requests: 0, ok: 0, errors: 0, verifyFailures: 0, bytes: 0 });
      t.on("message", (msg: AbFromWorker) => {
        if (msg.type === "ready") {
          if (++ready === workers) {
            startEpoch = performance.timeOrigin + performance.now();
            for (const x of threads) x.postMessage({ type: "start" } satisfies AbToWorker);
          }
        } else if (msg.type === "progress") {
          latest[w] = msg.progress;
          if (options.onProgress) {
            const sum = { requests: 0, ok: 0, errors: 0, verifyFailures: 0, bytes: 0 };
            for (const p of latest) {
              sum.requests += p.requests;
              sum.ok += p.ok;
              sum.errors += p.errors;
              sum.verifyFailures += p.verifyFailures;
              sum.bytes += p.bytes;
            }
            options.onProgress({
              ...sum,
              elapsedS: (performance.timeOrigin + performance.now() - startEpoch) / 1000,
              limit: options.requests ?? null,
              durationS,
            });
          }
        } else if (msg.type === "done") {
          done.push(msg);
          if (done.length === workers) resolve();
        }
      });
      t.on("error", (err) => {
        for (const x of threads) void x.terminate();
        reject(err);
      });
    }
  });
  let interrupted = false;
  const onAbort = () => {
    interrupted = true;
    for (const t of threads) t.postMessage({ type: "stop" } satisfies AbToWorker);
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    await finished;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await Promise.all(threads.map((t) => t.terminate()));
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
  const elapsedS = last > first ? (last - first) / 1000 : 0;
  const responses = counters.ok + counters.verifyFailures;
  const stoppedBy = interrupted
    ? "interrupted"
    : options.requests !== undefined && counters.requests >= options.requests
      ? "requests"
      : durationS !== null
        ? "duration"
        : "requests";
  return {
    tool: "sc-cluster loadgen",
    mode: "single-url",
    params: {
      url: options.url,
      connections,
      pipelining,
      workers,
      requests: options.requests ?? null,
      duration_s: durationS,
      timeout_ms: timeoutMs,
      verify: typeof options.verify === "string" ? options.verify : options.verify ? "(in memory)" : null,
      expect_status: expectStatus,
      expect_length: expectLength,
    },
    preflight: { ...pre, verified },
    stopped_by: stoppedBy,
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
    notes,
  };
}
