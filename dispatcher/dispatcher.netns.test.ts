// The dispatcher in a testbed: kernel TCP clients in the client namespace connect to the
// VIP, the dispatcher (`sc-cluster dispatcher`, the real CLI) forwards their packets in GUE to
// stand-in nodes (fake-node-main.ts: GUE receiver + stateless handshake answers through
// their TUN with the VIP as source), which report every inner packet they receive.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { destroyTestbed, testPrefix, createTestbed, type Testbed } from "../testbed/index.js";

const CLI = fileURLToPath(new URL("../../bin/sc-cluster.js", import.meta.url));
const FAKE_NODE = fileURLToPath(new URL("./fake-node-main.js", import.meta.url));
const FAKE_CLIENT = fileURLToPath(new URL("./fake-client-main.js", import.meta.url));
const P = testPrefix("d");
const ADMIN = "198.18.0.1:9100";
const NODES = 3;
/** The admin API's changes need a bearer token (here its own file, --admin-token-file). */
const ADMIN_TOKEN = randomBytes(24).toString("hex");
const TOKEN_FILE = join(tmpdir(), `${P}admin-token`);

type Event = Record<string, unknown>;

/** A child process whose stdout (and optionally stderr) carries JSON lines, awaited as events. */
class Proc extends EventEmitter {
  readonly events: Event[] = [];
  readonly errors: Event[] = [];
  private waiters: { pred: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  private stderrText = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    super();
    this.exited = new Promise((resolve) => child.on("close", (code) => resolve(code)));
    const feed = (list: Event[]) => (line: string) => {
      let e: Event;
      try {
        e = JSON.parse(line) as Event;
      } catch {
        this.stderrText += line + "\n";
        return;
      }
      list.push(e);
      this.emit("event", e);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(e)) return true;
        w.resolve(e);
        return false;
      });
    };
    createInterface({ input: child.stdout! }).on("line", feed(this.events));
    createInterface({ input: child.stderr! }).on("line", feed(this.errors));
  }

  /** The first event (past or future, stdout or stderr) matching pred; fails after timeoutMs. */
  waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = 10_000): Promise<Event> {
    const seen = [...this.events, ...this.errors].find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderrText}`)),
        timeoutMs,
      );
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}) before ${what}; stderr: ${this.stderrText}`));
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

function nodeIp(k: number): string {
  return `198.18.0.${10 + k}`;
}

/** Fake nodes; they take GUE from the dispatcher's address only (their default --allow). */
async function startNodes(answer: boolean): Promise<Proc[]> {
  const nodes: Proc[] = [];
  for (let k = 1; k <= NODES; k++) {
    const p = start(`node${k}`, [FAKE_NODE, "--ip", nodeIp(k), ...(answer ? ["--answer"] : [])], `node${k}`);
    nodes.push(p);
  }
  for (const p of nodes) await p.waitFor((e) => e.ready === true, "ready");
  return nodes;
}

async function startDispatcher(scheduler: string, nodeArgs: string[], extra: string[] = []): Promise<Proc> {
  const args = [CLI, "dispatcher", "--scheduler", scheduler, "--admin", ADMIN, ...extra];
  args.push("--admin-token-file", TOKEN_FILE);
  for (const n of nodeArgs) args.push("--node", n);
  const d = start("dispatcher", args, `dispatcher(${scheduler})`);
  await d.waitFor((e) => e.ready === true, "ready");
  return d;
}

/** The admin API, called from the client namespace as a user would. */
async function admin(
  method: string,
  path: string,
  body?: object,
): Promise<{ status: number; json: unknown }> {
  const args = ["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, `http://${ADMIN}${path}`];
  args.push("-H", `authorization: Bearer ${ADMIN_TOKEN}`);
  if (body) args.push("-H", "content-type: application/json", "--data", JSON.stringify(body));
  const r = await tb.exec("client", "curl", args);
  const i = r.stdout.lastIndexOf("\n");
  const text = r.stdout.slice(0, i);
  return { status: Number(r.stdout.slice(i + 1)), json: text ? JSON.parse(text) : null };
}

/** Resolves once cond() holds, checking after every event of any of procs. */
function until(procs: Proc[], cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!cond()) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      for (const p of procs) p.off("event", check);
    };
    for (const p of procs) p.on("event", check);
  });
}

