// The benchmarks' figures from their raw measurements, and the arrangements they measure (pure):
// which cluster stands for which mechanism, the checks that a mechanism really ran on every
// request, medians and ranges per point, efficiency, and what limited a point.
import { UrlMapper } from "../../server/membership/mapper.js";
import type { ReplayResult } from "../../loadgen/index.js";
import type { ContenderSpec } from "./contender.js";
import type { MachineInfo } from "./machine.js";
import type { RunUsage } from "./meter.js";
import type { QuietWait } from "./procstat.js";
import { metricSum, type Sample } from "./metrics.js";
import { spread } from "./stats.js";
import { parseRate as rateBpsOf } from "../../testbed/topology.js";
import type { CloneLatencyPhase, LatencySummary, OneWayRow } from "./clone-latency.js";

export const MECHANISMS = ["plain", "sc", "sc-local", "cf", "lard", "nginx", "haproxy"] as const;
export type Mechanism = (typeof MECHANISMS)[number];

/** Figure 8's x axis: 100 B to 1 MB, about three points per decade. */
export const DEFAULT_SIZES = [100, 300, 1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000];
export const QUICK_SIZES = [1000, 100_000];

/** What the load generator and the quiet-machine wait reported for one measured run. */
export interface RunFigures {
  rps: number;
  mbps: number;
  responses: number;
  errors: number;
  errors_by_kind: Record<string, number>;
  verify_failures: number;
  verify_failures_by_kind: Record<string, number>;
  /** The load generator's first failure samples (method, path, expected, got). */
  verify_failure_samples: unknown[];
  latency_ms: Record<string, number>;
  elapsed_s: number;
  /** Seconds waited before the run for the machine to be quiet, and its busy percent then. */
  quiet: { waited_s: number; busy: number; busiest: string[] };
}

type ReplayFigures = Pick<
  ReplayResult,
  | "rps"
  | "mbps"
  | "ok"
  | "errors"
  | "errors_by_kind"
  | "verify_failures"
  | "verify_failures_by_kind"
  | "verify_failure_samples"
  | "latency_ms"
  | "elapsed_s"
>;

export function runFigures(r: ReplayFigures, quiet: QuietWait): RunFigures {
  return {
    rps: r.rps,
    mbps: r.mbps,
    responses: r.ok + r.verify_failures,
    errors: r.errors,
    errors_by_kind: r.errors_by_kind,
    verify_failures: r.verify_failures,
    verify_failures_by_kind: r.verify_failures_by_kind,
    verify_failure_samples: r.verify_failure_samples.slice(0, 5),
    latency_ms: { ...r.latency_ms },
    elapsed_s: r.elapsed_s,
    quiet: { waited_s: quiet.waitedS, busy: quiet.busy, busiest: quiet.busiest },
  };
}

/** The figures of a run that produced none (its cluster did not start, or it threw). */
export const NO_FIGURES: Readonly<RunFigures> = {
  rps: 0,
  mbps: 0,
  responses: 0,
  errors: 0,
  errors_by_kind: {},
  verify_failures: 0,
  verify_failures_by_kind: {},
  verify_failure_samples: [],
  latency_ms: {},
  elapsed_s: 0,
  quiet: { waited_s: 0, busy: NaN, busiest: [] },
};

/** Why a run does not count from the client's side (wrong bytes, transport errors, silence), or null. */
export function loadFailure(f: RunFigures): string | null {
  if (f.verify_failures > 0)
    return (
      `${f.verify_failures} responses failed verification (${JSON.stringify(f.verify_failures_by_kind)}), ` +
      `e.g. ${JSON.stringify(f.verify_failure_samples[0])}`
    );
  if (f.errors > 0) return `${f.errors} transport errors (${JSON.stringify(f.errors_by_kind)})`;
  if (f.responses === 0) return "no responses";
  return null;
}

/** Everything one measured run produced. */
export interface MicroRun extends RunFigures {
  mechanism: Mechanism;
  size: number;
  run: number;
  /** What the arrangement check counted on the nodes (clones, peer fetches, requests per node). */
  check: Record<string, number>;
  /** Why the run does not count (verification failures, errors, a broken arrangement). */
  failure: string | null;
  usage: RunUsage;
  /** With --host-cpu: per host, the share of the run's CFS periods in which it used up its budget. */
  host_cpu_throttled?: Record<string, number>;
}

