// `sc-cluster bench micro|trace`: the paper's Figures 8 and 9 on the testbed, against real
// peers (nginx, haproxy), with JSON, Markdown and plots (docs/benchmarks.md).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "./command.js";
import {
  bool,
  formatHelp,
  int,
  num,
  parseCommand,
  str,
  UsageError,
  type CommandSpec,
  type ParsedValues,
} from "../common/args.js";
import type { Mechanism } from "../bench/paper/micro.js";
import type { FrontendRatio, TraceMode, TraceOptions } from "../bench/paper/trace.js";
import { EXIT, UserError } from "../common/errors.js";

const COMMON: CommandSpec["options"] = {
  runs: {
    type: "string",
    value: "N",
    help: "Measured runs per point (the median is plotted, min and max shown)",
    default: "3",
  },
  duration: { type: "string", value: "S", help: "Seconds per measured run" },
  out: {
    type: "string",
    value: "DIR",
    help: "Where the JSON, Markdown, SVG and PNG results go",
    default: "bench-results",
  },
  prefix: {
    type: "string",
    value: "P",
    help: "Namespace prefix base (1-9 characters; each cluster adds a letter and '-')",
    default: "scb",
  },
  "proxy-workers": {
    type: "string",
    value: "N",
    help: "nginx worker processes / haproxy threads",
    default: "1",
  },
  "no-png": { type: "boolean", help: "Write the SVG plots only (no chromium rendering to PNG)" },
  quiet: {
    type: "string",
    value: "PCT",
    help: "Before each run wait until the machine is at most PCT% busy (other work on a shared machine), 0: don't [--quick: 0]",
    default: "30",
  },
  "quiet-wait": {
    type: "string",
    value: "S",
    help: "Longest wait for a quiet machine before a run",
    default: "300",
  },
  "host-cpu": {
    type: "string",
    value: "SHARE",
    help:
      "Give each server-side host (every node, the dispatcher/proxy host, the origin) its own CPU: a cgroup " +
      "CPU quota of SHARE cores for its processes (0.25 = a quarter of a core; cgroup v1 or v2); default: none, all share the cores",
  },
  quick: {
    type: "boolean",
    help: "A few points and seconds (CI): the values in [--quick: ...] unless given",
  },
};

const MICRO: CommandSpec = {
  name: "bench micro",
  summary:
    "Figure 8: normalized efficiency vs file size: one plain node vs the same request with Socket Cloning,\n" +
    "cooperative caching, nginx or haproxy (URI hash) applied to every request",
  usage:
    "sc-cluster bench micro [--sizes LIST] [--mechanisms LIST] [--rate R|none] [--host-cpu SHARE] [--runs N] [--duration S] [--out DIR] [--quick]",
  options: {
    sizes: {
      type: "string",
      value: "LIST",
      help: "File sizes in bytes [--quick: 1000,100000]",
      default: "100,300,1000,3000,10000,30000,100000,300000,1000000",
    },
    mechanisms: {
      type: "string",
      value: "LIST",
      help: "Mechanisms besides plain (always run): sc, cf, lard, nginx, haproxy, sc-local (see below)",
      default: "sc,cf,nginx,haproxy",
    },
    rate: {
      type: "string",
      value: "R",
      help: "Rate of each server-side host's link (nodes, front-end, origin; tc syntax), or 'none' for unshaped",
      default: "100mbit",
    },
    "frontend-rate": {
      type: "string",
      value: "R",
      help: "Rate of the dispatcher/proxy host's link, or 'none'; default: --rate",
    },
    "origin-rate": {
      type: "string",
      value: "R",
      help: "Rate of the origin's link, or 'none'; default: --rate",
    },
    "client-rate": {
      type: "string",
      value: "R",
      help: "Rate of the client's link, or 'none'",
      default: "none",
    },
    ...COMMON,
    duration: { ...COMMON.duration!, default: "10", help: "Seconds per measured run [--quick: 2]" },
    runs: { ...COMMON.runs!, help: `${COMMON.runs!.help} [--quick: 1]` },
    warmup: {
      type: "string",
      value: "S",
      help: "Seconds of warm-up per mechanism and size [--quick: 1]",
      default: "3",
    },
    clients: { type: "string", value: "N", help: "Load generator worker threads", default: "1" },
    conns: { type: "string", value: "N", help: "Connections per worker thread", default: "8" },
    keepalive: {
      type: "boolean",
      help: "Keep connections open (default: a new connection per request, as ApacheBench)",
    },
    tls: {
      type: "boolean",
      help: "HTTPS (TLS 1.3): clients to the nodes' port 443 (SC clones the sessions) or to the proxy terminating TLS; not with lard",
    },
    urls: {
      type: "string",
      value: "N",
      help: "Distinct documents per size (rounded up to a multiple of the connections)",
      default: "64",
    },
    "cache-bytes": { type: "string", value: "SIZE", help: "Document cache of each node", default: "256M" },
    "latency-probe": {
      type: "string",
      value: "S",
      help: "Seconds of the one-connection clone latency probe after each size's runs, 0 for none [--quick: 1]",
      default: "3",
    },
  },
  epilog:
    "Every contender is a 2-node cluster on the testbed (docs/cluster.md), all up at once so runs interleave.\n" +
    "plain: every connection to node1, mode local. sc, cf: every connection to node1, every URL homed at\n" +
    "node2 (checked per run on the nodes' metrics). lard: the LARD front-end in the dispatcher's place hands\n" +
    "every request to node1 (TCP handoff; not in the default list). nginx, haproxy: in the dispatcher's host on\n" +
    "198.18.0.1:80 in front of node2 (which holds every document). sc-local: the sc cluster serving every document\n" +
    "where it arrives (cloned vs local cost side by side, for --clone-local-max-bytes; not in the default list).\n" +
    "Every response is verified (status, length, SHA-256).\n" +
    "Equal hosts by default: every server-side host's link at --rate, the client's unshaped (the paper's testbed).\n" +
    "Needs root. Exit code 1 when a run failed (such points are reported, not plotted).",
};

