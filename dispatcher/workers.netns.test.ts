// The dispatcher with --workers 2 in a testbed: its TUN device is recreated multi-queue,
// kernel TCP clients connect to the VIP, stand-in nodes (fake-node-main.ts) complete the
// handshakes. The scheduler is rr: it keeps no hash to fall back on, so a packet that reached
// a worker whose table lacks its connection would be dropped (no_conn) and answered with a RST.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createTestbed, destroyTestbed, run, testPrefix, type Testbed } from "../testbed/index.js";

const CLI = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const FAKE_NODE = fileURLToPath(new URL("./fake-node-main.js", import.meta.url));
const FAKE_CLIENT = fileURLToPath(new URL("./fake-client-main.js", import.meta.url));
const P = testPrefix("w");
const ADMIN = "198.18.0.1:9100";
const VIP = "198.18.100.1";
const NODES = 3;
const CONNS = 200;
const ADMIN_TOKEN = randomBytes(24).toString("hex");
const TOKEN_FILE = join(tmpdir(), `${P}admin-token`);

type Event = Record<string, unknown>;

/** A child printing JSON lines (stdout and stderr), awaited as events. */
class Proc {
  readonly events: Event[] = [];
  private waiters: { pred: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  /** What was not a JSON line (the CLI's error messages). */
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
    const feed = (line: string) => {
      let e: Event;
      try {
        e = JSON.parse(line) as Event;
      } catch {
        this.stderr += line + "\n";
        return;
      }
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
    };
    createInterface({ input: child.stdout! }).on("line", feed);
    createInterface({ input: child.stderr! }).on("line", feed);
  }

  waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = 15_000): Promise<Event> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before ${what}; stderr: ${this.stderr}`));
      });
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  send(line: string): void {
    this.child.stdin!.write(line + "\n");
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

let tb: Testbed;
const running: Proc[] = [];

function start(host: string, args: string[], name = host): Proc {
  const p = new Proc(name, tb.spawn(host, process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] }));
  running.push(p);
  return p;
}

const nodeIp = (k: number) => `198.18.0.${10 + k}`;

interface Stats {
  drops: Record<string, number>;
  rstsSent: number;
  connections: { entries: number; scheduled: number; recovered: number; capacity: number };
  nodes: { id: string; scheduled: number; eligible: boolean }[];
  io: {
    workers: number;
    tun: { packetsIn: number; multiQueue?: boolean };
    perWorker: {
      worker: number;
      packetsIn: number;
      connections: number;
      scheduled: number;
      recovered: number;
    }[];
  };
}

async function stats(): Promise<Stats> {
  const r = await tb.exec("client", "curl", ["-s", `http://${ADMIN}/stats`]);
  return JSON.parse(r.stdout) as Stats;
}

