// One single-URL client worker: an autocannon instance in this thread, checking the status
// and Content-Length of every response and recording latency (us) in an HdrHistogram.
import { parentPort, workerData } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import {
  encodeHistogram,
  MAX_FAILURE_SAMPLES,
  newCounters,
  newLatencyHistogram,
  type Counters,
} from "../replay/stats.js";
import type { ProgressSnapshot } from "../replay/worker.js";

export interface AbWorkerInit {
  url: string;
  connections: number;
  pipelining: number;
  /** Requests for this worker; undefined to run for durationS. */
  amount: number | undefined;
  durationS: number;
  timeoutS: number;
  expectStatus: number;
  expectLength: number | null;
  progressIntervalMs: number;
}

export type AbToWorker = { type: "start" } | { type: "stop" };
export type AbFromWorker =
  | { type: "ready" }
  | { type: "progress"; progress: ProgressSnapshot }
  | {
      type: "done";
      counters: Counters;
      histogram: string;
      startEpochMs: number;
      endEpochMs: number;
      timeouts: number;
      error: string | null;
    };

const init = workerData as AbWorkerInit;
const port = parentPort!;
const counters = newCounters();
const histogram = newLatencyHistogram();
const path = new URL(init.url).pathname;

function header(headers: Record<string, string | string[]>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

function fail(failure: "status" | "length", expected: string, got: string): void {
  counters.verifyFailures++;
  counters.verifyFailuresByKind[failure] = (counters.verifyFailuresByKind[failure] ?? 0) + 1;
  if (counters.failureSamples.length < MAX_FAILURE_SAMPLES) {
    counters.failureSamples.push({ path, method: "GET", failure, expected, got });
  }
}

function onResponse(
  status: number,
  _body: string,
  _ctx: unknown,
  headers: Record<string, string | string[]>,
) {
  counters.statusCounts[status] = (counters.statusCounts[status] ?? 0) + 1;
  const cl = header(headers, "content-length");
  const length = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : null;
  // autocannon's parser reads exactly Content-Length body bytes per response, so a body that
  // does not match its header breaks the framing of the next response (counted as an error).
  if (length !== null) counters.bytes += length;
  if (status !== init.expectStatus) fail("status", `status ${init.expectStatus}`, `status ${status}`);
  else if (init.expectLength !== null && length !== init.expectLength)
    fail("length", `content-length ${init.expectLength}`, `content-length ${length ?? "none"}`);
  else counters.ok++;
}

function snapshot(): ProgressSnapshot {
  return {
    requests: counters.ok + counters.verifyFailures + counters.errors,
    ok: counters.ok,
    errors: counters.errors,
    verifyFailures: counters.verifyFailures,
    bytes: counters.bytes,
  };
}

let instance: ReturnType<typeof autocannon> | null = null;
let stopRequested = false;

port.on("message", (msg: AbToWorker) => {
  if (msg.type === "stop") {
    stopRequested = true;
    instance?.stop();
    return;
  }
  const start = performance.now();
  const ticker = setInterval(
    () => port.postMessage({ type: "progress", progress: snapshot() } satisfies AbFromWorker),
    init.progressIntervalMs,
  );
  instance = autocannon(
    {
      url: init.url,
      connections: init.connections,
      pipelining: init.pipelining,
      amount: init.amount,
      duration: init.durationS,
      timeout: init.timeoutS,
      requests: [{ method: "GET", onResponse }],
    },
    (err, result) => {
      clearInterval(ticker);
      const end = performance.now();
      if (result) {
        counters.errors = result.errors;
        counters.errorsByKind = {};
        if (result.timeouts > 0) counters.errorsByKind.timeout = result.timeouts;
        if (result.errors - result.timeouts > 0)
          counters.errorsByKind.connection = result.errors - result.timeouts;
      }
      counters.requests = counters.ok + counters.verifyFailures + counters.errors;
      port.postMessage({
        type: "done",
        counters,
        histogram: encodeHistogram(histogram),
        startEpochMs: performance.timeOrigin + start,
        endEpochMs: performance.timeOrigin + end,
        timeouts: result?.timeouts ?? 0,
        error: err ? err.message : null,
      } satisfies AbFromWorker);
    },
  );
  instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
    const us = Math.max(1, Math.round(responseTimeMs * 1000));
    histogram.recordValue(us);
    if (us > counters.maxLatencyUs) counters.maxLatencyUs = us;
  });
  // A duration bound as well as a count: autocannon's `amount` would ignore the duration.
  if (init.amount !== undefined) setTimeout(() => instance?.stop(), init.durationS * 1000).unref();
  if (stopRequested) instance.stop();
});

port.postMessage({ type: "ready" } satisfies AbFromWorker);
