// `sc-cluster trace`: synthetic traces (`trace synth`) and a trace summary (`trace stats`).
import type { Command } from "./command.js";
import { bool, num, optStr, parseCommand, str, UsageError } from "./args.js";
import { PAPER_TRACE } from "../loadgen/synth/model.js";
import { synthesize } from "../loadgen/synth/synth.js";
import { describeBadLines, isFormatOption, TraceReader } from "../loadgen/trace/reader.js";
import { TRACE_FORMATS } from "../loadgen/trace/formats.js";
import { classify } from "../loadgen/classify.js";

const P = PAPER_TRACE;

export const command: Command = {
  spec: {
    name: "trace",
    summary: "Synthesize a trace + document root (synth), or summarize a trace (stats)",
    usage:
      "sc-cluster trace synth --out DIR [--scale S] [--seed N] [--alpha A] [...]\n" +
      "       sc-cluster trace stats --trace FILE [--format F]",
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
      format: { type: "string", value: "F", help: `stats: auto|${TRACE_FORMATS.join("|")}`, default: "auto" },
    },
    epilog:
      "synth defaults to the paper's trace (UC Berkeley CS, January 2001): 3,940,707 requests to\n" +
      "87,425 files, 6.6 GiB, 40 KiB per request; SURGE sizes (lognormal body, Pareto tail), Zipf\n" +
      "popularity. Writes DIR/trace.log (CLF), DIR/root/, DIR/manifest.jsonl and DIR/params.json.",
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

async function synth(values: Parameters<typeof str>[0]): Promise<number> {
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
  return 0;
}

async function stats(values: Parameters<typeof str>[0]): Promise<number> {
  const path = optStr(values, "trace");
  if (!path) throw new UsageError("trace stats: --trace FILE is required");
  const format = str(values, "format");
  if (!isFormatOption(format))
    throw new UsageError(`--format must be auto or one of ${TRACE_FORMATS.join(", ")}`);
  const reader = await TraceReader.open(path, { format });
  const urls = new Set<string>();
  const statuses: Record<string, number> = {};
  const replay: Record<string, number> = {};
  let bytes = 0;
  for await (const rec of reader) {
    urls.add(rec.url);
    statuses[rec.status ?? "-"] = (statuses[rec.status ?? "-"] ?? 0) + 1;
    bytes += rec.bytes ?? 0;
    const c = classify(rec);
    const k = c.ok ? c.kind : `skip:${c.reason}`;
    replay[k] = (replay[k] ?? 0) + 1;
  }
  const s = reader.stats;
  const list = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
  console.log(
    [
      `format    ${s.format}`,
      `lines     ${s.lines} (${s.records} records, ${s.ignored} ignored, ${describeBadLines(s)})`,
      ...s.badSamples.map((b) => `  bad line ${b.line} (${b.reason}): ${b.text}`),
      `urls      ${urls.size} distinct`,
      `statuses  ${list(statuses)}`,
      `bytes     ${bytes} logged`,
      `replay    ${list(replay)}`,
    ].join("\n"),
  );
  return 0;
}

export default command;
