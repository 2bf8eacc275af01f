import { test } from "node:test";
import assert from "node:assert/strict";
import { displayName } from "./report.js";
import { MECHANISMS, TRACE_MODES } from "./analysis.js";

test("every bench micro mechanism and bench trace mode has a plot style (a missing one crashed the report)", () => {
  for (const m of [...MECHANISMS, ...TRACE_MODES]) assert.notEqual(displayName(m), m, m);
  assert.equal(displayName("lard"), "LARD (TCP handoff)");
});

import type { MicroPoint, MicroResult, SweepResult, TracePoint, TraceResult } from "./analysis.js";
import { clonePhase } from "./clone-latency.js";
import type { Sample } from "./metrics.js";
import {
  catchUpStep,
  failedMicroRuns,
  microEfficiencySection,
  microMarkdown,
  microUsageSection,
  scRelativeSection,
  sweepMarkdown,
  sweepPlot,
  traceMarkdown,
  tracePlot,
} from "./report.js";

const MACHINE = { cpus: 2, cpu: "x", memory_gb: 1, kernel: "k", node: "v20", load_average: [] };

/** Every Markdown table's header, with the nearest non-empty line above it. */
function tablesWithLineAbove(md: string): { header: string; above: string }[] {
  const lines = md.split("\n");
  const out: { header: string; above: string }[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!/^\|( -+:? \|)+$|^\|( ---:? \|)+/.test(lines[i]!) || !lines[i - 1]!.startsWith("| ")) continue;
    let j = i - 2;
    while (j >= 0 && lines[j]!.trim() === "") j--;
    out.push({ header: lines[i - 1]!, above: lines[j] ?? "" });
  }
  return out;
}

function microPoint(mechanism: MicroPoint["mechanism"], size: number): MicroPoint {
  return {
    mechanism,
    size,
    rps: 100,
    rps_min: 90,
    rps_max: 110,
    mbps: 1,
    efficiency: 1,
    efficiency_min: 1,
    efficiency_max: 1,
    failed: false,
    cpu: {},
    cpu_by_process: {},
    machine_busy: 50,
    server_cpu_us: 100,
    cpu_efficiency: 1,
    limits: [],
  };
}

const bucket = (name: string, le: number, count: number): Sample => ({
  name: `${name}_bucket`,
  labels: { le: le === Infinity ? "+Inf" : String(le) },
  value: count,
});

test("microMarkdown: the link and CPU set-up beside every table; the one-way clone latency beside the paper's 46 us", () => {
  const oneWay = (us: number) => [
    bucket("sc_clone_one_way_seconds", us / 1e6, 10),
    bucket("sc_clone_one_way_seconds", Infinity, 10),
  ];
  const phases = [
    clonePhase(
      { size: 1000, load: "figure8", what: "x" },
      ["node1", "node2"],
      [[], []],
      [[], oneWay(920)],
      [{}, {}],
    ),
    clonePhase(
      { size: 1000, load: "idle", what: "y" },
      ["node1", "node2"],
      [[], []],
      [[], oneWay(460)],
      [{}, {}],
    ),
  ];
  const r: MicroResult = {
    kind: "micro",
    params: {
      sizes: [1000],
      mechanisms: ["plain", "sc", "sc-local"],
      rate: "100mbit",
      frontend_rate: "100mbit",
      origin_rate: "100mbit",
      client_rate: "unshaped",
      host_cpu: { share_of_a_core: 0.5, cgroup_version: 1, quota_us: 50000, period_us: 100000 },
      runs: 3,
      duration_s: 5,
    },
    machine: MACHINE,
    points: [microPoint("plain", 1000), microPoint("sc", 1000), microPoint("sc-local", 1000)],
    runs: [],
    clone_latency: { by_size: [], probe: null, phases },
    failed_runs: 0,
    started_at: "2026-12-06T00:00:00Z",
    finished_at: "2026-12-06T00:01:00Z",
  };
  const md = microMarkdown(r);
  const tables = tablesWithLineAbove(md);
  assert.ok(tables.length >= 6, `${tables.length} tables`);
  for (const t of tables)
    assert.equal(
      t.above,
      "_Links: equal hosts as in the paper's testbed: every server-side host (both nodes, the dispatcher/proxy host, " +
        "the origin) at 100 Mbit/s, the client unshaped. CPU: each server-side host's processes limited to 0.5 of a " +
        "core (cgroup v1 CPU quota 50000 us per 100000 us), the client's unconstrained._",
      t.header,
    );
  assert.match(md, /beside the paper's 46 us/);
  // One bucket from 0: the median is interpolated to half its edge. Idle 230 us = 5x the
  // paper's, loaded 460 us = 10x; from node2 (the clone's node).
  assert.match(
    md,
    /\| 1 KB \| 230 us \(414 us\), 10 \| 460 us \(828 us\), 10 \| 46 us \| 5\.0x \| 10\.0x \|/,
  );
  // Without a budget the sentence says the hosts share the cores.
  const shared = microMarkdown({ ...r, params: { ...r.params, host_cpu: "none" } });
  assert.match(shared, /CPU: every host's processes share the machine's 2 cores \(no per-host budget\)\._/);
  // Over HTTPS (bench micro --tls) the scale line says so; over HTTP it says nothing of TLS.
  assert.match(
    microMarkdown({ ...r, params: { ...r.params, tls: "HTTPS: ..." } }),
    /^Scale: .*, HTTPS: TLS 1\.3 to the nodes or the proxy\)/m,
  );
  assert.doesNotMatch(md, /HTTPS|TLS/);
});

