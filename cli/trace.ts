// `sc-cluster trace`: synthetic traces (`trace synth`) and a trace summary (`trace stats`).
import type { Command } from "./command.js";
import { bool, num, optStr, parseCommand, UsageError, type ParsedValues } from "../common/args.js";
import { PAPER_TRACE } from "../loadgen/synth/model.js";
import { synthesize } from "../loadgen/synth/synth.js";
import {
  describeBadLines,
  FormatDetectionError,
  nothingToReplay,
  sampleTrace,
  TraceReader,
} from "../loadgen/trace/reader.js";
import { guessFormats, type FormatGuess } from "../loadgen/trace/formats.js";
import { TRACE_FORMAT_OPTIONS, traceFormatOption } from "./trace-format.js";
import { classify } from "../loadgen/classify.js";
import { EXIT } from "../common/errors.js";

const P = PAPER_TRACE;

export const command: Command = {
  spec: {
    name: "trace",
    summary: "Synthesize a trace + document root (synth), or summarize a trace (stats)",
    usage:
      "sc-cluster trace synth --out DIR [--scale S] [--seed N] [--alpha A] [...]\n" +
      "       sc-cluster trace stats --trace FILE [--format F] [--json-fields MAP]",
    allowPositionals: true,
    options: {
      out: { type: "string", value: "DIR", help: "synth: output directory, new or empty (required)" },
      scale: { type: "string", value: "S", help: "synth: multiply requests, files and bytes", default: "1" },
      seed: { type: "string", value: "N", help: "synth: PRNG seed", default: String(P.seed) },
      alpha: {
        type: "string",
        value: "A",
        help: "synth: Zipf exponent of popularity",
        default: String(P.zipfAlpha),
      },
      requests: {
        type: "string",
        value: "N",
        help: "synth: requests at scale 1",
        default: String(P.requests),
      },
      files: { type: "string", value: "N", help: "synth: files at scale 1", default: String(P.files) },
      "total-bytes": {
        type: "string",
        value: "B",
        help: "synth: bytes of all files at scale 1 (6.6 GiB)",
        default: String(P.totalBytes),
      },
      "request-mean": {
        type: "string",
        value: "B",
        help: "synth: mean bytes per request (40 KiB)",
        default: String(P.requestMeanBytes),
      },
      "max-file-bytes": {
        type: "string",
        value: "B",
        help: "synth: largest file (cuts the Pareto tail)",
        default: String(P.maxFileBytes),
      },
      "no-root": { type: "boolean", help: "synth: write trace, manifest and params only (no documents)" },
      trace: { type: "string", value: "FILE", help: "stats: trace to summarize" },
      format: { ...TRACE_FORMAT_OPTIONS.format, help: `stats: ${TRACE_FORMAT_OPTIONS.format.help}` },
      "json-fields": {
        ...TRACE_FORMAT_OPTIONS["json-fields"],
        help: `stats: ${TRACE_FORMAT_OPTIONS["json-fields"].help}`,
      },
    },
    epilog:
      "synth defaults to the paper's trace (UC Berkeley CS, January 2001): 3,940,707 requests to\n" +
      "87,425 files, 6.6 GiB, 40 KiB per request; SURGE sizes (lognormal body, Pareto tail), Zipf\n" +
      "popularity. Writes DIR/trace.log (CLF), DIR/root/, DIR/manifest.jsonl and DIR/params.json.\n" +
      "stats shows how many of the first lines each format parses (why detection chose, or failed),\n" +
      "and exits 1 when no line of the trace would be replayed.",
  },
  async run(argv) {
    const { values, positionals } = parseCommand(this.spec, argv);
    const [sub, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`trace: unexpected argument '${extra[0]}'`);
    if (sub === "synth") return synth(values);
    if (sub === "stats") return stats(values);
    throw new UsageError(`trace: expected 'synth' or 'stats'${sub ? `, got '${sub}'` : ""}`);
  },
};

