// `sc-cluster up/status/down` as a user runs them, and start-up failures: --detach + status
// --json + down; down after `kill -9` of a foreground up; SIGTERM to up (and its dashboard);
// a process that crashes during up is named with its log and everything is removed; a user
// without root is told what to do. Needs root.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { testPrefix } from "../testbed/index.js";
import { alive, listNetns, pidsInNetns } from "../testbed/netns.js";
import { run } from "../testbed/run.js";
import { CLI_BIN } from "./processes.js";
import { ClusterStartError, destroyCluster, startCluster, type ClusterStatus } from "./cluster.js";
import { clusterDir } from "./plan.js";

const cli = (...args: string[]) =>
  run([process.execPath, CLI_BIN, ...args], { check: false, timeoutMs: 120_000 });

const ours = async (prefix: string) => (await listNetns()).filter((n) => n.startsWith(prefix));

/** Asserts nothing of the prefix is left: namespaces, root links, processes, state. */
async function assertGone(prefix: string, pids: number[]): Promise<void> {
  assert.deepEqual(await ours(prefix), [], "namespaces left");
  const links = await run(["ip", "-o", "link", "show"]);
  assert.equal(links.stdout.includes(`${prefix}exp`), false, "root link left");
  for (const pid of pids) assert.equal(await alive(pid), false, `process ${pid} left`);
  assert.equal(existsSync(clusterDir(prefix)), false, "cluster directory left");
  assert.equal(existsSync(`/run/sc-cluster/${prefix}.json`), false, "testbed state left");
}

const serverPids = (s: ClusterStatus) => s.hosts.flatMap((h) => (h.pid !== undefined ? [h.pid] : []));

test("up --detach, status --json, status, down, down again", async () => {
  const P = testPrefix("cd");
  let pids: number[] = [];
  try {
    const up = await cli(
      "up",
      "--detach",
      "--nodes",
      "2",
      "--prefix",
      P,
      "--cache-bytes",
      "16M",
      "--scheduler",
      "rr",
    );
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /healthy in \d+\.\d s/);
    assert.match(up.stderr, /detached/);
    assert.match(up.stdout, new RegExp(`ip netns exec ${P}client curl http://198\\.18\\.100\\.1/`));

    const st = await cli("status", "--json", "--prefix", P);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout) as ClusterStatus;
    // The testbed's document, with admin and pid on every host that runs a process.
    assert.equal(s.prefix, P);
    assert.equal(s.vip, "198.18.100.1");
    assert.equal(s.dashboard, null, "a detached cluster has no dashboard (up served it)");
    const host = (n: string) => s.hosts.find((h) => h.name === n)!;
    assert.equal(host("client").pid, undefined);
    assert.equal(host("dispatcher").admin, "http://198.18.0.1:9100");
    assert.equal(host("node1").admin, "http://198.18.0.11:9080");
    assert.equal(host("node2").admin, "http://198.18.0.12:9080");
    assert.equal(host("origin").admin, undefined);
    pids = serverPids(s);
    assert.equal(pids.length, 4);
    for (const pid of pids) assert.equal(await alive(pid), true, `pid ${pid} runs after up returned`);
    const c = s.cluster!;
    assert.equal(c.detached, true);
    assert.equal(c.launcherRunning, false);
    assert.equal(c.mode, "local");
    assert.equal(c.scheduler, "rr");
    assert.equal(c.cacheBytes, 16 * 1024 * 1024);
    assert.deepEqual(c.vip, { answers: true, detail: "HTTP 200" });
    assert.deepEqual(
      c.processes.map((p) => [p.host, p.running, p.healthy, p.scheduled]),
      [
        ["origin", true, true, undefined],
        ["node1", true, true, true],
        ["node2", true, true, true],
        ["dispatcher", true, true, undefined],
      ],
    );
    assert.ok(c.startSeconds! > 0);

    // The cluster serves while nobody watches it; the admin URLs work from the client host.
    const page = await run(["ip", "netns", "exec", `${P}client`, "curl", "-sf", "--max-time", "5", c.vipUrl]);
    assert.match(page.stdout, /sc-cluster demo site/);
    const health = await run([
      "ip",
      "netns",
      "exec",
      `${P}client`,
      "curl",
      "-sf",
      "--max-time",
      "5",
      `${host("node2").admin}/healthz`,
    ]);
    assert.match(health.stdout, /"ok"/);

    // A second up does not replace a running cluster behind its user's back.
    const twice = await cli("up", "--detach", "--nodes", "2", "--prefix", P);
    assert.equal(twice.code, 2);
    assert.match(
      twice.stderr,
      /is already running \(origin pid \d+, node1 pid \d+, node2 pid \d+, dispatcher pid \d+\)/,
    );
    for (const pid of pids) assert.equal(await alive(pid), true);

    const plain = await cli("status", "--prefix", P);
    assert.equal(plain.code, 0);
    assert.match(
      plain.stdout,
      /node1 +node +\S+ +198\.18\.0\.11 +\d+ +ok, scheduled +http:\/\/198\.18\.0\.11:9080/,
    );
    assert.match(plain.stdout, /detached/);
    assert.match(plain.stdout, /VIP http:\/\/198\.18\.100\.1\/: answers \(HTTP 200\)/);

    const down = await cli("down", "--prefix", P);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /removed cluster '.*': 4 processes, 6 namespaces, its state and logs/);
    await assertGone(P, pids);
    const again = await cli("down", "--prefix", P);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /no cluster '.*' to remove/);
    const none = await cli("status", "--prefix", P);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no cluster '.*' is up/);
  } finally {
    await destroyCluster(P);
  }
});

