// Operating a running Socket Cloning cluster without restarts (issue 18 items 3-5): every node
// follows the dispatcher's membership (--members-from) and reads a config file (--config).
//   - purge through the CLI while a page changed at the origin: never a mixed body, never the
//     old one once the purge returned; revalidation (TTL set by a SIGHUP reload) picks up a
//     change, and an unchanged document is kept on the origin's 304;
//   - SIGHUP to every node and the dispatcher under a verified load: zero failed requests;
//   - node4 added to the running 3-node cluster, then node2 drained and removed, under a
//     verified replay: zero verification failures, zero errors (no resets);
//   - SIGTERM to a node under load: it reports unhealthy, keeps serving while the dispatcher
//     moves away, then exits: zero failed requests.
// Needs root, /dev/net/tun and namespaces.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, mkdir, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testPrefix } from "../testbed/index.js";
import { DISPATCHER_IP, nodeIp } from "../testbed/topology.js";
import { CLI_BIN } from "./processes.js";
import { destroyCluster, startCluster, type Cluster } from "./cluster.js";
import { run, type RunResult } from "../server/node/testing.js";

const PREFIX = testPrefix("ops");
let cluster: Cluster;
let configDir: string;
let configFile: string;
const exits: string[] = [];

interface ReplayJson {
  requests: number;
  ok: number;
  errors: number;
  errors_by_kind: Record<string, number>;
  verify_failures: number;
}

interface NodeStats {
  membership?: { mapped: string[]; members: { id: string }[] };
  store: { revalidation: { ttlMs: number; checks: number; unchanged: number; changed: number } };
  sourceStats: { notModified?: number };
  sc?: { clonesReceived: number };
}

before(async () => {
  configDir = await mkdtemp(join(tmpdir(), "sc-ops-"));
  configFile = join(configDir, "sc.json");
  // A long TTL first: the purge test must see the cached (old) version until it purges.
  await writeFile(configFile, JSON.stringify({ node: { "revalidate-ttl": 600_000 } }));
  cluster = await startCluster({
    prefix: PREFIX,
    nodes: 4,
    mode: "sc",
    scheduler: "wlc",
    cacheBytes: "32M",
    stopGraceMs: 3000,
    startTimeoutMs: 90_000,
    extraArgs: {
      // Closed connections leave the dispatcher's table after 1 s (not minutes), so a removed
      // node leaves the membership list soon after its last connection.
      dispatcher: ["--timeout-fin", "1", "--timeout-close", "1"],
      node: [
        "--members-from",
        `http://${DISPATCHER_IP}:9100`,
        "--members-interval",
        "200",
        "--config",
        configFile,
        "--drain-grace",
        "4000",
      ],
    },
  });
  cluster.onExit((e) => exits.push(`${e.host} (pid ${e.pid}) ended: ${e.signal ?? `code ${e.code}`}`));
  // node4 runs but is no member yet: a machine started with --members-from, waiting to be added.
  const a = await cluster.request({ url: `${dispatcherAdmin()}/nodes/node4`, method: "DELETE" });
  assert.ok(a.status === 200 || a.status === 204, `DELETE node4: ${a.status} ${a.body}`);
  await untilMapped(["node1", "node2", "node3"], ["node1", "node2", "node3", "node4"]);
});

