// `sc-cluster bench micro --quick` and `bench trace --quick` as CI runs them: each completes,
// every response of every run is verified with zero failures, each mechanism really ran on
// every request (the runner's own checks), and the results, tables and plots are written.
// No speed is asserted. Needs root; nginx and haproxy are installed from Debian when missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listNetns } from "../../testbed/netns.js";
import { run } from "../../testbed/run.js";
import { CLI_BIN } from "../../cluster/processes.js";
import { destroyCluster } from "../../cluster/index.js";
import { chromiumPath } from "./render.js";
import type { MicroResult, TraceResult } from "./analysis.js";

// At most 8 characters, so the runner's "<letter>-" keeps every prefix within 12.
const PREFIX = `sct${process.pid.toString(36)}`.slice(0, 8);

async function cleanup(letters: string): Promise<void> {
  // The runner stops its clusters itself; this only matters if it was killed.
  for (const l of letters) await destroyCluster(`${PREFIX}${l}-`).catch(() => {});
}

async function bench(
  kind: "micro" | "trace",
  out: string,
  extra: string[] = [],
): Promise<{ code: number | null; stderr: string }> {
  const r = await run(
    [process.execPath, CLI_BIN, "bench", kind, "--quick", "--prefix", PREFIX, "--out", out, ...extra],
    {
      check: false,
      // Six 2-node clusters on a 2-core machine that other work may keep busy.
      timeoutMs: 600_000,
    },
  );
  return { code: r.code, stderr: r.stderr };
}

test("bench micro --quick: every mechanism, every response verified, every request cloned / forwarded", async () => {
  const out = await mkdtemp(join(tmpdir(), "sc-bench-test-"));
  try {
    const r = await bench("micro", out, ["--mechanisms", "sc,sc-local,cf,nginx,haproxy"]);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const res = JSON.parse(await readFile(join(out, "micro.json"), "utf8")) as MicroResult;
    assert.equal(res.failed_runs, 0);
    const mechanisms = ["plain", "sc", "sc-local", "cf", "nginx", "haproxy"] as const;
    assert.deepEqual(res.params.mechanisms, [...mechanisms]);
    for (const size of res.params.sizes as number[])
      for (const m of mechanisms) {
        const runs = res.runs.filter((x) => x.size === size && x.mechanism === m);
        assert.equal(runs.length, 1, `${m} ${size}`);
        for (const x of runs) {
          assert.ok(x.responses > 0, `${m} ${size}: no responses`);
          assert.equal(x.verify_failures, 0);
          assert.equal(x.errors, 0);
          assert.equal(x.failure, null);
          if (m === "sc") assert.equal(x.check.clones_sent, x.responses);
          if (m === "sc-local") assert.equal(x.check.clones_sent, 0);
          if (m === "cf") assert.equal(x.check.peer_fetches, x.responses);
          if (m === "nginx" || m === "haproxy") assert.equal(x.check.node2_requests, x.responses);
        }
        const p = res.points.find((x) => x.size === size && x.mechanism === m)!;
        assert.equal(p.failed, false);
        assert.ok(p.efficiency > 0);
      }
    assert.ok(res.clone_latency.probe !== null && res.clone_latency.probe.samples > 0);
    // Clone latency per size, loaded and idle, from node1's histogram and both nodes' /stats.
    for (const size of res.params.sizes as number[])
      for (const load of ["figure8", "idle"]) {
        const p = res.clone_latency.phases.find((x) => x.size === size && x.load === load);
        assert.ok(p, `no ${load} phase at ${size}`);
        assert.ok(p.histograms.node1!.sc_clone_latency_seconds!.samples > 0, `${load} ${size}`);
        assert.ok(p.stats.node1!.cloneLatencyUs!.samples > 0, `${load} ${size}`);
      }
    const md = await readFile(join(out, "micro.md"), "utf8");
    assert.match(md, /Normalized efficiency/);
    assert.match(md, /Local-serving policy/);
    const svg = await readFile(join(out, "micro.svg"), "utf8");
    assert.match(svg, /Normalized Efficiency/);
    if (chromiumPath()) assert.ok(existsSync(join(out, "micro.png")));
    assert.deepEqual(
      (await listNetns()).filter((n) => n.startsWith(PREFIX)),
      [],
      "namespaces left",
    );
  } finally {
    await cleanup("pslcnh");
    await rm(out, { recursive: true, force: true });
  }
});

test("bench trace --quick: every mode and peer replays the trace with every response verified", async () => {
  const out = await mkdtemp(join(tmpdir(), "sc-bench-test-"));
  try {
    const r = await bench("trace", out);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const res = JSON.parse(await readFile(join(out, "trace.json"), "utf8")) as TraceResult;
    assert.equal(res.failed_runs, 0);
    const modes = ["rr", "cf-lru", "cf-lfu", "sc", "nginx", "haproxy"];
    assert.deepEqual(res.params.modes, modes);
    for (const m of modes) {
      const x = res.runs.find((y) => y.mode === m)!;
      assert.ok(x.responses > 0, `${m}: no responses`);
      assert.equal(x.verify_failures, 0);
      assert.equal(x.errors, 0);
      assert.ok(x.warmup.requests > 0);
      const p = res.points.find((y) => y.mode === m)!;
      assert.equal(p.failed, false);
      assert.ok(p.rps > 0);
    }
    // The mode really ran: SC cloned, CF forwarded.
    assert.ok(res.runs.find((y) => y.mode === "sc")!.nodes_stats.clones_sent! > 0);
    assert.ok(res.runs.find((y) => y.mode === "cf-lru")!.nodes_stats.cf_peer_fetches! > 0);
    assert.match(await readFile(join(out, "trace.md"), "utf8"), /Throughput, requests\/s/);
    assert.match(await readFile(join(out, "trace.svg"), "utf8"), /Number of Nodes/);
    assert.deepEqual(
      (await listNetns()).filter((n) => n.startsWith(PREFIX)),
      [],
      "namespaces left",
    );
  } finally {
    await cleanup("rlfsnh");
    await rm(out, { recursive: true, force: true });
  }
});
