// `sc-cluster loadgen`: trace replay (loadgen/replay) or one URL hammered ApacheBench-style
// with autocannon (loadgen/ab). Exit code: 0 all verified, 1 verification failures,
// 3 transport errors or timeouts (and no verification failure), 2 usage errors.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "./command.js";
import { bool, int, num, optStr, parseCommand, str, UsageError, type ParsedValues } from "../common/args.js";
import { runReplay, type ReplayOptions } from "../loadgen/replay/run.js";
import { runSingleUrl } from "../loadgen/ab/run.js";
import { formatProgress, formatResult, type LoadResultView, type ProgressView } from "../loadgen/report.js";
import { describeBadLines } from "../loadgen/trace/reader.js";
import { TRACE_FORMAT_OPTIONS, traceFormatOption } from "./trace-format.js";
import { parseRateRange, runSweep, sweepPlotSpec, sweepRates } from "../loadgen/replay/sweep.js";
import { renderPlot } from "../loadgen/plot.js";
import { chromiumPath, renderPng, svgSize } from "../bench/paper/render.js";
import { EXIT, UserError } from "../common/errors.js";

// Open loop and its outputs (replay mode only): --rate, --speed and what they report.
const OPEN_LOOP_OPTIONS = [
  "rate",
  "schedule",
  "seed",
  "speed",
  "max-backlog",
  "hgrm",
  "log",
  "steps",
  "plot",
];

/** `--rate A..B`: the sweep's rates (with --steps), or null for a single rate. */
function sweepRange(values: ParsedValues): number[] | null {
  const range = parseRateRange(optStr(values, "rate") ?? "");
  if (!range) return null;
  if (optStr(values, "steps") === undefined) throw new UsageError("--rate A..B needs --steps N");
  if (optStr(values, "duration") === undefined) throw new UsageError("a sweep needs --duration S (per step)");
  for (const n of ["speed", "hgrm", "log", "requests"]) {
    if (optStr(values, n) !== undefined) throw new UsageError(`--${n} is not for a sweep`);
  }
  return sweepRates(range.from, range.to, int(values, "steps", 2, 50));
}

async function sweepCommand(
  values: ParsedValues,
  options: ReplayOptions,
  rates: number[],
  tableOut: (line: string) => void,
  jsonOut: string | undefined,
): Promise<number> {
  // Everything of the open loop but the rate, which the sweep sets per step.
  const { schedule, seed, maxBacklog } = openLoopOptions({ ...values, rate: undefined });
  const tty = process.stderr.isTTY === true;
  tableOut(`sweep: ${rates.length} steps of ${options.durationS} s, ${rates[0]}..${rates.at(-1)} req/s`);
  tableOut(
    "  intended  achieved  responses/s  kept up  dropped  errors   p50 ms   p90 ms   p99 ms  p99.9 ms",
  );
  const { durationS, ...rest } = options;
  if (durationS === undefined) throw new UsageError("a sweep needs --duration S (per step)");
  const result = await runSweep({
    ...rest,
    schedule,
    seed,
    maxBacklog,
    durationS,
    rates,
    onStep: (s) => {
      if (tty) process.stderr.write("\r\x1b[K");
      const l = s.latency_from_intended_ms;
      tableOut(
        `  ${String(s.intended_rps).padStart(8)}  ${String(s.achieved_rps).padStart(8)}  ` +
          `${String(s.rps).padStart(11)}  ${(s.kept_up ? "yes" : "NO").padStart(7)}  ${String(s.dropped).padStart(7)}  ` +
          `${String(s.errors).padStart(6)}  ${[l.p50, l.p90, l.p99, l.p999].map((v) => String(v).padStart(7)).join("  ")}`,
      );
    },
  });
  if (tty) process.stderr.write("\r\x1b[K");
  tableOut("  (latency from the intended send time: coordinated-omission corrected)");
  const plotDir = optStr(values, "plot");
  if (plotDir) {
    mkdirSync(plotDir, { recursive: true });
    const svg = renderPlot(sweepPlotSpec(result));
    const svgPath = join(plotDir, "sweep.svg");
    writeFileSync(svgPath, svg);
    tableOut(`  plot: ${svgPath}`);
    if (chromiumPath()) {
      const { width, height } = svgSize(svg);
      await renderPng(svgPath, join(plotDir, "sweep.png"), width, height);
      tableOut(`  plot: ${join(plotDir, "sweep.png")}`);
    }
  }
  if (jsonOut === "-") console.log(JSON.stringify(result, null, 2));
  else if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + "\n");
  if (result.steps.some((s) => s.verify_failures > 0)) return EXIT.failed;
  if (result.steps.some((s) => s.errors > 0)) return EXIT.requestErrors;
  return EXIT.ok;
}

