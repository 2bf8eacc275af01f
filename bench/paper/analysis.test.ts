import { test } from "node:test";
import assert from "node:assert/strict";
import { UrlMapper } from "../../server/membership/mapper.js";
import {
  checkArrangement,
  cpuByRole,
  limitsOf,
  loadFailure,
  microArrangement,
  microPoints,
  microUrls,
  NO_FIGURES,
  rotated,
  runFigures,
  tracePoints,
  type MicroRun,
  type TraceRun,
} from "./analysis.js";
import type { RunUsage } from "./meter.js";
import type { Sample } from "./metrics.js";

const s = (name: string, value: number, labels: Record<string, string> = {}): Sample => ({
  name,
  labels,
  value,
});

function usage(cpu: Record<string, number>, busy = 50, links: RunUsage["links"] = []): RunUsage {
  return {
    seconds: 10,
    cpus: 2,
    machineBusy: busy,
    processes: Object.entries(cpu).map(([label, c]) => ({ label, role: label.replace(/\d+$/, ""), cpu: c })),
    links,
  };
}

test("microUrls: distinct documents, all homed at node2 by the nodes' own mapper", () => {
  const urls = microUrls(1000, 64);
  assert.equal(new Set(urls).size, 64);
  const mapper = new UrlMapper([{ id: "node1" }, { id: "node2" }]);
  for (const u of urls) {
    assert.equal(mapper.lookup(u), "node2");
    assert.match(u, /^\/m1000\//);
  }
});

test("microArrangement: plain, sc and cf send every connection to node1; the proxies forward to node2", () => {
  assert.deepEqual(microArrangement("plain"), { mode: "local", weights: [1, 0] });
  assert.deepEqual(microArrangement("sc").weights, [1, 0]);
  assert.deepEqual(microArrangement("sc").extraArgs, { node: ["--clone-local-max-bytes", "0"] });
  assert.deepEqual(microArrangement("sc-local"), {
    mode: "sc",
    weights: [1, 0],
    extraArgs: { node: ["--clone-local-max-bytes", "1G"] },
  });
  assert.equal(microArrangement("cf").mode, "cf-lru");
  assert.deepEqual(microArrangement("nginx").proxyUpstreams, [2]);
  assert.equal(microArrangement("haproxy").proxy, "haproxy");
});

test("checkArrangement: SC must clone every response without failures", () => {
  const before = [[s("sc_clones_sent_total", 10)], [s("sc_clones_received_total", 10)]];
  const good = [[s("sc_clones_sent_total", 110)], [s("sc_clones_received_total", 110)]];
  assert.equal(checkArrangement("sc", before, good, 100).failure, null);
  assert.equal(checkArrangement("sc", before, good, 100).check.clones_sent, 100);
  const short = [[s("sc_clones_sent_total", 60)], [s("sc_clones_received_total", 60)]];
  assert.match(checkArrangement("sc", before, short, 100).failure!, /50 clones sent/);
  const failing = [
    [s("sc_clones_sent_total", 110), s("sc_clone_failures_total", 1, { reason: "timeout" })],
    [s("sc_clones_received_total", 110)],
  ];
  assert.match(checkArrangement("sc", before, failing, 100).failure!, /1 clone failures/);
});

test("checkArrangement: SC served locally: node1 answers every request, nothing is cloned", () => {
  const before = [[s("sc_http_requests_total", 5), s("sc_clones_sent_total", 64)], []];
  const good = [[s("sc_http_requests_total", 105), s("sc_clones_sent_total", 64)], []];
  assert.equal(checkArrangement("sc-local", before, good, 100).failure, null);
  const cloned = [[s("sc_http_requests_total", 105), s("sc_clones_sent_total", 65)], []];
  assert.match(checkArrangement("sc-local", before, cloned, 100).failure!, /^sc-local: 1 clones sent/);
  const elsewhere = [
    [s("sc_http_requests_total", 104), s("sc_clones_sent_total", 64)],
    [s("sc_http_requests_total", 1)],
  ];
  assert.match(checkArrangement("sc-local", before, elsewhere, 100).failure!, /node1 served 99 and node2 1/);
});

test("checkArrangement: CF must fetch every response from the peer's memory, none joined", () => {
  const z = [[], []];
  const ok = [[s("sc_cf_peer_fetches_total", 5), s("sc_cf_peer_hits_total", 5)], []];
  assert.equal(checkArrangement("cf", z, ok, 5).failure, null);
  const joined = [
    [s("sc_cf_peer_fetches_total", 3), s("sc_cf_peer_hits_total", 3), s("sc_cf_joined_total", 2)],
    [],
  ];
  assert.match(checkArrangement("cf", z, joined, 5).failure!, /3 peer fetches .* 2 joined/);
});

test("checkArrangement: plain on node1 only, proxies on node2 only", () => {
  const z = [[], []];
  const n1 = [[s("sc_http_requests_total", 7, { status: "200" })], []];
  const n2 = [[], [s("sc_http_requests_total", 7, { status: "200" })]];
  assert.equal(checkArrangement("plain", z, n1, 7).failure, null);
  assert.match(checkArrangement("plain", z, n2, 7).failure!, /node1 served 0 and node2 7/);
  assert.equal(checkArrangement("nginx", z, n2, 7).failure, null);
  assert.match(checkArrangement("haproxy", z, n1, 7).failure!, /node2 served 0 and node1 7/);
});

function microRun(
  mechanism: MicroRun["mechanism"],
  size: number,
  run: number,
  rps: number,
  failure: string | null = null,
): MicroRun {
  return {
    ...NO_FIGURES,
    mechanism,
    size,
    run,
    rps,
    mbps: (rps * size * 8) / 1e6,
    responses: rps * 10,
    elapsed_s: 10,
    check: {},
    failure,
    usage: usage({ node1: 40, dispatcher: 10 }),
  };
}

test("microPoints: medians, ranges and efficiency against plain; a failed run marks the point", () => {
  const runs = [
    microRun("plain", 100, 1, 1000),
    microRun("plain", 100, 2, 1200),
    microRun("plain", 100, 3, 1100),
    microRun("sc", 100, 1, 800),
    microRun("sc", 100, 2, 880),
    microRun("sc", 100, 3, 990),
    microRun("cf", 100, 1, 500, "1 responses failed verification"),
  ];
  const pts = microPoints(runs, [100], ["plain", "sc", "cf"]);
  const sc = pts.find((p) => p.mechanism === "sc")!;
  assert.equal(sc.rps, 880);
  assert.equal(sc.rps_min, 800);
  assert.equal(sc.rps_max, 990);
  assert.equal(sc.efficiency, 0.8);
  assert.equal(sc.efficiency_max, 0.9);
  assert.equal(sc.failed, false);
  assert.equal(pts.find((p) => p.mechanism === "plain")!.efficiency, 1);
  assert.equal(pts.find((p) => p.mechanism === "cf")!.failed, true);
  assert.equal(sc.cpu.node, 40);
  // (40% node1 + 10% dispatcher) of a core per 880 responses/s = 568 us per response.
  assert.equal(Math.round(sc.server_cpu_us), 568);
  assert.ok(Math.abs(sc.cpu_efficiency - 880 / 1100) < 1e-9);
  assert.equal(sc.cpu_by_process.node1, 40);
  assert.deepEqual(sc.limits, []);
});

test("cpuByRole sums a role's processes and counts the rest of the machine's busy time as other", () => {
  const u = usage({ node1: 30, node2: 20, dispatcher: 10 }, 50);
  assert.deepEqual(cpuByRole(u), { node: 50, dispatcher: 10, other: 40 });
});

test("limitsOf names a busy machine, a process at a full core and a link near its rate", () => {
  assert.deepEqual(
    limitsOf({
      machine_busy: 95,
      cpus: 2,
      processes: [
        { label: "nginx", cpu: 98 },
        { label: "node1", cpu: 40 },
      ],
      links: [
        { label: "origin", mbps: 9.5, rateMbps: 10 },
        { label: "front-end", mbps: 50, rateMbps: null },
        { label: "nodes (mean)", mbps: 5, rateMbps: 10 },
      ],
    }),
    ["CPU: machine 95% busy (2 cores)", "CPU: nginx 98% of a core", "link: origin 9.5 of 10 Mbit/s"],
  );
  assert.deepEqual(limitsOf({ machine_busy: 40, cpus: 2, processes: [], links: [] }), []);
});

function traceRun(
  mode: TraceRun["mode"],
  nodes: number,
  run: number,
  rps: number,
  originMbps: number,
): TraceRun {
  return {
    ...NO_FIGURES,
    mode,
    nodes,
    run,
    rps,
    mbps: rps * 0.3,
    responses: rps * 20,
    elapsed_s: 20,
    warmup: { requests: 100, seconds: 5, stopped_by: "requests" },
    nodes_stats: { cache_hits: 30, cache_misses: 70, origin_loads: 40 },
    failure: null,
    start_s: 0,
    usage: usage({ node1: 20, node2: 30, dispatcher: 5, origin: 3 }, 60, [
      { label: "origin", txMbps: originMbps, rxMbps: 0.1 },
      { label: "node1", txMbps: 4, rxMbps: 1 },
      { label: "node2", txMbps: 6, rxMbps: 1 },
    ]),
  };
}

test("tracePoints: medians per mode and node count, link use, hit ratio, limits", () => {
  const runs = [
    traceRun("sc", 2, 1, 100, 9.6),
    traceRun("sc", 2, 2, 120, 9.7),
    traceRun("sc", 2, 3, 90, 9.5),
    traceRun("rr", 2, 1, 50, 2),
  ];
  const pts = tracePoints(runs, [2], ["rr", "sc"], { node: 10, origin: 10, frontend: null });
  const sc = pts.find((p) => p.mode === "sc")!;
  assert.deepEqual([sc.rps, sc.rps_min, sc.rps_max], [100, 90, 120]);
  assert.equal(sc.node_tx_mbps_mean, 5);
  assert.equal(sc.origin_mbps, 9.6);
  assert.equal(sc.max_node_cpu, 30);
  assert.equal(sc.cache_hit_ratio, 0.3);
  assert.equal(sc.origin_fetches_per_s, 2);
  assert.deepEqual(sc.limits, ["link: origin 9.6 of 10 Mbit/s"]);
  assert.deepEqual(pts.find((p) => p.mode === "rr")!.limits, []);
  assert.equal(pts.length, 2);
});

test("tracePoints: a cluster that did not start gives a failed point, not a figure", async () => {
  const { failedTraceRun } = await import("./trace.js");
  const runs = [1, 2, 3].map((r) => failedTraceRun("cf-lfu", 12, r, "cluster did not start: timeout"));
  runs.push(traceRun("sc", 12, 1, 100, 9.6));
  const pts = tracePoints(runs, [12], ["cf-lfu", "sc"], { node: 10, origin: 10, frontend: null });
  const cf = pts.find((p) => p.mode === "cf-lfu")!;
  assert.equal(cf.failed, true);
  assert.equal(cf.rps, 0);
  assert.equal(pts.find((p) => p.mode === "sc")!.failed, false);
});

test("runFigures and loadFailure: wrong bytes first, then transport errors, then silence", () => {
  const quiet = { waitedS: 0, busy: 5, busiest: [] };
  const replay = {
    rps: 10,
    mbps: 1,
    ok: 99,
    errors: 2,
    errors_by_kind: { reset: 2 },
    verify_failures: 1,
    verify_failures_by_kind: { length: 1 },
    verify_failure_samples: [
      { path: "/a", method: "GET", failure: "length" as const, expected: "10", got: "9" },
    ],
    latency_ms: { p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1 },
    elapsed_s: 10,
  };
  const f = runFigures(replay, quiet);
  assert.equal(f.responses, 100);
  assert.deepEqual(f.quiet, { waited_s: 0, busy: 5, busiest: [] });
  assert.match(loadFailure(f)!, /^1 responses failed verification/);
  assert.match(loadFailure({ ...f, verify_failures: 0 })!, /^2 transport errors/);
  assert.equal(loadFailure({ ...f, verify_failures: 0, errors: 0, responses: 0 }), "no responses");
  assert.equal(loadFailure({ ...f, verify_failures: 0, errors: 0 }), null);
  assert.equal(loadFailure(NO_FIGURES), "no responses");
});

test("microPoints: each link is held against its own host's rate; a host throttled at its budget is named", () => {
  const links = [
    { label: "dispatcher", txMbps: 95, rxMbps: 1 },
    { label: "node2", txMbps: 95, rxMbps: 1 },
    { label: "client", txMbps: 1, rxMbps: 300 },
  ];
  const run = (r: number): MicroRun => ({
    ...microRun("nginx", 1000, r, 100),
    usage: usage({ node2: 40, nginx: 20 }, 50, links),
    host_cpu_throttled: { node2: 0.2, dispatcher: 0.8 },
  });
  const rate = (host: string) => (host === "client" ? null : host === "dispatcher" ? 100 : 1000);
  const [p] = microPoints([run(1), run(2), run(3)], [1000], ["nginx"], rate);
  // The front-end at 95 of 100 Mbit/s is a limit; node2's 95 of 1000 is not; the unshaped client never.
  assert.deepEqual(p!.limits, [
    "CPU budget: dispatcher throttled in 80% of periods",
    "link: dispatcher out 95.0 of 100 Mbit/s",
  ]);
});

test("sweepSteps: one set of points per front-end step, each at its own front-end rate", async () => {
  const { sweepSteps } = await import("./analysis.js");
  const withFe = (r: TraceRun, ratio: 1 | 10 | "unshaped", feMbps: number): TraceRun => ({
    ...r,
    frontend_ratio: ratio,
    usage: { ...r.usage, links: [...r.usage.links, { label: "dispatcher", txMbps: feMbps, rxMbps: 1 }] },
  });
  const runs = [
    withFe(traceRun("nginx", 12, 1, 30, 5), 1, 9.6),
    withFe(traceRun("nginx", 12, 1, 150, 5), 10, 40),
    withFe(traceRun("nginx", 12, 1, 160, 5), "unshaped", 42),
  ];
  const steps = sweepSteps(
    runs,
    [
      { ratio: 1, frontendRate: "10mbit" },
      { ratio: 10, frontendRate: "100mbit" },
      { ratio: "unshaped", frontendRate: null },
    ],
    [12],
    ["nginx"],
    { node: 10, origin: 10 },
  );
  assert.deepEqual(
    steps.map((s) => [s.ratio, s.frontend_rate, s.points.map((p) => p.rps)]),
    [
      [1, "10mbit", [30]],
      [10, "100mbit", [150]],
      ["unshaped", "unshaped", [160]],
    ],
  );
  assert.deepEqual(steps[0]!.points[0]!.limits, ["link: front-end 9.6 of 10 Mbit/s"]);
  assert.deepEqual(steps[1]!.points[0]!.limits, []);
});

test("rotated: the list started at its k-th entry, wrapping, every entry once", () => {
  assert.deepEqual(rotated(["a", "b", "c"], 0), ["a", "b", "c"]);
  assert.deepEqual(rotated(["a", "b", "c"], 1), ["b", "c", "a"]);
  assert.deepEqual(rotated(["a", "b", "c"], 5), ["c", "a", "b"]);
  assert.deepEqual(rotated([], 3), []);
});