/** Polls /stats until cond holds (the workers post their counters every 100 ms). */
async function statsWhen(cond: (s: Stats) => boolean, what: string): Promise<Stats> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await stats();
    if (cond(s)) return s;
    if (Date.now() > deadline) throw new Error(`no ${what} within 10 s: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The dispatcher's TUN device, recreated with multi_queue (the testbed makes a single-queue one). */
let multiQueue = false;

/** makeMultiQueue() once for the file (the tests may run alone with --test-name-pattern). */
async function makeMultiQueueOnce(): Promise<void> {
  if (!multiQueue) await makeMultiQueue();
  multiQueue = true;
}

async function makeMultiQueue(): Promise<void> {
  const ns = tb.host("dispatcher").netns;
  const batch = [
    "link del sctun",
    "tuntap add dev sctun mode tun multi_queue",
    "link set dev sctun mtu 1500 up",
    `route add ${VIP}/32 dev sctun`,
  ];
  await run(["ip", "-n", ns, "-batch", "-"], { input: batch.join("\n") + "\n" });
  await tb.exec("dispatcher", "sh", ["-c", "echo 0 > /proc/sys/net/ipv4/conf/sctun/rp_filter"]);
}

function dispatcherArgs(workers: string, extra: string[] = []): string[] {
  const args = [CLI, "dispatcher", "--scheduler", "rr", "--admin", ADMIN, "--workers", workers, ...extra];
  args.push("--admin-token-file", TOKEN_FILE);
  for (let k = 1; k <= NODES; k++) args.push("--node", `node${k}=${nodeIp(k)}`);
  return args;
}

let fakeNodes: Proc[] | undefined;

/** Stand-in nodes that complete handshakes (started once, shared by the tests below). */
async function answeringNodes(): Promise<Proc[]> {
  if (fakeNodes) return fakeNodes;
  const nodes: Proc[] = [];
  for (let k = 1; k <= NODES; k++) nodes.push(start(`node${k}`, [FAKE_NODE, "--ip", nodeIp(k), "--answer"]));
  for (const n of nodes) await n.waitFor((e) => e.ready === true, "ready");
  fakeNodes = nodes;
  return nodes;
}

before(async () => {
  writeFileSync(TOKEN_FILE, ADMIN_TOKEN, { mode: 0o600 });
  tb = createTestbed({ prefix: P, nodes: NODES });
  await tb.up();
});

after(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
  await destroyTestbed(P);
  rmSync(TOKEN_FILE, { force: true });
});

test("--workers 2 on a single-queue TUN device refuses to start and says how to fix it", async () => {
  const d = start("dispatcher", dispatcherArgs("2"), "dispatcher(single-queue)");
  const code = await d.exited;
  assert.notEqual(code, 0);
  assert.match(d.stderr, /--workers needs a multi-queue TUN device, and sctun is not one/);
  assert.match(d.stderr, /ip tuntap add dev sctun mode tun multi_queue/);
});

test("--workers 2: every packet of a connection reaches the worker that holds it (rr, 200 connections)", async () => {
  await makeMultiQueueOnce();
  const nodes = await answeringNodes();
  const d = start("dispatcher", dispatcherArgs("2", ["--output", "udp", "--max-conns", "4096"]));
  const ready = await d.waitFor((e) => e.ready === true, "ready");
  assert.equal(ready.workers, 2);

  const client = start("client", [FAKE_CLIENT]);
  client.send(`open ${CONNS}`);
  const portOf: number[] = [];
  for (let id = 0; id < CONNS; id++) {
    portOf[id] = (await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`))
      .port as number;
  }
  // Three rounds of data on every connection: each packet must find its entry.
  const all = portOf.map((_, id) => id).join(" ");
  for (let round = 1; round <= 3; round++) {
    client.send(`write ${all}`);
    for (let id = 0; id < CONNS; id++) {
      await Promise.any(
        nodes.map((n) =>
          n.waitFor(
            (e) =>
              e.sport === portOf[id] &&
              (e.len as number) > 0 &&
              n.events.filter((x) => x.sport === portOf[id] && (x.len as number) > 0).length >= round,
            `round ${round} data of ${id}`,
          ),
        ),
      );
    }
  }
  assert.deepEqual(
    client.events.filter((e) => e.event === "error"),
    [],
    "no connection was reset",
  );
  // Each connection's packets all went to one node (the one its worker scheduled it to).
  for (const port of portOf) {
    const holders = nodes.filter((n) => n.events.some((e) => e.sport === port));
    assert.equal(holders.length, 1, `port ${port} seen by ${holders.map((n) => n.name).join(", ")}`);
  }
  const s = await statsWhen(
    (x) => x.connections.scheduled === CONNS && x.io.perWorker.every((w) => w.packetsIn > 0),
    "every connection scheduled and both workers busy",
  );
  assert.equal(s.io.workers, 2);
  assert.equal(s.io.tun.multiQueue, true);
  // Affinity: no packet reached a worker without its entry (rr would drop it as no_conn and
  // reset the client), none was picked up mid-stream.
  assert.equal(s.drops.no_conn ?? 0, 0);
  assert.equal(s.rstsSent, 0);
  assert.equal(s.connections.recovered, 0);
  // The connections are spread over both workers' tables and counted once.
  const per = s.io.perWorker;
  assert.equal(per.length, 2);
  assert.ok(
    per.every((w) => w.scheduled > 0 && w.connections > 0),
    JSON.stringify(per),
  );
  assert.equal(per[0]!.scheduled + per[1]!.scheduled, CONNS);
  assert.equal(per[0]!.connections + per[1]!.connections, s.connections.entries);
  assert.equal(s.connections.capacity, 4096, "--max-conns is shared out between the workers");

  // A node-set change reaches both workers: node1 deleted, no new connection goes to it.
  const del = await tb.exec("client", "curl", [
    ...["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE"],
    ...["-H", `authorization: Bearer ${ADMIN_TOKEN}`, `http://${ADMIN}/nodes/node1`],
  ]);
  assert.equal(del.stdout, "200", "node1 drains its connections");
  const MORE = 40;
  client.send(`open ${MORE}`);
  const newPorts: number[] = [];
  for (let id = CONNS; id < CONNS + MORE; id++) {
    newPorts.push(
      (await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`)).port as number,
    );
  }
  assert.ok(
    !nodes[0]!.events.some((e) => newPorts.includes(e.sport as number)),
    "node1 got a new connection",
  );
  const after = await statsWhen(
    (x) => x.connections.scheduled === CONNS + MORE,
    "the new connections counted",
  );
  // Both workers scheduled some of them (so both applied the deletion).
  assert.ok(
    after.io.perWorker.every((w, i) => w.scheduled > per[i]!.scheduled),
    JSON.stringify(after.io.perWorker),
  );
  assert.equal(after.drops.no_conn ?? 0, 0);
  const metrics = (await tb.exec("client", "curl", ["-s", `http://${ADMIN}/metrics`])).stdout;
  assert.match(metrics, /sc_dispatcher_worker_packets_received_total\{worker="0"\} [1-9]/);
  assert.match(metrics, /sc_dispatcher_worker_packets_received_total\{worker="1"\} [1-9]/);
  client.send("close");
  client.child.stdin!.end();
  await client.exited;
  assert.equal(await d.stop(), 0);
});

test("--workers 1 forwards on one queue of a multi-queue device too", async () => {
  await makeMultiQueueOnce();
  await answeringNodes();
  const d = start("dispatcher", dispatcherArgs("1"), "dispatcher(workers 1)");
  const ready = await d.waitFor((e) => e.ready === true, "ready");
  assert.equal(ready.workers, 1);
  const client = start("client", [FAKE_CLIENT], "client(workers 1)");
  client.send("open 20");
  for (let id = 0; id < 20; id++)
    await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`);
  const s = await statsWhen((x) => x.connections.scheduled === 20, "20 connections");
  assert.equal(s.io.workers, 1);
  client.send("close");
  client.child.stdin!.end();
  await client.exited;
  assert.equal(await d.stop(), 0);
});