/** Starts a foreground `up` and resolves once it says it is running. */
async function foregroundUp(P: string) {
  const child = spawn(
    process.execPath,
    [CLI_BIN, "up", "--nodes", "1", "--prefix", P, "--cache-bytes", "16M"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on("line", (l) => {
      stderr += l + "\n";
      if (/running; Ctrl-C stops/.test(l)) resolve();
    });
    void exited.then((code) => reject(new Error(`up exited (${code}): ${stderr}`)));
  });
  child.stdout!.resume();
  return { child, exited };
}

test("down after kill -9 of a foreground up leaves no namespace, link or process", async () => {
  const P = testPrefix("ck");
  try {
    const { child, exited } = await foregroundUp(P);
    const s = JSON.parse((await cli("status", "--json", "--prefix", P)).stdout) as ClusterStatus;
    assert.equal(s.cluster!.launcherPid, child.pid);
    assert.equal(s.cluster!.launcherRunning, true);
    assert.match(s.dashboard ?? "", /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const pids = serverPids(s);
    assert.equal(pids.length, 3);
    child.kill("SIGKILL");
    await exited;
    // The processes outlive their launcher (own sessions); down is what ends them.
    for (const pid of pids) assert.equal(await alive(pid), true);
    const after = JSON.parse((await cli("status", "--json", "--prefix", P)).stdout) as ClusterStatus;
    assert.equal(after.cluster!.launcherRunning, false);
    assert.equal(after.dashboard, null, "the dashboard went with its launcher");

    const down = await cli("down", "--prefix", P);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /3 processes/);
    await assertGone(P, pids);
  } finally {
    await destroyCluster(P);
  }
});

test("SIGTERM to a foreground up stops every process and removes the testbed", async () => {
  const P = testPrefix("ct");
  try {
    const { child, exited } = await foregroundUp(P);
    const s = JSON.parse((await cli("status", "--json", "--prefix", P)).stdout) as ClusterStatus;
    const pids = serverPids(s);
    const netns = await ours(P);
    assert.equal(netns.length, 5);
    // The foreground up serves the dashboard on loopback until it stops.
    const page = await fetch(s.dashboard!);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /sc-cluster dashboard/);
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    await assertGone(P, pids);
    await assert.rejects(fetch(s.dashboard!), "the dashboard is closed");
    assert.equal((await pidsInNetns(netns)).size, 0);
  } finally {
    await destroyCluster(P);
  }
});

