import { test } from "node:test";
import assert from "node:assert/strict";
import {
  buildTimeline,
  formatTimeline,
  renderTimelineSvg,
  summarize,
  type FaultEvent,
  type ReplaySample,
} from "./report.js";
import type { Fault, FaultKind } from "./schedule.js";

function sample(
  t: number,
  requests: number,
  errors: Record<string, number> = {},
  verify: Record<string, number> = {},
): ReplaySample {
  const e = Object.values(errors).reduce((a, b) => a + b, 0);
  const v = Object.values(verify).reduce((a, b) => a + b, 0);
  return {
    elapsedS: t,
    requests,
    ok: requests - e - v,
    errors: e,
    verifyFailures: v,
    bytes: requests * 1000,
    errorsByKind: errors,
    verifyFailuresByKind: verify,
  };
}

function event(
  index: number,
  kind: FaultKind,
  startedS: number,
  endedS: number,
  target = "node2",
): FaultEvent {
  const fault: Fault = {
    index,
    kind,
    target,
    atS: startedS,
    durationS: Math.round((endedS - startedS) * 10) / 10,
  };
  return { fault, startedS, endedS, detail: `${kind} done` };
}

const totals = (s: ReplaySample) => ({
  requests: s.requests,
  ok: s.ok,
  errors: s.errors,
  errorsByKind: s.errorsByKind,
  verifyFailures: s.verifyFailures,
  verifyFailuresByKind: s.verifyFailuresByKind,
});

test("rows are the deltas of the running totals; errors go to the fault whose window holds them", () => {
  const samples = [
    sample(1, 40),
    sample(2, 80),
    sample(3, 120, { reset: 2 }), // during the kill (2.5..4)
    sample(4, 160, { reset: 3 }),
    sample(10, 400, { reset: 3, timeout: 1 }), // 6 s after the kill ended: still its window
    sample(30, 1200, { reset: 3, timeout: 1 }),
  ];
  const events = [event(0, "node_kill", 2.5, 4)];
  const rows = buildTimeline(samples, events, 12);
  assert.deepEqual(
    rows.map((r) => [r.t, r.completed, r.errors, r.activeFault, r.cause]),
    [
      [1, 40, 0, null, null],
      [2, 40, 0, null, null],
      [3, 40, 2, 0, 0],
      [4, 40, 1, null, 0],
      [10, 240, 1, null, 0],
      [30, 800, 0, null, null],
    ],
  );
  assert.deepEqual(rows[4]!.errorsByKind, { timeout: 1 });
  assert.equal(rows[1]!.rps, 40);
  const s = summarize(rows, events, totals(samples.at(-1)!));
  // A node's death may cost resets, never a hang: the timeout is a violation whatever its cause.
  assert.deepEqual(s.violations, [
    "1 requests timed out (a request may end in an error only by a clean reset or close, never by hanging)",
  ]);
  assert.deepEqual(s.byCause, [
    {
      cause: "node_kill",
      errors: 4,
      errorsByKind: { reset: 3, timeout: 1 },
      verifyFailures: 0,
      verifyFailuresByKind: {},
      allowed: true,
    },
  ]);
  assert.deepEqual(s.faultsByKind, { node_kill: 1 });
  assert.deepEqual(s.faultsWithoutErrorsByKind, {});
});

test("a timeout is laid where its request was sent, not where it expired (the hour run's case)", () => {
  // node2 killed at 3278.4 and back at 3286.4; a loss burst on node3 3299.7..3305.9; a 30 s
  // timeout expired at 3309.1: its request left at 3279.1, 0.7 s after the kill.
  const samples = [
    sample(3278, 1000),
    sample(3309.1, 1900, { timeout: 1 }),
    sample(3310, 1930, { timeout: 1 }),
  ];
  const kill = event(173, "node_kill", 3278.4, 3286.4, "node2");
  const loss = event(174, "link_loss", 3299.7, 3305.9, "node3");
  const rows = buildTimeline(samples, [kill, loss], 32, 30);
  assert.equal(rows[1]!.cause, 173);
  // Without the request timeout the row is laid at the latest fault in reach: the loss burst.
  assert.equal(buildTimeline(samples, [kill, loss], 32)[1]!.cause, 174);
  const s = summarize(
    rows,
    [kill, loss],
    totals(samples.at(-1)!),
    [{ kind: "timeout", sentS: 3279.1, failedS: 3309.1 }],
    32,
  );
  assert.deepEqual(
    s.perFault.map((p) => [p.index, p.errors]),
    [
      [173, 1],
      [174, 0],
    ],
  );
  assert.deepEqual(
    s.errorSamples.map((x) => [x.sentS, x.cause, x.causeKind]),
    [[3279.1, 173, "node_kill"]],
  );
  assert.equal(s.violations.length, 1);
  assert.match(s.violations[0]!, /1 requests timed out/);
});