const TRACE: CommandSpec = {
  name: "bench trace",
  summary:
    "Figure 9: throughput vs number of nodes replaying a trace, for RR, CF-LRU, CF-LFU, SC, nginx and haproxy",
  usage:
    "sc-cluster bench trace [--trace FILE] [--nodes LIST] [--modes LIST] [--rate R] [--frontend-rate R] [--host-cpu SHARE] [--cache-bytes SIZE] [--out DIR] [--quick]",
  options: {
    trace: {
      type: "string",
      value: "FILE",
      help:
        "A real trace (Common Log Format, e.g. ../shared/traces/nasa.log; its site is built from it as `sc-cluster site` does, " +
        "each document as large as its largest logged 200 GET); default: synthetic, see --scale",
    },
    scale: {
      type: "string",
      value: "S",
      help: "Synthetic trace: scale of the paper's trace (files, requests, bytes) [--quick: 0.002]",
      default: "0.01",
    },
    "max-file-bytes": { type: "string", value: "SIZE", help: "Synthetic trace: largest file", default: "1M" },
    seed: { type: "string", value: "N", help: "Synthetic trace: seed", default: "1" },
    nodes: { type: "string", value: "LIST", help: "Node counts [--quick: 2]", default: "1,2,4,6,8,10,12" },
    modes: {
      type: "string",
      value: "LIST",
      help: "Modes and peers (rr, cf-lru, cf-lfu, sc, lard, nginx, haproxy)",
      default: "rr,cf-lru,cf-lfu,sc,nginx,haproxy",
    },
    rate: {
      type: "string",
      value: "R",
      help: "Rate of each server-side host's link (the nodes; the front-end and origin unless given; tc syntax), or 'none'",
      default: "10mbit",
    },
    "origin-rate": {
      type: "string",
      value: "R",
      help: "Rate of the origin's link (the paper's NFS server), or 'none'; default: --rate",
    },
    "client-rate": {
      type: "string",
      value: "R",
      help: "Rate of the client's link, or 'none'",
      default: "none",
    },
    "frontend-rate": {
      type: "string",
      value: "R",
      help: "Rate of the dispatcher/proxy host's link, or 'none'; default: --rate (equal hosts)",
    },
    "cache-bytes": { type: "string", value: "SIZE", help: "Document cache of each node", default: "3M" },
    clients: { type: "string", value: "N", help: "Load generator worker threads", default: "2" },
    conns: {
      type: "string",
      value: "N",
      help: "Connections per worker thread (2 x 19 = the paper's 19 clients x 2)",
      default: "19",
    },
    keepalive: {
      type: "boolean",
      help: "Keep connections open (default: a new connection per request, as http_load)",
    },
    ...COMMON,
    duration: { ...COMMON.duration!, default: "20", help: "Seconds per measured run [--quick: 2]" },
    runs: { ...COMMON.runs!, help: `${COMMON.runs!.help} [--quick: 1]` },
    timeout: {
      type: "string",
      value: "MS",
      help: "Per-request timeout of the load generator, and the nodes' --origin-timeout",
      default: "60000",
    },
    "warmup-requests": {
      type: "string",
      value: "N",
      help: "Warm-up requests per node before the runs (the same for every mode; at most 60 s) [--quick: 50]",
      default: "150",
    },
    "sc-local-max-bytes": {
      type: "string",
      value: "N",
      help: "SC nodes serve documents up to N bytes where they arrive instead of cloning them (the node's --clone-local-max-bytes); default: the node's default",
    },
  },
  epilog:
    "Each mode and node count gets a fresh cluster (testbed, origin, dispatcher with round robin, N nodes) and\n" +
    "the same warm-up, then its runs back to back, each replaying another part of the trace; the order of\n" +
    "the modes rotates with the node count. rr = mode local; cf-lru, cf-lfu, sc = those modes; lard = the LARD\n" +
    "front-end (dispatcher --mode lard) handing every request to --mode lard nodes; nginx, haproxy =\n" +
    "mode local behind the proxy in the dispatcher's host (198.18.0.1:80). Node and origin links queue 64\n" +
    "frames; the nodes' and dispatcher's timeouts are raised to --timeout (transfers are ~10x slower than on\n" +
    "Fast Ethernet). Equal hosts by default: the nodes, the dispatcher/proxy host and the origin all at --rate\n" +
    "(the paper: one Fast Ethernet interface per machine), the client unshaped. Every response is verified\n" +
    "against the site's manifest. Needs root.",
};