export interface MicroPoint {
  mechanism: Mechanism;
  size: number;
  /** Median req/s of the runs, and the range. */
  rps: number;
  rps_min: number;
  rps_max: number;
  mbps: number;
  /** rps / plain rps at the same size (medians); min/max from the run range. */
  efficiency: number;
  efficiency_min: number;
  efficiency_max: number;
  /** A run failed: the point is reported, not plotted. */
  failed: boolean;
  /** Median CPU (percent of one core) by role, and by process, over the runs. */
  cpu: Record<string, number>;
  cpu_by_process: Record<string, number>;
  machine_busy: number;
  /** CPU time of the cluster's processes and the proxy (not the load generator) per response, us (median). */
  server_cpu_us: number;
  /** plain server_cpu_us / this server_cpu_us: efficiency in CPU rather than in time. */
  cpu_efficiency: number;
  /** What limited the point (limitsOf over the median run). */
  limits: string[];
}

/** CPU microseconds per response of every process but the load generator. */
export function serverCpuUs(u: RunUsage, rps: number): number {
  const cpu = u.processes.filter((p) => p.role !== "loadgen").reduce((a, p) => a + p.cpu, 0);
  return rps > 0 ? (cpu * 1e4) / rps : NaN;
}

export interface MicroResult {
  kind: "micro";
  params: Record<string, unknown>;
  machine: MachineInfo;
  points: MicroPoint[];
  runs: MicroRun[];
  clone_latency: {
    /** sc_clone_latency_seconds on node1 under the Figure 8 load, per size (as before `phases`). */
    by_size: (LatencySummary & { size: number })[];
    /** The same in the idle probe of the first size. */
    probe: LatencySummary | null;
    /** Every clone latency the nodes report, per size, idle and loaded (clone-latency.ts). */
    phases: CloneLatencyPhase[];
    /** The one-way clone latency (the paper's measure) per size and load, beside the paper's. */
    one_way?: OneWayRow[];
    paper_one_way_us?: number;
  };
  failed_runs: number;
  started_at: string;
  finished_at: string;
}

/** A --clone-local-max-bytes above every document size: nothing is cloned once its size is known. */
const SERVE_ALL_LOCALLY = "1G";

/**
 * The cluster behind each mechanism (see the header comment). The proxies forward to node2 only,
 * the node that holds every document: as with SC and CF, one node serves the bytes and the
 * mechanism's work comes on top (their per-request URI hashing still runs).
 */
export function microArrangement(
  mechanism: Mechanism,
): Pick<ContenderSpec, "mode" | "weights" | "proxy" | "proxyUpstreams" | "extraArgs"> {
  switch (mechanism) {
    case "plain":
      return { mode: "local", weights: [1, 0] };
    case "sc":
      // Clone every request, however small (the node's default serves small known documents locally).
      return { mode: "sc", weights: [1, 0], extraArgs: { node: ["--clone-local-max-bytes", "0"] } };
    case "sc-local":
      // The same SC cluster serving every document where it arrives (node1 learns each size from
      // its first clone's SC-ACK, in the pass before the warm-up): the other side of
      // --clone-local-max-bytes, for setting it from the figures.
      return {
        mode: "sc",
        weights: [1, 0],
        extraArgs: { node: ["--clone-local-max-bytes", SERVE_ALL_LOCALLY] },
      };
    case "cf":
      return { mode: "cf-lru", weights: [1, 0] };
    case "lard":
      // The LARD front-end in the dispatcher's place hands every request to node1 (a weight-0
      // node takes no handoffs): Figure 7's front-end and one web server.
      return { mode: "lard", weights: [1, 0] };
    case "nginx":
    case "haproxy":
      return { mode: "local", weights: [1, 1], proxy: mechanism, proxyUpstreams: [2] };
  }
}

/** `list` started at its k-th entry (wrapping): run by run, no entry always goes first. */
export function rotated<T>(list: readonly T[], k: number): T[] {
  return list.map((_, i) => list[(i + k) % list.length]!);
}

/**
 * `count` distinct paths of documents of `size` bytes whose home (URL hash over node1, node2)
 * is node2, so a request that arrives at node1 in sc or cf mode always leaves it.
 */
