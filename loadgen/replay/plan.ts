// A replay plan: the trace compiled to one 32-bit request-class index per replayable line,
// in trace order. The trace is read once, streaming; the plan holds 4 bytes per request plus
// one small object per distinct request (URL x kind), so a 4-million-line trace costs 16 MB
// and the workers need no parsing: connection c replays entries c, c+C, c+2C, ...
import { Classifier, type QueryPolicy, type RequestKind, type SkipReason } from "../classify.js";
import type { Manifest, ManifestHeader } from "../manifest.js";
import type { TraceRecord } from "../trace/formats.js";
import type { TraceStats } from "../trace/reader.js";
import type { Expectation } from "./verify.js";

export interface RequestClass {
  method: "GET" | "HEAD";
  /** Canonical path (the target's path prefix is added by the replay). */
  path: string;
  kind: RequestKind;
  expect: Expectation;
}

export type PlanSkipReason = SkipReason | "not_in_manifest";

export interface ReplayPlan {
  classes: RequestClass[];
  /** Class index per replayable trace line, in order. */
  entries: Uint32Array;
  /**
   * Send time per entry for --speed: whole seconds after the first replayable record,
   * never decreasing (a record logged earlier than the one before it is sent with it).
   * Null when some replayable record has no timestamp (a URL list).
   */
  offsetsS: Uint32Array | null;
  /** Entries whose timestamp was earlier than the previous entry's (sent with it). */
  outOfOrder: number;
  skipped: number;
  skippedByReason: Partial<Record<PlanSkipReason, number>>;
  /** Stats of the trace read (absent for plans built in memory). */
  trace: TraceStats | null;
  /** Header of the manifest responses are verified against, if any. */
  manifest: ManifestHeader | null;
}

/** Expectation from the trace alone (no manifest): the logged status, nothing about bytes. */
function fromTraceStatus(kind: RequestKind, status: 200 | 304 | 404 | null): Expectation {
  if (status === null) return { status: 0, allow304: false, size: null, sha256: null };
  if (status === 404) return { status: 404, allow304: false, size: null, sha256: null };
  return { status: 200, allow304: kind === "conditional", size: null, sha256: null };
}

function grow(a: Uint32Array): Uint32Array<ArrayBuffer> {
  const grown = new Uint32Array(a.length * 2);
  grown.set(a);
  return grown;
}

export class PlanBuilder {
  private readonly classes: RequestClass[] = [];
  /** Class index by URL, one map per (kind, logged status) pair. */
  private readonly classIndex = new Map<string, Map<string, number>>();
  private entries = new Uint32Array(1024);
  private offsets: Uint32Array<ArrayBuffer> | null = new Uint32Array(1024);
  private firstTime: number | null = null;
  private outOfOrder = 0;
  private length = 0;
  private readonly skippedByReason: Partial<Record<PlanSkipReason, number>> = {};
  private skipped = 0;
  private readonly classifier: Classifier;

  constructor(
    private readonly manifest: Manifest | null,
    query: QueryPolicy = "skip",
  ) {
    this.classifier = new Classifier({ query });
  }

  add(rec: TraceRecord): void {
    const c = this.classifier.classify(rec);
    if (!c.ok) return this.skip(c.reason);
    let expect: Expectation;
    let group: string;
    if (this.manifest) {
      const e = this.manifest.entries.get(c.url);
      if (!e) return this.skip("not_in_manifest");
      expect =
        e.status === 404
          ? { status: 404, allow304: false, size: null, sha256: null }
          : {
              status: 200,
              allow304: c.kind === "conditional",
              size: e.size,
              sha256: c.kind === "head" ? null : e.sha256,
            };
      group = c.kind;
    } else {
      expect = fromTraceStatus(c.kind, c.status);
      group = `${c.kind} ${c.status}`;
    }
    let byUrl = this.classIndex.get(group);
    if (!byUrl) this.classIndex.set(group, (byUrl = new Map()));
    let idx = byUrl.get(c.url);
    if (idx === undefined) {
      idx = this.classes.length;
      this.classes.push({ method: c.kind === "head" ? "HEAD" : "GET", path: c.url, kind: c.kind, expect });
      byUrl.set(c.url, idx);
    }
    if (this.length === this.entries.length) {
      this.entries = grow(this.entries);
      if (this.offsets) this.offsets = grow(this.offsets);
    }
    if (this.offsets) this.addOffset(rec.time);
    this.entries[this.length++] = idx;
  }

  private addOffset(time: number | null): void {
    if (time === null || !this.offsets) {
      this.offsets = null;
      return;
    }
    this.firstTime ??= time;
    const previous = this.length === 0 ? 0 : this.offsets[this.length - 1]!;
    const offset = Math.min(0xffffffff, Math.max(0, time - this.firstTime));
    if (offset < previous) this.outOfOrder++;
    this.offsets[this.length] = Math.max(previous, offset);
  }

  private skip(reason: PlanSkipReason): void {
    this.skipped++;
    this.skippedByReason[reason] = (this.skippedByReason[reason] ?? 0) + 1;
  }

  build(trace: TraceStats | null): ReplayPlan {
    return {
      classes: this.classes,
      entries: this.entries.slice(0, this.length),
      offsetsS: this.offsets ? this.offsets.slice(0, this.length) : null,
      outOfOrder: this.outOfOrder,
      skipped: this.skipped,
      skippedByReason: this.skippedByReason,
      trace,
      manifest: this.manifest?.header ?? null,
    };
  }
}
