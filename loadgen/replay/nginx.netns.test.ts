// The open loop against a real peer (issue 19's tests): nginx serving a file in its own
// namespace, the load generator in the client's. Well below capacity the achieved rate is
// within 2% of --rate and the two latencies agree; with nginx frozen by SIGSTOP for 1 s
// mid-run, the latency from the intended send time shows the stall and the one from the
// actual send does not (coordinated omission).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_BIN } from "../../cluster/processes.js";
import { destroyTestbed, testPrefix, withTestbed, type Testbed } from "../../testbed/testbed.js";

const P = testPrefix("ol");
const PORT = 8089;

after(async () => {
  await destroyTestbed(P);
});

interface OpenLoopJson {
  ok: number;
  errors: number;
  open_loop: { intended_rps: number; achieved_rps: number; dropped: number; kept_up: boolean };
  latency_ms: { p50: number; p90: number; p99: number };
  latency_from_intended_ms: { p50: number; p90: number; p99: number };
}

async function startNginx(tb: Testbed, dir: string): Promise<number> {
  const conf = join(dir, "nginx.conf");
  await writeFile(
    conf,
    [
      "daemon off;",
      "master_process off;", // one process: SIGSTOP of its PID freezes the server
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")};`,
      "events { worker_connections 64; }",
      "http {",
      "  access_log off;",
      `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};`,
      `  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};`,
      `  server { listen ${tb.host("node1").ip}:${PORT}; root ${join(dir, "www")}; }`,
      "}",
      "",
    ].join("\n"),
  );
  const child = tb.spawn("node1", "nginx", ["-c", conf, "-p", dir], { stdio: "ignore" });
  assert.ok(child.pid !== undefined);
  // Ready when it answers (no event to wait on from another namespace: poll, bounded).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await tb.exec(
      "client",
      "curl",
      ["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://${tb.host("node1").ip}:${PORT}/f.txt`],
      { check: false, timeoutMs: 5000 },
    );
    if (r.stdout === "200") return child.pid;
    assert.ok(Date.now() < deadline, "nginx did not come up");
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function openLoop(tb: Testbed, trace: string, seconds: number): Promise<OpenLoopJson> {
  const target = `http://${tb.host("node1").ip}:${PORT}`;
  const r = await tb.exec(
    "client",
    process.execPath,
    [CLI_BIN, "loadgen", "--trace", trace, "--format", "urls", "--target", target].concat([
      "--rate",
      "200",
      "--duration",
      String(seconds),
      "--conns",
      "4",
      "--keepalive",
      "--json",
      "-",
    ]),
    { check: false, timeoutMs: (seconds + 30) * 1000 },
  );
  assert.ok(
    r.stdout.trim().startsWith("{"),
    `loadgen failed (${r.code}): ${r.stderr} ${r.stdout.slice(0, 300)}`,
  );
  return JSON.parse(r.stdout) as OpenLoopJson;
}

test("open loop against nginx in a namespace: 2% of the rate; a 1 s SIGSTOP shows only in the corrected latency", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sc-openloop-"));
  try {
    await writeFile(join(dir, "trace.txt"), "/f.txt\n");
    await mkdir(join(dir, "www"));
    await writeFile(join(dir, "www", "f.txt"), "hello, open loop\n");
    await withTestbed({ prefix: P, nodes: 1, clients: 1 }, async (tb) => {
      const pid = await startNginx(tb, dir);
      try {
        const calm = await openLoop(tb, join(dir, "trace.txt"), 10);
        const [c, u] = [calm.latency_from_intended_ms, calm.latency_ms];
        t.diagnostic(
          `calm: achieved ${calm.open_loop.achieved_rps}, p50/p99 ${c.p50}/${c.p99} vs ${u.p50}/${u.p99} ms`,
        );
        assert.equal(calm.errors, 0);
        assert.ok(
          Math.abs(calm.open_loop.achieved_rps - 200) <= 4,
          `achieved ${calm.open_loop.achieved_rps} of 200`,
        );
        assert.ok(c.p50 <= 2 * u.p50 + 5, `p50 from intended ${c.p50} vs from send ${u.p50}`);

        // The stall: nginx frozen for 1 s from t = 2 s of a 5 s run (bounded: SIGCONT in finally).
        const run = openLoop(tb, join(dir, "trace.txt"), 5);
        await new Promise((r) => setTimeout(r, 2000));
        process.kill(pid, "SIGSTOP");
        try {
          await new Promise((r) => setTimeout(r, 1000));
        } finally {
          process.kill(pid, "SIGCONT");
        }
        const stalled = await run;
        const [sc, su] = [stalled.latency_from_intended_ms, stalled.latency_ms];
        t.diagnostic(`stalled: p99 from intended ${sc.p99} ms, from send ${su.p99} ms`);
        assert.equal(stalled.errors, 0);
        assert.ok(sc.p99 >= 700, `corrected p99 ${sc.p99} ms shows the 1 s stall`);
        assert.ok(su.p99 < 300, `uncorrected p99 ${su.p99} ms hides it (4 requests in flight of ~1000)`);
      } finally {
        process.kill(pid, "SIGTERM");
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
