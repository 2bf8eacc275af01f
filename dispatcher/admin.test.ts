import { test } from "node:test";
import assert from "node:assert/strict";
import { GUE_PORT, TCP_ACK, TCP_SYN } from "../sc/wire/index.js";
import { buildAdmin } from "./admin.js";
import { DispatcherControl, type NodeView, type DispatcherStats } from "./control.js";
import { Forwarder } from "./forwarder.js";
import { createMetrics } from "./metrics.js";
import { DISPATCHER, Recorder, VIP, clientPacket, nodeAddr } from "./testing.js";

function setup() {
  const out = new Recorder();
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler: "rr", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 1024 },
    out,
  );
  const logs: string[] = [];
  const control = new DispatcherControl(f, { log: (m, fields) => logs.push(`${m} ${fields?.node ?? ""}`) });
  const app = buildAdmin(control, createMetrics(control));
  const send = (sport: number, flags: number) => {
    const p = clientPacket({ sport, flags });
    f.input(p, 0, p.length, 0);
  };
  return { out, f, control, app, send, logs };
}

test("PUT/GET/DELETE /nodes manage membership; established connections stay on their node", async () => {
  const { app, out, send, logs } = setup();
  try {
    for (const k of [1, 2]) {
      const r = await app.inject({
        method: "PUT",
        url: `/nodes/node${k}`,
        payload: { addr: `198.18.0.1${k}` },
      });
      assert.equal(r.statusCode, 201, r.body);
      const v = r.json<NodeView>();
      assert.equal(v.addr, `198.18.0.1${k}`);
      assert.equal(v.port, GUE_PORT);
      assert.equal(v.weight, 1);
      assert.equal(v.eligible, true);
    }
    for (let p = 0; p < 4; p++) {
      send(p, TCP_SYN);
      send(p, TCP_ACK);
    }
    const home = out.toNodes.filter((_, i) => i % 2 === 0).map((s) => s.node);
    assert.deepEqual(home, ["node1", "node2", "node1", "node2"]);

    // Change weight, add node3, delete node1: nothing established moves.
    let r = await app.inject({ method: "PUT", url: "/nodes/node2", payload: { weight: 3 } });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json<NodeView>().weight, 3);
    assert.equal(r.json<NodeView>().addr, "198.18.0.12");
    r = await app.inject({
      method: "PUT",
      url: "/nodes/node3",
      payload: { addr: "198.18.0.13", port: 7000 },
    });
    assert.equal(r.statusCode, 201);
    r = await app.inject({ method: "DELETE", url: "/nodes/node1" });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json<NodeView>().draining, true);
    assert.deepEqual(r.json<NodeView>().connections, { active: 2, inactive: 0 });

    out.clear();
    for (let p = 0; p < 4; p++) send(p, TCP_ACK);
    assert.deepEqual(
      out.toNodes.map((s) => s.node),
      home,
    );
    out.clear();
    for (let p = 10; p < 18; p++) send(p, TCP_SYN);
    assert.ok(out.toNodes.every((s) => s.node !== "node1"));

    const list = (await app.inject({ method: "GET", url: "/nodes" })).json<NodeView[]>();
    assert.deepEqual(
      list.map((n) => [n.id, n.eligible, n.draining]),
      [
        ["node1", false, true],
        ["node2", true, false],
        ["node3", true, false],
      ],
    );
    // Deleting a node with no connections removes it at once.
    assert.equal((await app.inject({ method: "DELETE", url: "/nodes/node3" })).statusCode, 200);
    assert.equal((await app.inject({ method: "GET", url: "/nodes/node3" })).json<NodeView>().draining, true);
    assert.ok(logs.includes("node added node1") && logs.includes("node draining node1"));
  } finally {
    await app.close();
  }
});

test("bad requests get 4xx with a message", async () => {
  const { app } = setup();
  try {
    const cases: [string, string, unknown, number][] = [
      ["PUT", "/nodes/x", {}, 400], // new node without addr
      ["PUT", "/nodes/x", { addr: "999.1.1.1" }, 400],
      ["PUT", "/nodes/x", { addr: "198.18.0.11", weight: -1 }, 400],
      ["PUT", "/nodes/x", { addr: "198.18.0.11", weight: 70000 }, 400],
      ["PUT", "/nodes/x", { addr: "198.18.0.11", admin: "ftp://x" }, 400],
      ["PUT", "/nodes/x", { addr: "198.18.0.11", extra: 1 }, 400],
      ["PUT", "/nodes/bad%20id", { addr: "198.18.0.11" }, 400],
      ["GET", "/nodes/nope", undefined, 404],
      ["DELETE", "/nodes/nope", undefined, 404],
      ["PUT", "/scheduler", { scheduler: "fifo" }, 400],
    ];
    for (const [method, url, payload, code] of cases) {
      const r = await app.inject({ method: method as "PUT", url, payload: payload as object });
      assert.equal(r.statusCode, code, `${method} ${url} ${JSON.stringify(payload)}: ${r.body}`);
      assert.ok(typeof r.json<{ error: string }>().error === "string");
    }
    const bad = await app.inject({
      method: "PUT",
      url: "/nodes/x",
      headers: { "content-type": "application/json" },
      payload: "{not json",
    });
    assert.equal(bad.statusCode, 400);
  } finally {
    await app.close();
  }
});

