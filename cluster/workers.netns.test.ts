// The launcher with node data-path workers (startCluster { workers: 2 }, mode local, 2 nodes):
// the testbed makes the nodes' TUNs multi-queue, every node runs 2 workers, the dispatcher
// sends no UDP GSO; a verified replay of the demo trace through the VIP (a new connection per
// request, so the client ports spread over both workers), and no GUE packet at the wrong
// worker. Needs root, /dev/net/tun and namespaces.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { testPrefix } from "../testbed/index.js";
import { CLI_BIN } from "./processes.js";
import { destroyCluster, startCluster, type Cluster } from "./cluster.js";
import type { DemoSite } from "./demo-site.js";

const PREFIX = testPrefix("wk");
const NODES = ["node1", "node2"];
let cluster: Cluster | undefined;
/** Processes that ended on their own (in assertion messages). */
const exits: string[] = [];

before(async () => {
  cluster = await startCluster({
    prefix: PREFIX,
    nodes: 2,
    mode: "local",
    workers: 2,
    cacheBytes: "32M",
    stopGraceMs: 2000,
    startTimeoutMs: 45_000,
  });
  cluster.onExit((e) => exits.push(`${e.host} (pid ${e.pid}) ended: ${e.signal ?? `code ${e.code}`}`));
});

after(async () => {
  if (cluster) await cluster.stop();
  else await destroyCluster(PREFIX); // a failed start keeps its logs until down
});

function running(): Cluster {
  assert.ok(cluster, "the cluster started");
  return cluster;
}

function demoOf(c: Cluster): DemoSite {
  assert.ok(c.demo, "the demo site was made");
  return c.demo;
}

interface ReplayJson {
  requests: number;
  ok: number;
  errors: number;
  errors_by_kind: Record<string, number>;
  verify_failures: number;
}

/** Replays `n` requests of the demo trace through the VIP, one new connection each, verified. */
async function replay(c: Cluster, n: number): Promise<ReplayJson> {
  const demo = demoOf(c);
  const args = ["loadgen", "--trace", demo.trace, "--target", c.vipUrl.replace(/\/$/, "")];
  args.push("--verify", demo.manifest, "--requests", String(n), "--conns", "8", "--timeout", "5000");
  const r = await c.testbed.exec("client", process.execPath, [CLI_BIN, ...args, "--json", "-"], {
    check: false,
    timeoutMs: 40_000,
  });
  assert.ok(r.stdout.trim().startsWith("{"), `loadgen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ReplayJson;
}

type ByStatus = Record<string, number>;

interface NodeStats {
  workers: number;
  tcp: { gue: { packets: number; wrongWorker: number } };
  perWorker: { worker: number; requests: ByStatus | null; guePackets: number; wrongWorker: number }[];
}

const total = (r: ByStatus | null) => Object.values(r ?? {}).reduce((a, b) => a + b, 0);

test("2 nodes x 2 workers: multi-queue TUNs, a verified replay through the VIP, no packet at the wrong worker", async () => {
  const c = running();
  const status = await c.status();
  assert.equal(status.cluster?.workers, 2, "status records the worker count");
  for (const host of NODES) {
    const link = await c.testbed.exec(host, "ip", ["-d", "link", "show", "dev", "sctun"]);
    assert.match(link.stdout, /multi_queue/, `${host}'s sctun is multi-queue`);
  }
  const dispatcherArgs = c.plan.processes.find((p) => p.role === "dispatcher")?.args ?? [];
  assert.ok(dispatcherArgs.includes("--no-udp-gso"), dispatcherArgs.join(" "));

  const r = await replay(c, 600);
  const detail = `${JSON.stringify(r)} ${exits.join("; ")}`;
  assert.equal(r.requests, 600, detail);
  assert.equal(r.ok, 600, detail);
  assert.equal(r.errors, 0, detail);
  assert.equal(r.verify_failures, 0, detail);

  for (const host of NODES) {
    const s = await c.json<NodeStats>(`${c.process(host).admin}/stats`);
    assert.equal(s.workers, 2, `${host} runs 2 workers`);
    assert.equal(s.tcp.gue.wrongWorker, 0, `${host}: ${JSON.stringify(s.perWorker)}`);
    assert.ok(s.tcp.gue.packets > 0, `${host} took GUE`);
    // Client ports spread over both workers: each served a share.
    for (const w of s.perWorker)
      assert.ok(
        total(w.requests) > 0,
        `${host} worker ${w.worker} served none: ${JSON.stringify(s.perWorker)}`,
      );
  }
  assert.deepEqual(exits, []);
});