after(async () => {
  if (cluster) await cluster.stop();
  else await destroyCluster(PREFIX);
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

const dispatcherAdmin = () => cluster.process("dispatcher").admin!;

async function stats(host: string): Promise<NodeStats> {
  return cluster.json<NodeStats>(`${cluster.process(host).admin!}/stats`);
}

/** Waits until every node in `hosts` maps exactly `mapped`. */
async function untilMapped(mapped: string[], hosts: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const views = await Promise.all(hosts.map(async (h) => (await stats(h)).membership?.mapped.join(",")));
    if (views.every((v) => v === mapped.join(","))) return;
    assert.ok(Date.now() < deadline, `nodes did not converge on ${mapped.join(",")}: ${views.join(" | ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A bounded open-loop verified replay through the VIP (one new connection per request). */
function replay(rate: number, seconds: number): Promise<ReplayJson> {
  const demo = cluster.demo!;
  return cluster.testbed
    .exec(
      "client",
      process.execPath,
      [
        CLI_BIN,
        "loadgen",
        "--trace",
        demo.trace,
        "--target",
        cluster.vipUrl.replace(/\/$/, ""),
        "--verify",
        demo.manifest,
        "--rate",
        String(rate),
        "--duration",
        String(seconds),
        "--conns",
        "16",
        "--timeout",
        "5000",
        "--json",
        "-",
      ],
      { check: false, timeoutMs: (seconds + 60) * 1000 },
    )
    .then((r) => {
      assert.ok(r.stdout.trim().startsWith("{"), `loadgen failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as ReplayJson;
    });
}

function assertClean(r: ReplayJson, what: string): void {
  console.log(`# ${what}: ${r.requests} requests, ${r.ok} verified, ${r.errors} errors`);
  const detail = `${what}: ${JSON.stringify(r)}; exits: ${exits.join(", ") || "none"}`;
  assert.ok(r.requests > 0, detail);
  assert.equal(r.errors, 0, detail);
  assert.equal(r.verify_failures, 0, detail);
  assert.equal(r.ok, r.requests, detail);
}

function cli(...args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI_BIN, ...args]);
}

/** GETs `path` through the VIP on `n` new connections; the bodies. */
async function viaVip(path: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = await cluster.get(`${cluster.vipUrl.replace(/\/$/, "")}${path}`, 3000);
    assert.equal(a.status, 200, `GET ${path}: ${a.status ?? a.error}`);
    out.push(a.body);
  }
  return out;
}

async function writeSite(path: string, text: string, mtimeS: number): Promise<void> {
  const file = join(cluster.site, path);
  await mkdir(join(file, ".."), { recursive: true });
  await writeFile(file, text);
  await utimes(file, mtimeS, mtimeS);
}

const V1 = "<p>version one</p>\n".repeat(400); // > 4 KiB: cloned to its home node, not served locally
const V2 = "<p>version TWO, longer</p>\n".repeat(400);

test("purge through the VIP: old version while cached, never a mixed body, only the new one once purge returned", async () => {
  await writeSite("ops/page.html", V1, 1_700_000_000);
  for (const b of await viaVip("/ops/page.html", 12)) assert.equal(b, V1);
  await writeSite("ops/page.html", V2, 1_700_000_100);
  for (const b of await viaVip("/ops/page.html", 12)) assert.equal(b, V1, "cached: the old version, whole");
  const p = await cli("purge", "--url", "/ops/page.html", "--cluster", PREFIX);
  assert.equal(p.code, 0, `purge: ${p.stdout} ${p.stderr}`);
  const answer = JSON.parse(p.stdout) as { peers: Record<string, { ok: boolean }> };
  // node4 is no member yet (the membership test adds it): the purge went to the members.
  assert.deepEqual(Object.keys(answer.peers).sort(), ["node2", "node3"]);
  for (const b of await viaVip("/ops/page.html", 24))
    assert.equal(b, V2, "after the purge: only the new version");
});

test("SIGHUP to every node and the dispatcher under a verified load: zero failed requests, new TTL applied", async () => {
  await writeFile(configFile, JSON.stringify({ node: { "revalidate-ttl": 1000 } }));
  const load = replay(150, 8);
  await new Promise((r) => setTimeout(r, 2000));
  for (const p of cluster.processes) if (p.role !== "origin") process.kill(p.pid, "SIGHUP");
  await new Promise((r) => setTimeout(r, 1000));
  for (const p of cluster.processes) if (p.role !== "origin") process.kill(p.pid, "SIGHUP");
  assertClean(await load, "replay across two SIGHUPs");
  for (const h of cluster.nodes)
    assert.equal((await stats(h)).store.revalidation.ttlMs, 1000, `${h} reloaded`);
  assert.deepEqual(exits, []);
});

