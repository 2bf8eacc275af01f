// `sc-cluster bench trace`: the paper's Figure 9 (section 4.2), throughput against the number
// of nodes while replaying a trace whose documents are far larger than the nodes' caches
// together, with the origin (the paper's NFS server) on a link of its own, for RR (round-robin
// dispatcher, mode local), CF-LRU, CF-LFU, SC, and nginx / haproxy URI-hash proxies in front of
// nodes in mode local. Every run gets a fresh cluster and the same warm-up; runs are interleaved
// over the modes; every response is verified against the site's manifest.
import { createReadStream } from "node:fs";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { buildSite, synthesize } from "../../loadgen/index.js";
import {
  cpuByRole,
  loadFailure,
  NO_FIGURES,
  nodeDeltas,
  ratioLabel,
  rotated,
  runFigures,
  sweepSteps,
  traceArrangement,
  tracePoints,
  type TraceMode,
  type TraceResult,
  type TraceRun,
  type FrontendRatio,
  type SweepResult,
} from "./analysis.js";
import { detectCpuCgroup, hostCpuParams, hostCpuReadBack } from "./host-cpu.js";
import type { CpuCgroupRoot } from "./cgroup-plan.js";
import {
  hostLinks,
  linkRates,
  rateMbps,
  rateParam,
  scaleRate,
  type HostLink,
  type LinkRates,
  type Rate,
} from "./links.js";
import { Contender } from "./contender.js";
import { machineInfo } from "./machine.js";
import type { ProxyKind } from "./peers-config.js";
import { ensurePeer } from "./peers.js";
import { quietMachine } from "./micro.js";

export {
  TRACE_MODES,
  type FrontendRatio,
  type SweepResult,
  type TraceMode,
  type TraceResult,
} from "./analysis.js";

export interface TraceOptions {
  /** A real trace; null: the synthetic Berkeley-shaped one. */
  trace: string | null;
  scale: number;
  maxFileBytes: number;
  seed: number;
  nodes: number[];
  modes: TraceMode[];
  /**
   * Node links; origin, client and front-end (dispatcher / proxy host) links; null = unshaped.
   * The front-end's is ignored by the sweep, which sets it per step.
   */
  rate: Rate;
  originRate: Rate;
  clientRate: Rate;
  frontendRate: Rate;
  /** --host-cpu: each server-side host's processes get this many cores (a cgroup CPU quota); null: none. */
  hostCpu: number | null;
  cacheBytes: number;
  clients: number;
  conns: number;
  keepalive: boolean;
  runs: number;
  durationS: number;
  warmupRequestsPerNode: number;
  /** Before each run, wait (at most quietWaitS) until the machine is at most this busy (%, 0: off). */
  quietPct: number;
  quietWaitS: number;
  /** SC nodes' --clone-local-max-bytes (undefined: the node's default). */
  scLocalMaxBytes?: number;
  /** Load generator per-request timeout and the nodes' origin timeout, ms. */
  timeoutMs: number;
  proxyWorkers: number;
  prefix: string;
  workDir: string;
  /** Where the processes' logs of failed runs are copied (none: not kept). */
  failedLogsDir?: string;
  quick: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

const LETTERS: Record<TraceMode, string> = {
  rr: "r",
  "cf-lru": "l",
  "cf-lfu": "f",
  sc: "s",
  lard: "d",
  nginx: "n",
  haproxy: "h",
};

/** 64 full Ethernet frames. */
const LINK_QUEUE_BYTES = 64 * 1514;
/** A warm-up stops after this long even if it has not made all its requests. */
const WARMUP_CAP_S = 60;

async function lineCount(path: string): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim() !== "") n++;
  return n;
}

/** The trace rotated to start at line `offset` (wrapping), so each run replays another part. */
async function rotatedTrace(trace: string, offset: number, out: string): Promise<void> {
  const lines = (await readFile(trace, "utf8")).split("\n").filter((l) => l.trim() !== "");
  const k = offset % Math.max(1, lines.length);
  await writeFile(out, lines.slice(k).concat(lines.slice(0, k)).join("\n") + "\n");
}

