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
import type { MicroResult, SweepResult, TraceResult } from "./analysis.js";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { detectCpuCgroup } from "./host-cpu.js";

// At most 8 characters, so the runner's "<letter>-" keeps every prefix within 12.
const PREFIX = `sct${process.pid.toString(36)}`.slice(0, 8);

async function cleanup(letters: string): Promise<void> {
  // The runner stops its clusters itself; this only matters if it was killed.
  for (const l of letters) await destroyCluster(`${PREFIX}${l}-`).catch(() => {});
}

async function bench(
  kind: "micro" | "trace" | "sweep",
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
    // Equal hosts by default: the front-end and the origin at the nodes' rate, the client unshaped.
    assert.deepEqual(
      [res.params.rate, res.params.frontend_rate, res.params.origin_rate, res.params.client_rate],
      ["100mbit", "100mbit", "100mbit", "unshaped"],
    );
    // The one-way clone latency (the paper's measure) per size, loaded and idle, beside the paper's.
    assert.equal(res.clone_latency.paper_one_way_us, 46);
    for (const size of res.params.sizes as number[])
      for (const load of ["figure8", "idle"])
        assert.ok(
          res.clone_latency.one_way!.some((x) => x.size === size && x.load === load && x.samples > 0),
          `one-way ${load} ${size}`,
        );
    const md = await readFile(join(out, "micro.md"), "utf8");
    assert.match(md, /Normalized efficiency/);
    assert.match(
      md,
      /_Links: equal hosts as in the paper's testbed: .* at 100 Mbit\/s, the client unshaped\./,
    );
    assert.match(md, /beside the paper's 46 us/);
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
    assert.equal(res.params.frontend_rate, res.params.rate, "equal hosts by default");
    const md = await readFile(join(out, "trace.md"), "utf8");
    assert.match(md, /Throughput, requests\/s/);
    assert.match(
      md,
      /_Links: equal hosts as in the paper's testbed: .* at 10 Mbit\/s, the client unshaped\./,
    );
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

/** A small Common Log Format trace: 40 documents of 300 B-30 KB, 304s, a 404, an HTTP/0.9 line. */
function clfTrace(lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const d = (i * 7) % 40;
    const t = `[01/Aug/1995:00:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")} -0400]`;
    if (i % 50 === 7) out.push(`h${i} - - ${t} "GET /missing/x${i}.html HTTP/1.0" 404 -`);
    else if (i % 50 === 9) out.push(`h${i} - - ${t} "GET /d/doc${d}.html" 200 ${300 + d * 750}`);
    else if (i % 10 === 3) out.push(`h${i} - - ${t} "GET /d/doc${d}.html HTTP/1.0" 304 0`);
    else out.push(`h${i} - - ${t} "GET /d/doc${d}.html HTTP/1.0" 200 ${300 + d * 750}`);
  }
  return out.join("\n") + "\n";
}

test("bench sweep --quick with a CLF trace and --host-cpu: every step and mode verified, each host's processes in its group", async () => {
  const out = await mkdtemp(join(tmpdir(), "sc-bench-test-"));
  try {
    const trace = join(out, "access.log");
    await writeFile(trace, clfTrace(400));
    const r = await bench("sweep", out, ["--modes", "sc,nginx", "--trace", trace, "--host-cpu", "0.5"]);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const res = JSON.parse(await readFile(join(out, "sweep.json"), "utf8")) as SweepResult;
    assert.equal(res.failed_runs, 0);
    // The site was built from the log, sizes from its 200 GETs: 36 of the 40 documents (4 are
    // only ever logged as 304, so nothing gives their size).
    const w = res.params.workload as Record<string, unknown>;
    assert.equal(w.files, 36);
    assert.equal(w.trace_name, "access.log");
    assert.deepEqual(
      res.steps.map((s) => [s.ratio, s.frontend_rate]),
      [
        [1, "10mbit"],
        ["unshaped", "unshaped"],
      ],
    );
    for (const step of res.steps)
      for (const m of ["sc", "nginx"]) {
        const p = step.points.find((x) => x.mode === m)!;
        assert.equal(p.failed, false, `${m} ${step.ratio}`);
        assert.ok(p.rps > 0);
        const run = res.runs.find((x) => x.mode === m && x.frontend_ratio === step.ratio)!;
        assert.ok(run.responses > 0 && run.verify_failures === 0 && run.errors === 0);
        assert.deepEqual(Object.keys(run.host_cpu_throttled!).sort(), [
          "dispatcher",
          "node1",
          "node2",
          "origin",
        ]);
      }
    // Every contender's server-side processes were in their host's group, with the quota set.
    const hc = res.params.host_cpu as {
      quota_us: number;
      contenders: {
        contender: string;
        groups: { host: string; quota_us: number; pids: number[]; expected_pids: number[] }[];
      }[];
    };
    assert.equal(hc.quota_us, 50_000);
    assert.equal(hc.contenders.length, 4);
    for (const c of hc.contenders) {
      assert.deepEqual(c.groups.map((g) => g.host).sort(), ["dispatcher", "node1", "node2", "origin"]);
      for (const g of c.groups) {
        assert.equal(g.quota_us, 50_000, `${c.contender} ${g.host}`);
        for (const pid of g.expected_pids)
          assert.ok(g.pids.includes(pid), `${c.contender} ${g.host}: ${pid}`);
      }
      // nginx's master and workers joined the dispatcher's host.
      if (c.contender.startsWith("nginx"))
        assert.ok(c.groups.find((g) => g.host === "dispatcher")!.pids.length >= 3, c.contender);
    }
    const md = await readFile(join(out, "sweep.md"), "utf8");
    assert.match(md, /\| 1x \(10mbit\) \| \d+ \(/);
    assert.match(md, /limited to 0\.5 of a core/);
    assert.match(await readFile(join(out, "sweep.svg"), "utf8"), /unshaped/);
    assert.equal(existsSync(`${detectCpuCgroup().mount}/sc-bench-${PREFIX}s-`), false, "cgroups left");
  } finally {
    await cleanup("sn");
    await rm(out, { recursive: true, force: true });
  }
});

test("bench trace --host-cpu: Ctrl-C while a cluster runs stops everything and removes its cgroups", async () => {
  const out = await mkdtemp(join(tmpdir(), "sc-bench-test-"));
  const base = `${detectCpuCgroup().mount}/sc-bench-${PREFIX}s-`;
  const child = spawn(
    process.execPath,
    [CLI_BIN, "bench", "trace", "--quick", "--modes", "sc", "--host-cpu", "0.5", "--duration", "60"].concat([
      "--prefix",
      PREFIX,
      "--out",
      out,
    ]),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  child.stderr.setEncoding("utf8");
  let stderr = "";
  // Resolves when the runner says the cluster is up with its budgets (bounded: 5 minutes).
  const up = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no cluster came up:\n${stderr.slice(-2000)}`)), 300_000);
    child.stderr.on("data", (d: string) => {
      stderr += d;
      if (/sc-2: up .*host CPU budgets/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`bench exited early:\n${stderr.slice(-2000)}`));
    });
  });
  try {
    await up;
    assert.ok(existsSync(`${base}/node1`), "the groups exist while the cluster runs");
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.notEqual(code, 0);
    assert.match(stderr, /interrupted/);
    assert.equal(existsSync(base), false, "cgroups left");
    assert.deepEqual(
      (await listNetns()).filter((n) => n.startsWith(PREFIX)),
      [],
      "namespaces left",
    );
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await cleanup("s");
    await rm(out, { recursive: true, force: true });
  }
});