test("a process that fails during up is named with its log's last lines, and everything is removed", async () => {
  const P = testPrefix("cf");
  try {
    // node2's control API is pointed at an address its host does not have.
    const err = await startCluster({
      prefix: P,
      nodes: 2,
      extraArgs: { node2: ["--admin", "198.18.0.99:9080"] },
    }).then(
      () => assert.fail("up succeeded"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ClusterStartError, String(err));
    assert.equal(err.host, "node2");
    assert.match(
      err.message,
      /^node2 \(node, pid \d+, namespace \S+node2\) exited with code 1 during start-up/,
    );
    assert.match(
      err.message,
      /Last lines of \S+node2\.log:\n(.*\n)* {2}\| .*198\.18\.0\.99:9080: address not available/,
    );
    assert.match(err.message, /Everything up started was removed; the logs stay in/);
    assert.deepEqual(await ours(P), []);
    // The log is kept for the user until down.
    assert.equal(existsSync(err.log!), true);
    assert.equal(existsSync(`${clusterDir(P)}/cluster.json`), false);
    await destroyCluster(P);
    assert.equal(existsSync(clusterDir(P)), false);

    // A bad option to the dispatcher (a usage error, exit code 2).
    const err2 = await startCluster({
      prefix: P,
      nodes: 1,
      extraArgs: { dispatcher: ["--no-such-option"] },
    }).then(
      () => assert.fail("up succeeded"),
      (e: unknown) => e as ClusterStartError,
    );
    assert.equal(err2.host, "dispatcher");
    assert.match(err2.message, /exited with code 2 during start-up/);
    assert.match(err2.message, /no-such-option/);
    assert.deepEqual(await ours(P), []);
  } finally {
    await destroyCluster(P);
  }
});

test("up without root says to use sudo or docker compose, and makes nothing", async () => {
  const P = testPrefix("cn");
  // setpriv drops to nobody, and with the uid every capability.
  const r = await run(
    [
      "setpriv",
      "--reuid",
      "65534",
      "--regid",
      "65534",
      "--clear-groups",
      process.execPath,
      CLI_BIN,
      "up",
      "--prefix",
      P,
    ],
    {
      check: false,
      timeoutMs: 60_000,
    },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /needs root/);
  assert.match(r.stderr, /sudo npm start/);
  assert.match(r.stderr, /docker compose/);
  assert.deepEqual(await ours(P), []);
});

test("up refuses bad options before it makes anything", async () => {
  const P = testPrefix("co");
  const cases: [string[], RegExp][] = [
    [["--mode", "nope"], /mode must be one the node supports \(local[^)]*\), got 'nope'/],
    [["--site", "/nonexistent/site"], /site '\/nonexistent\/site' is not a directory/],
    [["--scheduler", "fifo"], /scheduler must be one of rr, wrr, lc, wlc, sh, mh/],
    [["--cache-bytes", "lots"], /--cache-bytes: cache size must be a byte size/],
    [["--nodes", "0"], /nodes must be a whole number from 1 to 60/],
    [["--nodes", "2", "--weights", "1"], /one weight per node/],
    [["--dashboard", "8090"], /--dashboard: expected ADDR:PORT/],
    [["--dashboard", "198.18.0.1:80"], /--dashboard 198\.18\.0\.1:80: cannot listen there \(EADDRNOTAVAIL\)/],
    [["--detach", "--dashboard", "127.0.0.1:9"], /--dashboard needs a foreground up/],
  ];
  for (const [args, re] of cases) {
    const r = await cli("up", "--prefix", P, ...args);
    assert.notEqual(r.code, 0, args.join(" "));
    assert.match(r.stderr, re, args.join(" "));
  }
  assert.deepEqual(await ours(P), []);
  assert.equal(existsSync(clusterDir(P)), false);
});