const SWEEP: CommandSpec = {
  name: "bench sweep",
  summary:
    "Front-end sensitivity: Figure 9's benchmark at one node count with the front-end's link (the dispatcher's\n" +
    "host, where nginx and haproxy run) at multiples of a node's link rate, and unshaped",
  usage:
    "sc-cluster bench sweep [--ratios LIST] [--nodes N] [--modes LIST] [--rate R] [--trace FILE] [--host-cpu SHARE] [--out DIR] [--quick]",
  options: {
    ratios: {
      type: "string",
      value: "LIST",
      help: "Front-end link rates as multiples of --rate, and/or 'unshaped' [--quick: 1,unshaped]",
      default: "1,2,4,10,unshaped",
    },
    ...Object.fromEntries(Object.entries(TRACE.options).filter(([k]) => k !== "frontend-rate")),
    nodes: { type: "string", value: "N", help: "Node count [--quick: 2]", default: "12" },
    modes: {
      type: "string",
      value: "LIST",
      help: "Modes and peers (rr, cf-lru, cf-lfu, sc, lard, nginx, haproxy)",
      default: "sc,nginx,haproxy,cf-lfu",
    },
  },
  epilog:
    "Everything else as `bench trace` (each mode and step a fresh cluster, the same warm-up, every response\n" +
    "verified). Results: DIR/sweep.json, sweep.md, sweep.svg/png (req/s vs front-end : node ratio). Needs root.",
};

function optionTable(spec: CommandSpec): string {
  return formatHelp(spec)
    .split("\n")
    .slice(formatHelp(spec).split("\n").indexOf("Options:") + 1)
    .filter((l) => !l.includes("-h, --help"))
    .join("\n");
}

const OVERVIEW: CommandSpec = {
  name: "bench",
  summary:
    "Reproduce the paper's benchmarks on the testbed against real peers: micro (Figure 8), trace (Figure 9),\n" +
    "sweep (Figure 9 at one node count vs the front-end's link)",
  usage:
    "sc-cluster bench micro [options]\n       sc-cluster bench trace [options]\n       sc-cluster bench sweep [options]",
  allowPositionals: true,
  options: {},
  epilog:
    `micro options:\n${optionTable(MICRO)}\n\ntrace options:\n${optionTable(TRACE)}\n\nsweep options:\n${optionTable(SWEEP)}\n\n` +
    "Results: DIR/micro.json, micro.md, micro*.svg/png; DIR/trace.json, trace.md, trace*.svg/png; DIR/sweep.json, sweep.md, sweep.svg/png.",
};