function tracePoint(mode: TracePoint["mode"], nodes: number, rps: number, failed = false): TracePoint {
  return {
    mode,
    nodes,
    rps,
    rps_min: rps - 1,
    rps_max: rps + 1,
    mbps: 1,
    failed,
    machine_busy: 50,
    cpu: { node: 10 },
    max_node_cpu: 5,
    origin_mbps: 1,
    node_tx_mbps_mean: 1,
    frontend_mbps: 9,
    cache_hit_ratio: 0.5,
    origin_fetches_per_s: 1,
    limits: [],
  };
}

const TRACE_PARAMS = {
  nodes: [12],
  modes: ["sc", "nginx", "cf-lfu"],
  rate: "10mbit",
  origin_rate: "10mbit",
  client_rate: "unshaped",
  frontend_rate: "10mbit",
  host_cpu: "none",
  cache_bytes_per_node: 3e6,
  clients: 2,
  conns: 19,
  keepalive: false,
  runs: 1,
  duration_s: 2,
  quick: true,
};

test("traceMarkdown: the set-up beside every table, a real trace named, fewer than 3 runs flagged", () => {
  const r: TraceResult = {
    kind: "trace",
    params: {
      ...TRACE_PARAMS,
      workload: { trace: "/x/nasa.log", trace_name: "nasa.log", files: 10, document_bytes: 1e6 },
    },
    machine: MACHINE,
    points: [tracePoint("sc", 12, 150), tracePoint("nginx", 12, 30), tracePoint("cf-lfu", 12, 100)],
    runs: [],
    failed_runs: 0,
    started_at: "2026-12-06T00:00:00Z",
    finished_at: "2026-12-06T00:01:00Z",
  };
  const md = traceMarkdown(r);
  const tables = tablesWithLineAbove(md);
  assert.equal(tables.length, 3);
  for (const t of tables)
    assert.match(t.above, /^_Links: equal hosts .* at 10 Mbit\/s, the client unshaped\. CPU: /);
  assert.match(md, /Only 1 run per point \(--quick\)/);
  assert.match(md, /\(nasa\.log\)/);
  assert.match(tracePlot(r).caption!, /real trace \(nasa\.log\)/);
  assert.doesNotMatch(traceMarkdown({ ...r, params: { ...r.params, runs: 3 } }), /Only \d+ run/);
});

function sweep(steps: [SweepResult["steps"][number]["ratio"], number, number][]): SweepResult {
  return {
    kind: "sweep",
    params: {
      ...TRACE_PARAMS,
      frontend_rate: "per step",
      workload: { trace: "synthetic (x)", scale: 0.01, files: 10, document_bytes: 1e6 },
    },
    machine: MACHINE,
    steps: steps.map(([ratio, sc, nginx]) => ({
      ratio,
      frontend_rate: ratio === "unshaped" ? "unshaped" : `${ratio * 10}mbit`,
      points: [
        tracePoint("sc", 12, sc),
        tracePoint("nginx", 12, nginx),
        tracePoint("cf-lfu", 12, 100, ratio === 2),
      ],
    })),
    runs: [],
    failed_runs: 0,
    started_at: "2026-12-06T00:00:00Z",
    finished_at: "2026-12-06T00:01:00Z",
  };
}

