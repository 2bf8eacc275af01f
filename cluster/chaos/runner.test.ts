import { test } from "node:test";
import assert from "node:assert/strict";
import { CHAOS_NFT_TABLE, lossBurstRules } from "./faults.js";
import {
  buildChaosReport,
  chaosClusterOptions,
  describeChaosPlan,
  planChaos,
  replayTotals,
  reportJson,
  type ChaosOptions,
  type ChaosOutcome,
  type ChaosReport,
} from "./runner.js";
import type { ReplayResult } from "../../loadgen/replay/run.js";
import type { FaultEvent, ReplaySample } from "./report.js";

test("a loss burst drops the given share of IPv4 frames both ways through one bridge port, in its own table", () => {
  assert.equal(
    lossBurstRules("node2", 12.5),
    [
      `add table bridge ${CHAOS_NFT_TABLE}`,
      `add chain bridge ${CHAOS_NFT_TABLE} forward { type filter hook forward priority -10; policy accept; }`,
      `add rule bridge ${CHAOS_NFT_TABLE} forward iifname "node2" ether type ip numgen random mod 10000 < 1250 drop`,
      `add rule bridge ${CHAOS_NFT_TABLE} forward oifname "node2" ether type ip numgen random mod 10000 < 1250 drop`,
    ].join("; "),
  );
  // Not the testbed's own loss table: removing the burst leaves `--loss` alone.
  assert.notEqual(CHAOS_NFT_TABLE, "sc_testbed");
});

test("report.json: a timeline row per line without its empty fields; everything else as it was", () => {
  const row = (t: number, errors: number) => ({
    t,
    completed: 30,
    ok: 30 - errors,
    errors,
    verifyFailures: 0,
    mbps: 1.5,
    rps: 30,
    errorsByKind: errors ? { reset: errors } : {},
    verifyFailuresByKind: {},
    activeFault: errors ? 0 : null,
    cause: errors ? ("node_kill" as const) : null,
  });
  const report = {
    tool: "sc-cluster chaos",
    params: { seed: 1 },
    summary: { requests: 60, violations: [] },
    timeline: [row(1, 0), row(2, 1)],
    replay: null,
  } as unknown as ChaosReport;
  const text = reportJson(report);
  const lines = text.split("\n");
  assert.ok(
    lines.includes(`  {"t":1,"completed":30,"ok":30,"errors":0,"verifyFailures":0,"mbps":1.5,"rps":30},`),
  );
  assert.ok(lines.some((l) => l.includes(`"t":2`) && l.includes(`"cause":"node_kill"`)));
  const back = JSON.parse(text) as ChaosReport;
  assert.deepEqual(back.summary, report.summary);
  const { verifyFailuresByKind: _none, ...withErrors } = report.timeline[1]!;
  assert.deepEqual(back.timeline[1], withErrors);
  assert.deepEqual(Object.keys(back.timeline[0]!).length, 7);
});

const OPTS: ChaosOptions = { seed: 3, durationS: 300, maxFaults: 4 };

test("planChaos: the defaults, and faults on node1..N only, the same for the same seed", () => {
  const plan = planChaos(OPTS);
  assert.deepEqual(plan.settings, {
    prefix: "scchaos-",
    nodes: 3,
    scheduler: "mh",
    mode: "local",
    clients: 1,
    conns: 16,
    keepalive: true,
    timeoutMs: 30_000,
  });
  assert.ok(plan.planned.length > 0 && plan.planned.length <= 4);
  const targets = new Set(["node1", "node2", "node3", "origin", "dispatcher"]);
  for (const f of plan.planned) assert.ok(targets.has(f.target), `${f.kind} ${f.target}`);
  assert.deepEqual(planChaos(OPTS).planned, plan.planned);
  assert.deepEqual(plan.kinds, [...new Set(plan.planned.map((f) => f.kind))]);
  const two = planChaos({ ...OPTS, nodes: 2, kinds: ["node_kill"] });
  assert.deepEqual(two.kinds, ["node_kill"]);
  for (const f of two.planned) assert.ok(["node1", "node2"].includes(f.target), f.target);
});

test("describeChaosPlan: a headline, then a line per fault", () => {
  const plan = planChaos(OPTS);
  const lines = describeChaosPlan(plan, OPTS);
  assert.equal(lines[0], `chaos: ${plan.planned.length} faults planned over 300 s (seed 3):`);
  assert.equal(lines.length, plan.planned.length + 1);
  const f = plan.planned[0]!;
  assert.match(lines[1]!, new RegExp(`^  #${f.index} at ${f.atS} s: ${f.kind} ${f.target} `));
});