/** Source ports each node saw (from its packet reports). */
/**
 * Index of the node that saw each client port. A node's report of a SYN can come after the
 * client's "connected" (two processes, two pipes), so wait for it rather than read at once.
 */
async function ownersOf(nodes: Proc[], ports: number[]): Promise<number[]> {
  const owners: number[] = [];
  for (const port of ports) {
    const e = await Promise.any(nodes.map((n) => n.waitFor((x) => x.sport === port, `port ${port}`, 5000)));
    owners.push(nodes.findIndex((n) => n.events.includes(e)));
  }
  return owners;
}

/** Packets with payload a node saw from a client port. */
function dataOf(node: Proc, port: number): number {
  return node.events.filter((e) => e.sport === port && (e.len as number) > 0).length;
}

function portsByNode(nodes: Proc[]): Set<number>[] {
  return nodes.map(
    (n) => new Set(n.events.filter((e) => typeof e.sport === "number").map((e) => e.sport as number)),
  );
}

async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
}

before(async () => {
  writeFileSync(TOKEN_FILE, ADMIN_TOKEN, { mode: 0o600 });
  tb = createTestbed({ prefix: P, nodes: NODES });
  await tb.up();
});

// A test that fails half-way still stops its processes before the next one starts (they hold
// the hosts' TUN devices and ports).
afterEach(async () => {
  await stopAll();
});

after(async () => {
  await stopAll();
  await destroyTestbed(P);
  rmSync(TOKEN_FILE, { force: true });
});

test("each scheduler spreads new connections (kernel SYNs from the client) as it promises", async () => {
  const nodes = await startNodes(false);
  const specs = [1, 2, 3].map((k) => `node${k}=${nodeIp(k)}`);
  const weighted = [`node1=${nodeIp(1)},weight=3`, `node2=${nodeIp(2)}`, `node3=${nodeIp(3)}`];
  const N = 90;
  // [scheduler, node specs, check of the per-node connection counts, extra CLI options]
  const cases: [string, string[], (c: number[]) => void, string[]?][] = [
    ["rr", specs, (c) => assert.deepEqual(c, [30, 30, 30])],
    // The same through the batched UDP socket instead of the TUN device.
    ["rr", specs, (c) => assert.deepEqual(c, [30, 30, 30]), ["--output", "udp"]],
    // And from a raw IP socket (the outer packets of --output tun, sent with sendmmsg).
    ["rr", specs, (c) => assert.deepEqual(c, [30, 30, 30]), ["--output", "raw"]],
    ["wrr", weighted, (c) => assert.deepEqual(c, [54, 18, 18])],
    ["lc", specs, (c) => assert.deepEqual(c, [30, 30, 30])],
    ["wlc", weighted, (c) => assert.deepEqual(c, [54, 18, 18])],
    // One client address: source hashing puts all its connections on one node.
    ["sh", specs, (c) => assert.deepEqual([...c].sort(), [0, 0, 90])],
    // Maglev over address and port: spread, roughly even.
    [
      "mh",
      specs,
      (c) =>
        assert.ok(
          c.every((x) => x >= 15 && x <= 45),
          String(c),
        ),
    ],
  ];
  for (const [scheduler, nodeArgs, check, extra] of cases) {
    for (const n of nodes) n.events.length = 0;
    const d = await startDispatcher(scheduler, nodeArgs, extra);
    const client = start("client", [FAKE_CLIENT], `client(${scheduler})`);
    client.send(`open ${N}`);
    const opened = new Set<number>();
    for (let id = 0; id < N; id++) {
      const e = await client.waitFor((x) => x.event === "open" && x.id === id, `open ${id}`);
      opened.add(e.port as number);
    }
    // Every connection's SYN reaches exactly one node.
    const total = () => portsByNode(nodes).reduce((s, p) => s + p.size, 0);
    await until(nodes, () => total() >= N, `${N} connections at the nodes (${scheduler})`);
    const ports = portsByNode(nodes);
    assert.equal(total(), N, `${scheduler}: ${ports.map((p) => p.size)}`);
    const union = new Set(ports.flatMap((p) => [...p]));
    assert.deepEqual(
      [...union].sort(),
      [...opened].sort(),
      `${scheduler}: every connection, each on one node`,
    );
    check(ports.map((p) => p.size));
    assert.ok(
      nodes.every((n) => n.events.every((e) => e.from === undefined || e.from === "198.18.0.1")),
      "GUE comes from the dispatcher's address",
    );
    const stats = (await admin("GET", "/stats")).json as {
      connections: { scheduled: number };
      drops: object;
    };
    assert.equal(stats.connections.scheduled, N);
    client.send("close");
    client.child.stdin!.end();
    await client.exited;
    assert.equal(await d.stop(), 0);
  }
  await stopAll();
});