/** The replay options of the open loop and its outputs, from the parsed command line. */
function openLoopOptions(values: ParsedValues) {
  const given = (n: string) => optStr(values, n) !== undefined;
  const raw = optStr(values, "schedule");
  if (raw !== undefined && raw !== "constant" && raw !== "poisson")
    throw new UsageError("--schedule must be constant or poisson");
  const schedule: "constant" | "poisson" | undefined = raw;
  return {
    rate: given("rate") ? num(values, "rate", 0.001, 10_000_000) : undefined,
    schedule,
    seed: given("seed") ? int(values, "seed", 0, 0xffffffff) : undefined,
    speed: given("speed") ? num(values, "speed", 0, 1_000_000) : undefined,
    maxBacklog: given("max-backlog") ? int(values, "max-backlog", 1, 10_000_000) : undefined,
    hgrmOut: optStr(values, "hgrm"),
    logOut: optStr(values, "log"),
  };
}

/** --ca FILE: the CA's PEM text, read now (a missing file is the user's error, said plainly). */
function caOption(values: ParsedValues): { ca?: string } {
  const file = optStr(values, "ca");
  if (file === undefined) return {};
  try {
    return { ca: readFileSync(file, "utf8") };
  } catch (err) {
    throw new UserError(`--ca ${file}: ${(err as Error).message}`);
  }
}

const REPLAY_ONLY = [
  "trace",
  "target",
  "ca",
  "conns",
  "pipeline",
  "keepalive",
  "format",
  "json-fields",
  "query",
  ...OPEN_LOOP_OPTIONS,
];
const URL_ONLY = ["url", "connections", "pipelining", "expect-status", "expect-length"];