/**
 * The spec `--help` shows. cli/main.ts prints a command's spec for any `--help`, so the
 * subcommand is read from the process's arguments: `bench micro --help` shows micro's options.
 */
function helpSpec(): CommandSpec {
  const argv = process.argv;
  const i = argv.indexOf("bench");
  const sub = i >= 0 ? argv[i + 1] : undefined;
  return sub === "micro" ? MICRO : sub === "trace" ? TRACE : sub === "sweep" ? SWEEP : OVERVIEW;
}

/** Options named on the command line (so --quick does not override them). */
function given(argv: string[], name: string): boolean {
  return argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
}

function numberList(values: ParsedValues, name: string, min: number, max: number): number[] {
  const raw = str(values, name);
  const out = raw.split(",").map((s) => {
    const m = /^\s*(\d+)([kKmM]?)\s*$/.exec(s);
    if (!m) throw new UsageError(`--${name}: '${s}' is not a whole number`);
    const n =
      Number(m[1]) * ({ "": 1, k: 1000, m: 1_000_000 } as Record<string, number>)[m[2]!.toLowerCase()]!;
    if (n < min || n > max) throw new UsageError(`--${name}: ${n} is outside ${min}..${max}`);
    return n;
  });
  return [...new Set(out)].sort((a, b) => a - b);
}

function wordList<T extends string>(values: ParsedValues, name: string, allowed: readonly T[]): T[] {
  const out = str(values, name)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const w of out)
    if (!allowed.includes(w as T))
      throw new UsageError(`--${name}: '${w}' is not one of ${allowed.join(", ")}`);
  return [...new Set(out)] as T[];
}

function rateOption(values: ParsedValues, name: string): string | null {
  const v = str(values, name).trim();
  if (v === "none" || v === "") return null;
  if (!/^\d+(\.\d+)?(bit|kbit|mbit|gbit)$/i.test(v))
    throw new UsageError(`--${name} must look like 100mbit or 'none', got '${v}'`);
  return v;
}

/** A rate option that defaults to another one (undefined: not given). */
function optionalRate(values: ParsedValues, name: string): string | null | undefined {
  return typeof values[name] === "string" ? rateOption(values, name) : undefined;
}

/** --host-cpu: cores per host, or null when not given. */
function hostCpuOption(values: ParsedValues): number | null {
  return typeof values["host-cpu"] === "string" ? num(values, "host-cpu", 0.01, 64) : null;
}

/** --ratios: positive multiples and/or 'unshaped', in order, without repeats. */
export function ratioList(raw: string): FrontendRatio[] {
  const out: FrontendRatio[] = [];
  for (const w of raw.split(",").map((x) => x.trim())) {
    if (w === "") continue;
    const r: FrontendRatio = w === "unshaped" || w === "none" ? "unshaped" : Number(w);
    if (r !== "unshaped" && (!/^\d+(\.\d+)?$/.test(w) || !(r > 0) || r > 1000))
      throw new UsageError(
        `--ratios: '${w}' is not a multiple of the node rate (0 < x <= 1000) or 'unshaped'`,
      );
    if (!out.includes(r)) out.push(r);
  }
  if (out.length === 0) throw new UsageError("--ratios: no ratio given");
  return out;
}

function prefixOption(values: ParsedValues): string {
  const p = str(values, "prefix");
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,8}$/.test(p))
    throw new UsageError("--prefix must be 1-9 letters, digits, '-' or '_'");
  return p;
}

class Interrupted extends UserError {
  constructor() {
    super("interrupted; everything it started was stopped and removed", "ERR_INTERRUPTED");
  }
}

