// Testbed tests that need root: a 3-node testbed is reachable end to end and configured
// as specified; up/down (and crashes, and failing tests) leave nothing behind.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { destroyTestbed, testPrefix, withTestbed, type Testbed } from "./testbed.js";
import { alive, listNetns } from "./netns.js";
import { run } from "./run.js";
import { ping } from "./measure.js";
import { statePath } from "./state.js";
import type { TestbedStatus } from "./status.js";

const CLI = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const INDEX = new URL("./index.js", import.meta.url).href;
const P = testPrefix("a");
const Q = testPrefix("b");
const R = testPrefix("c");

after(async () => {
  for (const p of [P, Q, R]) await destroyTestbed(p);
});

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run([process.execPath, CLI, ...args], { check: false, timeoutMs: 60_000 });
}

/** Namespaces and root-namespace links whose names start with the prefix. */
async function traces(prefix: string): Promise<{ netns: string[]; links: string[] }> {
  const netns = (await listNetns()).filter((n) => n.startsWith(prefix));
  const out = (await run(["ip", "-o", "link", "show"])).stdout;
  const links = [...out.matchAll(/^\d+: ([^:@]+)[:@]/gm)]
    .map((m) => m[1]!)
    .filter((n) => n.startsWith(prefix));
  return { netns, links };
}

test("3 nodes: every host reaches every other, routes and sysctls as specified", async () => {
  await withTestbed({ prefix: P, nodes: 3 }, async (tb) => {
    const names = tb.hostNames();
    assert.deepEqual(names, ["client", "dispatcher", "origin", "node1", "node2", "node3"]);

    // Every ordered pair, one echo each (bounded: 30 pings of at most a second).
    const pairs = names.flatMap((a) => names.filter((b) => b !== a).map((b) => [a, b] as const));
    const results = await Promise.all(pairs.map(([a, b]) => ping(tb, a, b, { count: 1, waitS: 2 })));
    pairs.forEach(([a, b], i) => assert.equal(results[i]!.received, 1, `${a} -> ${b}`));

    for (const h of tb.hosts) {
      const routes = (await tb.exec(h.name, "ip", ["-4", "route", "show", "table", "all"])).stdout;
      assert.doesNotMatch(routes, /^default/m, `${h.name} has a default route:\n${routes}`);
      const lo = (await tb.exec(h.name, "ip", ["-o", "link", "show", "lo"])).stdout;
      assert.match(lo, /[<,]UP[,>]/, `${h.name}: loopback is down`);
    }
    const clientRoute = (await tb.exec("client", "ip", ["-4", "route", "show", "198.18.100.1"])).stdout;
    assert.match(clientRoute, /^198\.18\.100\.1 via 198\.18\.0\.1 dev eth0/);
    const vipRoute = (await tb.exec("dispatcher", "ip", ["-4", "route", "show", "198.18.100.1"])).stdout;
    assert.match(vipRoute, /^198\.18\.100\.1 dev sctun/);

    for (const h of tb.hosts.filter((x) => x.tun)) {
      const keys = [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.all.rp_filter",
        "net.ipv4.conf.sctun.rp_filter",
        "net.ipv6.conf.all.disable_ipv6",
      ];
      const values = (await tb.exec(h.name, "sysctl", ["-n", ...keys])).stdout.trim().split("\n");
      assert.deepEqual(values, ["1", "0", "0", "1"], h.name);
      const tun = (await tb.exec(h.name, "ip", ["-d", "-o", "link", "show", "sctun"])).stdout;
      assert.match(tun, /mtu 1500/);
      assert.match(tun, /tun type tun pi off/);
      assert.match(tun, /persist on/);
      assert.match(tun, /[<,]UP[,>]/);
      // The VIP is never a local address of a host (direct return needs that).
      const addrs = (await tb.exec(h.name, "ip", ["-4", "-o", "addr", "show"])).stdout;
      assert.doesNotMatch(addrs, /198\.18\.100\.1/);
    }
    for (const name of ["client", "origin"]) {
      const v = (await tb.exec(name, "sysctl", ["-n", "net.ipv4.ip_forward"])).stdout.trim();
      assert.equal(v, "0", name);
      await assert.rejects(tb.exec(name, "ip", ["link", "show", "sctun"]), `${name} has no TUN`);
    }

    const r = await cli(["testbed", "status", "--prefix", P, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as TestbedStatus;
    assert.equal(s.prefix, P);
    assert.equal(s.vip, "198.18.100.1");
    assert.equal(s.subnet, "198.18.0.0/24");
    assert.equal(s.vipHost, "dispatcher");
    assert.equal(s.rate, null);
    assert.equal(s.loss, 0);
    assert.equal(s.expose, false);
    assert.deepEqual(s.hosts, tb.status().hosts);
    assert.deepEqual(s.hosts[3], {
      name: "node1",
      role: "node",
      netns: `${P}node1`,
      ip: "198.18.0.11",
      tun: "sctun",
    });

    const table = await cli(["testbed", "status", "--prefix", P]);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /node3\s+node\s+\S+node3\s+198\.18\.0\.13\s+sctun/);
  });
  const s = await cli(["testbed", "status", "--prefix", P]);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /no testbed .* is up/);
});