export const command: Command = {
  spec: {
    name: "loadgen",
    summary: "Replay a trace against an HTTP server (or hammer one URL), verifying every response",
    usage:
      "sc-cluster loadgen --trace FILE --target URL [--clients N] [--conns M] [--keepalive] [--pipeline D]\n" +
      "                          [--requests K | --duration S] [--verify MANIFEST] [--json OUT] [--timeout MS]\n" +
      "                          [--rate R [--schedule constant|poisson] [--seed N] | --speed X] [--max-backlog B]\n" +
      "                          [--hgrm FILE] [--log FILE]\n" +
      "       sc-cluster loadgen --trace FILE --target URL --rate A..B --steps N --duration S [--plot DIR] ...\n" +
      "       sc-cluster loadgen --url URL [--connections C] [--duration S | --requests K] [--pipelining P]\n" +
      "                          [--clients N] [--verify MANIFEST] [--json OUT]",
    options: {
      trace: { type: "string", value: "FILE", help: "Trace to replay, in order (replay mode)" },
      target: {
        type: "string",
        value: "URL",
        help: "Server to replay against, e.g. http://127.0.0.1:8080 or https://198.18.100.1",
      },
      ca: {
        type: "string",
        value: "FILE",
        help: "PEM CA certificate to trust for an https:// target besides the system's (e.g. a cluster's tls/ca.crt)",
      },
      clients: { type: "string", value: "N", help: "Client worker threads", default: "1" },
      conns: { type: "string", value: "M", help: "Concurrent connections per worker (replay)", default: "2" },
      keepalive: { type: "boolean", help: "Persistent connections (default: one connection per request)" },
      pipeline: { type: "string", value: "D", help: "Requests in flight per connection (needs --keepalive)" },
      requests: { type: "string", value: "K", help: "Stop after K requests (the trace wraps if shorter)" },
      duration: { type: "string", value: "S", help: "Stop issuing requests after S seconds" },
      verify: {
        type: "string",
        value: "MANIFEST",
        help: "Check status, length and SHA-256 of every response",
      },
      json: { type: "string", value: "OUT", help: "Write the result as JSON to OUT ('-' for stdout)" },
      timeout: {
        type: "string",
        value: "MS",
        help: "Per-request timeout: connect, headers, body gaps",
        default: "10000",
      },
      ...TRACE_FORMAT_OPTIONS,
      query: { type: "string", value: "POLICY", help: "Query-string requests: skip|strip", default: "skip" },
      rate: {
        type: "string",
        value: "R",
        help: "Open loop: R requests/s in total on a schedule, latency also from the intended send time",
      },
      schedule: {
        type: "string",
        value: "KIND",
        help: "Send times for --rate: constant|poisson [default: constant]",
      },
      seed: { type: "string", value: "N", help: "Seed of the Poisson schedule [default: 1]" },
      speed: {
        type: "string",
        value: "X",
        help: "Open loop on the trace's timestamps, X times faster; 0 = as fast as possible [default: 0]",
      },
      "max-backlog": {
        type: "string",
        value: "B",
        help: "Open loop: due requests that may wait for a connection; more are dropped [default: 10000]",
      },
      hgrm: {
        type: "string",
        value: "FILE",
        help: "Write the latency percentile distribution (HdrHistogram .hgrm text, ms) to FILE",
      },
      log: { type: "string", value: "FILE", help: "Write per-second results (tab-separated) to FILE" },
      steps: {
        type: "string",
        value: "N",
        help: "Rate sweep: with --rate A..B, N runs of --duration S at rates from A to B",
      },
      plot: {
        type: "string",
        value: "DIR",
        help: "Rate sweep: write sweep.svg (and sweep.png with chromium) to DIR",
      },
      url: { type: "string", value: "URL", help: "Single-URL mode (autocannon): the document to request" },
      connections: { type: "string", value: "C", help: "Single-URL mode: total connections", default: "10" },
      pipelining: { type: "string", value: "P", help: "Single-URL mode: pipelined requests per connection" },
      "expect-status": {
        type: "string",
        value: "CODE",
        help: "Single-URL mode: required status [default: 200]",
      },
      "expect-length": { type: "string", value: "BYTES", help: "Single-URL mode: required Content-Length" },
    },
    epilog:
      "Replay deals trace entries round-robin to the N x M connections, each replaying its share in\n" +
      "order (the paper's modified http_load). Without --requests or --duration it makes one pass over\n" +
      "the trace, capped at 600 s. A live progress line is drawn on a terminal (stderr), a table printed\n" +
      "at the end. Exit code: 0 ok, 1 verification failures, 3 transport errors/timeouts only.\n" +
      "That is a closed loop: a slow server slows the client down. --rate R and --speed X are open\n" +
      "loops: requests go out on schedule whatever the answers do; when all connections are busy they\n" +
      "queue (at most --max-backlog, then dropped and counted), latency is reported from the intended\n" +
      "send time (coordinated-omission corrected, as wrk2) and from the actual one, and the report says\n" +
      "when the target did not keep up (achieved vs intended rate, backlog, drops). An open loop is\n" +
      "always time-bounded (--duration, else 600 s). --hgrm writes the corrected distribution in the open\n" +
      "loop and the uncorrected one next to it (x.uncorrected.hgrm). A sweep (--rate A..B --steps N)\n" +
      "runs N open loops of --duration S each and prints latency percentiles against achieved\n" +
      "throughput (the knee); --plot draws them.",
  },
  async run(argv) {
    const { values } = parseCommand(this.spec, argv);
    const given = (name: string) => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    const single = optStr(values, "url") !== undefined;
    if (single && optStr(values, "trace"))
      throw new UsageError("loadgen: give either --trace or --url, not both");
    if (!single && !optStr(values, "trace"))
      throw new UsageError("loadgen: --trace FILE (or --url URL) is required");
    for (const name of single ? REPLAY_ONLY : URL_ONLY) {
      if (given(name)) throw new UsageError(`loadgen: --${name} is for ${single ? "replay" : "--url"} mode`);
    }
    const common = {
      clients: int(values, "clients", 1, 256),
      requests: optStr(values, "requests") !== undefined ? int(values, "requests", 1) : undefined,
      durationS: optStr(values, "duration") !== undefined ? num(values, "duration", 0.001, 86400) : undefined,
      verify: optStr(values, "verify"),
      timeoutMs: int(values, "timeout", 1, 3_600_000),
    };
    const jsonOut = optStr(values, "json");
    const tableOut = jsonOut === "-" ? console.error : console.log;
    const tty = process.stderr.isTTY === true;
    const onProgress = tty
      ? (p: ProgressView) => process.stderr.write(`\r${formatProgress(p)}\x1b[K`)
      : undefined;
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once("SIGINT", onSigint);

    let result: LoadResultView & Record<string, unknown>;
    try {
      if (single) {
        result = { ...(await runSingle(values, common, onProgress, abort.signal)) };
      } else {
        const format = traceFormatOption(values);
        const query = str(values, "query");
        if (query !== "skip" && query !== "strip") throw new UsageError("--query must be skip or strip");
        const target = optStr(values, "target");
        if (!target) throw new UsageError("loadgen: --target URL is required with --trace");
        const replayOptions: ReplayOptions = {
          ...common,
          trace: str(values, "trace"),
          format,
          query,
          target,
          ...caOption(values),
          conns: int(values, "conns", 1, 100_000),
          keepalive: bool(values, "keepalive"),
          pipeline: optStr(values, "pipeline") !== undefined ? int(values, "pipeline", 1, 1024) : 1,
          onProgress,
          signal: abort.signal,
        };
        const sweep = sweepRange(values);
        if (sweep) return await sweepCommand(values, replayOptions, sweep, tableOut, jsonOut);
        if (given("steps") || given("plot")) throw new UsageError("--steps and --plot need --rate A..B");
        const r = await runReplay({ ...replayOptions, ...openLoopOptions(values) });
        if (tty) process.stderr.write("\r\x1b[K");
        if (r.trace) {
          tableOut(
            `trace: ${r.trace.lines} lines (${r.params.format}), ${r.trace.replayable} replayable, ` +
              `${r.trace.distinct_requests} distinct requests; ${describeBadLines({ bad: r.trace.bad_lines, badByReason: r.trace.bad_by_reason })}`,
          );
          for (const b of r.trace.bad_samples) tableOut(`  bad line ${b.line} (${b.reason}): ${b.text}`);
        }
        result = { ...r };
      }
    } finally {
      process.off("SIGINT", onSigint);
    }
    if (tty) process.stderr.write("\r\x1b[K");
    tableOut(formatResult(result));
    if (jsonOut === "-") console.log(JSON.stringify(result, null, 2));
    else if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + "\n");
    if (result.verify_failures > 0) return EXIT.failed;
    if (result.errors > 0) return EXIT.requestErrors;
    return EXIT.ok;
  },
};

async function runSingle(
  values: ParsedValues,
  common: { clients: number; requests?: number; durationS?: number; verify?: string; timeoutMs: number },
  onProgress: ((p: ProgressView) => void) | undefined,
  signal: AbortSignal,
) {
  return runSingleUrl({
    url: str(values, "url"),
    connections: int(values, "connections", 1, 100_000),
    pipelining: optStr(values, "pipelining") !== undefined ? int(values, "pipelining", 1, 1024) : 1,
    workers: common.clients,
    durationS: common.durationS,
    requests: common.requests,
    verify: common.verify,
    expectStatus:
      optStr(values, "expect-status") !== undefined ? int(values, "expect-status", 100, 599) : undefined,
    expectLength: optStr(values, "expect-length") !== undefined ? int(values, "expect-length", 0) : undefined,
    timeoutMs: common.timeoutMs,
    onProgress,
    signal,
  });
}

export default command;
