import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { AdminGuard, adminAuthFrom, type AdminAuth } from "../sc/auth/admin-access.js";
import { ClusterSecret, type ClusterTrust } from "../sc/auth/secret.js";
import { GUE_PORT, TCP_ACK, TCP_SYN } from "../sc/wire/index.js";
import { buildAdmin } from "./admin.js";
import { DispatcherControl, type NodeView, type DispatcherStats } from "./control.js";
import { Forwarder } from "./forwarder.js";
import { createMetrics } from "./metrics.js";
import { DISPATCHER, Recorder, VIP, clientPacket, nodeAddr } from "./testing.js";

/** An open API (--insecure-dev) unless a test asks for another policy. */
function setup(auth: AdminAuth = { kind: "open" }, names: string[] = []) {
  const out = new Recorder();
  const f = new Forwarder(
    { vip: VIP, port: 80, scheduler: "rr", encap: "ipv4", localAddr: DISPATCHER, maxConnections: 1024 },
    out,
  );
  const logs: string[] = [];
  const control = new DispatcherControl(f, { log: (m, fields) => logs.push(`${m} ${fields?.node ?? ""}`) });
  const guard = new AdminGuard(auth, names);
  const app = buildAdmin(control, createMetrics(control), guard);
  const send = (sport: number, flags: number) => {
    const p = clientPacket({ sport, flags });
    f.input(p, 0, p.length, 0);
  };
  return { out, f, control, app, send, logs, guard };
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
    const { node } = control.putNode("n", { addr: "127.0.0.1", admin: "http://127.0.0.1:9" });
    assert.equal(node.healthy, false);
    assert.equal(node.eligible, false);
    await control.health!.round();
    assert.equal(control.node("n").health!.checks, 1);
    assert.equal(control.node("n").healthy, false);
    assert.match(control.node("n").health!.lastError!, /refused/);
    const p = clientPacket({ sport: 1, flags: TCP_SYN });
    f.input(p, 0, p.length, 0);
    assert.equal(f.dropCount("no_node"), 1);
    assert.equal(nodeAddr(1), 0xc612000b);
  } finally {
    await control.stop();
  }
});

const secret = ClusterSecret.parse("s".repeat(40)) as ClusterSecret;
const withSecret: ClusterTrust = { kind: "secret", secret };

test("changes need the bearer token of the cluster secret; reads stay open", async () => {
  const { app, control, guard } = setup(adminAuthFrom(withSecret, undefined));
  try {
    const put = (headers: Record<string, string>) =>
      app.inject({ method: "PUT", url: "/nodes/n1", payload: { addr: "198.18.0.11" }, headers });
    const none = await put({});
    assert.equal(none.statusCode, 401);
    assert.match(none.headers["www-authenticate"] as string, /^Bearer /);
    assert.match(
      none.json<{ error: string }>().error,
      /Authorization: Bearer <token>.*sc-cluster secret --admin-token/,
    );
    const wrong = await put({ authorization: `Bearer ${"0".repeat(64)}` });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.json<{ error: string }>().error, /wrong admin token/);
    assert.equal((await put({ authorization: secret.adminToken() })).statusCode, 401, "no Bearer scheme");
    // Another plane's key is not the admin token.
    assert.equal(
      (await put({ authorization: `Bearer ${secret.key("sc-link").toString("hex")}` })).statusCode,
      401,
    );
    for (const m of ["DELETE", "PUT"] as const) {
      const r = await app.inject({
        method: m,
        url: m === "PUT" ? "/scheduler" : "/nodes/n1",
        payload: { scheduler: "rr" },
      });
      assert.equal(r.statusCode, 401, `${m} without a token`);
    }
    assert.equal(control.nodes().length, 0, "nothing changed");
    assert.equal(control.scheduler, "rr");

    const ok = await put({ authorization: `bearer ${secret.adminToken()}` });
    assert.equal(ok.statusCode, 201, ok.body);
    const sch = await app.inject({
      method: "PUT",
      url: "/scheduler",
      payload: { scheduler: "mh" },
      headers: { authorization: `Bearer ${secret.adminToken()}` },
    });
    assert.equal(sch.statusCode, 200);
    assert.equal(control.scheduler, "mh");

    for (const url of ["/healthz", "/stats", "/metrics", "/nodes", "/nodes/n1", "/scheduler"])
      assert.equal((await app.inject({ method: "GET", url })).statusCode, 200, url);
    assert.deepEqual(guard.refused, { host: 0, read_only: 0, no_token: 4, bad_token: 2 });
    const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
    assert.match(text, /^sc_dispatcher_admin_refused_total\{reason="no_token"\} 4$/m);
    assert.match(text, /^sc_dispatcher_admin_refused_total\{reason="bad_token"\} 2$/m);
  } finally {
    await app.close();
  }
});