test("sweep: where a proxy catches up with SC, the set-up beside every table, 'unshaped' on the plot's axis", () => {
  const r = sweep([
    [1, 150, 30],
    [2, 150, 60],
    [4, 150, 150],
    [10, 150, 200],
    ["unshaped", 150, 210],
  ]);
  assert.equal(catchUpStep(r, "nginx"), 4);
  // CF-LFU stays below SC at every step (its 2x point failed and does not count).
  assert.equal(catchUpStep(r, "cf-lfu"), null);
  const md = sweepMarkdown(r);
  const tables = tablesWithLineAbove(md);
  assert.equal(tables.length, 3);
  for (const t of tables) assert.match(t.above, /^_Links: each of the nodes at 10 Mbit\/s, .*row's multiple/);
  assert.match(md, /\| 4x \(40mbit\) \| 150 \(149-151\) \| 150 \(149-151\) \| 100 \(99-101\) \|/);
  assert.match(md, /\| 2x \(20mbit\) \| 150 \(149-151\) \| 60 \(59-61\) \| FAILED \|/);
  assert.match(md, /\| nginx \(URI hash\) \| 4x \|/);
  assert.match(md, /\| CF-LFU \| not at any step \|/);
  const plot = sweepPlot(r);
  assert.deepEqual(plot.xTicks, [1, 2, 4, 10, 25]);
  assert.deepEqual(plot.xTicks.map(plot.xTickLabel!), ["1x", "2x", "4x", "10x", "unshaped"]);
  const nginx = plot.series.find((s) => s.name === "nginx (URI hash)")!;
  assert.deepEqual(
    nginx.points.map((p) => [p.x, p.y]),
    [
      [1, 30],
      [2, 60],
      [4, 150],
      [10, 200],
      [25, 210],
    ],
  );
  // The failed point is not plotted.
  assert.equal(plot.series.find((s) => s.name === "CF-LFU")!.points.length, 4);
});

const SETUP = "_set-up_";

test("microEfficiencySection: each mechanism's efficiency with its range per size, FAILED and missing points marked", () => {
  const half = { ...microPoint("sc", 1000), efficiency: 0.5, efficiency_min: 0.42, efficiency_max: 0.61 };
  const r = {
    params: { sizes: [1000, 2000], mechanisms: ["plain", "sc", "cf"] },
    points: [half, { ...microPoint("cf", 1000), failed: true }, microPoint("sc", 2000)],
  } as Pick<MicroResult, "params" | "points"> as MicroResult;
  const lines = microEfficiencySection(r, SETUP);
  assert.equal(lines[2], SETUP);
  assert.deepEqual(lines[4]!.split("\n"), [
    "| size | SC | CF |",
    "| --- | ---: | ---: |",
    "| 1 KB | 50% (42%-61%) | FAILED |",
    "| 2 KB | 100% (100%-100%) | - |",
  ]);
});

test("microUsageSection: per-process CPU where the process ran, '-' where not, the limits or latency-bound", () => {
  const p = { ...microPoint("sc", 1000), cpu_by_process: { node1: 71.6 }, limits: ["node1 CPU", "link"] };
  const q = { ...microPoint("plain", 1000), cpu: { proxy: 12, loadgen: 30 } };
  const rows = microUsageSection({ points: [p, q] } as Pick<MicroResult, "points"> as MicroResult, SETUP)[4]!
    .split("\n")
    .slice(2);
  assert.deepEqual(rows, [
    "| 1 KB | SC | 100 | 50% | 72% | - | - | - | 0% | 0% | 100 | 100% | node1 CPU; link |",
    "| 1 KB | plain node | 100 | 50% | - | - | - | 12% | 30% | 0% | 100 | 100% | none reached (latency-bound) |",
  ]);
});

test("failedMicroRuns: only the failed runs, each with its size and reason; nothing when none failed", () => {
  const run = (mechanism: MicroPoint["mechanism"], failure: string | null) =>
    ({ mechanism, size: 4000, run: 2, failure }) as MicroResult["runs"][number];
  assert.deepEqual(failedMicroRuns([run("sc", null)]), []);
  assert.deepEqual(failedMicroRuns([run("sc", null), run("cf", "3 verify failures")]), [
    "",
    "Failed runs (1; their points are not plotted):",
    "",
    "- cf 4 KB run 2: 3 verify failures",
  ]);
});

test("scRelativeSection: SC over each other mode per node count, '-' for a failed or missing point, none without SC", () => {
  const r = {
    params: { nodes: [2, 4], modes: ["sc", "rr", "nginx"] },
    points: [
      tracePoint("sc", 2, 150),
      tracePoint("rr", 2, 100),
      tracePoint("nginx", 2, 200),
      tracePoint("sc", 4, 300),
      tracePoint("rr", 4, 100, true),
    ],
  } as Pick<TraceResult, "params" | "points"> as TraceResult;
  const lines = scRelativeSection(r, SETUP);
  assert.deepEqual(lines[5]!.split("\n"), [
    "| nodes | vs RR | vs nginx (URI hash) |",
    "| --- | ---: | ---: |",
    "| 2 | +50% | -25% |",
    "| 4 | - | - |",
  ]);
  assert.deepEqual(scRelativeSection({ ...r, params: { ...r.params, modes: ["rr", "nginx"] } }, SETUP), []);
});