/** The workload, ready to replay: the site and one rotated trace per run (index 0: the warm-up). */
interface Prepared {
  manifest: string;
  root: string;
  traces: string[];
  workload: Record<string, unknown>;
  versions: Record<string, string>;
}

async function prepare(o: TraceOptions): Promise<Prepared> {
  const log = o.log;
  const versions: Record<string, string> = {};
  for (const m of o.modes)
    if (m === "nginx" || m === "haproxy") versions[m] = await ensurePeer(m as ProxyKind, log);

  // The workload: a synthetic trace with its site, or a real trace's site.
  let trace: string;
  let root: string;
  let manifest: string;
  let workload: Record<string, unknown>;
  const t0 = performance.now();
  if (o.trace === null) {
    const s = await synthesize({
      out: join(o.workDir, "synth"),
      scale: o.scale,
      seed: o.seed,
      maxFileBytes: o.maxFileBytes,
    });
    trace = s.paths.trace;
    root = s.paths.root!;
    manifest = s.paths.manifest;
    workload = {
      trace: "synthetic (sc-cluster trace synth: the paper's Berkeley trace shape)",
      scale: o.scale,
      seed: o.seed,
      max_file_bytes: o.maxFileBytes,
      files: s.model.files,
      requests: s.model.requests,
      document_bytes: s.model.achieved.totalBytes,
      request_mean_bytes: Math.round(s.model.achieved.requestMeanBytes),
      zipf_alpha: s.params.zipfAlpha,
    };
  } else {
    // A real trace: every document with the largest size a 200 GET logged for it (`sc-cluster site`).
    await mkdir(join(o.workDir, "site"), { recursive: true });
    manifest = join(o.workDir, "site", "manifest.jsonl");
    root = join(o.workDir, "site", "root");
    const s = await buildSite({ trace: o.trace, out: root, manifest });
    trace = o.trace;
    workload = {
      trace: o.trace,
      trace_name: basename(o.trace),
      files: s.documents,
      trace_format: s.trace.format,
      trace_lines: s.trace.lines,
      bad_lines: s.trace.bad,
      requests: s.replayable,
      document_bytes: s.bytes,
      skipped_lines: s.skipped,
      skipped_by_reason: s.skippedByReason,
      sizes: "from the log: each document's largest logged 200 GET body",
    };
  }
  log(
    `workload: ${String(workload.files)} documents, ${((workload.document_bytes as number) / 1e6).toFixed(1)} MB, ` +
      `${String(workload.requests)} requests (${((performance.now() - t0) / 1000).toFixed(1)} s to prepare)`,
  );
  const lines = await lineCount(trace);
  const traces: string[] = [];
  for (let r = 0; r <= o.runs; r++) {
    // Run 0 is the warm-up (from the trace's start); run r starts r/(runs+1) of the way in.
    const t = join(o.workDir, `run-${r}.log`);
    await rotatedTrace(trace, Math.floor((r * lines) / (o.runs + 1)), t);
    traces.push(t);
  }
  return { manifest, root, traces, workload, versions };
}

/** One front-end set-up to measure: its rate and, in the sweep, its multiple of a node's rate. */
interface Variant {
  frontendRate: Rate;
  ratio?: FrontendRatio;
}

/**
 * Every (node count, front-end variant, mode) point: a fresh cluster each, the same warm-up,
 * then the runs. A point that fails is reported and the others still run.
 */
async function measureAll(
  o: TraceOptions,
  prep: Prepared,
  variants: readonly Variant[],
): Promise<{ runs: TraceRun[]; hostCpuGroups: Record<string, unknown>[] }> {
  const bench = new TraceBench(o, prep);
  for (const point of planTracePoints(o, variants)) {
    o.signal?.throwIfAborted();
    await bench.measurePoint(point);
  }
  return { runs: bench.runs, hostCpuGroups: bench.hostCpuGroups };
}

