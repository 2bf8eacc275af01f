// Per-request timings of a replay, aggregated (pure: the worker passes every time in).
//
// Every finished request is one Completion with its times in ms from the run's start:
//   intended  when the schedule meant it to go (open loop); = sent in the closed loop
//   sent      when it was handed to its connection
//   firstByte when the response head arrived (null for transport errors before it)
//   end       when the response (or the error) was complete
// and, if the request had to open its connection, how long the TCP connect took.
//
// From those: latency from the sent time (what the client saw), latency from the intended
// time (coordinated-omission corrected, wrk2's figure), time to first byte, connect, the
// same per response class (status x size bucket) and per frequent URL, and a per-second log.
import { Histogram, type EncodedHistogram } from "../histogram.js";

export type Outcome = "ok" | "verify_failure" | "error";

export interface Completion {
  /** Request class (plan.classes index). */
  cls: number;
  intendedMs: number;
  sentMs: number;
  firstByteMs: number | null;
  endMs: number;
  connectMs: number | null;
  /** HTTP status, 0 for a transport error. */
  status: number;
  bodyBytes: number;
  outcome: Outcome;
}

/** Response size buckets for the per-class table (body bytes). */
export const SIZE_BUCKETS = [
  { name: "0", below: 1 },
  { name: "1B-1K", below: 1024 },
  { name: "1K-10K", below: 10 * 1024 },
  { name: "10K-100K", below: 100 * 1024 },
  { name: "100K-1M", below: 1024 * 1024 },
  { name: ">=1M", below: Infinity },
] as const;

export function sizeBucket(bytes: number): string {
  for (const b of SIZE_BUCKETS) if (bytes < b.below) return b.name;
  return ">=1M";
}

/** The per-class key: "200 1K-10K", or "error" for transport errors. */
export function classKey(c: Pick<Completion, "status" | "bodyBytes" | "outcome">): string {
  return c.outcome === "error" ? "error" : `${c.status} ${sizeBucket(c.bodyBytes)}`;
}

const us = (ms: number) => ms * 1000;

/** Counts and latencies of one group of requests (a class, a URL, one second). */
export class Group {
  requests = 0;
  ok = 0;
  errors = 0;
  verifyFailures = 0;
  bytes = 0;
  /** Latency from the sent time (us). */
  readonly total = new Histogram();
  /** Latency from the intended time (us). */
  readonly corrected = new Histogram();
  readonly ttfb = new Histogram();

  record(c: Completion): void {
    this.requests++;
    if (c.outcome === "ok") this.ok++;
    else if (c.outcome === "error") this.errors++;
    else this.verifyFailures++;
    this.bytes += c.bodyBytes;
    if (c.outcome === "error") return;
    this.total.record(us(c.endMs - c.sentMs));
    this.corrected.record(us(c.endMs - c.intendedMs));
    if (c.firstByteMs !== null) this.ttfb.record(us(c.firstByteMs - c.sentMs));
  }

  encode(): EncodedGroup {
    return {
      requests: this.requests,
      ok: this.ok,
      errors: this.errors,
      verifyFailures: this.verifyFailures,
      bytes: this.bytes,
      total: this.total.encode(),
      corrected: this.corrected.encode(),
      ttfb: this.ttfb.encode(),
    };
  }

  add(e: EncodedGroup): void {
    this.requests += e.requests;
    this.ok += e.ok;
    this.errors += e.errors;
    this.verifyFailures += e.verifyFailures;
    this.bytes += e.bytes;
    this.total.add(e.total);
    this.corrected.add(e.corrected);
    this.ttfb.add(e.ttfb);
  }
}

export interface EncodedGroup {
  requests: number;
  ok: number;
  errors: number;
  verifyFailures: number;
  bytes: number;
  total: EncodedHistogram;
  corrected: EncodedHistogram;
  ttfb: EncodedHistogram;
}

export interface EncodedTimings {
  all: EncodedGroup;
  connect: EncodedHistogram;
  /** Time from intended to sent (the open loop's queueing delay, us). */
  wait: EncodedHistogram;
  /** How late the open loop's send timers fired (us). */
  lag: EncodedHistogram;
  byClass: [string, EncodedGroup][];
  byUrl: [number, EncodedGroup][];
  /** Per-second groups (by completion time) and sends per second. */
  perSecond: [number, EncodedGroup][];
  sentPerSecond: [number, number][];
}

export class Timings {
  readonly all = new Group();
  readonly connect = new Histogram();
  readonly wait = new Histogram();
  readonly lag = new Histogram();
  readonly byClass = new Map<string, Group>();
  readonly byUrl = new Map<number, Group>();
  readonly perSecond = new Map<number, Group>();
  readonly sentPerSecond = new Map<number, number>();

  /** `trackedUrls`: the classes to keep per-URL figures for (the most frequent ones). */
  constructor(private readonly trackedUrls: ReadonlySet<number> = new Set()) {}

  sent(sentMs: number): void {
    const s = Math.max(0, Math.floor(sentMs / 1000));
    this.sentPerSecond.set(s, (this.sentPerSecond.get(s) ?? 0) + 1);
  }

  clientLag(ms: number): void {
    this.lag.record(us(Math.max(0, ms)));
  }

  record(c: Completion): void {
    this.all.record(c);
    if (c.connectMs !== null) this.connect.record(us(c.connectMs));
    this.wait.record(us(c.sentMs - c.intendedMs));
    group(this.byClass, classKey(c)).record(c);
    if (this.trackedUrls.has(c.cls)) group(this.byUrl, c.cls).record(c);
    group(this.perSecond, Math.max(0, Math.floor(c.endMs / 1000))).record(c);
  }

  encode(): EncodedTimings {
    const enc = <K>(m: Map<K, Group>): [K, EncodedGroup][] => [...m].map(([k, g]) => [k, g.encode()]);
    return {
      all: this.all.encode(),
      connect: this.connect.encode(),
      wait: this.wait.encode(),
      lag: this.lag.encode(),
      byClass: enc(this.byClass),
      byUrl: enc(this.byUrl),
      perSecond: enc(this.perSecond),
      sentPerSecond: [...this.sentPerSecond],
    };
  }

  add(e: EncodedTimings): void {
    this.all.add(e.all);
    this.connect.add(e.connect);
    this.wait.add(e.wait);
    this.lag.add(e.lag);
    for (const [k, g] of e.byClass) group(this.byClass, k).add(g);
    for (const [k, g] of e.byUrl) group(this.byUrl, k).add(g);
    for (const [k, g] of e.perSecond) group(this.perSecond, k).add(g);
    for (const [k, n] of e.sentPerSecond) this.sentPerSecond.set(k, (this.sentPerSecond.get(k) ?? 0) + n);
  }
}

function group<K>(m: Map<K, Group>, k: K): Group {
  let g = m.get(k);
  if (!g) m.set(k, (g = new Group()));
  return g;
}

/** Percentiles in ms, as the JSON reports them. */
export interface PercentilesMs {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

const ms = (usValue: number) => Math.round(usValue) / 1000;

/** Percentiles are the highest value of their bucket (HdrHistogram), shown no higher than the exact max. */
export function percentilesMs(h: Histogram): PercentilesMs {
  const at = (p: number) => ms(Math.min(h.max, h.valueAtPercentile(p)));
  return {
    count: h.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: ms(h.max),
    mean: ms(h.mean),
  };
}