test("errors during faults that may cost none, outside every window, and any wrong byte are violations", () => {
  const samples = [
    sample(1, 40),
    sample(2, 80, { reset: 1 }), // dispatcher restart
    sample(3, 120, { reset: 1 }),
    sample(29, 380, { reset: 1 }),
    sample(30, 400, { reset: 2 }), // no fault in reach
    sample(31, 440, { reset: 2 }, { sha256: 1 }), // wrong bytes during the node stop
  ];
  const events = [event(0, "dispatcher_restart", 1.5, 2.5, "dispatcher"), event(1, "node_stop", 30.5, 33)];
  const rows = buildTimeline(samples, events, 12);
  const s = summarize(rows, events, totals(samples.at(-1)!));
  assert.equal(s.violations.length, 3);
  assert.match(s.violations[0]!, /1 verification failures/);
  assert.match(s.violations[1]!, /1 errors during dispatcher_restart/);
  assert.match(s.violations[2]!, /1 errors with no fault in reach/);
  assert.deepEqual(
    s.perFault.map((p) => [p.kind, p.errors, p.verifyFailures]),
    [
      ["dispatcher_restart", 1, 0],
      ["node_stop", 0, 1],
    ],
  );
  assert.deepEqual(s.faultsWithoutErrorsByKind, {});
});

test("a fault that cost nothing is counted as such; one that could not be undone is a violation", () => {
  const samples = [sample(1, 40), sample(20, 800)];
  const ok = event(0, "origin_stop", 5, 8, "origin");
  const broken: FaultEvent = { ...event(1, "node_kill", 10, 12), failure: "node2 never became ready" };
  const rows = buildTimeline(samples, [ok, broken], 12);
  const s = summarize(rows, [ok, broken], totals(samples.at(-1)!));
  assert.deepEqual(s.faultsWithoutErrorsByKind, { origin_stop: 1, node_kill: 1 });
  assert.deepEqual(s.violations, ["#1 node_kill node2: node2 never became ready"]);
});

test("errors finished after the last sample have no time and so no allowed cause", () => {
  const samples = [sample(1, 40)];
  const rows = buildTimeline(samples, [], 12);
  const s = summarize(rows, [], {
    requests: 41,
    ok: 40,
    errors: 1,
    errorsByKind: { reset: 1 },
    verifyFailures: 0,
    verifyFailuresByKind: {},
  });
  assert.equal(s.byCause[0]!.cause, "none");
  assert.equal(s.violations.length, 1);
});

test("the text timeline marks faults in the rows they begin and end in; the SVG has a band per fault", () => {
  const samples = [sample(1, 40), sample(2, 80, { reset: 1 }), sample(3, 120, { reset: 1 })];
  const events = [event(0, "node_kill", 1.2, 2.6)];
  const rows = buildTimeline(samples, events, 12);
  const text = formatTimeline(rows, events).split("\n");
  assert.match(text[2]!, /^ +2\.0 +39 .* 1 reset=1 .*#0 node_kill node2 1\.4 s begins$/);
  assert.match(text[3]!, /#0 ends: node_kill done$/);
  const svg = renderTimelineSvg(rows, events, "test run");
  assert.equal((svg.match(/fill-opacity="0.25"/g) ?? []).length, 1);
  assert.match(svg, /test run/);
  assert.match(svg, /responses\/s/);
});

test("a purge (instant) owns the errors of its window, none allowed; a purge not every member did is a violation", () => {
  const samples = [sample(1, 40), sample(2, 80), sample(3, 120, { reset: 1 }), sample(30, 1000)];
  const purge = event(0, "purge", 1.8, 1.8);
  const failed: FaultEvent = { ...event(1, "purge", 20, 20.1, "node1"), failure: "502 node3 did not purge" };
  const rows = buildTimeline(samples, [purge, failed], 12);
  const s = summarize(rows, [purge, failed], totals(samples.at(-1)!));
  assert.deepEqual(
    s.perFault.map((p) => [p.kind, p.errors]),
    [
      ["purge", 1],
      ["purge", 0],
    ],
  );
  assert.deepEqual(s.violations, [
    `1 errors during purge faults, which may cost none: {"reset":1}`,
    "#1 purge node1: 502 node3 did not purge",
  ]);
});