export function microUrls(size: number, count: number): string[] {
  const mapper = new UrlMapper([{ id: "node1" }, { id: "node2" }]);
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const url = `/m${size}/d${i}.bin`;
    if (mapper.lookup(url) === "node2") out.push(url);
  }
  return out;
}

/** Checks that the mechanism was applied to every request of a run; returns what it counted. */
export function checkArrangement(
  mechanism: Mechanism,
  before: Sample[][],
  after: Sample[][],
  responses: number,
): { check: Record<string, number>; failure: string | null } {
  const d = (node: number, name: string, labels?: Record<string, string>) =>
    metricSum(after[node]!, name, labels) - metricSum(before[node]!, name, labels);
  const check: Record<string, number> = {
    node1_requests: d(0, "sc_http_requests_total"),
    node2_requests: d(1, "sc_http_requests_total"),
  };
  let failure: string | null = null;
  if (mechanism === "plain") {
    if (check.node1_requests !== responses || check.node2_requests !== 0)
      failure = `plain: node1 served ${check.node1_requests} and node2 ${check.node2_requests} of ${responses} responses`;
  } else if (mechanism === "sc") {
    check.clones_sent = d(0, "sc_clones_sent_total");
    check.clones_received = d(1, "sc_clones_received_total");
    check.clone_failures = d(0, "sc_clone_failures_total");
    if (check.clones_sent !== responses || check.clone_failures !== 0) {
      // Name the reasons: a failed run is only useful if it says what went wrong.
      const reasons = new Set(
        after[0]!.filter((x) => x.name === "sc_clone_failures_total").map((x) => x.labels.reason ?? ""),
      );
      const byReason = [...reasons]
        .map((reason) => [reason, d(0, "sc_clone_failures_total", { reason })] as const)
        .filter(([, n]) => n > 0)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(", ");
      failure =
        `sc: ${check.clones_sent} clones sent, ${check.clone_failures} clone failures` +
        `${byReason ? ` (${byReason})` : ""} for ${responses} responses`;
    }
  } else if (mechanism === "sc-local") {
    check.clones_sent = d(0, "sc_clones_sent_total");
    if (check.clones_sent !== 0 || check.node1_requests !== responses || check.node2_requests !== 0)
      failure = `sc-local: ${check.clones_sent} clones sent, node1 served ${check.node1_requests} and node2 ${check.node2_requests} of ${responses} responses`;
  } else if (mechanism === "cf") {
    check.peer_fetches = d(0, "sc_cf_peer_fetches_total");
    check.peer_hits = d(0, "sc_cf_peer_hits_total");
    check.joined = d(0, "sc_cf_joined_total");
    if (check.peer_fetches !== responses || check.peer_hits !== responses)
      failure = `cf: ${check.peer_fetches} peer fetches (${check.peer_hits} from memory, ${check.joined} joined) for ${responses} responses`;
  } else if (mechanism === "lard") {
    check.handoffs = d(0, "sc_lard_handoffs_accepted_total");
    if (check.handoffs !== responses || check.node1_requests !== responses || check.node2_requests !== 0)
      failure = `lard: ${check.handoffs} handoffs to node1, node1 served ${check.node1_requests} and node2 ${check.node2_requests} of ${responses} responses`;
  } else if (check.node2_requests !== responses || check.node1_requests !== 0) {
    failure = `${mechanism}: node2 served ${check.node2_requests} and node1 ${check.node1_requests} of ${responses} responses`;
  }
  return { check, failure };
}

/**
 * CPU per role (sum over the processes of a role, percent of one core), plus "other": the
 * machine's busy time not spent in any of them (the kernel's network work outside process
 * context, and whatever else runs on the machine), also in percent of one core.
 */
export function cpuByRole(u: RunUsage): Record<string, number> {
  const out: Record<string, number> = {};
  let ours = 0;
  for (const p of u.processes) {
    out[p.role] = (out[p.role] ?? 0) + p.cpu;
    ours += p.cpu;
  }
  out.other = Math.max(0, u.machineBusy * u.cpus - ours);
  return out;
}