/** One point to measure: a mode at a node count with one front-end variant, and its links. */
export interface TracePointPlan {
  mode: TraceMode;
  nodes: number;
  /** In the sweep: the front-end's multiple of a node's rate. */
  ratio?: FrontendRatio;
  /** The point's name (its log directory), e.g. "sc-4" or "nginx-4-fe2x". */
  name: string;
  /** What its log lines add after the mode: the front-end's ratio in the sweep. */
  tag: string;
  links: HostLink[];
}

/** The points in the order they run. */
export function planTracePoints(
  o: Pick<TraceOptions, "nodes" | "modes" | "rate" | "originRate" | "clientRate">,
  variants: readonly Variant[],
): TracePointPlan[] {
  const points: TracePointPlan[] = [];
  let turn = 0;
  for (const n of o.nodes)
    for (const variant of variants) {
      // Node and origin links queue up to 64 full frames (a switch port's buffer; the testbed's own
      // queue is ~20 ms, a handful of frames at these rates), the front-end likewise; the client as asked.
      const links = hostLinks(
        n,
        linkRates({
          rate: o.rate,
          frontendRate: variant.frontendRate,
          originRate: o.originRate,
          clientRate: o.clientRate,
        }),
        LINK_QUEUE_BYTES,
      );
      const ratio = variant.ratio;
      // Each node count and variant starts with another mode, so no mode always runs first.
      for (const mode of rotated(o.modes, turn++))
        points.push({
          mode,
          nodes: n,
          ...(ratio === undefined ? {} : { ratio }),
          name: `${mode}-${n}${ratio === undefined ? "" : `-fe${ratioLabel(ratio)}`}`,
          tag: ratio === undefined ? "" : ` front-end ${ratioLabel(ratio)}`,
          links,
        });
    }
  return points;
}

/**
 * The links run ~10x slower than the paper's Fast Ethernet, so every transfer takes ~10x
 * longer: the timeouts that would cut such transfers (the node's origin, send, linger, clone
 * and peer timeouts, the dispatcher's health checks) get the load generator's timeout. SC nodes
 * also get --clone-local-max-bytes if asked.
 */
export function traceExtraArgs(
  o: Pick<TraceOptions, "timeoutMs" | "scLocalMaxBytes">,
  mode: TraceMode,
): { node: string[]; dispatcher: string[] } {
  const t = String(o.timeoutMs);
  const node = [
    "--origin-timeout",
    "--send-timeout",
    "--linger-timeout",
    "--clone-timeout",
    "--peer-timeout",
  ].flatMap((flag) => [flag, t]);
  if (mode === "sc" && o.scLocalMaxBytes !== undefined)
    node.push("--clone-local-max-bytes", String(o.scLocalMaxBytes));
  return {
    node,
    dispatcher: ["--health-timeout", String(Math.min(o.timeoutMs, 5000)), "--health-fall", "3"],
  };
}

/** The points' state: what their runs collect, and what every run shares. */
class TraceBench {
  readonly runs: TraceRun[] = [];
  readonly hostCpuGroups: Record<string, unknown>[] = [];
  private readonly cgroup: CpuCgroupRoot | null;
  private readonly benchStart: number;

  constructor(
    private readonly o: TraceOptions,
    private readonly prep: Prepared,
  ) {
    this.cgroup = o.hostCpu === null ? null : detectCpuCgroup();
    this.benchStart = performance.now();
  }

  private get load() {
    const o = this.o;
    return {
      manifest: this.prep.manifest,
      clients: o.clients,
      conns: o.conns,
      keepalive: o.keepalive,
      timeoutMs: o.timeoutMs,
    };
  }

