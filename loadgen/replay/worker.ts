// One replay client worker (a worker thread): M connection slots, each an undici Client
// (one TCP connection, optionally pipelined), replaying its share of the plan in order.
// Slot s of C replays plan entries s, s+C, s+2C, ... (round-robin dealing, as the paper's
// modified http_load), wrapping around the trace when the request limit exceeds it.
import { parentPort, workerData } from "node:worker_threads";
import { createHash, type Hash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Client, type Dispatcher } from "undici";
import type { RequestClass } from "./plan.js";
import {
  encodeHistogram,
  MAX_FAILURE_SAMPLES,
  newCounters,
  newLatencyHistogram,
  type Counters,
} from "./stats.js";
import { checkResponse, errorKind, type Expectation } from "./verify.js";

export interface WorkerInit {
  origin: string;
  /** Prefix from the target URL's path ("" for "http://host:port"). */
  pathPrefix: string;
  /** Global connection slot numbers this worker owns. */
  slots: number[];
  totalSlots: number;
  entries: SharedArrayBuffer;
  entryCount: number;
  classes: RequestClass[];
  /** Total requests across all workers (entry indexes 0..limit-1); Infinity for none. */
  limit: number;
  keepalive: boolean;
  pipeline: number;
  timeoutMs: number;
  /** If-Modified-Since sent with conditional requests. */
  ifModifiedSince: string;
  progressIntervalMs: number;
}

export type ToWorker = { type: "start"; deadlineEpochMs: number | null } | { type: "stop" };

export interface ProgressSnapshot {
  requests: number;
  ok: number;
  errors: number;
  verifyFailures: number;
  bytes: number;
}

export type FromWorker =
  | { type: "ready" }
  | { type: "progress"; progress: ProgressSnapshot }
  | {
      type: "done";
      counters: Counters;
      histogram: string;
      firstStartEpochMs: number | null;
      lastEndEpochMs: number | null;
      /** True if the deadline (rather than the request limit) ended this worker's run. */
      hitDeadline: boolean;
      stopped: boolean;
    };

const init = workerData as WorkerInit;
const port = parentPort!;
const entries = new Uint32Array(init.entries, 0, init.entryCount);
const counters = newCounters();
const histogram = newLatencyHistogram();
const epoch = (perfMs: number) => performance.timeOrigin + perfMs;

let deadline = Infinity; // performance.now() time
let stopped = false;
let hitDeadline = false;
let firstStart: number | null = null;
let lastEnd: number | null = null;
let finished = false;
let activeSlots = 0;

function recordFailure(cls: RequestClass, failure: "status" | "length" | "sha256", got: string): void {
  counters.verifyFailures++;
  counters.verifyFailuresByKind[failure] = (counters.verifyFailuresByKind[failure] ?? 0) + 1;
  if (counters.failureSamples.length < MAX_FAILURE_SAMPLES) {
    const e = cls.expect;
    const expected =
      failure === "status"
        ? `status ${e.status === 0 ? "2xx/304" : e.status}${e.allow304 ? " or 304" : ""}`
        : failure === "length"
          ? `${e.size} bytes`
          : `sha256 ${e.sha256}`;
    counters.failureSamples.push({ path: cls.path, method: cls.method, failure, expected, got });
  }
}

/** Response handler for one request (undici's dispatch API: no stream objects per request). */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private contentLength: number | null = null;
  private bodyBytes = 0;
  private hash: Hash | null = null;
  private done = false;

  constructor(
    private readonly slot: Slot,
    private readonly cls: RequestClass,
    private readonly start: number,
  ) {}

  onRequestStart(): void {}

  onResponseStart(
    _c: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, unknown>,
  ): void {
    this.status = statusCode;
    const cl = headers["content-length"];
    if (typeof cl === "string" && /^\d+$/.test(cl)) this.contentLength = Number(cl);
    const e: Expectation = this.cls.expect;
    if (e.sha256 !== null && statusCode === 200) this.hash = createHash("sha256");
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bodyBytes += chunk.length;
    this.hash?.update(chunk);
  }

  onResponseEnd(): void {
    if (this.done) return;
    this.done = true;
    const end = performance.now();
    const us = Math.max(1, Math.round((end - this.start) * 1000));
    histogram.recordValue(us);
    if (us > counters.maxLatencyUs) counters.maxLatencyUs = us;
    counters.requests++;
    counters.bytes += this.bodyBytes;
    counters.statusCounts[this.status] = (counters.statusCounts[this.status] ?? 0) + 1;
    const sha = this.hash ? this.hash.digest("hex") : null;
    const verdict = checkResponse(this.cls.expect, this.cls.method === "HEAD", {
      status: this.status,
      contentLength: this.contentLength,
      bodyBytes: this.bodyBytes,
      sha256: sha,
    });
    if (verdict === "ok") counters.ok++;
    else
      recordFailure(
        this.cls,
        verdict,
        verdict === "status"
          ? `status ${this.status}`
          : verdict === "length"
            ? `${this.bodyBytes} bytes (content-length ${this.contentLength ?? "none"})`
            : `sha256 ${sha}`,
      );
    lastEnd = end;
    this.slot.completed();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.done) return;
    this.done = true;
    counters.requests++;
    counters.errors++;
    const kind = errorKind(err);
    counters.errorsByKind[kind] = (counters.errorsByKind[kind] ?? 0) + 1;
    lastEnd = performance.now();
    this.slot.completed();
  }
}