test("revalidation through the VIP: a change is served after the TTL; unchanged documents are kept on a 304", async () => {
  await writeSite("ops/reval.html", V1, 1_700_000_000);
  await writeSite("ops/same.html", V1, 1_700_000_000);
  for (const b of await viaVip("/ops/reval.html", 8)) assert.equal(b, V1);
  for (const b of await viaVip("/ops/same.html", 8)) assert.equal(b, V1);
  const before = await Promise.all(cluster.nodes.map(stats));
  await writeSite("ops/reval.html", V2, 1_700_000_100);
  // The TTL (1 s, from the reload) is what is tested: wait it out.
  await new Promise((r) => setTimeout(r, 1300));
  for (const b of await viaVip("/ops/reval.html", 12)) assert.equal(b, V2);
  for (const b of await viaVip("/ops/same.html", 12)) assert.equal(b, V1);
  const afterStats = await Promise.all(cluster.nodes.map(stats));
  const sum = (xs: NodeStats[], f: (s: NodeStats) => number) => xs.reduce((a, s) => a + f(s), 0);
  assert.ok(
    sum(afterStats, (s) => s.store.revalidation.unchanged) >
      sum(before, (s) => s.store.revalidation.unchanged),
    "some node revalidated same.html and kept it",
  );
  assert.ok(
    sum(afterStats, (s) => s.sourceStats.notModified ?? 0) >
      sum(before, (s) => s.sourceStats.notModified ?? 0),
    "the origin answered 304",
  );
});

test("membership under a verified replay: node4 joins, node2 drains and leaves; zero failures, zero resets", async () => {
  const load = replay(150, 25);
  await new Promise((r) => setTimeout(r, 2000));
  const add = await cli(
    "members",
    "add",
    `node4=${nodeIp(4)}:6080,admin=http://${nodeIp(4)}:9080`,
    "--cluster",
    PREFIX,
  );
  assert.equal(add.code, 0, `members add: ${add.stdout} ${add.stderr}`);
  await untilMapped(["node1", "node2", "node3", "node4"], cluster.nodes);
  await new Promise((r) => setTimeout(r, 4000));
  const drain = await cli("members", "drain", "node2", "--cluster", PREFIX);
  assert.equal(drain.code, 0, `members drain: ${drain.stdout} ${drain.stderr}`);
  await untilMapped(["node1", "node3", "node4"], ["node1", "node3", "node4"]);
  await new Promise((r) => setTimeout(r, 3000));
  const remove = await cli("members", "remove", "node2", "--cluster", PREFIX);
  assert.equal(remove.code, 0, `members remove: ${remove.stdout} ${remove.stderr}`);
  assertClean(await load, "replay across join, drain and leave");
  const s4 = await stats("node4");
  assert.ok((s4.sc?.clonesReceived ?? 0) > 0, "node4 served clones once it joined");
  // node2 had no connections left: it is out of the list, and the others closed their links.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const members = (await stats("node1")).membership!.members.map((m) => m.id);
    if (!members.includes("node2")) break;
    assert.ok(Date.now() < deadline, `node2 still a member of node1's view: ${members.join(",")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  process.kill(cluster.process("node2").pid, "SIGTERM");
});

test("SIGTERM drain under load: unhealthy first, the dispatcher moves away, zero failed requests", async () => {
  const load = replay(150, 12);
  await new Promise((r) => setTimeout(r, 2000));
  const node3 = cluster.process("node3");
  process.kill(node3.pid, "SIGTERM");
  // Draining: /healthz 503 while it still serves.
  const deadline = Date.now() + 3000;
  for (;;) {
    const h = await cluster.get(`${node3.admin!}/healthz`, 1000);
    if (h.status === 503) break;
    assert.ok(Date.now() < deadline, `node3 did not report draining: ${h.status ?? h.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The dispatcher takes it out of scheduling while it still serves: down by its health
  // checks, not gone (its admin port still answers), and new connections go elsewhere.
  const moved = Date.now() + 5000;
  for (;;) {
    const views = await cluster.json<{ id: string; state: string; eligible: boolean }[]>(
      `${dispatcherAdmin()}/nodes`,
    );
    const n3 = views.find((n) => n.id === "node3");
    if (n3 !== undefined && !n3.eligible) {
      assert.equal(n3.state, "down", "taken out while alive, not after it was gone");
      break;
    }
    assert.ok(Date.now() < moved, `the dispatcher still schedules to node3: ${JSON.stringify(n3)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const still = await cluster.get(`${node3.admin!}/healthz`, 1000);
  assert.equal(
    still.status,
    503,
    `node3 still serving (draining) once out of scheduling: ${still.error ?? ""}`,
  );
  assertClean(await load, "replay across node3's SIGTERM");
  assert.ok(
    exits.some((e) => e.startsWith("node3")),
    `node3 exited: ${exits.join(", ")}`,
  );
});