test("a stalled node keeps its connections; a killed one leaves scheduling within 3 s and its clients get a RST", async (t) => {
  const nodes = await startNodes(true);
  const d = await startDispatcher(
    "rr",
    [1, 2, 3].map((k) => `node${k}=${nodeIp(k)},admin=http://${nodeIp(k)}:9000`),
  );
  for (let k = 1; k <= NODES; k++) {
    await d.waitFor((e) => e.msg === "node up" && e.node === `node${k}`, `node${k} up`);
  }
  const client = start("client", [FAKE_CLIENT]);
  client.send("open 3");
  const portOf: number[] = [];
  for (let id = 0; id < 3; id++) {
    portOf[id] = (await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`))
      .port as number;
  }
  // Direct return worked: the fake nodes' SYN-ACKs (source VIP) established the connections.
  const owner = await ownersOf(nodes, portOf);
  assert.deepEqual([...owner].sort(), [0, 1, 2]);
  const victim = owner.indexOf(0); // connection id on node1
  const stalled = owner.indexOf(1); // connection id on node2

  // node2 stalls (SIGSTOP: its kernel still accepts the checks' connections, nobody answers):
  // down, not gone. Its client keeps talking meanwhile and is not reset (issue 14 item 5).
  client.send(`write ${stalled}`);
  await nodes[1]!.waitFor((e) => e.sport === portOf[stalled] && (e.len as number) > 0, "request on node2");
  nodes[1]!.child.kill("SIGSTOP");
  const stallDown = await d.waitFor((e) => e.msg === "node down" && e.node === "node2", "node2 down", 5000);
  assert.equal(stallDown.reason, "timeout");
  client.send(`write ${stalled}`);
  // Forwarded into node2's socket buffer while it is stopped (no event to wait on: poll).
  const deadline = Date.now() + 5000;
  while (((await admin("GET", "/stats")).json as { forwardedToDownNodes: number }).forwardedToDownNodes < 1) {
    assert.ok(
      Date.now() < deadline,
      "the write on node2's connection was not forwarded while node2 was down",
    );
  }
  nodes[1]!.child.kill("SIGCONT");
  // The data written while node2 was down reached it (forwarded, not reset).
  await until(
    [nodes[1]!],
    () => dataOf(nodes[1]!, portOf[stalled]!) >= 2,
    "node2 got the data sent while it was down",
  );
  const ups = () => d.errors.filter((e) => e.msg === "node up" && e.node === "node2").length;
  await until([d], () => ups() >= 2, "node2 up again", 5000);
  assert.ok(!client.events.some((e) => e.event === "error"), "no connection was reset");
  const afterStall = (await admin("GET", "/stats")).json as {
    forwardedToDownNodes: number;
    rstsSent: number;
    nodes: { id: string; downForwarded: number }[];
  };
  assert.equal(afterStall.rstsSent, 0);
  assert.ok(afterStall.forwardedToDownNodes >= 1);
  assert.ok(afterStall.nodes.find((n) => n.id === "node2")!.downForwarded >= 1);

  const killedAt = performance.now();
  await nodes[0]!.stop("SIGKILL");
  // Its admin port now refuses: gone, not merely down, so its connections are reset at once.
  const down = await d.waitFor((e) => e.msg === "node gone" && e.node === "node1", "node1 gone", 5000);
  const detectMs = performance.now() - killedAt;
  assert.ok(detectMs < 3000, `node1 left scheduling after ${Math.round(detectMs)} ms`);
  t.diagnostic(`node1 left scheduling ${Math.round(detectMs)} ms after SIGKILL`);
  assert.equal(down.reason, "refused");

  // New connections avoid node1.
  client.send("open 6");
  for (let id = 3; id < 9; id++)
    await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`);
  const nodesView = (await admin("GET", "/nodes")).json as {
    id: string;
    scheduled: number;
    healthy: boolean;
    state: string;
  }[];
  assert.deepEqual(
    nodesView.map((n) => [n.id, n.scheduled, n.healthy, n.state]),
    [
      ["node1", 1, false, "gone"],
      ["node2", 4, true, "up"],
      ["node3", 4, true, "up"],
    ],
  );

  // The client on node1, idle since its last write, is reset without writing anything: once
  // node1 is gone the dispatcher tickles its connection, and the client's answer gets the RST
  // (a client waiting for an answer would otherwise wait forever: issue 22).
  const err = await client.waitFor(
    (e) => e.event === "error" && e.id === victim,
    "RST on the dead node's idle connection",
  );
  const resetMs = performance.now() - killedAt;
  assert.equal(err.code, "ECONNRESET");
  assert.ok(resetMs < 5000, `reset ${Math.round(resetMs)} ms after the kill`);
  t.diagnostic(`the idle client on the dead node got ECONNRESET ${Math.round(resetMs)} ms after the kill`);
  const tickled = (await admin("GET", "/stats")).json as { ticklesSent: number };
  assert.equal(tickled.ticklesSent, 1);
  // The others keep working: their data reaches their nodes.
  const others = [0, 1, 2].filter((id) => id !== victim);
  const seen = others.map((id) => dataOf(nodes[owner[id]!]!, portOf[id]!));
  client.send(`write ${others.join(" ")}`);
  for (const [i, id] of others.entries()) {
    const node = nodes[owner[id]!]!;
    await until([node], () => dataOf(node, portOf[id]!) > seen[i]!, `data of ${id} on its node`);
  }
  assert.ok(!client.events.some((e) => e.event === "error" && e.id !== victim));
  const stats = (await admin("GET", "/stats")).json as { drops: { node_gone: number }; rstsSent: number };
  assert.ok(stats.drops.node_gone >= 1 && stats.rstsSent >= 1);
  client.send("close");
  client.child.stdin!.end();
  await client.exited;
  await stopAll();
});

test("membership and weight changes through the admin API keep established flows on their node", async () => {
  const nodes = await startNodes(true);
  const d = await startDispatcher("wrr", [`node1=${nodeIp(1)}`, `node2=${nodeIp(2)}`]);
  const client = start("client", [FAKE_CLIENT]);
  client.send("open 4");
  const portOf: number[] = [];
  for (let id = 0; id < 4; id++) {
    portOf[id] = (await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`))
      .port as number;
  }
  const owner = await ownersOf(nodes, portOf);
  assert.deepEqual([...owner].sort(), [0, 0, 1, 1]);

  // node3 joins with weight 4, node2 is deleted (drains), node1 drops to weight 1.
  assert.equal((await admin("PUT", "/nodes/node3", { addr: nodeIp(3), weight: 4 })).status, 201);
  const del = await admin("DELETE", "/nodes/node2");
  assert.equal(del.status, 200);
  assert.equal((del.json as { draining: boolean }).draining, true);
  assert.equal((await admin("PUT", "/nodes/node1", { weight: 1 })).status, 200);

  // Data on the established connections still reaches the node that has them.
  client.send(`write 0 1 2 3`);
  for (let id = 0; id < 4; id++) {
    const k = owner[id]!;
    await nodes[k]!.waitFor(
      (e) => e.sport === portOf[id] && (e.len as number) > 0,
      `data of ${id} on node${k + 1}`,
    );
  }
  for (const n of nodes) {
    // Nothing of an old connection landed anywhere else.
    const stray = n.events.filter((e) => portOf.includes(e.sport as number));
    assert.ok(stray.every((e) => owner[portOf.indexOf(e.sport as number)] === nodes.indexOf(n)));
  }
  // New connections: node1 weight 1, node3 weight 4, never node2.
  client.send("open 10");
  for (let id = 4; id < 14; id++)
    await client.waitFor((e) => e.event === "connected" && e.id === id, `connected ${id}`);
  const view = (await admin("GET", "/nodes")).json as {
    id: string;
    scheduled: number;
    draining: boolean;
    connections: { active: number };
  }[];
  assert.deepEqual(
    view.map((n) => [n.id, n.scheduled, n.draining]),
    [
      ["node1", 2 + 2, false],
      ["node2", 2, true],
      ["node3", 8, false],
    ],
  );
  assert.equal(view[1]!.connections.active, 2);
  client.send("close");
  client.child.stdin!.end();
  await client.exited;
  assert.equal(await d.stop(), 0);
  await stopAll();
});
