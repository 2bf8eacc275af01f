// Counters one worker keeps and the main thread merges; latency in an HdrHistogram (us).
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from "hdr-histogram-js";
import type { VerifyFailure } from "./verify.js";
import type { Manifest } from "../manifest.js";

export interface FailureSample {
  path: string;
  method: string;
  failure: VerifyFailure;
  expected: string;
  got: string;
}

/** A transport error or timeout, with what it takes to find its connection in a node's logs. */
export interface ErrorSample {
  path: string;
  method: string;
  kind: string;
  /** undici's error code (e.g. UND_ERR_HEADERS_TIMEOUT). */
  code: string;
  /** When the request was sent and when it failed (s since the run's start). */
  sentS: number;
  failedS: number;
  /** Bytes of the response body received before the error. */
  bodyBytes: number;
  /** The client's port of the connection (null: it never connected). */
  localPort: number | null;
  /** The response had begun (status line received). */
  responseStarted: boolean;
}

export interface Counters {
  /** Requests finished: responses plus transport errors. */
  requests: number;
  ok: number;
  errors: number;
  errorsByKind: Record<string, number>;
  verifyFailures: number;
  verifyFailuresByKind: Partial<Record<VerifyFailure, number>>;
  failureSamples: FailureSample[];
  errorSamples: ErrorSample[];
  /** Responses by status code. */
  statusCounts: Record<string, number>;
  /** Response body bytes received. */
  bytes: number;
  /** Exact largest latency (us); the histogram rounds. */
  maxLatencyUs: number;
}

export const MAX_FAILURE_SAMPLES = 10;
/** Errors kept with their details (the first ones; a chaos run attributes them to faults). */
export const MAX_ERROR_SAMPLES = 100;

export function newCounters(): Counters {
  return {
    requests: 0,
    ok: 0,
    errors: 0,
    errorsByKind: {},
    verifyFailures: 0,
    verifyFailuresByKind: {},
    failureSamples: [],
    errorSamples: [],
    statusCounts: {},
    bytes: 0,
    maxLatencyUs: 0,
  };
}

function addCounts<K extends string>(
  into: Partial<Record<K, number>>,
  from: Partial<Record<K, number>>,
): void {
  for (const [k, v] of Object.entries(from) as [K, number][]) into[k] = (into[k] ?? 0) + v;
}

export function mergeCounters(into: Counters, from: Counters): void {
  into.requests += from.requests;
  into.ok += from.ok;
  into.errors += from.errors;
  into.verifyFailures += from.verifyFailures;
  into.bytes += from.bytes;
  into.maxLatencyUs = Math.max(into.maxLatencyUs, from.maxLatencyUs);
  addCounts(into.errorsByKind, from.errorsByKind);
  addCounts(into.verifyFailuresByKind, from.verifyFailuresByKind);
  addCounts(into.statusCounts, from.statusCounts);
  for (const s of from.failureSamples) {
    if (into.failureSamples.length < MAX_FAILURE_SAMPLES) into.failureSamples.push(s);
  }
  for (const s of from.errorSamples) {
    if (into.errorSamples.length < MAX_ERROR_SAMPLES) into.errorSamples.push(s);
  }
}

/** 1 us .. 1 h at 3 significant digits. */
export function newLatencyHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export const encodeHistogram = (h: Histogram): string => encodeIntoCompressedBase64(h);
export const decodeHistogram = (s: string): Histogram => decodeFromCompressedBase64(s);

export interface LatencySummaryMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

const ms = (us: number) => Math.round(us) / 1000;

export function latencySummary(h: Histogram, exactMaxUs: number): LatencySummaryMs {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(exactMaxUs),
    mean: ms(h.mean),
  };
}

/** The manifest a run verified against, as its params name it (null: none). */
export function verifyParam(verify: string | Manifest | undefined): string | null {
  return typeof verify === "string" ? verify : verify ? "(in memory)" : null;
}

/** What every load run reports, single-URL or replay: the counts its verdict is made from. */
export interface LoadOutcome {
  tool: "sc-cluster loadgen";
  /** Requests sent (responses + transport errors). */
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
  /** Requests not sent (trace records not replayable, or none for a single URL). */
  skipped: number;
  status_counts: Record<string, number>;
  /** Response body bytes. */
  bytes: number;
  elapsed_s: number;
  /** Responses (ok + verify failures) per second. */
  rps: number;
  /** Response body megabits (10^6) per second. */
  mbps: number;
  /** Latency from the moment each request was sent to the end of its response. */
  latency_ms: LatencySummaryMs;
  notes: string[];
}
