// `sc-cluster node --workers 2` behind the dispatcher in a testbed with 1% loss on the LAN:
// the node's TUN device is recreated multi-queue, the dispatcher sends GUE from one UDP
// socket (--output udp: every client flow has the same outer header, so only the steering
// on the inner packet can spread them), and kernel clients keep many connections alive.
// --no-udp-gso: a UDP GSO message of several clients' packets reaches the node whole (veth
// keeps it one skb) and the kernel picks ONE socket for it by its first datagram; measured
// with GSO on: ~40% of the packets at the wrong worker, resets (docs/node.md, "Workers").
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createTestbed, destroyTestbed, run, testPrefix, type Testbed } from "../../testbed/index.js";
import { VIP } from "../../testbed/topology.js";
import { makeRoot, removeRoot } from "./testing.js";

const BIN = fileURLToPath(new URL("../../../bin/sc-cluster.js", import.meta.url));
const P = testPrefix("nw");
const NODE_ADMIN = "198.18.0.11:9080";
const CONNS = 1000;
const ROUNDS = 4;

let tb: Testbed;
let root: string;
let scripts: string;
const children: ChildProcess[] = [];

/** Bodies: distinct sizes and bytes so a response for the wrong request shows. */
const FILES: Record<string, Buffer> = Object.fromEntries(
  Array.from({ length: 8 }, (_, i) => [`f${i}.bin`, Buffer.alloc(700 + 397 * i, 97 + i)]),
);

/** The client: CONNS keep-alive connections, ROUNDS requests on each, every body compared. */
const CLIENT = `
import http from "node:http";
import { readFileSync } from "node:fs";
const [conns, rounds, dir] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const files = ${JSON.stringify(Object.keys(FILES))}.map((f) => [f, readFileSync(dir + "/" + f)]);
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const sockets = new Set();
let ok = 0, bad = 0, errors = [];
function get(i, r) {
  const [name, body] = files[(i + r) % files.length];
  return new Promise((resolve) => {
    const req = http.get({ host: "${VIP}", port: 80, path: "/" + name, agent, timeout: 20000 }, (res) => {
      sockets.add(res.socket);
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode === 200 && Buffer.concat(chunks).equals(body)) ok++;
        else bad++;
        resolve();
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => { errors.push(e.message); resolve(); });
  });
}
for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: conns }, (_, i) => get(i, r)));
agent.destroy();
console.log(JSON.stringify({ ok, bad, errors: errors.slice(0, 5), errorCount: errors.length, sockets: sockets.size }));
`;