test("CLI up then down leaves no namespace or root link; both are idempotent; testbeds coexist", async () => {
  const before = await traces(Q);
  assert.deepEqual(before, { netns: [], links: [] });
  const up = await cli(["testbed", "up", "--prefix", Q, "--nodes", "3"]);
  assert.equal(up.code, 0, up.stderr);
  // Up again over the running one: leftovers are replaced, not duplicated.
  const again = await cli(["testbed", "up", "--prefix", Q, "--nodes", "2"]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual((await traces(Q)).netns.sort(), [
    `${Q}client`,
    `${Q}dispatcher`,
    `${Q}node1`,
    `${Q}node2`,
    `${Q}origin`,
    `${Q}sw`,
  ]);

  // A second testbed with the same addresses runs beside it, isolated.
  await withTestbed({ prefix: R, nodes: 1 }, async (other) => {
    assert.equal((await ping(other, "client", "node1", { count: 1 })).received, 1);
    const down = await cli(["testbed", "down", "--prefix", Q]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal((await ping(other, "client", "node1", { count: 1 })).received, 1, "other testbed survived");
  });

  assert.deepEqual(await traces(Q), before);
  assert.deepEqual(await traces(R), before);
  const twice = await cli(["testbed", "down", "--prefix", Q]);
  assert.equal(twice.code, 0, twice.stderr);
  assert.match(twice.stdout, /no testbed/);
});

test("a test that throws half-way still leaves nothing behind", async () => {
  let spawned: number | undefined;
  await assert.rejects(
    withTestbed({ prefix: P, nodes: 2 }, async (tb: Testbed) => {
      const child = tb.spawn("node2", "sleep", ["600"], { stdio: "ignore" });
      spawned = child.pid;
      assert.equal((await ping(tb, "client", "node2", { count: 1 })).received, 1);
      throw new Error("boom half-way");
    }),
    /boom half-way/,
  );
  assert.deepEqual(await traces(P), { netns: [], links: [] });
  assert.ok(spawned !== undefined && !(await alive(spawned)), "process inside the testbed was ended");
});

test("down after the launcher was killed -9 and the state file deleted still removes everything", async () => {
  // A launcher process brings the testbed up and starts long-running processes in two hosts.
  const code = `
    import { createTestbed } from ${JSON.stringify(INDEX)};
    const tb = createTestbed({ prefix: ${JSON.stringify(P)}, nodes: 2 });
    await tb.up();
    const pids = ["node1", "node2"].map((h) => tb.spawn(h, "sleep", ["600"], { stdio: "ignore", detached: true }).pid);
    console.log(JSON.stringify(pids));
    setInterval(() => {}, 1000);
  `;
  const launcher = spawn(process.execPath, ["--input-type=module", "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    launcher.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    launcher.on("exit", (c) => reject(new Error(`launcher exited early (${c})`)));
  });
  const pids = JSON.parse(line) as number[];
  assert.equal(pids.length, 2);
  launcher.kill("SIGKILL");
  await new Promise((resolve) => launcher.once("close", resolve));
  process.kill(pids[0]!, "SIGKILL"); // one host process crashed too
  assert.ok(await alive(pids[1]!));
  assert.ok((await readFile(statePath(P), "utf8")).includes(P));
  await rm(statePath(P));

  const down = await cli(["testbed", "down", "--prefix", P]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /removed testbed .*: 6 namespaces, 1 process$/m);
  assert.deepEqual(await traces(P), { netns: [], links: [] });
  assert.ok(!(await alive(pids[1]!)), "process left in a host namespace was ended");
});

test("without the capabilities of root the command says what to do", async () => {
  const r = await run(
    [
      "setpriv",
      // Root without capabilities (as in an unprivileged container); files stay readable.
      "--bounding-set=-all",
      "--inh-caps=-all",
      process.execPath,
      CLI,
      "testbed",
      "up",
      "--prefix",
      P,
    ],
    { check: false },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^sc-cluster testbed: the testbed needs root .*run it as root/);
  assert.deepEqual(await traces(P), { netns: [], links: [] });
});
