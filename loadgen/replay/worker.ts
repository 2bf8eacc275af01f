// One replay client worker (a worker thread): M connection slots, each an undici Client
// (one TCP connection, optionally pipelined).
//
// Closed loop (the default): slot s of C replays plan entries s, s+C, s+2C, ... in order,
// sending the next as soon as the previous answer is in (the paper's modified http_load),
// wrapping around the trace when the request limit exceeds it.
// Open loop (--rate, --speed): requests go out when the schedule says (loadgen/schedule.ts),
// to whichever slot is free; when none is, they wait in a bounded queue (tail drop, counted),
// and every latency is also measured from the intended send time.
import { parentPort, workerData } from "node:worker_threads";
import { createHash, type Hash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { buildConnector, Client, type Dispatcher } from "undici";
import type { RequestClass } from "./plan.js";
import { MAX_ERROR_SAMPLES, MAX_FAILURE_SAMPLES, newCounters } from "./stats.js";
import { checkResponse, errorKind, type Expectation } from "./verify.js";
import { OpenLoopQueue, Pacer, type QueueStats, type ScheduleSpec } from "../schedule.js";
import { Timings, type EncodedTimings, type Outcome } from "./timings.js";
import type { Counters } from "./stats.js";

/** How this worker paces its requests. */
export type Pacing =
  | { kind: "closed" }
  | {
      kind: "open";
      schedule: ScheduleSpec;
      /** This worker's number and the number of workers (the schedule is dealt between them). */
      worker: number;
      workers: number;
      /** Due requests that may wait for a free connection in this worker. */
      queueCapacity: number;
    };

export interface WorkerInit {
  origin: string;
  /** Prefix from the target URL's path ("" for "http://host:port"). */
  pathPrefix: string;
  /** An https:// origin: the CA (PEM) to trust besides the system's. */
  tls: { ca?: string } | null;
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
  pacing: Pacing;
  /** Classes to keep per-URL figures for. */
  trackedUrls: number[];
}

export type ToWorker =
  | {
      type: "start";
      /** The run's time zero (epoch ms): schedules and per-second logs count from it. */
      startEpochMs: number;
      deadlineEpochMs: number | null;
    }
  | { type: "stop" };

/** Keep-alive connections idle this long are closed by the client (undici's own default). */
const CLIENT_IDLE_MS = 4_000;

export interface ProgressSnapshot {
  requests: number;
  ok: number;
  errors: number;
  verifyFailures: number;
  bytes: number;
  /** Transport errors so far by kind (the replay's; a chaos run attributes them to faults). */
  errorsByKind?: Record<string, number>;
  /** Verification failures so far by kind (status, length, sha256). */
  verifyFailuresByKind?: Record<string, number>;
}

/** Open-loop state for the progress line and the report. */
export interface OpenLoopSnapshot extends QueueStats {
  sent: number;
  /** Due requests waiting for a connection right now. */
  backlog: number;
  /** Latest intended time among due requests, and latest send (ms since the start). */
  lastIntendedMs: number;
  lastSentMs: number;
}

export type FromWorker =
  | { type: "ready" }
  | { type: "progress"; progress: ProgressSnapshot; open: OpenLoopSnapshot | null }
  | {
      type: "done";
      counters: Counters;
      timings: EncodedTimings;
      open: OpenLoopSnapshot | null;
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
const timings = new Timings(new Set(init.trackedUrls));

/** performance.now() of the run's time zero; set by the start message. */
let zero = 0;
const sinceStart = () => performance.now() - zero;
let deadline = Infinity; // ms since start
let stopped = false;
let hitDeadline = false;
let firstStart: number | null = null;
let lastEnd: number | null = null;
let finished = false;
let sent = 0;
let lastSentMs = 0;

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
  private firstByteMs: number | null = null;
  private connectMs: number | null = null;

  constructor(
    private readonly slot: Slot,
    private readonly clsIndex: number,
    private readonly cls: RequestClass,
    /** Times in ms since the run's start. */
    private readonly intendedMs: number,
    private readonly sentMs: number,
  ) {}

  onRequestStart(): void {}

  onResponseStart(
    _c: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, unknown>,
  ): void {
    this.firstByteMs = sinceStart();
    // The first response on a new connection is the request that waited for its connect.
    this.connectMs = this.slot.takeConnectMs();
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
    const end = sinceStart();
    const us = Math.max(1, Math.round((end - this.sentMs) * 1000));
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
    this.finish(end, verdict === "ok" ? "ok" : "verify_failure");
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.done) return;
    this.done = true;
    counters.requests++;
    counters.errors++;
    const kind = errorKind(err);
    counters.errorsByKind[kind] = (counters.errorsByKind[kind] ?? 0) + 1;
    const end = sinceStart();
    if (counters.errorSamples.length < MAX_ERROR_SAMPLES) {
      const code = (err as { code?: unknown }).code;
      counters.errorSamples.push({
        path: this.cls.path,
        method: this.cls.method,
        kind,
        code: typeof code === "string" ? code : err.name,
        sentS: Math.round(this.sentMs) / 1000,
        failedS: Math.round(end) / 1000,
        bodyBytes: this.bodyBytes,
        localPort: this.slot.localPort,
        responseStarted: this.firstByteMs !== null,
      });
    }
    this.finish(end, "error");
  }

  private finish(end: number, outcome: Outcome): void {
    timings.record({
      cls: this.clsIndex,
      intendedMs: this.intendedMs,
      sentMs: this.sentMs,
      firstByteMs: this.firstByteMs,
      endMs: end,
      connectMs: this.connectMs,
      status: outcome === "error" ? 0 : this.status,
      bodyBytes: this.bodyBytes,
      outcome,
    });
    lastEnd = end;
    this.slot.completed();
  }
}

