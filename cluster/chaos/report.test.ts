import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addUntimedErrors,
  attributeErrorSamples,
  buildTimeline,
  countFaults,
  faultFailuresOf,
  findViolations,
  formatTimeline,
  renderTimelineSvg,
  summarize,
  tallyByCause,
  type CauseTotals,
  type FaultEvent,
  type ReplaySample,
  type TimelineRow,
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

function row(
  t: number,
  cause: number | null,
  errors: Record<string, number>,
  verify: Record<string, number> = {},
): TimelineRow {
  const e = Object.values(errors).reduce((a, b) => a + b, 0);
  const v = Object.values(verify).reduce((a, b) => a + b, 0);
  return {
    t,
    completed: 10,
    ok: 10 - e - v,
    errors: e,
    verifyFailures: v,
    mbps: 1,
    rps: 10,
    errorsByKind: errors,
    verifyFailuresByKind: verify,
    activeFault: null,
    cause,
  };
}

test("tallyByCause: rows add up by the kind of their fault (none when unplaced) and per fault; clean rows count nowhere", () => {
  const events = [
    event(0, "node_kill", 1, 2),
    event(1, "node_kill", 5, 6, "node3"),
    event(2, "link_loss", 9, 10),
  ];
  const rows = [
    row(1, 0, { reset: 2 }),
    row(2, null, {}),
    row(5, 1, { reset: 1, closed: 1 }, { sha256: 1 }),
    row(9, 2, { timeout: 1 }),
    row(20, null, { reset: 3 }),
    row(21, 7, { reset: 1 }), // a cause no event has: none
  ];
  const { causes, perFault } = tallyByCause(rows, events);
  assert.deepEqual([...causes.keys()], ["node_kill", "link_loss", "none"]);
  assert.deepEqual(causes.get("node_kill"), {
    cause: "node_kill",
    errors: 4,
    errorsByKind: { reset: 3, closed: 1 },
    verifyFailures: 1,
    verifyFailuresByKind: { sha256: 1 },
    allowed: true,
  });
  assert.equal(causes.get("link_loss")!.allowed, false);
  assert.equal(causes.get("none")!.errors, 4);
  assert.equal(causes.get("none")!.allowed, false);
  assert.deepEqual(
    [...perFault],
    [
      [0, { errors: 2, verifyFailures: 0 }],
      [1, { errors: 2, verifyFailures: 1 }],
      [2, { errors: 1, verifyFailures: 0 }],
    ],
  );
});

test("addUntimedErrors: only what the rows did not see goes to none, which is created when missing", () => {
  const rows = [row(1, null, { reset: 2 })];
  const none = new Map<CauseTotals["cause"], CauseTotals>();
  addUntimedErrors(none, rows, { errors: 2, verifyFailures: 0 });
  assert.equal(none.size, 0, "everything was seen");
  addUntimedErrors(none, rows, { errors: 5, verifyFailures: 1 });
  assert.deepEqual(
    [none.get("none")!.errors, none.get("none")!.verifyFailures, none.get("none")!.allowed],
    [3, 1, false],
  );
  addUntimedErrors(none, rows, { errors: 3, verifyFailures: 0 });
  assert.equal(none.get("none")!.errors, 4, "added to the existing entry");
});

test("countFaults: every event by kind; clean ones are those without errors or failures", () => {
  const events = [event(0, "node_kill", 1, 2), event(1, "node_kill", 5, 6), event(2, "purge", 9, 9)];
  const perFault = new Map([
    [0, { errors: 1, verifyFailures: 0 }],
    [2, { errors: 0, verifyFailures: 0 }],
  ]);
  assert.deepEqual(countFaults(events, perFault), {
    byKind: { node_kill: 2, purge: 1 },
    withoutErrorsByKind: { node_kill: 1, purge: 1 },
  });
  assert.deepEqual(countFaults([], perFault), { byKind: {}, withoutErrorsByKind: {} });
});

test("findViolations: wrong bytes, errors not allowed, timeouts, then failed faults, in that order", () => {
  const cause = (c: CauseTotals["cause"], errors: number, allowed: boolean): CauseTotals => ({
    cause: c,
    errors,
    errorsByKind: { reset: errors },
    verifyFailures: 0,
    verifyFailuresByKind: {},
    allowed,
  });
  const v = findViolations(
    { errorsByKind: { reset: 9, timeout: 2 }, verifyFailures: 1, verifyFailuresByKind: { length: 1 } },
    [
      cause("node_kill", 5, true),
      cause("node_stop", 3, false),
      cause("none", 1, false),
      cause("purge", 0, false),
    ],
    ["#4 purge node1: not every member purged"],
  );
  assert.deepEqual(v, [
    '1 verification failures (wrong status, length or bytes): {"length":1}',
    '3 errors during node_stop faults, which may cost none: {"reset":3}',
    '1 errors with no fault in reach: {"reset":1}',
    "2 requests timed out (a request may end in an error only by a clean reset or close, never by hanging)",
    "#4 purge node1: not every member purged",
  ]);
  assert.deepEqual(
    findViolations({ errorsByKind: {}, verifyFailures: 0, verifyFailuresByKind: {} }, [], []),
    [],
  );
});

test("faultFailuresOf and attributeErrorSamples: failures named by fault; samples laid where they were sent", () => {
  const events: FaultEvent[] = [
    { ...event(0, "node_kill", 10, 12), failure: "never ready" },
    event(1, "node_stop", 40, 45, "node1"),
  ];
  assert.deepEqual(faultFailuresOf(events), ["#0 node_kill node2: never ready"]);
  const samples = [
    { kind: "reset", sentS: 11, failedS: 11.2 },
    { kind: "timeout", sentS: 23, failedS: 53 }, // 11 s after node_kill ended: still its
    { kind: "reset", sentS: 30, failedS: 30.1 },
    { kind: "closed", sentS: 41, failedS: 41 },
  ];
  assert.deepEqual(
    attributeErrorSamples(samples, events, 12).map((x) => [x.kind, x.cause, x.causeKind]),
    [
      ["reset", 0, "node_kill"],
      ["timeout", 0, "node_kill"],
      ["reset", null, "none"],
      ["closed", 1, "node_stop"],
    ],
  );
});
