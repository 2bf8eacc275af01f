// Markdown tables and plot specifications of the benchmark results (pure).
import {
  ratioLabel,
  type FrontendRatio,
  type Mechanism,
  type MicroPoint,
  type MicroResult,
  type SweepResult,
  type TraceMode,
  type TracePoint,
  type TraceResult,
} from "./analysis.js";
import {
  ONE_WAY_HISTOGRAM,
  oneWayLatency,
  PAPER_ONE_WAY_US,
  type CloneLatencyPhase,
} from "./clone-latency.js";
import { linkSentence, paramsLinkRates } from "./links.js";
import type { Marker, PlotSpec } from "../../loadgen/plot.js";
import { niceAxis } from "../../loadgen/plot.js";

const STYLE: Record<string, { name: string; color: string; marker: Marker; dash?: string }> = {
  sc: { name: "SC", color: "#d62728", marker: "circle" },
  "sc-local": { name: "SC, served locally", color: "#e377c2", marker: "diamond", dash: "4 2" },
  cf: { name: "CF", color: "#2ca02c", marker: "square" },
  lard: { name: "LARD (TCP handoff)", color: "#8c564b", marker: "triangle", dash: "1 2" },
  "cf-lfu": { name: "CF-LFU", color: "#2ca02c", marker: "square" },
  "cf-lru": { name: "CF-LRU", color: "#1f77b4", marker: "triangle" },
  rr: { name: "RR", color: "#555555", marker: "diamond" },
  nginx: { name: "nginx (URI hash)", color: "#9467bd", marker: "cross", dash: "6 3" },
  haproxy: { name: "haproxy (URI hash)", color: "#ff7f0e", marker: "plus", dash: "2 3" },
  plain: { name: "plain node", color: "#000000", marker: "none" },
};

export function displayName(key: string): string {
  return STYLE[key]?.name ?? key;
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "-");
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "-");
const pct = (n: number) => (Number.isFinite(n) ? `${(100 * n).toFixed(0)}%` : "-");

export function sizeLabel(bytes: number): string {
  if (bytes >= 1_000_000 && bytes % 100_000 === 0) return `${bytes / 1_000_000} MB`;
  if (bytes >= 1000 && bytes % 100 === 0) return `${bytes / 1000} KB`;
  return `${bytes} B`;
}

