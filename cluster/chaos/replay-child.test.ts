// The replay child as the runner sees it, with a real process that prints what replay-main.ts
// prints: progress lines, then a result (or an error line), with noise in between.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { parseReplayLine, ReplayChild, sampleOf } from "./replay-child.js";
import type { ReplayChildLine } from "./replay-main.js";
import type { ReplaySample } from "./report.js";

const progress = (elapsedS: number, requests: number): Extract<ReplayChildLine, { type: "progress" }> => ({
  type: "progress",
  epochMs: 1_000_000 + elapsedS * 1000,
  elapsedS,
  requests,
  ok: requests - 1,
  errors: 1,
  verifyFailures: 0,
  bytes: requests * 10,
  errorsByKind: { reset: 1 },
  verifyFailuresByKind: {},
});

/** A child that prints these lines (and some stderr), then exits with `code`. */
function child(lines: string[], code = 0) {
  const script =
    `for (const l of ${JSON.stringify(lines)}) process.stdout.write(l + "\\n");` +
    `process.stderr.write("  said on stderr \\n"); process.exitCode = ${code};`;
  return spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
}

test("parseReplayLine and sampleOf: JSON lines parsed, anything else skipped; a sample is the running totals", () => {
  assert.equal(parseReplayLine("not json"), undefined);
  assert.deepEqual(parseReplayLine('{"type":"error","message":"x"}'), { type: "error", message: "x" });
  const p = progress(2, 30);
  const s: ReplaySample = sampleOf(p);
  assert.deepEqual(s, {
    elapsedS: 2,
    requests: 30,
    ok: 29,
    errors: 1,
    verifyFailures: 0,
    bytes: 300,
    errorsByKind: { reset: 1 },
    verifyFailuresByKind: {},
  });
  assert.ok(!("epochMs" in s) && !("type" in s));
});

test("a replay child: started by its first progress line, every sample kept and handed on, its result, its end", async () => {
  const result = { requests: 50, ok: 49 };
  const seen: number[] = [];
  const r = new ReplayChild(
    child([
      "warming up",
      JSON.stringify(progress(1, 20)),
      JSON.stringify(progress(2, 50)),
      JSON.stringify({ type: "result", result }),
    ]),
    (samples) => seen.push(samples.length),
  );
  await r.started;
  // The start on the wall clock: the first line's time less its elapsed seconds.
  assert.equal(r.startEpoch, 1_000_000);
  await r.exited;
  await r.linesDone;
  assert.equal(r.ended, true);
  assert.equal(r.running, false);
  assert.deepEqual(
    r.samples.map((s) => [s.elapsedS, s.requests]),
    [
      [1, 20],
      [2, 50],
    ],
  );
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual(r.result, result);
  assert.equal(r.error, null);
  assert.equal(r.stderrText, "said on stderr");
});

test("a replay child that fails: its error line, no start, no result", async () => {
  const r = new ReplayChild(child([JSON.stringify({ type: "error", message: "no trace" })], 1), () => {
    throw new Error("no sample expected");
  });
  await r.exited;
  await r.linesDone;
  assert.equal(r.startEpoch, undefined);
  assert.equal(r.error, "no trace");
  assert.equal(r.result, null);
  assert.equal(r.proc.exitCode, 1);
});
