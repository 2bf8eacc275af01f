// Streaming trace reader: one line at a time from disk (gzip-compressed traces too), so a
// multi-GB log never sits in memory. Bad lines are counted by reason, the first few are kept
// with their line numbers for the report, and they are skipped.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import {
  detectFormat,
  lineParser,
  MAX_LINE_LENGTH,
  TRACE_FORMATS,
  type BadLineReason,
  type TraceFormat,
  type TraceRecord,
} from "./formats.js";
import { LineSplitter } from "./lines.js";

export type FormatOption = TraceFormat | "auto";

export interface BadLineSample {
  line: number;
  reason: BadLineReason;
  /** The offending line, cut to 200 characters. */
  text: string;
}

export interface TraceStats {
  format: TraceFormat;
  /** Physical lines read. */
  lines: number;
  /** Lines that became records. */
  records: number;
  /** Blank lines, comments, header rows. */
  ignored: number;
  /** Lines that could not be parsed, in total and by reason. */
  bad: number;
  badByReason: Partial<Record<BadLineReason, number>>;
  /** The first few bad lines (see TraceReadOptions.badSamples). */
  badSamples: BadLineSample[];
}

export interface TraceReadOptions {
  format?: FormatOption;
  /** How many bad lines to keep for the report. */
  badSamples?: number;
  /** Lines sampled by --format auto. */
  detectLines?: number;
}

export class TraceFormatError extends Error {
  readonly userFacing = true;
}

export function isFormatOption(s: string): s is FormatOption {
  return s === "auto" || (TRACE_FORMATS as readonly string[]).includes(s);
}

/** Longest line kept in memory; anything longer is reported as "too_long" and dropped. */
const MAX_BUFFERED_LINE = MAX_LINE_LENGTH + 1;

/**
 * Lines of a (possibly gzipped) file, in batches (one per chunk read). Faster than
 * node:readline by an order of magnitude, and bounded: a "line" longer than
 * MAX_BUFFERED_LINE is yielded as a TOO_LONG marker instead of growing without limit.
 */
async function* lineBatches(path: string): AsyncGenerator<readonly string[]> {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const input: Readable = path.endsWith(".gz") ? file.pipe(createGunzip()) : file;
  file.on("error", (err) => input.destroy(err));
  const decoder = new StringDecoder("utf8");
  const lines = new LineSplitter(MAX_BUFFERED_LINE, TOO_LONG);
  try {
    for await (const chunk of input) {
      const batch = lines.push(decoder.write(chunk as Buffer));
      if (batch.length > 0) yield batch;
    }
    const last = [...lines.push(decoder.end()), ...lines.end()];
    if (last.length > 0) yield last;
  } finally {
    file.destroy();
    input.destroy();
  }
}

/** Stands for a line too long to keep; longer than MAX_LINE_LENGTH, so parsers reject it. */
const TOO_LONG = "x".repeat(MAX_LINE_LENGTH + 1);

/**
 * A trace opened for one streaming pass. Iterate it once with `for await`; `stats` is
 * complete when the iteration ends (and partially filled during it).
 */
export class TraceReader implements AsyncIterable<TraceRecord> {
  readonly stats: TraceStats;
  private consumed = false;

  private constructor(
    readonly path: string,
    format: TraceFormat,
    private readonly maxSamples: number,
  ) {
    this.stats = {
      format,
      lines: 0,
      records: 0,
      ignored: 0,
      bad: 0,
      badByReason: {},
      badSamples: [],
    };
  }

  get format(): TraceFormat {
    return this.stats.format;
  }

  /** Opens a trace; with format "auto" (the default) the first lines decide the format. */
  static async open(path: string, options: TraceReadOptions = {}): Promise<TraceReader> {
    const requested = options.format ?? "auto";
    // Fail early and clearly on a missing file, before any stream is set up.
    try {
      await (await open(path, "r")).close();
    } catch (err) {
      throw new TraceFormatError(`cannot read trace '${path}': ${(err as Error).message}`);
    }
    let format: TraceFormat;
    if (requested === "auto") {
      const sample = await readSample(path, options.detectLines ?? 50);
      const detected = detectFormat(sample);
      if (!detected) {
        throw new TraceFormatError(
          `cannot detect the format of '${path}': none of ${TRACE_FORMATS.join(", ")} parses its first lines`,
        );
      }
      format = detected;
    } else {
      format = requested;
    }
    return new TraceReader(path, format, options.badSamples ?? 5);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TraceRecord> {
    for await (const batch of this.batches()) yield* batch;
  }

  /** The records in batches (one per chunk read): cheaper than one await per record. */
  async *batches(): AsyncGenerator<TraceRecord[]> {
    if (this.consumed) throw new Error("a TraceReader is read once; open the trace again");
    this.consumed = true;
    const parse = lineParser(this.stats.format);
    const s = this.stats;
    for await (const lines of lineBatches(this.path)) {
      const out: TraceRecord[] = [];
      for (const text of lines) {
        const n = ++s.lines;
        const r = parse(text, n);
        if (r.kind === "record") {
          s.records++;
          out.push(r.record);
        } else if (r.kind === "ignore") {
          s.ignored++;
        } else {
          s.bad++;
          s.badByReason[r.reason] = (s.badByReason[r.reason] ?? 0) + 1;
          if (s.badSamples.length < this.maxSamples) {
            s.badSamples.push({ line: n, reason: r.reason, text: text.slice(0, 200) });
          }
        }
      }
      if (out.length > 0) yield out;
    }
  }
}

async function readSample(path: string, count: number): Promise<string[]> {
  const out: string[] = [];
  for await (const lines of lineBatches(path)) {
    for (const text of lines) {
      if (text.trim() !== "") out.push(text);
      if (out.length >= count) return out;
    }
  }
  return out;
}

/** Convenience for small traces and tests: every record plus the stats. */
export async function readTrace(
  path: string,
  options: TraceReadOptions = {},
): Promise<{ records: TraceRecord[]; stats: TraceStats }> {
  const reader = await TraceReader.open(path, options);
  const records: TraceRecord[] = [];
  for await (const r of reader) records.push(r);
  return { records, stats: reader.stats };
}

/** One-line summary of bad lines for reports: "3 bad lines (syntax 2, bad_status 1)". */
export function describeBadLines(stats: Pick<TraceStats, "bad" | "badByReason">): string {
  if (stats.bad === 0) return "no bad lines";
  const reasons = Object.entries(stats.badByReason)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  return `${stats.bad} bad line${stats.bad === 1 ? "" : "s"} (${reasons})`;
}