test("an own --admin-token-file token replaces the secret's; without any token the API is read-only", async () => {
  const own = "t".repeat(48);
  const a = setup(adminAuthFrom(withSecret, own));
  const b = setup(adminAuthFrom(null, undefined));
  try {
    const put = (app: typeof a.app, token: string | undefined) =>
      app.inject({
        method: "PUT",
        url: "/nodes/n1",
        payload: { addr: "198.18.0.11" },
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      });
    assert.equal((await put(a.app, secret.adminToken())).statusCode, 401);
    assert.equal((await put(a.app, own)).statusCode, 201);

    const ro = await put(b.app, undefined);
    assert.equal(ro.statusCode, 403);
    assert.match(
      ro.json<{ error: string }>().error,
      /read-only: no admin token is configured.*--secret-file FILE.*--admin-token-file FILE/,
    );
    assert.equal((await put(b.app, own)).statusCode, 403);
    assert.equal((await b.app.inject({ method: "DELETE", url: "/nodes/x" })).statusCode, 403);
    assert.equal(b.control.nodes().length, 0);
    assert.equal((await b.app.inject({ method: "GET", url: "/nodes" })).statusCode, 200);
    assert.equal(b.guard.refused.read_only, 3);
  } finally {
    await a.app.close();
    await b.app.close();
  }
});

test("Host check: IP literals, localhost and --admin-host names; others get 421 before anything runs", async () => {
  const { app, control, guard } = setup({ kind: "open" }, ["admin.example"]);
  try {
    const hosts: [string, number][] = [
      ["198.18.0.1:9100", 200],
      ["127.0.0.1", 200],
      ["[::1]:9100", 200],
      ["localhost:9100", 200],
      ["LOCALHOST", 200],
      ["admin.example:9100", 200],
      ["Admin.Example", 200],
      ["attacker.example:9100", 421],
      ["admin.example.attacker.example", 421],
      ["198.18.0.1.nip.io", 421],
      ["localhost.", 421],
      ["[::1", 421],
      ["::1", 421],
      ["localhost:99999999", 421],
    ];
    for (const [host, code] of hosts) {
      const r = await app.inject({ method: "GET", url: "/healthz", headers: { host } });
      assert.equal(r.statusCode, code, `Host: ${host}`);
    }
    const r = await app.inject({
      method: "PUT",
      url: "/nodes/n1",
      payload: { addr: "198.18.0.11" },
      headers: { host: "attacker.example" },
    });
    assert.equal(r.statusCode, 421);
    assert.match(r.json<{ error: string }>().error, /DNS rebinding/);
    assert.equal(control.nodes().length, 0);
    assert.equal(guard.refused.host, 8);

    // The same over a real connection (a browser that rebinds attacker.example to us).
    await app.listen({ host: "127.0.0.1", port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const real = (host: string, method = "GET") =>
      new Promise<number>((resolve, reject) =>
        request({ host: "127.0.0.1", port, path: "/nodes", method, headers: { host } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        })
          .on("error", reject)
          .end(),
      );
    assert.equal(await real(`attacker.example:${port}`), 421);
    assert.equal(await real(`127.0.0.1:${port}`), 200);
    assert.equal(await real(`localhost:${port}`), 200);
    assert.equal(guard.refused.host, 9);
  } finally {
    await app.close();
  }
});

test("a change over a real connection: refused without the token, done with it", async () => {
  const { app, control } = setup(adminAuthFrom(withSecret, undefined));
  try {
    await app.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const put = (headers: Record<string, string>) =>
      fetch(`${base}/nodes/n1`, {
        method: "PUT",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ addr: "198.18.0.11", weight: 2 }),
      });
    assert.equal((await put({})).status, 401);
    assert.equal((await put({ authorization: "Bearer nope" })).status, 401);
    assert.equal(control.nodes().length, 0);
    assert.equal((await put({ authorization: `Bearer ${secret.adminToken()}` })).status, 201);
    assert.equal(control.node("n1").weight, 2);
  } finally {
    await app.close();
  }
});
