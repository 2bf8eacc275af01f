import { test } from "node:test";
import assert from "node:assert/strict";
import { CHAOS_NFT_TABLE, lossBurstRules, reportJson, type ChaosReport } from "./runner.js";

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
