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

/** The autocannon Client internals the reconnect fix below touches. */
interface AutocannonClient {
  conn?: NodeJS.EventEmitter;
  destroyed: boolean;
  parser: { state: string; line: string; initialize(type: string): void };
  pipelinedRequests: { clear(): void };
  _connect(): void;
}

/**
 * autocannon reconnects after a connection ends but keeps its HTTP parser and queue of
 * pending requests, so a response cut off by the server is completed with the bytes of
 * the next connection's responses: a wrong "response" that could even pass a length check.
 * Before each reconnect, count a response cut off mid-way as an error (socket_closed) and
 * start the new connection with a fresh parser and queue.
 */
function setupClient(client: AutocannonClient): void {
  const connect = client._connect;
  let errored = false;
  client._connect = function (this: AutocannonClient) {
    if (this.conn && !this.destroyed) {
      const partial = this.parser.state !== "RESPONSE_LINE" || this.parser.line !== "";
      // A connection error is already counted by autocannon (once per event).
      if (partial && !errored) {
        counters.errors++;
        counters.errorsByKind.socket_closed = (counters.errorsByKind.socket_closed ?? 0) + 1;
      }
      this.parser.initialize("RESPONSE");
      this.pipelinedRequests.clear();
    }
    errored = false;
    connect.call(this);
    this.conn?.once("error", () => {
      errored = true;
    });
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
      setupClient,
    },
    (err, result) => {
      clearInterval(ticker);
      const end = performance.now();
      if (result) {
        counters.errors += result.errors;
        const add = (kind: string, n: number) => {
          if (n > 0) counters.errorsByKind[kind] = (counters.errorsByKind[kind] ?? 0) + n;
        };
        add("timeout", result.timeouts);
        add("connection", result.errors - result.timeouts);
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
