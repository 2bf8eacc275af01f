import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ReplayResult } from "../../loadgen/index.js";
import { CLI_BIN } from "../processes.js";
import { loadgenArgs, runReplayFrom, summarise, type ReplaySettings, type Spawner } from "./replay.js";

const settings: ReplaySettings = {
  trace: "/d/trace.log",
  manifest: "/d/manifest.jsonl",
  target: "http://198.18.100.1",
  requests: 3000,
  durationS: 5,
  conns: 8,
};

function result(over: Partial<ReplayResult> = {}): ReplayResult {
  return {
    requests: 100,
    ok: 100,
    errors: 0,
    errors_by_kind: {},
    verify_failures: 0,
    verify_failures_by_kind: {},
    verify_failure_samples: [],
    elapsed_s: 1.5,
    rps: 66.7,
    mbps: 12.5,
    stopped_by: "requests",
    latency_ms: { p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1.2 },
    ...over,
  } as ReplayResult;
}

/** Runs `node -e script` instead of the loadgen, recording what would have run where. */
function fakeSpawner(script: string, seen: { host?: string; args?: string[] } = {}): Spawner {
  return {
    spawn(host, _cmd, args, options) {
      seen.host = host;
      seen.args = args;
      return spawn(process.execPath, ["-e", script], options);
    },
  };
}

test("the loadgen runs bounded in requests and seconds, verified, keep-alive, JSON on stdout", () => {
  assert.deepEqual(loadgenArgs(settings), [
    "loadgen",
    "--trace",
    "/d/trace.log",
    "--target",
    "http://198.18.100.1",
    "--verify",
    "/d/manifest.jsonl",
    "--requests",
    "3000",
    "--duration",
    "5",
    "--conns",
    "8",
    "--keepalive",
    "--json",
    "-",
  ]);
});

test("summarise: ok only with exit 0, no verification failure, no error, at least one request", () => {
  assert.equal(summarise(result(), 0).ok, true);
  assert.equal(summarise(result({ verify_failures: 1 }), 1).ok, false);
  assert.equal(summarise(result({ verify_failures: 1 }), 0).ok, false);
  assert.equal(summarise(result({ errors: 2, errors_by_kind: { reset: 2 } }), 3).ok, false);
  assert.equal(summarise(result({ requests: 0, ok: 0 }), 0).ok, false);
  assert.equal(summarise(result(), 3).ok, false);
  const s = summarise(result({ verify_failure_samples: [1, 2, 3, 4, 5] as never[] }), 1);
  assert.equal(s.failureSamples.length, 3);
  assert.deepEqual(s.latencyMs, { p50: 1, p99: 3 });
});

test("runReplayFrom runs the CLI's loadgen in the given host and reads its JSON result", async () => {
  const seen: { host?: string; args?: string[] } = {};
  const json = JSON.stringify(result({ requests: 42, ok: 42 }));
  const out = await runReplayFrom(
    fakeSpawner(`process.stdout.write(${JSON.stringify(json)})`, seen),
    "client",
    settings,
  );
  assert.equal(seen.host, "client");
  assert.deepEqual(seen.args, [CLI_BIN, ...loadgenArgs(settings)]);
  assert.equal(out.ok, true);
  assert.equal(out.requests, 42);
  assert.equal(out.problem, null);
});

test("a loadgen that fails without a result is reported with its last words, not thrown", async () => {
  const out = await runReplayFrom(
    fakeSpawner(`console.error("loadgen: cannot read trace /d/trace.log"); process.exit(2)`),
    "client",
    settings,
  );
  assert.equal(out.ok, false);
  assert.match(out.problem!, /code 2/);
  assert.match(out.problem!, /cannot read trace/);
});

test("aborting the replay kills the loadgen", async () => {
  const ac = new AbortController();
  const running = runReplayFrom(fakeSpawner("setInterval(() => {}, 1000)"), "client", settings, ac.signal);
  ac.abort();
  const out = await running;
  assert.equal(out.ok, false);
  assert.match(out.problem!, /SIGKILL/);
});
