// Streaming trace reader: one line at a time from disk (gzip-compressed traces too), so a
// multi-GB log never sits in memory. Bad lines are counted by reason, the first few are kept
// with their line numbers for the report, and they are skipped.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import {
  detectFormat,
  lineParser,
  TRACE_FORMATS,
  type BadLineReason,
  type TraceFormat,
  type TraceRecord,
} from "./formats.js";

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

function openLines(path: string): { lines: AsyncIterableIterator<string>; close(): void } {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const input: Readable = path.endsWith(".gz") ? file.pipe(createGunzip()) : file;
  file.on("error", (err) => input.destroy(err));
  const rl = createInterface({ input, crlfDelay: Infinity });
  return {
    lines: rl[Symbol.asyncIterator](),
    close() {
      rl.close();
      file.destroy();
      input.destroy();
    },
  };
}

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
    if (this.consumed) throw new Error("a TraceReader is read once; open the trace again");
    this.consumed = true;
    const parse = lineParser(this.stats.format);
    const s = this.stats;
    const src = openLines(this.path);
    try {
      for await (const text of src.lines) {
        const n = ++s.lines;
        const r = parse(text, n);
        if (r.kind === "record") {
          s.records++;
          yield r.record;
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
    } finally {
      src.close();
    }
  }
}

async function readSample(path: string, count: number): Promise<string[]> {
  const src = openLines(path);
  const out: string[] = [];
  try {
    for await (const text of src.lines) {
      if (text.trim() === "") continue;
      out.push(text);
      if (out.length >= count) break;
    }
  } finally {
    src.close();
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