  /** One point: its cluster, the warm-up and the runs; its processes' logs kept if a run failed. */
  async measurePoint(p: TracePointPlan): Promise<void> {
    const o = this.o;
    const logDir = join(o.workDir, "logs", p.name);
    const t0 = performance.now();
    let c: Contender;
    try {
      c = await this.start(p, logDir);
    } catch (e) {
      // A cluster that does not start, or a run that throws, fails this point only: the
      // other points of a long benchmark still get measured and reported.
      o.signal?.throwIfAborted();
      this.failPoint(p, 1, `cluster did not start: ${(e as Error).message}`);
      await keepLogs(o.failedLogsDir, logDir, p.name, o.log);
      return;
    }
    o.log(
      `${p.name}: up in ${((performance.now() - t0) / 1000).toFixed(1)} s${c.budget ? `, host CPU budgets set (${o.hostCpu} of a core each)` : ""}`,
    );
    if (await this.measureRuns(c, p)) await keepLogs(o.failedLogsDir, logDir, p.name, o.log);
  }

  private start(p: TracePointPlan, logDir: string): Promise<Contender> {
    const o = this.o;
    return Contender.start({
      name: p.mode,
      prefix: `${o.prefix}${LETTERS[p.mode]}-`,
      nodes: p.nodes,
      scheduler: "rr",
      ...traceArrangement(p.mode),
      proxyWorkers: o.proxyWorkers,
      rate: null,
      linkRates: p.links,
      ...(this.cgroup && o.hostCpu !== null ? { hostCpu: { root: this.cgroup, share: o.hostCpu } } : {}),
      cacheBytes: o.cacheBytes,
      extraArgs: traceExtraArgs(o, p.mode),
      site: this.prep.root,
      workDir: o.workDir,
      logDir,
      ...(o.signal ? { signal: o.signal } : {}),
    });
  }

  /** The warm-up and the runs on a started cluster, which is stopped at the end; true if a run failed. */
  private async measureRuns(c: Contender, p: TracePointPlan): Promise<boolean> {
    const o = this.o;
    let failedRun = false;
    let run = 1;
    try {
      if (c.budget) this.hostCpuGroups.push(await hostCpuReadBack(p.name, c.budget));
      const warmup = await this.warmUp(c, p.nodes);
      for (; run <= o.runs; run++) failedRun = (await this.measureRun(c, p, run, warmup)) || failedRun;
    } catch (e) {
      o.signal?.throwIfAborted();
      failedRun = true;
      this.failPoint(p, run, `run ${run} threw: ${(e as Error).message}`);
    } finally {
      await c.stop().catch((e: Error) => o.log(`stopping ${p.mode}: ${e.message}`));
    }
    return failedRun;
  }

  /**
   * The same warm-up for every mode: the trace's first requests, a fixed count per node
   * (capped in time; the result records how many were made).
   */
  private async warmUp(c: Contender, nodes: number): Promise<TraceRun["warmup"]> {
    const warmRequests = this.o.warmupRequestsPerNode * nodes;
    if (warmRequests <= 0) return { requests: 0, seconds: 0, stopped_by: "none" };
    const w = await c.measure({
      ...this.load,
      trace: this.prep.traces[0]!,
      requests: warmRequests,
      durationS: WARMUP_CAP_S,
    });
    return { requests: w.result.requests, seconds: w.result.elapsed_s, stopped_by: w.result.stopped_by };
  }

  /** One measured run, recorded and logged; true if it failed. */
  private async measureRun(
    c: Contender,
    p: TracePointPlan,
    run: number,
    warmup: TraceRun["warmup"],
  ): Promise<boolean> {
    const o = this.o;
    const quiet = await quietMachine(o);
    const m = await c.measure({ ...this.load, trace: this.prep.traces[run]!, durationS: o.durationS });
    const figures = runFigures(m.result, quiet);
    const failure = loadFailure(figures);
    const tr: TraceRun = withRatio(p, {
      mode: p.mode,
      nodes: p.nodes,
      run,
      ...figures,
      warmup,
      nodes_stats: nodeDeltas(m.before, m.after),
      failure,
      usage: m.usage,
      start_s: Math.round((performance.now() - this.benchStart) / 100) / 10,
      ...(m.throttled ? { host_cpu_throttled: m.throttled } : {}),
    });
    this.runs.push(tr);
    o.log(traceRunLine(tr, p.tag));
    return failure !== null;
  }