class Slot {
  private readonly client: Client;
  /** Closed loop: the next plan entry this slot replays. */
  private next: number;
  private inflight = 0;
  /** Duration of the last connect, until a response on that connection claims it. */
  private connectMs: number | null = null;
  /** The client's port of the current (or last) connection, for error samples. */
  localPort: number | null = null;
  readonly depth = init.keepalive ? init.pipeline : 1;

  constructor(slotNumber: number) {
    this.next = slotNumber;
    const connector = buildConnector({ timeout: init.timeoutMs, ...(init.tls ?? {}) });
    this.client = new Client(init.origin, {
      pipelining: this.depth,
      connect: (options, callback) => {
        const t0 = performance.now();
        connector(options, (...args) => {
          if (args[0] === null) {
            this.connectMs = performance.now() - t0;
            this.localPort = args[1].localPort ?? null;
          }
          callback(...args);
        });
      },
      headersTimeout: init.timeoutMs,
      bodyTimeout: init.timeoutMs,
      // An idle connection is closed here before a server closes it (our node after 30 s,
      // Node's http after 5 s): a request sent as the server's FIN is on its way fails
      // (socket closed / reset), an error of the client's making. A server's `Keep-Alive:
      // timeout=N` hint still counts (up to keepAliveMaxTimeout).
      keepAliveTimeout: CLIENT_IDLE_MS,
      keepAliveMaxTimeout: 600_000,
    });
    // Errors are reported per request through the handlers; this keeps stray
    // connection-level errors from becoming uncaught exceptions.
    this.client.on("connectionError", () => undefined);
  }

  get free(): number {
    return this.depth - this.inflight;
  }

  get idle(): boolean {
    return this.inflight === 0;
  }

  takeConnectMs(): number | null {
    const c = this.connectMs;
    this.connectMs = null;
    return c;
  }

  send(index: number, intendedMs: number | null): void {
    const now = sinceStart();
    const clsIndex = entries[index % init.entryCount]!;
    const cls = init.classes[clsIndex]!;
    this.inflight++;
    sent++;
    lastSentMs = now;
    timings.sent(now);
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
      new Exchange(this, clsIndex, cls, intendedMs ?? now, now),
    );
  }

  /** Closed loop: keep `depth` requests in flight on this connection. */
  pumpClosed(): void {
    while (this.free > 0 && !stopped && this.next < init.limit) {
      if (sinceStart() >= deadline) {
        hitDeadline = true;
        break;
      }
      const index = this.next;
      this.next += init.totalSlots;
      this.send(index, null);
    }
    if (this.idle) {
      closedDone.add(this);
      maybeFinish();
    }
  }

  completed(): void {
    this.inflight--;
    // Never dispatch from inside an undici callback: on a connect error undici fails its
    // queued requests in a loop and asserts the queue is empty afterwards.
    queueMicrotask(() => (init.pacing.kind === "closed" ? this.pumpClosed() : pumpOpen()));
  }

  close(): Promise<void> {
    return this.client.destroy();
  }
}

