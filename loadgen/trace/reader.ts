// Streaming trace reader: one line at a time from disk (gzip-compressed traces too), so a
// multi-GB log never sits in memory. Bad lines are counted by reason, the first few are kept
// with their line numbers for the report, and they are skipped.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import {
  describeGuesses,
  guessFormats,
  lineParser,
  MAX_LINE_LENGTH,
  pickFormat,
  TRACE_FORMATS,
  type BadLineReason,
  type FormatGuess,
  type TraceFormat,
  type TraceRecord,
} from "./formats.js";
import type { JsonFieldMap } from "./json.js";
import { LineSplitter } from "./lines.js";
import { UserError } from "../../common/errors.js";

/** A format name, "auto", or either with the JSON field names to use (`--json-fields`). */
export type FormatOption = TraceFormat | "auto" | FormatChoice;

export interface FormatChoice {
  format: TraceFormat | "auto";
  jsonFields?: JsonFieldMap;
}

export interface BadLineSample {
  line: number;
  reason: BadLineReason;
  /** The offending line, cut to 200 characters. */
  text: string;
}

export interface TraceStats {
  format: TraceFormat;
  /** How each format fared on the first lines, when the format was detected (null if given). */
  guesses: FormatGuess[] | null;
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

export class TraceFormatError extends UserError {
  constructor(message: string) {
    super(message, "ERR_TRACE_FORMAT");
  }
}

/** No format parses the first lines; `guesses` says how each fared. */
export class FormatDetectionError extends TraceFormatError {
  constructor(
    message: string,
    readonly guesses: FormatGuess[],
  ) {
    super(message);
  }
}

/** The trace gave no request to replay; the message has the first bad lines and the reason. */
export class NothingToReplayError extends TraceFormatError {}

export function isFormatOption(s: string): s is TraceFormat | "auto" {
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
    guesses: FormatGuess[] | null,
    private readonly jsonFields: JsonFieldMap | undefined,
    private readonly maxSamples: number,
  ) {
    this.stats = {
      format,
      guesses,
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
    const choice = options.format ?? "auto";
    const { format: requested, jsonFields } = typeof choice === "string" ? { format: choice } : choice;
    // Fail early and clearly on a missing file, before any stream is set up.
    try {
      await (await open(path, "r")).close();
    } catch (err) {
      throw new TraceFormatError(`cannot read trace '${path}': ${(err as Error).message}`);
    }
    let format: TraceFormat;
    let guesses: FormatGuess[] | null = null;
    if (requested === "auto") {
      const sample = await sampleTrace(path, options.detectLines ?? DETECT_LINES);
      guesses = guessFormats(sample, { jsonFields });
      const detected = pickFormat(guesses);
      if (!detected) {
        throw new FormatDetectionError(
          `cannot detect the format of '${path}': no format parses any of its first ${sample.length} lines ` +
            `(${describeGuesses(guesses)}); give --format ${TRACE_FORMATS.join("|")}`,
          guesses,
        );
      }
      format = detected;
    } else {
      format = requested;
    }
    return new TraceReader(path, format, guesses, jsonFields, options.badSamples ?? 5);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TraceRecord> {
    for await (const batch of this.batches()) yield* batch;
  }

  /** The records in batches (one per chunk read): cheaper than one await per record. */
  async *batches(): AsyncGenerator<TraceRecord[]> {
    if (this.consumed) throw new Error("a TraceReader is read once; open the trace again");
    this.consumed = true;
    const parse = lineParser(this.stats.format, { jsonFields: this.jsonFields });
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

/** Non-blank lines sampled by format detection. */
export const DETECT_LINES = 50;

/**
 * The first lines of a trace, up to `count` non-blank ones (blank ones kept in place, so
 * `lines[i]` is line i + 1): what format detection runs every format over.
 */
export async function sampleTrace(path: string, count = DETECT_LINES): Promise<string[]> {
  const out: string[] = [];
  let nonBlank = 0;
  for await (const lines of lineBatches(path)) {
    for (const text of lines) {
      out.push(text);
      if (text.trim() !== "" && ++nonBlank >= count) return out;
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

/**
 * Why a trace gave nothing to replay, for the error a run ends with: what was read, the bad
 * lines by reason and the first of them, or the reasons the records were skipped.
 */
export function nothingToReplay(
  path: string,
  stats: TraceStats,
  skippedByReason: Readonly<Record<string, number>> = {},
): string {
  const skipped = Object.entries(skippedByReason)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  return [
    `nothing to replay in '${path}' (format ${stats.format}): ${stats.lines} lines, ${stats.records} records, ` +
      `${describeBadLines(stats)}` +
      (stats.records > 0 ? `; every record skipped (${skipped || "none"})` : ""),
    ...stats.badSamples.map((b) => `  bad line ${b.line} (${b.reason}): ${b.text}`),
    ...(stats.guesses ? [`  formats on the first lines: ${describeGuesses(stats.guesses)}`] : []),
    stats.records === 0 && stats.bad > 0
      ? "  (give --format, or see `sc-cluster trace stats --trace FILE`)"
      : "",
  ]
    .filter((l) => l !== "")
    .join("\n");
}