/** Median figures per (mechanism, size) and efficiency against plain. */
export function microPoints(
  runs: readonly MicroRun[],
  sizes: readonly number[],
  mechanisms: readonly Mechanism[],
  rateMbps: number | null | ((host: string) => number | null) = null,
): MicroPoint[] {
  const points: MicroPoint[] = [];
  for (const size of sizes) {
    const of = (m: Mechanism) => runs.filter((r) => r.size === size && r.mechanism === m);
    const plain = spread(of("plain").map((r) => r.rps)).median;
    const plainCpu = spread(of("plain").map((r) => serverCpuUs(r.usage, r.rps))).median;
    for (const mechanism of mechanisms) {
      const rs = of(mechanism);
      if (rs.length === 0) continue;
      const rps = spread(rs.map((r) => r.rps));
      const roles = new Set(rs.flatMap((r) => Object.keys(cpuByRole(r.usage))));
      const cpu: Record<string, number> = {};
      for (const role of roles) cpu[role] = spread(rs.map((r) => cpuByRole(r.usage)[role] ?? 0)).median;
      const cpuByProcess: Record<string, number> = {};
      for (const label of new Set(rs.flatMap((r) => r.usage.processes.map((p) => p.label))))
        cpuByProcess[label] = spread(
          rs.map((r) => r.usage.processes.find((p) => p.label === label)?.cpu ?? 0),
        ).median;
      const serverCpu = spread(rs.map((r) => serverCpuUs(r.usage, r.rps))).median;
      const eff = (x: number) => (plain > 0 ? x / plain : NaN);
      points.push({
        mechanism,
        size,
        rps: rps.median,
        rps_min: rps.min,
        rps_max: rps.max,
        mbps: spread(rs.map((r) => r.mbps)).median,
        efficiency: eff(rps.median),
        efficiency_min: eff(rps.min),
        efficiency_max: eff(rps.max),
        failed: rs.some((r) => r.failure !== null) || of("plain").some((r) => r.failure !== null),
        cpu,
        cpu_by_process: cpuByProcess,
        machine_busy: spread(rs.map((r) => r.usage.machineBusy)).median,
        server_cpu_us: serverCpu,
        cpu_efficiency: serverCpu > 0 ? plainCpu / serverCpu : NaN,
        limits: limitsOf(medianRunUsage(rs, rateMbps)),
      });
    }
  }
  return points;
}

/**
 * limitsOf's input from the run with the median rate: its CPU, its hosts' CPU budgets, and every
 * link at its host's rate (`rateMbps`: one for all, or per host).
 */
function medianRunUsage(
  rs: readonly { rps: number; usage: RunUsage; host_cpu_throttled?: Record<string, number> }[],
  rateMbps: number | null | ((host: string) => number | null),
) {
  const mid = [...rs].sort((a, b) => a.rps - b.rps)[rs.length >> 1]!;
  const rate = typeof rateMbps === "function" ? rateMbps : () => rateMbps;
  return {
    machine_busy: mid.usage.machineBusy,
    cpus: mid.usage.cpus,
    processes: mid.usage.processes,
    links: mid.usage.links.flatMap((l) => [
      { label: `${l.label} out`, mbps: l.txMbps, rateMbps: rate(l.label) },
      { label: `${l.label} in`, mbps: l.rxMbps, rateMbps: rate(l.label) },
    ]),
    budgets: budgetsOf(mid.host_cpu_throttled),
  };
}

function budgetsOf(t: Record<string, number> | undefined): { host: string; throttled: number }[] {
  return Object.entries(t ?? {}).map(([host, throttled]) => ({ host, throttled }));
}

export const TRACE_MODES = ["rr", "cf-lru", "cf-lfu", "sc", "lard", "nginx", "haproxy"] as const;
export type TraceMode = (typeof TRACE_MODES)[number];

export interface TraceRun extends RunFigures {
  mode: TraceMode;
  nodes: number;
  run: number;
  warmup: { requests: number; seconds: number; stopped_by: string };
  /** Sums over the nodes of metric deltas during the run. */
  nodes_stats: Record<string, number>;
  failure: string | null;
  usage: RunUsage;
  start_s: number;
  /** With --host-cpu: per host, the share of the run's CFS periods in which it used up its budget. */
  host_cpu_throttled?: Record<string, number>;
  /** In the front-end sweep: the front-end link's multiple of a node's rate. */
  frontend_ratio?: FrontendRatio;
}

