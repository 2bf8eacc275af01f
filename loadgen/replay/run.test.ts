// The replay's pure phases: the options checked, the run planned, the workers' inits, their
// progress and reports summed, and the open loop's verdict.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_MAX_BACKLOG,
  DEFAULT_TIME_CAP_S,
  openLoopResult,
  planReplayRun,
  replaySettings,
  replayStoppedBy,
  replayWorkerInits,
  ReplayError,
  sumOpen,
  sumProgress,
  topClasses,
  type ReplayOptions,
} from "./run.js";
import type { ReplayPlan, RequestClass } from "./plan.js";
import { Timings } from "./timings.js";
import type { OpenLoopSnapshot } from "./worker.js";

const TARGET = "http://127.0.0.1:8080";

function cls(path: string): RequestClass {
  return {
    method: "GET",
    path,
    kind: "get",
    expect: { status: 200, allow304: false, size: null, sha256: null },
  };
}

/** A plan of the given class per entry, in memory (no trace stats). */
function plan(entries: number[], extra: Partial<ReplayPlan> = {}): ReplayPlan {
  const classes = Array.from({ length: Math.max(0, ...entries.map((e) => e + 1)) }, (_, i) => cls(`/p${i}`));
  return {
    classes,
    entries: Uint32Array.from(entries),
    offsetsS: null,
    outOfOrder: 0,
    skipped: 0,
    skippedByReason: {},
    trace: null,
    manifest: null,
    ...extra,
  };
}

const settings = (o: Partial<ReplayOptions> = {}) => replaySettings({ target: TARGET, ...o });

test("replaySettings: defaults, the target split into origin and path prefix, the closed loop", () => {
  const s = settings({ target: "http://127.0.0.1:8080/base//" });
  assert.deepEqual(s, {
    clients: 1,
    conns: 1,
    pipeline: 1,
    keepalive: false,
    timeoutMs: 10_000,
    query: "skip",
    pacing: { kind: "closed" },
    origin: "http://127.0.0.1:8080",
    pathPrefix: "/base",
    tls: null,
  });
  assert.deepEqual(settings({ target: "https://198.18.100.1", ca: "PEM" }).tls, { ca: "PEM" });
  assert.deepEqual(settings({ target: "https://198.18.100.1" }).tls, {}, "the system's CAs");
});

test("replaySettings: a rate gives a constant or seeded Poisson schedule with the default backlog bound", () => {
  assert.deepEqual(settings({ rate: 50 }).pacing, {
    kind: "rate",
    schedule: { kind: "constant", rate: 50 },
    maxBacklog: DEFAULT_MAX_BACKLOG,
  });
  assert.deepEqual(settings({ rate: 50, schedule: "poisson" }).pacing, {
    kind: "rate",
    schedule: { kind: "poisson", rate: 50, seed: 1 },
    maxBacklog: DEFAULT_MAX_BACKLOG,
  });
  assert.deepEqual(settings({ speed: 2, maxBacklog: 7 }).pacing, { kind: "trace", speed: 2, maxBacklog: 7 });
});

test("replaySettings: refuses bad options with the message that names the option", () => {
  const refuses = (o: Partial<ReplayOptions>, message: RegExp) =>
    assert.throws(
      () => settings(o),
      (e: unknown) => e instanceof ReplayError && message.test(e.message),
    );
  refuses({ clients: 0 }, /^clients must be a whole number >= 1, got 0$/);
  refuses({ pipeline: 2 }, /pipelining needs keep-alive/);
  refuses({ durationS: 0 }, /^duration must be > 0 seconds, got 0$/);
  refuses({ rate: 5, speed: 1 }, /either a rate or a speed/);
  refuses({ seed: 3 }, /a schedule or seed needs a rate/);
  refuses({ maxBacklog: 10 }, /a backlog bound needs a rate or a speed/);
  refuses({ rate: 5, maxBacklog: 0 }, /^max backlog must be a whole number >= 1, got 0$/);
  refuses({ target: "ftp://x" }, /only http:\/\/ and https:\/\/ are supported/);
  refuses({ target: "http://x", ca: "PEM" }, /a CA \(--ca\) is for an https:\/\/ target/);
  // The options are checked in order: the first bad one is reported.
  refuses({ clients: 0, target: "nonsense" }, /^clients/);
});