  /** The point's runs from `fromRun` on, recorded as failed with the reason. */
  private failPoint(p: TracePointPlan, fromRun: number, why: string): void {
    this.o.log(`${String(p.nodes).padStart(2)} nodes ${p.mode}${p.tag}: FAILED: ${why}`);
    for (let run = fromRun; run <= this.o.runs; run++)
      this.runs.push(withRatio(p, failedTraceRun(p.mode, p.nodes, run, why)));
  }
}

/** A run of a sweep's point carries the front-end ratio. */
function withRatio(p: TracePointPlan, r: TraceRun): TraceRun {
  return p.ratio === undefined ? r : { ...r, frontend_ratio: p.ratio };
}

/** A measured run's log line: throughput, CPU per role, the origin's and front-end's links, the failure. */
export function traceRunLine(tr: TraceRun, tag: string): string {
  const cpu = cpuByRole(tr.usage);
  const origin = tr.usage.links.find((l) => l.label === "origin");
  const fe = tr.usage.links.find((l) => l.label === "dispatcher");
  return (
    `${String(tr.nodes).padStart(2)} nodes run ${tr.run} ${tr.mode.padEnd(7)}${tag} ${tr.rps.toFixed(1).padStart(6)} req/s ` +
    `${tr.mbps.toFixed(1).padStart(5)} Mbit/s  machine ${tr.usage.machineBusy.toFixed(0)}%  ` +
    `nodes ${(cpu.node ?? 0).toFixed(0)}% disp ${(cpu.dispatcher ?? 0).toFixed(0)}% ` +
    `loadgen ${(cpu.loadgen ?? 0).toFixed(0)}%${cpu.proxy !== undefined ? ` proxy ${cpu.proxy.toFixed(0)}%` : ""} ` +
    `other ${(cpu.other ?? 0).toFixed(0)}%  origin ${origin ? origin.txMbps.toFixed(1) : "?"} Mbit/s` +
    `  front-end ${fe ? fe.txMbps.toFixed(1) : "?"} Mbit/s` +
    (tr.run === 1 ? `  (warm-up ${tr.warmup.requests} requests in ${tr.warmup.seconds.toFixed(0)} s)` : "") +
    (tr.failure ? `  FAILED: ${tr.failure}` : "")
  );
}

/** The parameters every trace-driven result records. */
function traceParams(
  o: TraceOptions,
  prep: Prepared,
  rates: LinkRates,
  hostCpuGroups: Record<string, unknown>[],
): Record<string, unknown> {
  return {
    workload: prep.workload,
    nodes: o.nodes,
    modes: o.modes,
    rate: rateParam(rates.node),
    origin_rate: rateParam(rates.origin),
    client_rate: rateParam(rates.client),
    frontend_rate: rateParam(rates.frontend),
    links:
      "rate: each node's link; frontend_rate: the dispatcher's host (and the proxy or LARD front-end in it); origin_rate; client_rate (both directions of each)",
    host_cpu:
      o.hostCpu === null
        ? "none (every host's processes share the machine's cores)"
        : { ...hostCpuParams(detectCpuCgroup(), o.hostCpu), contenders: hostCpuGroups },
    cache_bytes_per_node: o.cacheBytes,
    clients: o.clients,
    conns: o.conns,
    keepalive: o.keepalive,
    runs: o.runs,
    duration_s: o.durationS,
    warmup_requests_per_node: o.warmupRequestsPerNode,
    timeout_ms: o.timeoutMs,
    sc_local_max_bytes: o.scLocalMaxBytes ?? "node default (4096)",
    quiet_pct: o.quietPct,
    quiet_wait_s: o.quietWaitS,
    warmup_cap_s: WARMUP_CAP_S,
    link_queue_bytes: LINK_QUEUE_BYTES,
    scaled_timeouts:
      "node --origin-timeout, --send-timeout, --linger-timeout, --clone-timeout, --peer-timeout = timeout_ms; dispatcher --health-timeout 5000 --health-fall 3",
    scheduler: "rr",
    proxy_workers: o.proxyWorkers,
    proxy_host:
      "dispatcher host, 198.18.0.1:80; nodes reached at 198.18.1.(10+K) (DNAT to the VIP in node K)",
    quick: o.quick,
    peers: prep.versions,
    verification: "every response: status, length and SHA-256 of the body against the site's manifest",
  };
}