export interface TracePoint {
  mode: TraceMode;
  nodes: number;
  rps: number;
  rps_min: number;
  rps_max: number;
  mbps: number;
  failed: boolean;
  /** Medians over the runs. */
  machine_busy: number;
  cpu: Record<string, number>;
  max_node_cpu: number;
  origin_mbps: number;
  node_tx_mbps_mean: number;
  frontend_mbps: number;
  cache_hit_ratio: number;
  origin_fetches_per_s: number;
  /** What limited the point, from the measurements (see limitsOf). */
  limits: string[];
}

export interface TraceResult {
  kind: "trace";
  params: Record<string, unknown>;
  machine: MachineInfo;
  points: TracePoint[];
  runs: TraceRun[];
  failed_runs: number;
  started_at: string;
  finished_at: string;
}

export function traceArrangement(mode: TraceMode): Pick<ContenderSpec, "mode" | "proxy"> {
  if (mode === "rr") return { mode: "local" };
  if (mode === "nginx" || mode === "haproxy") return { mode: "local", proxy: mode };
  return { mode };
}

/** Node metric deltas summed over the nodes. */
export function nodeDeltas(before: Sample[][], after: Sample[][]): Record<string, number> {
  const names: Record<string, string> = {
    requests: "sc_http_requests_total",
    cache_hits: "sc_cache_hits_total",
    cache_misses: "sc_cache_misses_total",
    origin_loads: "sc_source_loads_total",
    clones_sent: "sc_clones_sent_total",
    clone_failures: "sc_clone_failures_total",
    cf_peer_fetches: "sc_cf_peer_fetches_total",
    cf_joined: "sc_cf_joined_total",
    cf_origin_fetches: "sc_cf_origin_fetches_total",
    lard_handoffs: "sc_lard_handoffs_accepted_total",
  };
  const out: Record<string, number> = {};
  for (const [key, name] of Object.entries(names)) {
    let sum = 0;
    for (let i = 0; i < after.length; i++)
      sum += metricSum(after[i]!, name) - metricSum(before[i] ?? [], name);
    out[key] = sum;
  }
  return out;
}

/** A host that used up its CPU budget in at least this share of a run's CFS periods is at its budget. */
export const BUDGET_LIMIT = 0.5;

/**
 * What limited a point, read from its measurements: the machine's CPU, one process at a full
 * core, a host at its CPU budget (--host-cpu), or a link near its rate. Thresholds: 90% of the
 * CPUs, 90% of a core, throttled in half the CFS periods, 85% of a link.
 */
export function limitsOf(p: {
  machine_busy: number;
  cpus: number;
  processes: { label: string; cpu: number }[];
  links: { label: string; mbps: number; rateMbps: number | null }[];
  budgets?: { host: string; throttled: number }[];
}): string[] {
  const out: string[] = [];
  if (p.machine_busy >= 90) out.push(`CPU: machine ${p.machine_busy.toFixed(0)}% busy (${p.cpus} cores)`);
  for (const pr of p.processes)
    if (pr.cpu >= 90) out.push(`CPU: ${pr.label} ${pr.cpu.toFixed(0)}% of a core`);
  for (const b of p.budgets ?? [])
    if (b.throttled >= BUDGET_LIMIT)
      out.push(`CPU budget: ${b.host} throttled in ${(100 * b.throttled).toFixed(0)}% of periods`);
  for (const l of p.links)
    if (l.rateMbps !== null && l.mbps >= 0.85 * l.rateMbps)
      out.push(`link: ${l.label} ${l.mbps.toFixed(1)} of ${l.rateMbps.toFixed(0)} Mbit/s`);
  return out;
}