/** Runs `fn` with a fresh work directory and Ctrl-C wired to an abort; always cleans up. */
async function withRun<T>(fn: (workDir: string, signal: AbortSignal) => Promise<T>): Promise<T> {
  const workDir = await mkdtemp(join(tmpdir(), "sc-bench-"));
  const ac = new AbortController();
  const onSignal = () => {
    console.error("sc-cluster bench: interrupted, stopping everything it started ...");
    ac.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await fn(workDir, ac.signal);
  } catch (err) {
    if (ac.signal.aborted) throw new Interrupted();
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await rm(workDir, { recursive: true, force: true });
  }
}

const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

async function micro(argv: string[]): Promise<number> {
  const { values } = parseCommand(MICRO, argv);
  const quick = bool(values, "quick");
  const q = (name: string, quickValue: string) => {
    if (quick && !given(argv, name)) values[name] = quickValue;
  };
  q("sizes", "1000,100000");
  q("runs", "1");
  q("duration", "2");
  q("warmup", "1");
  q("latency-probe", "1");
  q("quiet", "0");
  const { runMicro, MECHANISMS } = await import("../bench/paper/micro.js");
  const { writeMicro } = await import("../bench/paper/output.js");
  const mechanisms: Mechanism[] = [
    "plain",
    ...wordList(values, "mechanisms", MECHANISMS).filter((m) => m !== "plain"),
  ];
  const out = str(values, "out");
  const tls = bool(values, "tls");
  if (tls && mechanisms.includes("lard"))
    throw new UsageError(
      "bench micro: --tls does not go with lard (its front-end parses requests in the clear)",
    );
  const result = await withRun((workDir, signal) =>
    runMicro({
      sizes: numberList(values, "sizes", 1, 64_000_000),
      mechanisms,
      rate: rateOption(values, "rate"),
      ...definedRates({
        frontendRate: optionalRate(values, "frontend-rate"),
        originRate: optionalRate(values, "origin-rate"),
      }),
      clientRate: rateOption(values, "client-rate"),
      hostCpu: hostCpuOption(values),
      runs: int(values, "runs", 1, 99),
      durationS: num(values, "duration", 0.5, 3600),
      warmupS: num(values, "warmup", 0.5, 3600),
      clients: int(values, "clients", 1, 16),
      conns: int(values, "conns", 1, 1000),
      keepalive: bool(values, "keepalive"),
      tls,
      urls: int(values, "urls", 1, 100_000),
      cacheBytes: str(values, "cache-bytes"),
      proxyWorkers: int(values, "proxy-workers", 1, 64),
      latencyProbeS: num(values, "latency-probe", 0, 3600),
      quietPct: num(values, "quiet", 0, 100),
      quietWaitS: num(values, "quiet-wait", 0, 86400),
      prefix: prefixOption(values),
      workDir,
      quick,
      log,
      signal,
    }),
  );
  const files = await writeMicro(result, out, { png: !bool(values, "no-png"), log });
  console.log(files.markdown);
  log(`wrote ${files.paths.join(", ")}`);
  if (result.failed_runs > 0) {
    console.error(`sc-cluster bench micro: ${result.failed_runs} runs failed (reported, not plotted)`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

/** The options given (undefined ones left out, so the runner's defaults apply). */
function definedRates<T extends Record<string, string | null | undefined>>(
  o: T,
): Partial<Record<keyof T, string | null>> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<
    Record<keyof T, string | null>
  >;
}

/** The trace runner's options from `bench trace` or `bench sweep` arguments (after --quick's values). */
async function traceOptions(
  values: ParsedValues,
  quick: boolean,
  out: string,
  workDir: string,
  signal: AbortSignal,
): Promise<TraceOptions> {
  const { TRACE_MODES } = await import("../bench/paper/trace.js");
  const { parseByteSize } = await import("../cluster/index.js");
  const rate = rateOption(values, "rate");
  // Equal hosts: the front-end and the origin get the nodes' rate unless given.
  const orNodeRate = (name: string) => {
    const r = optionalRate(values, name);
    return r === undefined ? rate : r;
  };
  return {
    trace: typeof values.trace === "string" ? values.trace : null,
    scale: num(values, "scale", 1e-6, 1),
    maxFileBytes: parseByteSize(str(values, "max-file-bytes"), "--max-file-bytes"),
    seed: int(values, "seed", 0, 0xffffffff),
    nodes: numberList(values, "nodes", 1, 60),
    modes: wordList<TraceMode>(values, "modes", TRACE_MODES),
    rate,
    originRate: orNodeRate("origin-rate"),
    clientRate: rateOption(values, "client-rate"),
    frontendRate: orNodeRate("frontend-rate"),
    hostCpu: hostCpuOption(values),
    cacheBytes: parseByteSize(str(values, "cache-bytes"), "--cache-bytes"),
    clients: int(values, "clients", 1, 16),
    conns: int(values, "conns", 1, 1000),
    keepalive: bool(values, "keepalive"),
    runs: int(values, "runs", 1, 99),
    durationS: num(values, "duration", 0.5, 3600),
    warmupRequestsPerNode: int(values, "warmup-requests", 0, 10_000_000),
    timeoutMs: int(values, "timeout", 100, 600_000),
    ...(values["sc-local-max-bytes"] !== undefined
      ? { scLocalMaxBytes: int(values, "sc-local-max-bytes", 0, 1 << 30) }
      : {}),
    quietPct: num(values, "quiet", 0, 100),
    quietWaitS: num(values, "quiet-wait", 0, 86400),
    proxyWorkers: int(values, "proxy-workers", 1, 64),
    prefix: prefixOption(values),
    workDir,
    failedLogsDir: join(out, "failed-logs"),
    quick,
    log,
    signal,
  };
}

/** --quick's values for the trace-driven benchmarks (options named on the command line win). */
function traceQuick(values: ParsedValues, argv: string[], quick: boolean): void {
  const q = (name: string, quickValue: string) => {
    if (quick && !given(argv, name)) values[name] = quickValue;
  };
  q("scale", "0.002");
  q("nodes", "2");
  q("runs", "1");
  q("duration", "2");
  q("warmup-requests", "50");
  q("quiet", "0");
}

async function trace(argv: string[]): Promise<number> {
  const { values } = parseCommand(TRACE, argv);
  const quick = bool(values, "quick");
  traceQuick(values, argv, quick);
  const { runTraceBench } = await import("../bench/paper/trace.js");
  const { writeTrace } = await import("../bench/paper/output.js");
  const out = str(values, "out");
  const result = await withRun(async (workDir, signal) =>
    runTraceBench(await traceOptions(values, quick, out, workDir, signal)),
  );
  const files = await writeTrace(result, out, { png: !bool(values, "no-png"), log });
  console.log(files.markdown);
  log(`wrote ${files.paths.join(", ")}`);
  if (result.failed_runs > 0) {
    console.error(`sc-cluster bench trace: ${result.failed_runs} runs failed (reported, not plotted)`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

async function sweep(argv: string[]): Promise<number> {
  const { values } = parseCommand(SWEEP, argv);
  const quick = bool(values, "quick");
  traceQuick(values, argv, quick);
  if (quick && !given(argv, "ratios")) values.ratios = "1,unshaped";
  const ratios = ratioList(str(values, "ratios"));
  if (numberList(values, "nodes", 1, 60).length !== 1)
    throw new UsageError("--nodes: the sweep runs at one node count (its x axis is the front-end's link)");
  if (rateOption(values, "rate") === null)
    throw new UsageError("--rate: the sweep needs a node rate (its ratios multiply it), not 'none'");
  const { runFrontendSweep } = await import("../bench/paper/trace.js");
  const { writeSweep } = await import("../bench/paper/output.js");
  const out = str(values, "out");
  const result = await withRun(async (workDir, signal) =>
    runFrontendSweep(await traceOptions(values, quick, out, workDir, signal), ratios),
  );
  const files = await writeSweep(result, out, { png: !bool(values, "no-png"), log });
  console.log(files.markdown);
  log(`wrote ${files.paths.join(", ")}`);
  if (result.failed_runs > 0) {
    console.error(`sc-cluster bench sweep: ${result.failed_runs} runs failed (reported, not plotted)`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

export const command: Command = {
  get spec(): CommandSpec {
    return helpSpec();
  },
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === "micro") return micro(rest);
    if (sub === "trace") return trace(rest);
    if (sub === "sweep") return sweep(rest);
    throw new UsageError(
      `bench: expected 'micro', 'trace' or 'sweep'${sub ? `, got '${sub}'` : ""}\nTry 'sc-cluster bench --help'.`,
    );
  },
};