test("planReplayRun: with no count or duration, one pass over the trace under the time cap, with a note", () => {
  const run = planReplayRun(settings(), plan([0, 1, 0]), {});
  assert.equal(run.open, null);
  assert.equal(run.limit, 3);
  assert.equal(run.durationS, null);
  assert.equal(run.timeCapS, DEFAULT_TIME_CAP_S);
  assert.equal(run.deadlineS, DEFAULT_TIME_CAP_S);
  assert.deepEqual(run.trackedUrls, [0, 1]);
  assert.equal(run.notes.length, 1);
  assert.match(run.notes[0]!, /one pass over the trace \(3 requests\)/);
});

test("planReplayRun: a closed loop bounded by a count has no deadline; an open loop always has one", () => {
  const closed = planReplayRun(settings(), plan([0]), { requests: 10 });
  assert.deepEqual([closed.limit, closed.timeCapS, closed.deadlineS, closed.notes], [10, null, null, []]);
  const open = planReplayRun(settings({ rate: 100 }), plan([0]), { requests: 10 });
  assert.deepEqual([open.limit, open.timeCapS, open.deadlineS], [10, DEFAULT_TIME_CAP_S, DEFAULT_TIME_CAP_S]);
  // Bounded by the duration alone, the open loop's schedule is cut there, not by a count.
  const timed = planReplayRun(settings({ rate: 100 }), plan([0]), { durationS: 5 });
  assert.deepEqual([timed.limit, timed.timeCapS, timed.deadlineS], [Number.MAX_SAFE_INTEGER, null, 5]);
  assert.deepEqual(timed.open, {
    schedule: { kind: "constant", rate: 100 },
    maxBacklog: DEFAULT_MAX_BACKLOG,
  });
});

test("planReplayRun: --speed follows the plan's offsets, notes records out of order, and needs timestamps", () => {
  const offsetsS = Uint32Array.from([0, 0, 4]);
  const run = planReplayRun(settings({ speed: 2 }), plan([0, 1, 0], { offsetsS, outOfOrder: 1 }), {
    requests: 3,
  });
  assert.deepEqual(run.open, {
    schedule: { kind: "trace", offsetsS, speed: 2 },
    maxBacklog: DEFAULT_MAX_BACKLOG,
  });
  assert.deepEqual(run.notes, ["1 records were logged earlier than the one before them; sent with it"]);
  assert.throws(
    () => planReplayRun(settings({ speed: 2 }), plan([0]), {}),
    (e: unknown) => e instanceof ReplayError && /--speed needs timestamps/.test(e.message),
  );
});

test("planReplayRun: refuses a plan with nothing to replay", () => {
  assert.throws(
    () => planReplayRun(settings(), plan([], { skipped: 2, skippedByReason: { cgi: 2 } }), {}),
    (e: unknown) =>
      e instanceof ReplayError &&
      e.message === 'nothing to replay: no trace line is replayable (2 skipped: {"cgi":2})',
  );
});

test("replayWorkerInits: connection slots dealt round-robin, the backlog bound shared, the entries shared", () => {
  const s = settings({ clients: 3, conns: 2, rate: 10, maxBacklog: 10 });
  const p = plan([2, 0, 1, 2]);
  const run = planReplayRun(s, p, { requests: 4 });
  const inits = replayWorkerInits(s, p, run, 100);
  assert.deepEqual(
    inits.map((i) => i.slots),
    [
      [0, 3],
      [1, 4],
      [2, 5],
    ],
  );
  for (const [w, init] of inits.entries()) {
    assert.equal(init.totalSlots, 6);
    assert.deepEqual(init.pacing, {
      kind: "open",
      schedule: { kind: "constant", rate: 10 },
      worker: w,
      workers: 3,
      queueCapacity: 4,
    });
    assert.deepEqual([...new Uint32Array(init.entries, 0, init.entryCount)], [2, 0, 1, 2]);
    assert.equal(init.progressIntervalMs, 100);
    assert.deepEqual(init.trackedUrls, [2, 0, 1]);
  }
  assert.equal(inits[0]!.entries, inits[2]!.entries);
  const closed = replayWorkerInits(settings(), p, planReplayRun(settings(), p, {}), 250);
  assert.deepEqual(closed[0]!.pacing, { kind: "closed" });
  assert.equal(closed[0]!.limit, 4);
});