async function synth(values: ParsedValues): Promise<number> {
  const out = optStr(values, "out");
  if (!out) throw new UsageError("trace synth: --out DIR is required");
  const r = await synthesize({
    out,
    scale: num(values, "scale", 1e-9, 1000),
    seed: num(values, "seed", 0, 0xffffffff),
    zipfAlpha: num(values, "alpha", 0.01, 10),
    requests: num(values, "requests", 1),
    files: num(values, "files", 1),
    totalBytes: num(values, "total-bytes", 1),
    requestMeanBytes: num(values, "request-mean", 1),
    maxFileBytes: num(values, "max-file-bytes", 1),
    writeRoot: !bool(values, "no-root"),
  });
  const m = r.model;
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  console.log(
    [
      `parameters   seed ${r.params.seed}, scale ${r.params.scale}, zipf alpha ${r.params.zipfAlpha}, ` +
        `sizes lognormal(mu ${r.params.bodyMu}, sigma ${r.params.bodySigma}) + pareto(k ${r.params.tailK}, ` +
        `alpha ${r.params.tailAlpha}) cut at ${r.params.maxFileBytes}`,
      `calibrated   tail fraction ${m.tailFraction.toFixed(4)}, size-popularity rho ${m.rho.toFixed(3)}`,
      `files        ${m.files} (${r.requestedFiles} requested), ${m.achieved.totalBytes} bytes, mean ${kib(
        m.achieved.meanFileBytes,
      )}, median ${kib(m.achieved.medianFileBytes)}, max ${kib(m.achieved.maxFileBytes)}`,
      `requests     ${m.requests}, mean ${kib(m.achieved.requestMeanBytes)} per request, zipf slope ${r.zipfSlope.toFixed(3)}`,
      `wrote        ${r.paths.trace}, ${r.paths.root ?? "(no root)"}, ${r.paths.manifest}, ${r.paths.params}`,
      `took         ${r.timings.total.toFixed(2)} s (model ${r.timings.model.toFixed(2)}, documents ${r.timings.root.toFixed(
        2,
      )}, trace ${r.timings.trace.toFixed(2)})`,
    ].join("\n"),
  );
  return EXIT.ok;
}

/** "  nasa-tsv  49 records, 1 ignored, 0 bad" per format, with the first line each could not read. */
function guessTable(guesses: readonly FormatGuess[]): string[] {
  const width = Math.max(...guesses.map((g) => g.format.length));
  const sampled = guesses[0]!.records + guesses[0]!.ignored + guesses[0]!.bad;
  return [
    `detection each format on the first ${sampled} lines:`,
    ...guesses.map((g) => {
      if (g.format === "combined")
        return `  ${g.format.padEnd(width)}  ${g.records} of the clf records carry referer and user agent`;
      const why = g.firstBad ? `; first bad: line ${g.firstBad.line} (${g.firstBad.reason})` : "";
      return `  ${g.format.padEnd(width)}  ${g.records} records, ${g.ignored} ignored, ${g.bad} bad${why}`;
    }),
  ];
}

async function stats(values: ParsedValues): Promise<number> {
  const path = optStr(values, "trace");
  if (!path) throw new UsageError("trace stats: --trace FILE is required");
  const format = traceFormatOption(values);
  let reader: TraceReader;
  try {
    reader = await TraceReader.open(path, { format });
  } catch (err) {
    if (!(err instanceof FormatDetectionError)) throw err;
    console.log(["format    none detected", ...guessTable(err.guesses)].join("\n"));
    throw err;
  }
  let guesses = reader.stats.guesses;
  if (!guesses) {
    const jsonFields = typeof format === "string" ? undefined : format.jsonFields;
    guesses = guessFormats(await sampleTrace(path), { jsonFields });
  }
  const urls = new Set<string>();
  const statuses: Record<string, number> = {};
  const replay: Record<string, number> = {};
  const skipped: Record<string, number> = {};
  let replayable = 0;
  let bytes = 0;
  for await (const rec of reader) {
    urls.add(rec.url);
    statuses[rec.status ?? "-"] = (statuses[rec.status ?? "-"] ?? 0) + 1;
    bytes += rec.bytes ?? 0;
    const c = classify(rec);
    const k = c.ok ? c.kind : `skip:${c.reason}`;
    replay[k] = (replay[k] ?? 0) + 1;
    if (c.ok) replayable++;
    else skipped[c.reason] = (skipped[c.reason] ?? 0) + 1;
  }
  const s = reader.stats;
  const list = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
  console.log(
    [
      `format    ${s.format} (${s.guesses ? "detected" : "given"})`,
      ...guessTable(guesses),
      `lines     ${s.lines} (${s.records} records, ${s.ignored} ignored, ${describeBadLines(s)})`,
      ...s.badSamples.map((b) => `  bad line ${b.line} (${b.reason}): ${b.text}`),
      `urls      ${urls.size} distinct`,
      `statuses  ${list(statuses)}`,
      `bytes     ${bytes} logged`,
      `replay    ${list(replay)}`,
    ].join("\n"),
  );
  if (replayable === 0) {
    console.error(`sc-cluster trace: ${nothingToReplay(path, s, skipped)}`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

export default command;