function spawnJson(
  host: string,
  args: string[],
  ready: (e: Record<string, unknown>) => boolean,
): Promise<ChildProcess> {
  const child = tb.spawn(host, process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${host}: not ready in 30 s: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout! }).on("line", (l) => {
      try {
        if (ready(JSON.parse(l) as Record<string, unknown>)) {
          clearTimeout(timer);
          resolve(child);
        }
      } catch {
        // not JSON
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${host}: exited (${code}): ${stderr}`));
    });
  });
}

before(async () => {
  root = await makeRoot(FILES);
  scripts = await makeRoot({});
  await writeFile(join(scripts, "client.mjs"), CLIENT);
  tb = createTestbed({ prefix: P, nodes: 1, loss: 1 });
  await tb.up();
  // node1's sctun, multi-queue: one queue per worker.
  const batch = [
    "link del sctun",
    "tuntap add dev sctun mode tun multi_queue",
    "link set dev sctun mtu 1500 up",
  ];
  await run(["ip", "-n", tb.host("node1").netns, "-batch", "-"], { input: batch.join("\n") + "\n" });
  await tb.exec("node1", "sh", ["-c", "echo 0 > /proc/sys/net/ipv4/conf/sctun/rp_filter"]);
});

after(async () => {
  for (const c of children) c.kill("SIGKILL");
  await destroyTestbed(P);
  await removeRoot(root);
  await removeRoot(scripts);
});

/** Requests by status code, as /stats counts them. */
type ByStatus = Record<string, number>;

interface NodeStats {
  workers: number;
  cache: { entries: number; hits: number; misses: number };
  store: { loads: number };
  sharedCache: { workers: number };
  http: { requests: ByStatus };
  tcp: { gue: { packets: number; wrongWorker: number } };
  perWorker: { worker: number; requests: ByStatus | null; guePackets: number; wrongWorker: number }[];
}

const total = (r: ByStatus | null | undefined) => Object.values(r ?? {}).reduce((a, b) => a + b, 0);

test("a node with 2 workers serves 1,000 concurrent keep-alive connections byte-exact under 1% loss; no packet reaches the wrong worker; one document cache", async () => {
  await spawnJson(
    "node1",
    [BIN, "node", "--stack", "user", "--vip", VIP, "--port", "80", "--tun", "sctun", "--root", root]
      .concat(["--workers", "2", "--gue-port", "6080", "--gue-allow", "198.18.0.1", "--admin", NODE_ADMIN])
      .concat(["--node-id", "n1", "--idle-timeout", "60000"]),
    (e) => e.msg === "node listening" && e.workers === 2,
  );
  await spawnJson(
    "dispatcher",
    [
      BIN,
      "dispatcher",
      "--workers",
      "1",
      "--output",
      "udp",
      "--no-udp-gso",
      "--scheduler",
      "mh",
      "--admin",
      "198.18.0.1:9100",
    ].concat(["--node", "node1=198.18.0.11"]),
    (e) => e.ready === true,
  );
  const r = await tb.exec(
    "client",
    process.execPath,
    [join(scripts, "client.mjs"), String(CONNS), String(ROUNDS), root],
    {
      timeoutMs: 180_000,
    },
  );
  const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
    ok: number;
    bad: number;
    errorCount: number;
    errors: string[];
    sockets: number;
  };
  assert.deepEqual(
    { ok: res.ok, bad: res.bad, errors: res.errorCount },
    { ok: CONNS * ROUNDS, bad: 0, errors: 0 },
    res.errors.join("; "),
  );
  assert.ok(res.sockets >= CONNS, `${res.sockets} connections`);
  // The workers post their counters every 200 ms.
  let s: NodeStats | undefined;
  const deadline = Date.now() + 5000;
  for (;;) {
    s = JSON.parse(
      (await tb.exec("client", "curl", ["-s", `http://${NODE_ADMIN}/stats`])).stdout,
    ) as NodeStats;
    if (total(s.http.requests) >= CONNS * ROUNDS || Date.now() > deadline) break;
    await new Promise((r2) => setTimeout(r2, 200));
  }
  assert.equal(s.workers, 2);
  assert.deepEqual(s.http.requests, { "200": CONNS * ROUNDS });
  assert.equal(s.tcp.gue.wrongWorker, 0);
  // One cache per node: each of the 8 files loaded from the disk once, held once, though both
  // workers served it; the workers' L1 hits count at the owner.
  assert.equal(s.sharedCache.workers, 2);
  assert.equal(s.store.loads, Object.keys(FILES).length);
  assert.equal(s.cache.entries, Object.keys(FILES).length);
  // (Requests that joined a worker's load in flight are neither.)
  // Each worker asks the owner once per file: a miss, or a hit when the other loaded it first.
  const files = Object.keys(FILES).length;
  assert.ok(s.cache.misses >= files && s.cache.misses <= 2 * files, JSON.stringify(s.cache));
  assert.ok(s.cache.hits > (CONNS * ROUNDS) / 2, JSON.stringify(s.cache));
  for (const w of s.perWorker) {
    assert.equal(w.wrongWorker, 0, `worker ${w.worker}`);
    // Both carry a fair share (the steering hash spreads one client's ports).
    assert.ok(total(w.requests) > (CONNS * ROUNDS) / 5, `worker ${w.worker}: ${total(w.requests)} requests`);
    assert.ok(w.guePackets > 0);
  }
  const metrics = (await tb.exec("client", "curl", ["-s", `http://${NODE_ADMIN}/metrics`])).stdout;
  assert.match(metrics, /^sc_gue_wrong_worker_total\{node="n1"\} 0$/m);
});
