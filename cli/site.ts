// `sc-cluster site`: a document root and a manifest from a trace (loadgen/site.ts).
import type { Command } from "./command.js";
import { optStr, parseCommand, str, UsageError } from "../common/args.js";
import { buildSite } from "../loadgen/site.js";
import { describeBadLines } from "../loadgen/trace/reader.js";
import { TRACE_FORMAT_OPTIONS, traceFormatOption } from "./trace-format.js";
import { EXIT } from "../common/errors.js";

export const command: Command = {
  spec: {
    name: "site",
    summary: "Build a document root and a replay manifest from a web server trace",
    usage:
      "sc-cluster site --trace FILE --out DIR --manifest FILE [--format F] [--json-fields MAP] [--query skip|strip]",
    options: {
      trace: { type: "string", value: "FILE", help: "Access log to read (.gz is decompressed) (required)" },
      out: { type: "string", value: "DIR", help: "Document root to create; must be new or empty (required)" },
      manifest: { type: "string", value: "FILE", help: "Manifest to write, JSON lines (required)" },
      ...TRACE_FORMAT_OPTIONS,
      query: {
        type: "string",
        value: "POLICY",
        help: "Requests with a query string: skip them, or strip the query and keep the path",
        default: "skip",
      },
    },
    epilog:
      "Every URL answered 200 (GET) becomes a file of its largest logged size whose bytes derive\n" +
      "from its path (AES-256-CTR keyed by SHA-256 of the path; see docs/loadgen.md), mtime\n" +
      "2001-01-01. The manifest lists, per URL, what a correct static server answers: 200 with size\n" +
      "and SHA-256 (logged 304s are replayed as conditional GETs: 200 or 304), or 404. Lines a static\n" +
      "server cannot reproduce (POST, CGI, redirects, ...) are counted and skipped. A trace with no\n" +
      "replayable line is an error (exit 1, with its first bad lines): no document or manifest is written.",
  },
  async run(argv) {
    const { values } = parseCommand(this.spec, argv);
    const format = traceFormatOption(values);
    const query = str(values, "query");
    if (query !== "skip" && query !== "strip") throw new UsageError("--query must be skip or strip");
    for (const name of ["trace", "out", "manifest"]) {
      if (!optStr(values, name)) throw new UsageError(`site: --${name} is required`);
    }
    const t0 = performance.now();
    const r = await buildSite({
      trace: str(values, "trace"),
      out: str(values, "out"),
      manifest: str(values, "manifest"),
      format,
      query,
    });
    const s = (performance.now() - t0) / 1000;
    const reasons = Object.entries(r.skippedByReason)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    console.log(
      [
        `trace       ${r.trace.lines} lines, format ${r.trace.format}, ${r.trace.records} records, ${describeBadLines(r.trace)}`,
        ...r.trace.badSamples.map((b) => `  bad line ${b.line} (${b.reason}): ${b.text}`),
        `replayable  ${r.replayable} requests; skipped ${r.skipped}${reasons ? ` (${reasons})` : ""}`,
        `urls        ${r.documentUrls} answered 200, ${r.notFoundUrls} answered 404`,
        `root        ${r.root}: ${r.documents} documents, ${r.bytes} bytes`,
        `manifest    ${r.manifest}`,
        `took        ${s.toFixed(2)} s`,
      ].join("\n"),
    );
    return EXIT.ok;
  },
};

export default command;