function table(head: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const a = align ?? head.map((_, i) => (i === 0 ? "l" : "r"));
  return [
    `| ${head.join(" | ")} |`,
    `|${a.map((x) => (x === "r" ? " ---: |" : " --- |")).join("")}`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** What --host-cpu did, from a result's params, as one sentence. */
export function hostCpuSentence(p: Record<string, unknown>, cpus: number): string {
  const h = p.host_cpu;
  if (typeof h !== "object" || h === null)
    return `CPU: every host's processes share the machine's ${cpus} cores (no per-host budget).`;
  const x = h as Record<string, unknown>;
  return (
    `CPU: each server-side host's processes limited to ${String(x.share_of_a_core)} of a core ` +
    `(cgroup v${String(x.cgroup_version)} CPU quota ${String(x.quota_us)} us per ${String(x.period_us)} us), ` +
    `the client's unconstrained.`
  );
}

/**
 * The set-up sentence that stands beside every table: the links (equal hosts or not) and the
 * CPU budgets. `frontendPerRow` for the sweep, whose rows vary the front-end's link.
 */
export function setupSentence(
  p: Record<string, unknown>,
  cpus: number,
  nodes: string,
  frontendPerRow = false,
): string {
  const links = linkSentence(paramsLinkRates(p), nodes, frontendPerRow ? "per row" : undefined);
  return `_${links} ${hostCpuSentence(p, cpus)}_`;
}

function microScale(r: MicroResult): string {
  const p = r.params;
  return (
    `2-node clusters, node links ${String(p.rate)}, ${String(p.clients)} x ${String(p.conns)} connections ` +
    `(${p.keepalive ? "keep-alive" : "new connection per request"}${p.tls ? ", HTTPS: TLS 1.3 to the nodes or the proxy" : ""}), ` +
    `${String(p.documents_per_size)} documents per size, median of ${String(p.runs)} runs x ${String(p.duration_s)} s`
  );
}

export function microMarkdown(r: MicroResult): string {
  const setup = setupSentence(r.params, r.machine.cpus, "both nodes");
  return (
    [
      `Scale: ${microScale(r)}.`,
      "",
      ...fewRunsNote(r.params),
      ...microEfficiencySection(r, setup),
      "",
      ...microRpsSection(r, setup),
      "",
      ...microUsageSection(r, setup),
      ...localServingSection(r, setup),
      ...oneWaySection(r, setup),
      ...cloneLatencySection(r, setup),
      ...failedMicroRuns(r.runs),
    ].join("\n") + "\n"
  );
}

/** A table under its caption and the set-up sentence. */
function captioned(caption: string, setup: string, body: string): string[] {
  return [caption, "", setup, "", body];
}

/** A point's cell: "-" where there is no point, FAILED where it failed, else its figures. */
function pointCell<P extends { failed: boolean }>(p: P | undefined, v: (p: P) => string): string {
  return p ? (p.failed ? "FAILED" : v(p)) : "-";
}

/** A row of points: its label and its point per column (mechanism or mode). */
interface GridRow<P> {
  label: string;
  at: (column: string) => P | undefined;
}

/** One point's figures per row and column, each column a mechanism or mode under its display name. */
function pointGrid<P extends { failed: boolean }>(
  corner: string,
  columns: readonly string[],
  rows: GridRow<P>[],
  figures: (p: P) => string,
): string {
  return table(
    [corner, ...columns.map(displayName)],
    rows.map((r) => [r.label, ...columns.map((c) => pointCell(r.at(c), figures))]),
  );
}

/** Per size (rows) and mechanism (columns), one point's figures. */
function microGrid(r: MicroResult, mechs: readonly Mechanism[], figures: (p: MicroPoint) => string): string {
  const at = microPointAt(r);
  const rows = (r.params.sizes as number[]).map((s) => ({
    label: sizeLabel(s),
    at: (m: string) => at(m, s),
  }));
  return pointGrid("size", mechs, rows, figures);
}

/** One process's CPU (percent of a core) at a point, "-" where it did not run. */
function processCpu(p: MicroPoint, label: string): string {
  const v = p.cpu_by_process[label];
  return v !== undefined ? `${f0(v)}%` : "-";
}

const microPointAt = (r: MicroResult) => (m: string, s: number) =>
  r.points.find((p) => p.mechanism === m && p.size === s);

/** Each mechanism's req/s over the plain node's, per size (the paper's Figure 8 as a table). */
export function microEfficiencySection(r: MicroResult, setup: string): string[] {
  return captioned(
    "Normalized efficiency (mechanism req/s / plain node req/s, medians; range from the runs' min and max):",
    setup,
    microGrid(
      r,
      (r.params.mechanisms as Mechanism[]).filter((m) => m !== "plain"),
      (p) => `${pct(p.efficiency)} (${pct(p.efficiency_min)}-${pct(p.efficiency_max)})`,
    ),
  );
}

function microRpsSection(r: MicroResult, setup: string): string[] {
  return captioned(
    "Requests per second (median, min-max) and Mbit/s of response bodies (median):",
    setup,
    microGrid(
      r,
      r.params.mechanisms as Mechanism[],
      (p) => `${f0(p.rps)} (${f0(p.rps_min)}-${f0(p.rps_max)}), ${f1(p.mbps)} Mbit/s`,
    ),
  );
}

/** What each point used: CPU per process, server CPU per response, and what limited it. */
export function microUsageSection(r: MicroResult, setup: string): string[] {
  return captioned(
    "What each point used (medians): CPU in percent of one core per process (machine = share of both cores busy; " +
      "other = busy time outside these processes: kernel network work and everything else on the machine), " +
      "server CPU per response (every process but the load generator, us), CPU efficiency (plain's server CPU per " +
      "response / this one's), and what limited the point (machine >= 90% busy, a process >= 90% of a core, a host " +
      "throttled at its CPU budget in >= 50% of periods, a link >= 85% of its rate):",
    setup,
    table(
      [
        "size",
        "mechanism",
        "req/s",
        "machine",
        "node1",
        "node2",
        "dispatcher",
        "proxy",
        "loadgen",
        "other",
        "server CPU us/resp",
        "CPU eff.",
        "limited by",
      ],
      r.points.map((p) => [
        sizeLabel(p.size),
        displayName(p.mechanism),
        p.failed ? "FAILED" : f0(p.rps),
        `${f0(p.machine_busy)}%`,
        processCpu(p, "node1"),
        processCpu(p, "node2"),
        processCpu(p, "dispatcher"),
        p.cpu.proxy !== undefined ? `${f0(p.cpu.proxy)}%` : "-",
        `${f0(p.cpu.loadgen ?? 0)}%`,
        `${f0(p.cpu.other ?? 0)}%`,
        f0(p.server_cpu_us),
        pct(p.cpu_efficiency),
        p.limits.length ? p.limits.join("; ") : "none reached (latency-bound)",
      ]),
    ),
  );
}

/** The runs that failed, each with its reason (their points are not plotted). */
export function failedMicroRuns(runs: MicroResult["runs"]): string[] {
  return failedRunList(runs, (x) => `${x.mechanism} ${sizeLabel(x.size)} run ${x.run}`);
}

/** The failed runs' list under its heading: each as `describe` names it, with its reason; none: nothing. */
function failedRunList<R extends { failure: string | null }>(
  runs: R[],
  describe: (x: R) => string,
): string[] {
  const failed = runs.filter((x) => x.failure !== null);
  if (failed.length === 0) return [];
  return [
    "",
    `Failed runs (${failed.length}; their points are not plotted):`,
    "",
    ...failed.map((x) => `- ${describe(x)}: ${x.failure}`),
  ];
}

/**
 * `--clone-local-max-bytes`, both sides in one run: every request cloned (sc) against every
 * request served where it arrives (sc-local), per size.
 */
function localServingSection(r: MicroResult, setup: string): string[] {
  const at = microPointAt(r);
  const sizes = (r.params.sizes as number[]).filter((s) => at("sc", s) && at("sc-local", s));
  if (sizes.length === 0) return [];
  const rows = sizes.map((s) => {
    const c = at("sc", s)!;
    const l = at("sc-local", s)!;
    const ok = !c.failed && !l.failed;
    return [
      sizeLabel(s),
      ok ? f0(c.rps) : "FAILED",
      ok ? f0(l.rps) : "FAILED",
      ok ? f0(c.server_cpu_us) : "-",
      ok ? f0(l.server_cpu_us) : "-",
      ok && l.server_cpu_us > 0 ? `${(c.server_cpu_us / l.server_cpu_us).toFixed(2)}x` : "-",
      `${processCpu(c, "node1")} / ${processCpu(c, "node2")}`,
      `${processCpu(l, "node1")} / ${processCpu(l, "node2")}`,
    ];
  });
  return [
    "",
    "Local-serving policy (`--clone-local-max-bytes`): every request cloned (SC, `0`) against every request " +
      "served where it arrives (SC, served locally: the same cluster with a limit above every size), medians of " +
      "the same runs; server CPU per response counts every process but the load generator:",
    "",
    setup,
    "",
    table(
      [
        "size",
        "cloned req/s",
        "local req/s",
        "cloned CPU us/resp",
        "local CPU us/resp",
        "cloned / local CPU",
        "cloned node1 / node2",
        "local node1 / node2",
      ],
      rows,
    ),
  ];
}

/** A histogram's meaning where it is known; other names (added later by the nodes) as they are. */
const LATENCY_NAMES: Record<string, string> = {
  sc_clone_latency_seconds: "CLONE sent -> SC-ACK received (original)",
  [ONE_WAY_HISTOGRAM]: "one-way: CLONE sent -> clone's first response segment (clone's node)",
};

const us = (n: number) => (Number.isFinite(n) ? `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} us` : "-");

/**
 * The paper's measure beside the paper's figure: the one-way clone latency per size, idle (one
 * connection, one request at a time) and under the Figure 8 load.
 */
function oneWaySection(r: MicroResult, setup: string): string[] {
  const rows = r.clone_latency.one_way ?? oneWayLatency(r.clone_latency.phases ?? []);
  if (rows.length === 0) return [];
  const paper = r.clone_latency.paper_one_way_us ?? PAPER_ONE_WAY_US;
  const sizes = [...new Set(rows.map((x) => x.size))];
  const at = (size: number, load: string) => rows.find((x) => x.size === size && x.load === load);
  const cell = (size: number, load: string) => {
    const x = at(size, load);
    return x ? `${us(x.p50_us)} (${us(x.p90_us)}), ${x.samples}` : "-";
  };
  const ratio = (size: number, load: string) => {
    const x = at(size, load);
    return x && Number.isFinite(x.p50_us) ? `${(x.p50_us / paper).toFixed(1)}x` : "-";
  };
  return [
    "",
    `One-way clone latency, the paper's measure (CLONE sent by the original -> the clone's first response ` +
      `segment, on the clone's node; p50 (p90), clones), beside the paper's ${paper} us (in-kernel SC, Pentium III 733 MHz):`,
    "",
    setup,
    "",
    table(
      ["size", "idle", "under the Figure 8 load", "paper", "idle p50 / paper", "loaded p50 / paper"],
      sizes.map((s) => [
        sizeLabel(s),
        cell(s, "idle"),
        cell(s, "figure8"),
        `${paper} us`,
        ratio(s, "idle"),
        ratio(s, "figure8"),
      ]),
    ),
  ];
}

function cloneLatencySection(r: MicroResult, setup: string): string[] {
  const phases = r.clone_latency.phases ?? [];
  if (phases.length === 0) return [];
  const load = (p: CloneLatencyPhase) => (p.load === "idle" ? `idle (${p.what})` : "Figure 8 load");
  const hist: string[][] = [];
  const stats: string[][] = [];
  let mixed = 0;
  for (const p of phases) {
    for (const [node, byName] of Object.entries(p.histograms))
      for (const [name, l] of Object.entries(byName))
        hist.push([
          sizeLabel(p.size),
          load(p),
          node,
          LATENCY_NAMES[name] ?? `\`${name}\``,
          String(l.samples),
          f1(l.p50_us),
          f1(l.p90_us),
          f1(l.p99_us),
        ]);
    for (const [node, byKey] of Object.entries(p.stats))
      for (const [key, l] of Object.entries(byKey)) {
        // A summary over samples from before the phase would be read as the phase's: JSON only.
        if (l.phase_clones < l.samples) {
          mixed++;
          continue;
        }
        stats.push([
          sizeLabel(p.size),
          load(p),
          node,
          `\`${key}\``,
          `${l.samples} (${l.phase_clones} in the phase)`,
          f0(l.p50),
          f0(l.p90),
          f0(l.p99),
          f0(l.max),
        ]);
      }
  }
  const out = [
    "",
    "Socket Cloning: clone latency per size, under the Figure 8 load and idle (one connection, one request at a " +
      "time, after the size's runs), from every `sc_clone_*_seconds` histogram of every node over the phase " +
      "(interpolated inside its buckets):",
    "",
    setup,
    "",
    table(["size", "load", "node", "measure", "clones", "p50 us", "p90 us", "p99 us"], hist),
  ];
  if (stats.length > 0)
    out.push(
      "",
      "The same from the nodes' `/stats` (exact percentiles over each node's most recent samples at the end of the " +
        "phase), where those samples all come from the phase:",
      "",
      setup,
      "",
      table(["size", "load", "node", "/stats key", "samples", "p50 us", "p90 us", "p99 us", "max us"], stats),
    );
  if (mixed > 0)
    out.push(
      "",
      `${mixed} \`/stats\` latency summaries reach back before their phase (a node keeps its last samples, not ` +
        "the phase's); they are in the JSON (`clone_latency.phases[].stats`) only.",
    );
  return out;
}

export function microPlot(r: MicroResult): PlotSpec {
  const mechs = (r.params.mechanisms as Mechanism[]).filter((m) => m !== "plain");
  const ok = r.points.filter((p) => !p.failed);
  const maxEff = Math.max(1.1, ...ok.map((p) => p.efficiency_max).filter(Number.isFinite));
  const top = Math.min(200, Math.ceil((maxEff * 100) / 20) * 20);
  return {
    xLabel: "File Size (bytes)",
    yLabel: "Normalized Efficiency (%)",
    xScale: "log",
    x: [50, 2e6],
    y: [0, top],
    xTicks: [100, 1000, 1e4, 1e5, 1e6],
    yTicks: Array.from({ length: top / 20 + 1 }, (_, i) => i * 20),
    hlines: [{ y: 100, label: "plain node (100%)" }],
    series: mechs.map((m) => ({
      ...STYLE[m]!,
      points: ok
        .filter((p) => p.mechanism === m)
        .map((p) => ({
          x: p.size,
          y: 100 * p.efficiency,
          lo: 100 * p.efficiency_min,
          hi: 100 * p.efficiency_max,
        })),
    })),
    legend: "bottom-left",
    caption: "Figure 8 (reproduced). Normalized Efficiency",
    notes: [microScale(r), `${r.machine.cpus} x ${r.machine.cpu}; ${r.started_at.slice(0, 10)}`],
  };
}

export function microRpsPlot(r: MicroResult): PlotSpec {
  const mechs = r.params.mechanisms as Mechanism[];
  const ok = r.points.filter((p) => !p.failed);
  const { top, ticks } = niceAxis(Math.max(1, ...ok.map((p) => p.rps_max)));
  return {
    xLabel: "File Size (bytes)",
    yLabel: "Throughput (requests/s)",
    xScale: "log",
    x: [50, 2e6],
    y: [0, top],
    xTicks: [100, 1000, 1e4, 1e5, 1e6],
    yTicks: ticks,
    series: mechs.map((m) => ({
      ...STYLE[m]!,
      marker: m === "plain" ? "circle" : STYLE[m]!.marker,
      points: ok
        .filter((p) => p.mechanism === m)
        .map((p) => ({ x: p.size, y: p.rps, lo: p.rps_min, hi: p.rps_max })),
    })),
    legend: "top-right",
    caption: "Micro-benchmark: requests/s per mechanism",
    notes: [microScale(r)],
  };
}

/** "synthetic, scale 0.01", or the real trace's file name. */
function workloadName(w: Record<string, unknown>): string {
  if (String(w.trace).startsWith("synthetic")) return `synthetic, scale ${String(w.scale)}`;
  return typeof w.trace_name === "string" ? w.trace_name : String(w.trace);
}

function traceScale(r: { params: Record<string, unknown> }): string[] {
  const p = r.params;
  const w = p.workload as Record<string, unknown>;
  const mb = (b: unknown) => `${(Number(b) / 1e6).toFixed(1)} MB`;
  return [
    `links: nodes ${String(p.rate)}, origin ${String(p.origin_rate)}, client ${String(p.client_rate)}, front-end ${String(p.frontend_rate)}; ` +
      `cache ${mb(p.cache_bytes_per_node)} per node`,
    `documents: ${String(w.files)} files, ${mb(w.document_bytes)} (${workloadName(w)}); ` +
      `clients: ${String(p.clients)} x ${String(p.conns)} connections (${p.keepalive ? "keep-alive" : "new connection per request"}); ` +
      `median of ${String(p.runs)} runs x ${String(p.duration_s)} s`,
  ];
}

export function traceMarkdown(r: TraceResult): string {
  const setup = setupSentence(r.params, r.machine.cpus, "the nodes");
  return (
    [
      `Scale: ${traceScale(r).join("; ")}.`,
      "",
      ...fewRunsNote(r.params),
      ...traceThroughputSection(r, setup),
      ...scRelativeSection(r, setup),
      "",
      ...traceUsageSection(r, setup),
      ...failedTraceRuns(r.runs),
    ].join("\n") + "\n"
  );
}

/** A trace point's throughput: median (min-max of the runs). */
const rpsRange = (p: TracePoint) => `${f0(p.rps)} (${f0(p.rps_min)}-${f0(p.rps_max)})`;

const tracePointAt = (r: TraceResult) => (m: string, n: number) =>
  r.points.find((p) => p.mode === m && p.nodes === n);

function traceThroughputSection(r: TraceResult, setup: string): string[] {
  const at = tracePointAt(r);
  const rows = (r.params.nodes as number[]).map((n) => ({ label: String(n), at: (m: string) => at(m, n) }));
  return captioned(
    "Throughput, requests/s (median, min-max of the runs):",
    setup,
    pointGrid("nodes", r.params.modes as TraceMode[], rows, rpsRange),
  );
}

/** SC against every other mode, per node count ("-" where either point is missing or failed); none without SC. */
export function scRelativeSection(r: TraceResult, setup: string): string[] {
  const modes = r.params.modes as TraceMode[];
  if (!modes.includes("sc")) return [];
  const others = modes.filter((m) => m !== "sc");
  const at = tracePointAt(r);
  const relative = (sc: TracePoint | undefined, o: TracePoint | undefined) => {
    if (!sc || !o || sc.failed || o.failed || !(o.rps > 0)) return "-";
    const d = sc.rps / o.rps - 1;
    return `${d >= 0 ? "+" : ""}${(100 * d).toFixed(0)}%`;
  };
  return [
    "",
    ...captioned(
      "SC's throughput relative to each other mode (SC median / mode median - 1):",
      setup,
      table(
        ["nodes", ...others.map((m) => `vs ${displayName(m)}`)],
        (r.params.nodes as number[]).map((n) => [
          String(n),
          ...others.map((m) => relative(at("sc", n), at(m, n))),
        ]),
      ),
    ),
  ];
}

function traceUsageSection(r: TraceResult, setup: string): string[] {
  return captioned(
    "What each point used (medians): machine CPU busy (all cores), CPU per role in percent of one core (nodes summed, and the busiest node), " +
      "link traffic in Mbit/s, node cache hit ratio, origin fetches/s, and what limited it:",
    setup,
    table(
      [
        "nodes",
        "mode",
        "req/s",
        "machine",
        "nodes cpu",
        "max node",
        "disp.",
        "origin cpu",
        "proxy",
        "loadgen",
        "other",
        "origin link",
        "node link (mean)",
        "front-end link",
        "hit ratio",
        "origin fetch/s",
        "limited by",
      ],
      r.points.map((p) => [
        String(p.nodes),
        displayName(p.mode),
        p.failed ? "FAILED" : f0(p.rps),
        `${f0(p.machine_busy)}%`,
        `${f0(p.cpu.node ?? 0)}%`,
        `${f0(p.max_node_cpu)}%`,
        `${f0(p.cpu.dispatcher ?? 0)}%`,
        `${f0(p.cpu.origin ?? 0)}%`,
        p.cpu.proxy !== undefined ? `${f0(p.cpu.proxy)}%` : "-",
        `${f0(p.cpu.loadgen ?? 0)}%`,
        `${f0(p.cpu.other ?? 0)}%`,
        f1(p.origin_mbps),
        f1(p.node_tx_mbps_mean),
        f1(p.frontend_mbps),
        pct(p.cache_hit_ratio),
        f0(p.origin_fetches_per_s),
        p.limits.length ? p.limits.join("; ") : "none reached",
      ]),
    ),
  );
}

/** The runs that failed, each with its reason (their points are reported, not plotted). */
function failedTraceRuns(runs: TraceResult["runs"]): string[] {
  return failedRunList(
    runs,
    (x) =>
      `${x.mode} ${x.nodes} nodes${x.frontend_ratio !== undefined ? ` front-end ${ratioLabel(x.frontend_ratio)}` : ""} run ${x.run}`,
  );
}

/** Fewer than 3 runs per point is a check that the code runs, not a figure: said above the tables. */
function fewRunsNote(p: Record<string, unknown>): string[] {
  const runs = Number(p.runs);
  return runs >= 3
    ? []
    : [
        `Only ${runs} run${runs === 1 ? "" : "s"} per point${p.quick ? " (--quick)" : ""}: the ranges say nothing; ` +
          "figures to compare need at least 3 runs per point.",
        "",
      ];
}

export function tracePlot(r: TraceResult): PlotSpec {
  const order: TraceMode[] = ["sc", "cf-lfu", "cf-lru", "rr", "lard", "nginx", "haproxy"];
  const modes = order.filter((m) => (r.params.modes as TraceMode[]).includes(m));
  const nodes = r.params.nodes as number[];
  const ok = r.points.filter((p) => !p.failed);
  const { top, ticks } = niceAxis(Math.max(1, ...ok.map((p) => p.rps_max)));
  const maxN = Math.max(...nodes);
  return {
    xLabel: "Number of Nodes",
    yLabel: "Throughput (requests/s)",
    xScale: "linear",
    x: [0, maxN + 1],
    y: [0, top],
    xTicks: Array.from({ length: maxN + 2 }, (_, i) => i).filter((i) => maxN <= 12 || i % 2 === 0),
    yTicks: ticks,
    series: modes.map((m) => ({
      ...STYLE[m]!,
      points: ok
        .filter((p) => p.mode === m)
        .map((p) => ({ x: p.nodes, y: p.rps, lo: p.rps_min, hi: p.rps_max })),
    })),
    legend: "top-left",
    caption: String((r.params.workload as Record<string, unknown>).trace).startsWith("synthetic")
      ? "Figure 9 (reproduced). Throughput of the trace-driven benchmark"
      : `Figure 9 with a real trace (${workloadName(r.params.workload as Record<string, unknown>)}). Throughput`,
    notes: [...traceScale(r), `${r.machine.cpus} x ${r.machine.cpu}; ${r.started_at.slice(0, 10)}`],
  };
}

/**
 * Where a proxy catches up with SC in the sweep: the smallest front-end step at which its median
 * reaches SC's, or null if it does not at any step (failed points never count).
 */
export function catchUpStep(r: SweepResult, mode: TraceMode): FrontendRatio | null {
  for (const step of r.steps) {
    const sc = step.points.find((p) => p.mode === "sc");
    const x = step.points.find((p) => p.mode === mode);
    if (sc && x && !sc.failed && !x.failed && x.rps >= sc.rps) return step.ratio;
  }
  return null;
}

export function sweepMarkdown(r: SweepResult): string {
  const modes = r.params.modes as TraceMode[];
  const nodes = (r.params.nodes as number[]).join(", ");
  const setup = setupSentence(r.params, r.machine.cpus, "the nodes", true);
  const out: string[] = [];
  out.push(`Scale: ${nodes} nodes; ${traceScale(r).join("; ")}.`, "");
  out.push(...fewRunsNote(r.params));
  out.push(
    "Front-end sensitivity: throughput, requests/s (median, min-max of the runs), with the front-end's link " +
      "(the dispatcher's host, where nginx and haproxy run) at a multiple of a node's link rate:",
    "",
    setup,
    "",
    pointGrid(
      "front-end : node",
      modes,
      r.steps.map((s) => ({
        label: `${ratioLabel(s.ratio)}${s.ratio === "unshaped" ? "" : ` (${s.frontend_rate})`}`,
        at: (m: string) => s.points.find((p) => p.mode === m),
      })),
      rpsRange,
    ),
  );
  if (modes.includes("sc")) {
    const others = modes.filter((m) => m !== "sc");
    out.push(
      "",
      "Where each catches up with SC (the first step at which its median reaches SC's):",
      "",
      setup,
      "",
      table(
        ["mode", "catches up with SC at"],
        others.map((m) => {
          const c = catchUpStep(r, m);
          return [displayName(m), c === null ? "not at any step" : ratioLabel(c)];
        }),
      ),
    );
  }
  out.push(
    "",
    "What each point used (medians): the front-end's link (sent, Mbit/s), the origin's, the nodes' mean, " +
      "machine CPU busy, proxy and dispatcher CPU (percent of one core), and what limited it:",
    "",
    setup,
    "",
    table(
      [
        "front-end : node",
        "mode",
        "req/s",
        "front-end link",
        "origin link",
        "node link (mean)",
        "machine",
        "proxy",
        "disp.",
        "limited by",
      ],
      r.steps.flatMap((s) =>
        s.points.map((p) => [
          ratioLabel(s.ratio),
          displayName(p.mode),
          p.failed ? "FAILED" : f0(p.rps),
          f1(p.frontend_mbps),
          f1(p.origin_mbps),
          f1(p.node_tx_mbps_mean),
          `${f0(p.machine_busy)}%`,
          p.cpu.proxy !== undefined ? `${f0(p.cpu.proxy)}%` : "-",
          `${f0(p.cpu.dispatcher ?? 0)}%`,
          p.limits.length ? p.limits.join("; ") : "none reached",
        ]),
      ),
    ),
  );
  out.push(...failedTraceRuns(r.runs));
  return out.join("\n") + "\n";
}

/** Where "unshaped" sits on the sweep plot's log axis: a step past the largest ratio. */
export function unshapedX(r: SweepResult): number {
  const numeric = r.steps.map((s) => s.ratio).filter((x): x is number => x !== "unshaped");
  return 2.5 * Math.max(1, ...numeric);
}

export function sweepPlot(r: SweepResult): PlotSpec {
  const order: TraceMode[] = ["sc", "cf-lfu", "cf-lru", "rr", "lard", "nginx", "haproxy"];
  const modes = order.filter((m) => (r.params.modes as TraceMode[]).includes(m));
  const ux = unshapedX(r);
  const xOf = (ratio: FrontendRatio) => (ratio === "unshaped" ? ux : ratio);
  const ok = r.steps.flatMap((s) => s.points.filter((p) => !p.failed).map((p) => ({ p, x: xOf(s.ratio) })));
  const { top, ticks } = niceAxis(Math.max(1, ...ok.map(({ p }) => p.rps_max)));
  const xs = r.steps.map((s) => xOf(s.ratio));
  return {
    xLabel: "Front-end link : node link",
    yLabel: "Throughput (requests/s)",
    xScale: "log",
    x: [Math.min(...xs) / 1.4, Math.max(...xs) * 1.4],
    y: [0, top],
    xTicks: xs,
    xTickLabel: (v) => (v === ux ? "unshaped" : `${gnuplotRatio(v)}x`),
    yTicks: ticks,
    series: modes.map((m) => ({
      ...STYLE[m]!,
      points: ok
        .filter(({ p }) => p.mode === m)
        .map(({ p, x }) => ({ x, y: p.rps, lo: p.rps_min, hi: p.rps_max })),
    })),
    legend: "bottom-right",
    caption: `Front-end sensitivity at ${(r.params.nodes as number[]).join(", ")} nodes: throughput vs the front-end's link`,
    notes: [...traceScale(r), `${r.machine.cpus} x ${r.machine.cpu}; ${r.started_at.slice(0, 10)}`],
  };
}

const gnuplotRatio = (v: number) => String(Number(v.toPrecision(3)));