export function tracePoints(
  runs: readonly TraceRun[],
  nodes: readonly number[],
  modes: readonly TraceMode[],
  rates: { node: number | null; origin: number | null; frontend: number | null },
): TracePoint[] {
  const points: TracePoint[] = [];
  for (const n of nodes)
    for (const mode of modes) {
      const rs = runs.filter((r) => r.nodes === n && r.mode === mode);
      if (rs.length === 0) continue;
      const med = (f: (r: TraceRun) => number) => spread(rs.map(f)).median;
      const link = (r: TraceRun, label: string) => r.usage.links.find((l) => l.label === label);
      const nodeTx = (r: TraceRun) => {
        const ls = r.usage.links.filter((l) => /^node\d+$/.test(l.label));
        return ls.length ? ls.reduce((a, l) => a + l.txMbps, 0) / ls.length : 0;
      };
      const roles = new Set(rs.flatMap((r) => Object.keys(cpuByRole(r.usage))));
      const cpu: Record<string, number> = {};
      for (const role of roles) cpu[role] = med((r) => cpuByRole(r.usage)[role] ?? 0);
      const rps = spread(rs.map((r) => r.rps));
      const busy = med((r) => r.usage.machineBusy);
      const originMbps = med((r) => link(r, "origin")?.txMbps ?? 0);
      const frontendMbps = med((r) => link(r, "dispatcher")?.txMbps ?? 0);
      const nodeTxMean = med(nodeTx);
      const maxNodeCpu = med((r) =>
        Math.max(0, ...r.usage.processes.filter((p) => p.role === "node").map((p) => p.cpu)),
      );
      // The median run's processes, for the one-core check.
      const mid = [...rs].sort((a, b) => a.rps - b.rps)[rs.length >> 1]!;
      points.push({
        mode,
        nodes: n,
        rps: rps.median,
        rps_min: rps.min,
        rps_max: rps.max,
        mbps: med((r) => r.mbps),
        failed: rs.some((r) => r.failure !== null),
        machine_busy: busy,
        cpu,
        max_node_cpu: maxNodeCpu,
        origin_mbps: originMbps,
        node_tx_mbps_mean: nodeTxMean,
        frontend_mbps: frontendMbps,
        cache_hit_ratio: med((r) => {
          const h = r.nodes_stats.cache_hits ?? 0;
          const m = r.nodes_stats.cache_misses ?? 0;
          return h + m > 0 ? h / (h + m) : 0;
        }),
        origin_fetches_per_s: med((r) =>
          r.elapsed_s > 0 ? (r.nodes_stats.origin_loads ?? 0) / r.elapsed_s : 0,
        ),
        limits: limitsOf({
          machine_busy: busy,
          cpus: mid.usage.cpus,
          processes: mid.usage.processes.filter((p) => p.role !== "loadgen" || p.cpu > 0),
          links: [
            { label: "origin", mbps: originMbps, rateMbps: rates.origin },
            { label: "nodes (mean)", mbps: nodeTxMean, rateMbps: rates.node },
            { label: "front-end", mbps: frontendMbps, rateMbps: rates.frontend },
          ],
          budgets: budgetsOf(mid.host_cpu_throttled),
        }),
      });
    }
  return points;
}

/** The front-end sweep's x axis: the front-end link's rate as a multiple of a node's, or unshaped. */
export type FrontendRatio = number | "unshaped";

export function ratioLabel(r: FrontendRatio): string {
  return r === "unshaped" ? "unshaped" : `${r}x`;
}

export interface SweepStep {
  ratio: FrontendRatio;
  /** tc syntax, or "unshaped". */
  frontend_rate: string;
  points: TracePoint[];
}

export interface SweepResult {
  kind: "sweep";
  params: Record<string, unknown>;
  machine: MachineInfo;
  steps: SweepStep[];
  runs: TraceRun[];
  failed_runs: number;
  started_at: string;
  finished_at: string;
}

/** The sweep's points, per front-end step (tracePoints over that step's runs, at its link rate). */
export function sweepSteps(
  runs: readonly TraceRun[],
  steps: readonly { ratio?: FrontendRatio; frontendRate: string | null }[],
  nodes: readonly number[],
  modes: readonly TraceMode[],
  rates: { node: number | null; origin: number | null },
): SweepStep[] {
  return steps.flatMap((s) => {
    if (s.ratio === undefined) return [];
    const ratio = s.ratio;
    const frontend = s.frontendRate === null ? null : Number(rateBpsOf(s.frontendRate)) / 1e6;
    return [
      {
        ratio,
        frontend_rate: s.frontendRate ?? "unshaped",
        points: tracePoints(
          runs.filter((r) => r.frontend_ratio === ratio),
          nodes,
          modes,
          { ...rates, frontend },
        ),
      },
    ];
  });
}
