import { test } from "node:test";
import assert from "node:assert/strict";
import { formatProgress, formatResult, type LoadResultView } from "./report.js";

const lat = { p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1.5 };

test("the progress line shows the open loop's send rate against the intended one, backlog and drops", () => {
  const base = {
    elapsedS: 2,
    requests: 100,
    ok: 100,
    errors: 0,
    verifyFailures: 0,
    bytes: 0,
    limit: null,
    durationS: 4,
  };
  assert.doesNotMatch(formatProgress(base), /backlog/);
  const line = formatProgress({
    ...base,
    open: { intendedRps: 200, due: 400, sent: 120, dropped: 30, backlog: 250 },
  });
  assert.match(line, / 50%/);
  assert.match(line, /sent 60\/200 req\/s {2}backlog 250 {2}dropped 30$/);
  assert.match(
    formatProgress({ ...base, open: { intendedRps: null, due: 4, sent: 4, dropped: 0, backlog: 0 } }),
    /sent 2\/trace req\/s/,
  );
});

test("the result table flags an open loop that did not keep up and shows both latencies and phases", () => {
  const r: LoadResultView = {
    mode: "replay",
    requests: 10,
    ok: 10,
    errors: 0,
    errors_by_kind: {},
    verify_failures: 0,
    verify_failures_by_kind: {},
    skipped: 0,
    bytes: 0,
    elapsed_s: 1,
    rps: 10,
    mbps: 0,
    latency_ms: lat,
    latency_from_intended_ms: { ...lat, p99: 900 },
    phases_ms: { connect: { ...lat, count: 0 }, ttfb: lat, total: lat },
    open_loop: {
      intended_rps: 200,
      achieved_rps: 40,
      due: 400,
      sent: 80,
      dropped: 300,
      backlog_at_end: 20,
      max_backlog: 20,
      kept_up: false,
    },
    by_class: [
      { key: "200 1K-10K", requests: 9, errors: 0, latency_ms: lat },
      { key: "error", requests: 1, errors: 1, latency_ms: lat },
    ],
  };
  const text = formatResult(r);
  assert.match(
    text,
    /open loop +intended 200 req\/s, achieved 40 req\/s: sent 80 of 400 due, dropped 300, .* DID NOT KEEP UP/,
  );
  assert.match(text, /from intended ms +p50 1 +p90 2 +p99 900/);
  assert.match(text, /connect ms +-\n/);
  assert.match(text, /200 1K-10K +9 req +p50 1/);
  assert.match(text, / error +1 req$/);
  const kept = formatResult({ ...r, open_loop: { ...r.open_loop!, kept_up: true } });
  assert.doesNotMatch(kept, /KEEP UP/);
});