test("/stats, /metrics and /healthz report forwarding, connections and drops", async () => {
  const { app, send, f } = setup();
  try {
    await app.inject({ method: "PUT", url: "/nodes/a", payload: { addr: "198.18.0.11" } });
    await app.inject({ method: "PUT", url: "/nodes/b", payload: { addr: "198.18.0.12", weight: 0 } });
    send(1, TCP_SYN);
    send(1, TCP_ACK);
    send(2, TCP_SYN);
    const wrong = clientPacket({ sport: 3, flags: TCP_SYN, dport: 22 });
    f.input(wrong, 0, wrong.length, 0);

    const s = (await app.inject({ method: "GET", url: "/stats" })).json<DispatcherStats>();
    assert.equal(s.vip, "198.18.100.1");
    assert.equal(s.scheduler, "rr");
    assert.deepEqual(s.packets, {
      received: 4,
      bytesReceived: 160,
      forwarded: 3,
      bytesForwarded: 120,
    });
    assert.equal(s.drops.wrong_port, 1);
    assert.equal(s.connections.entries, 2);
    assert.equal(s.connections.byState.established, 1);
    assert.equal(s.connections.byState.syn_recv, 1);
    assert.equal(s.nodes[0]!.packets, 3);
    assert.equal(s.nodes[1]!.eligible, false);

    const m = await app.inject({ method: "GET", url: "/metrics" });
    assert.equal(m.statusCode, 200);
    assert.match(m.headers["content-type"] as string, /text\/plain/);
    const text = m.body;
    assert.match(text, /^sc_dispatcher_packets_forwarded_total\{node="a"\} 3$/m);
    assert.match(text, /^sc_dispatcher_packets_forwarded_total\{node="b"\} 0$/m);
    assert.match(text, /^sc_dispatcher_bytes_forwarded_total\{node="a"\} 120$/m);
    assert.match(text, /^sc_dispatcher_connections\{node="a",state="active"\} 1$/m);
    assert.match(text, /^sc_dispatcher_connections\{node="a",state="inactive"\} 1$/m);
    assert.match(text, /^sc_dispatcher_conn_table_size 2$/m);
    assert.match(text, /^sc_dispatcher_drops_total\{reason="wrong_port"\} 1$/m);
    assert.match(text, /^sc_dispatcher_conn_evictions_total\{reason="half_open"\} 0$/m);
    assert.match(text, /^sc_dispatcher_node_weight\{node="b"\} 0$/m);
    assert.match(text, /^process_cpu_seconds_total /m);
    // Scraping twice does not double counters.
    const again = (await app.inject({ method: "GET", url: "/metrics" })).body;
    assert.match(again, /^sc_dispatcher_packets_forwarded_total\{node="a"\} 3$/m);

    const h = await app.inject({ method: "GET", url: "/healthz" });
    assert.deepEqual(h.json(), { status: "ok", scheduler: "rr", nodes: 2, eligible: 1 });

    const sch = await app.inject({ method: "PUT", url: "/scheduler", payload: { scheduler: "mh" } });
    assert.deepEqual(sch.json(), { scheduler: "mh" });
    assert.equal(f.schedulerName, "mh");
  } finally {
    await app.close();
  }
});

test("nodes with an admin URL are health-checked through the control plane", async () => {
  const out = new Recorder();
  const f = new Forwarder({ vip: VIP, port: 80, scheduler: "rr", encap: "gue" }, out);
  const control = new DispatcherControl(f, {
    health: { intervalMs: 1000, timeoutMs: 100, fall: 1, rise: 1 },
  });
  try {
    // Nothing listens on this loopback port: the node starts down and stays down.
    const { node } = control.putNode("n", { addr: "198.18.0.11", admin: "http://127.0.0.1:9" });
    assert.equal(node.healthy, false);
    assert.equal(node.eligible, false);
    await control.health!.round();
    assert.equal(control.node("n").health!.checks, 1);
    assert.equal(control.node("n").healthy, false);
    assert.match(control.node("n").health!.lastError!, /ECONNREFUSED/);
    const p = clientPacket({ sport: 1, flags: TCP_SYN });
    f.input(p, 0, p.length, 0);
    assert.equal(f.dropCount("no_node"), 1);
    assert.equal(nodeAddr(1), 0xc612000b);
  } finally {
    await control.stop();
  }
});