test("chaosClusterOptions: the run's settings; logs beside the report only with an output directory", () => {
  const said: string[] = [];
  const s = planChaos(OPTS).settings;
  const opts = chaosClusterOptions({ ...OPTS, extraArgs: { node: ["-x"] } }, s, (l) => said.push(l));
  assert.deepEqual(
    [opts.prefix, opts.nodes, opts.mode, opts.scheduler, opts.cacheBytes, opts.extraArgs, opts.logDir],
    ["scchaos-", 3, "local", "mh", "256M", { node: ["-x"] }, undefined],
  );
  opts.onProgress?.("testbed up");
  assert.deepEqual(said, ["chaos: testbed up"]);
  const out = chaosClusterOptions({ ...OPTS, outDir: "/r", cacheBytes: "1G" }, s, () => {});
  assert.equal(out.logDir, "/r/logs");
  assert.equal(out.cacheBytes, "1G");
});

const sample = (elapsedS: number, requests: number, errors = 0): ReplaySample => ({
  elapsedS,
  requests,
  ok: requests - errors,
  errors,
  verifyFailures: 0,
  bytes: requests * 100,
  errorsByKind: errors ? { reset: errors } : {},
  verifyFailuresByKind: {},
});

test("replayTotals: the result's counts, else the last sample's, else zeros", () => {
  const byKind = { errors_by_kind: { reset: 1 }, verify_failures_by_kind: { sha256: 1 } };
  const result = {
    requests: 10,
    ok: 8,
    errors: 1,
    verify_failures: 1,
    ...byKind,
  } as Partial<ReplayResult> as ReplayResult;
  const fromResult = replayTotals(result, sample(1, 99));
  assert.deepEqual(
    [fromResult.requests, fromResult.ok, fromResult.errors, fromResult.verifyFailures],
    [10, 8, 1, 1],
  );
  assert.deepEqual([fromResult.errorsByKind, fromResult.verifyFailuresByKind], [{ reset: 1 }, { sha256: 1 }]);
  const last = sample(2, 50, 2);
  const { elapsedS: _t, bytes: _b, ...counts } = last;
  assert.deepEqual(replayTotals(null, last), counts);
  assert.deepEqual(Object.values(replayTotals(null, undefined)), [0, 0, 0, {}, 0, {}]);
});

test("buildChaosReport: partial without a result or when stopped early; exits and replay errors are violations", () => {
  const plan = planChaos(OPTS);
  const f = plan.planned[0]!;
  const events: FaultEvent[] = [{ fault: f, startedS: 1.5, endedS: 2.5, detail: "done" }];
  const run: ChaosOutcome = {
    startedAt: "2026-12-07T08:00:00.000Z",
    stoppedBy: "duration",
    samples: [sample(1, 40), sample(2, 80)],
    events,
    result: null,
    replayError: "the replay gave no result: boom",
    unexpectedExits: ["node2 (pid 9) exited: code 1, signal null"],
    stats: { node1: { error: "timeout" } },
  };
  const r = buildChaosReport({ ...OPTS, rate: 50 }, plan, run);
  assert.equal(r.partial, true, "no result");
  assert.equal(r.stoppedBy, "duration");
  assert.deepEqual(r.params, {
    prefix: "scchaos-",
    nodes: 3,
    mode: "local",
    scheduler: "mh",
    seed: 3,
    duration_s: 300,
    max_faults: 4,
    kinds: plan.kinds,
    rate: 50,
    clients: 1,
    conns: 16,
    keepalive: true,
    timeout_ms: 30_000,
  });
  assert.deepEqual(
    r.timeline.map((row) => [row.t, row.completed, row.activeFault]),
    [
      [1, 40, null],
      [2, 40, f.index],
    ],
  );
  assert.equal(r.summary.requests, 80, "the last sample's totals");
  assert.deepEqual(r.summary.violations, [
    "unexpected exit: node2 (pid 9) exited: code 1, signal null",
    "replay: the replay gave no result: boom",
  ]);
  assert.equal(r.replay, null);
  assert.equal(r.stats, run.stats);
  assert.equal(r.planned, plan.planned);
  const clean = buildChaosReport(OPTS, plan, {
    ...run,
    stoppedBy: "interrupted",
    replayError: null,
    unexpectedExits: [],
  });
  assert.equal(clean.partial, true);
  assert.deepEqual(clean.summary.violations, []);
  assert.equal(clean.params.rate, null);
});