export async function runTraceBench(o: TraceOptions): Promise<TraceResult> {
  const startedAt = new Date().toISOString();
  const prep = await prepare(o);
  const { runs, hostCpuGroups } = await measureAll(o, prep, [{ frontendRate: o.frontendRate }]);
  const rates = linkRates(o);
  const points = tracePoints(runs, o.nodes, o.modes, {
    node: rateMbps(rates.node),
    origin: rateMbps(rates.origin),
    frontend: rateMbps(rates.frontend),
  });
  return {
    kind: "trace",
    params: traceParams(o, prep, rates, hostCpuGroups),
    machine: await machineInfo(),
    points,
    runs,
    failed_runs: runs.filter((r) => r.failure !== null).length,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
  };
}

/**
 * The front-end sensitivity sweep: the trace benchmark at one node count with the front-end's
 * link (the dispatcher's host, where the proxies run) at each multiple of a node's rate, and
 * unshaped. Every other link as in `runTraceBench`.
 */
export async function runFrontendSweep(
  o: TraceOptions,
  ratios: readonly FrontendRatio[],
): Promise<SweepResult> {
  if (o.rate === null) throw new Error("the front-end sweep needs a node rate (its ratios multiply it)");
  const nodeRate = o.rate;
  const startedAt = new Date().toISOString();
  const prep = await prepare(o);
  const variants = ratios.map((ratio) => ({
    ratio,
    frontendRate: ratio === "unshaped" ? null : scaleRate(nodeRate, ratio),
  }));
  const { runs, hostCpuGroups } = await measureAll(o, prep, variants);
  const rates = linkRates({ ...o, frontendRate: null });
  return {
    kind: "sweep",
    params: {
      ...traceParams(o, prep, rates, hostCpuGroups),
      frontend_rate: "per step (frontend_ratios x rate)",
      frontend_ratios: ratios,
    },
    machine: await machineInfo(),
    steps: sweepSteps(runs, variants, o.nodes, o.modes, {
      node: rateMbps(rates.node),
      origin: rateMbps(rates.origin),
    }),
    runs,
    failed_runs: runs.filter((r) => r.failure !== null).length,
    started_at: startedAt,
    finished_at: new Date().toISOString(),
  };
}

/** A run that produced no figures: reported as failed, never plotted. */
export function failedTraceRun(mode: TraceMode, nodes: number, run: number, why: string): TraceRun {
  return {
    mode,
    nodes,
    run,
    ...NO_FIGURES,
    warmup: { requests: 0, seconds: 0, stopped_by: "none" },
    nodes_stats: {},
    failure: why,
    usage: { seconds: 0, cpus: 0, machineBusy: 0, processes: [], links: [] },
    start_s: 0,
  };
}

async function keepLogs(
  dir: string | undefined,
  logDir: string,
  name: string,
  log: (line: string) => void,
): Promise<void> {
  if (!dir) return;
  const keep = join(dir, name);
  await cp(logDir, keep, { recursive: true }).catch(() => {});
  log(`logs of ${name} (a run failed): ${keep}`);
}
