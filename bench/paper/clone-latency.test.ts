import { test } from "node:test";
import assert from "node:assert/strict";
import { cloneLatencyHistograms, clonePhase, statsLatencies } from "./clone-latency.js";
import { microMarkdown } from "./report.js";
import type { MicroPoint, MicroResult } from "./analysis.js";
import type { Sample } from "./metrics.js";

const s = (name: string, value: number, labels: Record<string, string> = {}): Sample => ({
  name,
  labels,
  value,
});

/** A histogram's cumulative buckets (seconds) as Prometheus text would give them. */
function histogram(name: string, counts: [number, number][]): Sample[] {
  return counts.map(([le, count]) =>
    s(`${name}_bucket`, count, { le: le === Infinity ? "+Inf" : String(le) }),
  );
}

test("cloneLatencyHistograms finds every sc_clone_*_seconds histogram by its buckets, nothing else", () => {
  const samples = [
    ...histogram("sc_clone_latency_seconds", [[0.001, 1]]),
    ...histogram("sc_clone_one_way_seconds", [[0.001, 1]]),
    ...histogram("sc_http_request_seconds", [[0.001, 1]]),
    s("sc_clone_latency_seconds_count", 1),
    s("sc_clones_sent_total", 1),
  ];
  assert.deepEqual(cloneLatencyHistograms(samples), ["sc_clone_latency_seconds", "sc_clone_one_way_seconds"]);
});

test("statsLatencies keeps the summary-shaped values of /stats sc, by key", () => {
  const stats = {
    sc: {
      clonesSent: 5,
      cloneLatencyUs: { samples: 3, p50: 300, p90: 900, p99: 990, max: 1000 },
      cloneOneWayUs: { samples: 2, p50: 40, p90: 50, p99: 55, max: 60 },
      notYet: null,
      partial: { samples: 1, p50: 1 },
      transport: { connects: 1 },
    },
  };
  assert.deepEqual(statsLatencies(stats), {
    cloneLatencyUs: { samples: 3, p50: 300, p90: 900, p99: 990, max: 1000 },
    cloneOneWayUs: { samples: 2, p50: 40, p90: 50, p99: 55, max: 60 },
  });
  assert.deepEqual(statsLatencies({ local: {} }), {});
  assert.deepEqual(statsLatencies(null), {});
});

test("clonePhase: histogram deltas over the phase per node, /stats with the phase's clone count", () => {
  const before = [
    [
      ...histogram("sc_clone_latency_seconds", [
        [0.0001, 0],
        [0.001, 10],
        [Infinity, 10],
      ]),
      s("sc_clones_sent_total", 10),
    ],
    [s("sc_clones_received_total", 10)],
  ];
  const after = [
    [
      ...histogram("sc_clone_latency_seconds", [
        [0.0001, 50],
        [0.001, 110],
        [Infinity, 110],
      ]),
      s("sc_clones_sent_total", 110),
    ],
    [
      ...histogram("sc_clone_one_way_seconds", [
        [0.00005, 100],
        [Infinity, 100],
      ]),
      s("sc_clones_received_total", 110),
    ],
  ];
  const stats = [
    { sc: { cloneLatencyUs: { samples: 110, p50: 90, p90: 800, p99: 990, max: 1000 } } },
    { sc: { cloneOneWayUs: { samples: 100, p50: 20, p90: 40, p99: 49, max: 50 } } },
  ];
  const p = clonePhase({ size: 1000, load: "idle", what: "probe" }, ["node1", "node2"], before, after, stats);
  const rt = p.histograms.node1!.sc_clone_latency_seconds!;
  assert.equal(rt.samples, 100);
  // 50 of the 100 new observations are <= 100 us: the median is the bucket's edge.
  assert.equal(rt.p50_us, 100);
  assert.equal(rt.what, "node1, probe");
  assert.equal(p.histograms.node2!.sc_clone_one_way_seconds!.samples, 100);
  assert.deepEqual(p.stats.node1!.cloneLatencyUs, {
    samples: 110,
    p50: 90,
    p90: 800,
    p99: 990,
    max: 1000,
    phase_clones: 100,
  });
  assert.equal(p.stats.node2!.cloneOneWayUs!.phase_clones, 100);
  // A histogram without observations in the phase is left out.
  const quiet = clonePhase({ size: 1000, load: "figure8", what: "x" }, ["node1", "node2"], after, after, [
    {},
    {},
  ]);
  assert.deepEqual(quiet.histograms, {});
  assert.deepEqual(quiet.stats, {});
});

function point(mechanism: MicroPoint["mechanism"], rps: number, serverCpu: number): MicroPoint {
  return {
    mechanism,
    size: 1000,
    rps,
    rps_min: rps,
    rps_max: rps,
    mbps: 1,
    efficiency: 1,
    efficiency_min: 1,
    efficiency_max: 1,
    failed: false,
    cpu: {},
    cpu_by_process: { node1: 50, node2: 20 },
    machine_busy: 50,
    server_cpu_us: serverCpu,
    cpu_efficiency: 1,
    limits: [],
  };
}

test("microMarkdown: cloned vs served locally side by side, and every clone latency found", () => {
  const phase = clonePhase(
    { size: 1000, load: "idle", what: "1 connection, 600 req/s" },
    ["node1", "node2"],
    [[], []],
    [
      histogram("sc_clone_latency_seconds", [
        [0.0004, 10],
        [Infinity, 10],
      ]),
      histogram("sc_clone_one_way_seconds", [
        [0.00005, 10],
        [Infinity, 10],
      ]),
    ],
    [{ sc: { cloneLatencyUs: { samples: 10, p50: 300, p90: 390, p99: 399, max: 400 } } }, {}],
  );
  const r: MicroResult = {
    kind: "micro",
    params: { sizes: [1000], mechanisms: ["plain", "sc", "sc-local"], runs: 1, duration_s: 5 },
    machine: { cpus: 2, cpu: "x", memory_gb: 1, kernel: "k", node: "v20", load_average: [] },
    points: [point("plain", 2000, 400), point("sc", 1000, 900), point("sc-local", 1800, 450)],
    runs: [],
    clone_latency: { by_size: [], probe: null, phases: [phase] },
    failed_runs: 0,
    started_at: "2026-12-06T00:00:00Z",
    finished_at: "2026-12-06T00:01:00Z",
  };
  const md = microMarkdown(r);
  assert.match(md, /\| 1 KB \| 1000 \| 1800 \| 900 \| 450 \| 2\.00x \| 50% \/ 20% \| 50% \/ 20% \|/);
  assert.match(
    md,
    /\| 1 KB \| idle \(1 connection, 600 req\/s\) \| node1 \| CLONE sent -> SC-ACK received \(original\) \| 10 \|/,
  );
  assert.match(
    md,
    /\| node2 \| one-way: CLONE sent -> clone's first response segment \(clone's node\) \| 10 \| 25\.0 \|/,
  );
  // node1 counted no clones in this phase: its /stats summary reaches back before it.
  assert.doesNotMatch(md, /`cloneLatencyUs` \|/);
  assert.match(md, /1 `\/stats` latency summaries reach back before their phase/);
  const own = {
    ...r,
    clone_latency: {
      ...r.clone_latency,
      phases: [
        {
          ...phase,
          stats: {
            node1: {
              cloneLatencyUs: { samples: 10, p50: 300, p90: 390, p99: 399, max: 400, phase_clones: 10 },
            },
          },
        },
      ],
    },
  };
  assert.match(microMarkdown(own), /\| node1 \| `cloneLatencyUs` \| 10 \(10 in the phase\) \| 300 \|/);
});