const slots = init.slots.map((s) => new Slot(s));

// ---- open loop ----
const pacing = init.pacing;
const queue =
  pacing.kind === "open"
    ? new OpenLoopQueue(
        new Pacer(pacing.schedule, pacing.worker, pacing.workers, init.limit),
        pacing.queueCapacity,
      )
    : null;
let wake: ReturnType<typeof setTimeout> | undefined;
/** Open loop: no more sends (deadline, stop, or the schedule is done and drained). */
let issuingOver = false;

function openSnapshot(): OpenLoopSnapshot | null {
  return queue
    ? { ...queue.stats, sent, backlog: queue.length, lastIntendedMs: queue.lastDueMs, lastSentMs }
    : null;
}

/** Admits due requests, hands them to free slots, and sets the timer for the next one. */
function pumpOpen(): void {
  if (!queue) return;
  if (wake !== undefined) clearTimeout(wake);
  wake = undefined;
  const now = sinceStart();
  if (!issuingOver) {
    if (stopped) issuingOver = true;
    else {
      // At the deadline, what came due before it still goes out if a connection is free;
      // what cannot stays counted as the backlog at the end.
      const atDeadline = now >= deadline;
      if (atDeadline) queue.admit(deadline, true);
      else queue.admit(now);
      for (const slot of slots) {
        for (let d = slot.free > 0 ? queue.shift() : null; d; d = slot.free > 0 ? queue.shift() : null) {
          slot.send(d.index, d.intendedMs);
        }
      }
      if (atDeadline) issuingOver = hitDeadline = true;
      else if (queue.exhausted()) issuingOver = true;
      else {
        const next = queue.nextDueMs();
        // With requests waiting, wake at the next due time anyway: it is admitted (or
        // dropped) on time and the backlog stays current. (At most an hour per timer:
        // setTimeout overflows past 2^31 ms.)
        const at = Math.min(next ?? Infinity, deadline);
        if (Number.isFinite(at)) {
          const delay = Math.min(3_600_000, Math.max(0, at - now));
          wake = setTimeout(() => {
            // How late the client's own timer fired: time the corrected latency charges to
            // the server although the client (a busy CPU) caused it.
            timings.clientLag(sinceStart() - (now + delay));
            pumpOpen();
          }, delay);
        }
      }
    }
  }
  if (issuingOver) maybeFinish();
}

/** Closed loop: slots that may send no more (limit, deadline or stop) and have nothing in flight. */
const closedDone = new Set<Slot>();

function maybeFinish(): void {
  if (finished || !slots.every((s) => s.idle)) return;
  if (queue ? !issuingOver : closedDone.size < slots.length) return;
  finished = true;
  clearInterval(ticker);
  if (wake !== undefined) clearTimeout(wake);
  void Promise.allSettled(slots.map((s) => s.close())).then(() => {
    const msg: FromWorker = {
      type: "done",
      counters,
      timings: timings.encode(),
      open: openSnapshot(),
      firstStartEpochMs: firstStart === null ? null : performance.timeOrigin + zero + firstStart,
      lastEndEpochMs: lastEnd === null ? null : performance.timeOrigin + zero + lastEnd,
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
    errorsByKind: { ...counters.errorsByKind },
    verifyFailuresByKind: { ...counters.verifyFailuresByKind },
  };
  port.postMessage({ type: "progress", progress: p, open: openSnapshot() } satisfies FromWorker);
}

let ticker: ReturnType<typeof setInterval> | undefined;

port.on("message", (msg: ToWorker) => {
  if (msg.type === "start") {
    zero = msg.startEpochMs - performance.timeOrigin;
    if (msg.deadlineEpochMs !== null) deadline = msg.deadlineEpochMs - msg.startEpochMs;
    ticker = setInterval(progress, init.progressIntervalMs);
    const begin = () => {
      if (queue) pumpOpen();
      else for (const s of slots) s.pumpClosed();
    };
    const wait = -sinceStart();
    if (wait > 0) setTimeout(begin, wait);
    else begin();
  } else if (msg.type === "stop") {
    stopped = true;
    if (queue) pumpOpen();
  }
});

port.postMessage({ type: "ready" } satisfies FromWorker);