class Slot {
  private readonly client: Client;
  private next: number;
  private inflight = 0;
  private finished = false;

  constructor(slotNumber: number) {
    this.next = slotNumber;
    this.client = new Client(init.origin, {
      pipelining: init.keepalive ? init.pipeline : 1,
      connectTimeout: init.timeoutMs,
      headersTimeout: init.timeoutMs,
      bodyTimeout: init.timeoutMs,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
    });
    // Errors are reported per request through the handlers; this keeps stray
    // connection-level errors from becoming uncaught exceptions.
    this.client.on("connectionError", () => undefined);
  }

  pump(): void {
    const depth = init.keepalive ? init.pipeline : 1;
    while (this.inflight < depth && !stopped && this.next < init.limit) {
      const now = performance.now();
      if (now >= deadline) {
        hitDeadline = true;
        break;
      }
      const cls = init.classes[entries[this.next % init.entryCount]!]!;
      this.next += init.totalSlots;
      this.inflight++;
      if (firstStart === null) firstStart = now;
      const headers: Record<string, string> = {};
      if (cls.kind === "conditional") headers["if-modified-since"] = init.ifModifiedSince;
      this.client.dispatch(
        {
          path: init.pathPrefix + cls.path,
          method: cls.method,
          headers,
          reset: !init.keepalive,
          headersTimeout: init.timeoutMs,
          bodyTimeout: init.timeoutMs,
        },
        new Exchange(this, cls, now),
      );
    }
    if (this.inflight === 0 && !this.finished) {
      this.finished = true;
      slotFinished();
    }
  }

  completed(): void {
    this.inflight--;
    // Never dispatch from inside an undici callback: on a connect error undici fails its
    // queued requests in a loop and asserts the queue is empty afterwards.
    queueMicrotask(() => this.pump());
  }

  close(): Promise<void> {
    return this.client.destroy();
  }
}

const slots = init.slots.map((s) => new Slot(s));

function slotFinished(): void {
  if (--activeSlots > 0 || finished) return;
  finished = true;
  clearInterval(ticker);
  void Promise.allSettled(slots.map((s) => s.close())).then(() => {
    const msg: FromWorker = {
      type: "done",
      counters,
      histogram: encodeHistogram(histogram),
      firstStartEpochMs: firstStart === null ? null : epoch(firstStart),
      lastEndEpochMs: lastEnd === null ? null : epoch(lastEnd),
      hitDeadline,
      stopped,
    };
    port.postMessage(msg);
  });
}

function progress(): void {
  const p: ProgressSnapshot = {
    requests: counters.requests,
    ok: counters.ok,
    errors: counters.errors,
    verifyFailures: counters.verifyFailures,
    bytes: counters.bytes,
  };
  port.postMessage({ type: "progress", progress: p } satisfies FromWorker);
}

let ticker: ReturnType<typeof setInterval> | undefined;

port.on("message", (msg: ToWorker) => {
  if (msg.type === "start") {
    if (msg.deadlineEpochMs !== null) deadline = msg.deadlineEpochMs - performance.timeOrigin;
    ticker = setInterval(progress, init.progressIntervalMs);
    activeSlots = slots.length;
    for (const s of slots) s.pump();
  } else if (msg.type === "stop") {
    stopped = true;
  }
});

port.postMessage({ type: "ready" } satisfies FromWorker);