test("topClasses: the most frequent classes first, ties by class number, unused ones left out", () => {
  const p = plan([3, 1, 3, 0, 1, 3]);
  assert.deepEqual(topClasses(p, 10), [3, 1, 0]);
  assert.deepEqual(topClasses(p, 2), [3, 1]);
});

test("sumProgress adds counts and kinds; sumOpen adds counts and keeps the latest times", () => {
  assert.deepEqual(
    sumProgress([
      { requests: 3, ok: 2, errors: 1, verifyFailures: 0, bytes: 10, errorsByKind: { reset: 1 } },
      { requests: 2, ok: 1, errors: 1, verifyFailures: 0, bytes: 5, errorsByKind: { reset: 1, timeout: 0 } },
      { requests: 1, ok: 0, errors: 0, verifyFailures: 1, bytes: 1, verifyFailuresByKind: { length: 1 } },
    ]),
    {
      requests: 6,
      ok: 3,
      errors: 2,
      verifyFailures: 1,
      bytes: 16,
      errorsByKind: { reset: 2, timeout: 0 },
      verifyFailuresByKind: { length: 1 },
    },
  );
  const snap = (n: number): OpenLoopSnapshot => ({
    due: n,
    dropped: n,
    maxBacklog: n,
    sent: n,
    backlog: n,
    lastIntendedMs: 10 * n,
    lastSentMs: 100 - n,
  });
  assert.equal(sumOpen([null, null]), null);
  assert.deepEqual(sumOpen([snap(1), null, snap(2)]), {
    due: 3,
    dropped: 3,
    maxBacklog: 3,
    sent: 3,
    backlog: 3,
    lastIntendedMs: 20,
    lastSentMs: 99,
  });
});

test("replayStoppedBy: the abort first, then the deadline (duration or time cap), else the count", () => {
  const byDuration = planReplayRun(settings({ rate: 1 }), plan([0]), { durationS: 1 });
  const byCap = planReplayRun(settings(), plan([0]), {});
  assert.equal(replayStoppedBy({ stopped: true, hitDeadline: true }, byDuration), "interrupted");
  assert.equal(replayStoppedBy({ stopped: false, hitDeadline: true }, byDuration), "duration");
  assert.equal(replayStoppedBy({ stopped: false, hitDeadline: true }, byCap), "time_cap");
  assert.equal(replayStoppedBy({ stopped: false, hitDeadline: false }, byCap), "requests");
});

test("openLoopResult: kept up when (nearly) all due requests went out and none were dropped", () => {
  const pacing = settings({ rate: 10, maxBacklog: 5 }).pacing;
  const o: OpenLoopSnapshot = {
    due: 100,
    sent: 100,
    dropped: 0,
    backlog: 0,
    maxBacklog: 3,
    lastIntendedMs: 9_900,
    lastSentMs: 10_900,
  };
  const ok = openLoopResult(o, pacing, new Timings());
  assert.equal(ok.note, null);
  assert.equal(ok.result.kept_up, true);
  assert.equal(ok.result.intended_rps, 10);
  // 100 requests over the intended 10 s window, stretched to the last send (10.9 s + one gap).
  assert.equal(ok.result.achieved_rps, 9.1);
  const behind = openLoopResult({ ...o, sent: 90, dropped: 4, backlog: 6 }, pacing, new Timings());
  assert.equal(behind.result.kept_up, false);
  assert.match(
    behind.note ?? "",
    /^the target did not keep up: sent 90 of 100 due requests .* 4 dropped \(backlog bound 5\), 6 still waiting/,
  );
  // Paced by the trace, the intended rate is what came due over the intended window.
  const trace = openLoopResult(
    { ...o, lastIntendedMs: 4_999 },
    { kind: "trace", speed: 1, maxBacklog: 5 },
    new Timings(),
  );
  assert.equal(trace.result.intended_rps, 20);
});
