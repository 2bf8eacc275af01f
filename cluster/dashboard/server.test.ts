// The dashboard server on loopback, with a stand-in cluster: the page's files, the API, the
// event stream, the replay's life cycle and the guards against other sites driving it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  allowedHostNames,
  DEFAULT_REPLAY,
  initialReplayState,
  parseListen,
  startDashboard,
  type DashboardCluster,
  type ReplayState,
} from "./server.js";
import type { Snapshot } from "./snapshot.js";

function standIn(
  options: { demo?: boolean; loadgenScript?: string; nodes?: number; nodeError?: string } = {},
): DashboardCluster & { polls: number } {
  const ips: Record<string, string> = {
    client: "198.18.0.101",
    dispatcher: "198.18.0.1",
    origin: "198.18.0.2",
  };
  const nodes = Array.from({ length: options.nodes ?? 2 }, (_, i) => `node${i + 1}`);
  nodes.forEach((h, i) => (ips[h] = `198.18.0.${11 + i}`));
  let clones = 0;
  const c = {
    polls: 0,
    prefix: "sct-x-",
    vip: "198.18.100.1",
    vipUrl: "http://198.18.100.1/",
    originUrl: "http://198.18.0.2:8000",
    site: "/run/x/root",
    plan: { mode: "sc", scheduler: "wlc" },
    demo: options.demo ? { trace: "/run/x/trace.log", manifest: "/run/x/manifest.jsonl" } : undefined,
    nodes,
    testbed: {
      plan: { expose: false },
      host: (name: string) => ({ ip: ips[name]!, netns: `sct-x-${name}` }),
      spawn: (_host: string, _cmd: string, _args: string[], o: { stdio: ["ignore", "pipe", "pipe"] }) =>
        spawn(process.execPath, ["-e", options.loadgenScript ?? ""], o),
    },
    process: (host: string) => ({
      ip: ips[host]!,
      ...(host === "origin" ? {} : { admin: `http://${ips[host]}:${host === "dispatcher" ? 9100 : 9080}` }),
    }),
    async json<T>(url: string): Promise<T> {
      if (url.includes(":9100")) return { scheduler: "wlc", nodes: [] } as T;
      c.polls++;
      if (options.nodeError !== undefined) throw new Error(options.nodeError);
      clones += 5;
      return {
        http: { responses: clones, responseBytes: 0 },
        sc: { clonesSent: clones, clonesReceived: 0 },
      } as T;
    },
  };
  return c;
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    })
      .on("error", reject)
      .end();
  });
}

/** Reads server-sent events until `until` accepts one; returns it. */
function nextEvent<T>(url: string, name: string, until: (data: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}api/events`, (res: IncomingMessage) => {
      let buf = "";
      res.on("data", (b: Buffer) => {
        buf += b.toString();
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === name && data !== undefined && until(JSON.parse(data) as T)) {
            req.destroy();
            resolve(JSON.parse(data) as T);
            return;
          }
        }
      });
    });
    req.on("error", reject);
    req.end();
  });
}

test("parseListen: ADDR:PORT, [IPv6]:PORT or none", () => {
  assert.deepEqual(parseListen("127.0.0.1:8090"), { host: "127.0.0.1", port: 8090 });
  assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseListen("localhost:80"), { host: "localhost", port: 80 });
  assert.equal(parseListen("none"), "none");
  for (const bad of ["8090", "127.0.0.1", "127.0.0.1:99999", ":80", "a:b"])
    assert.throws(() => parseListen(bad), /ADDR:PORT/, bad);
});

test("serves the page and the topology; refuses other Host names and replays it cannot run", async () => {
  const d = await startDashboard({ cluster: standIn(), host: "127.0.0.1", port: 0 });
  try {
    assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(d.url);
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="\/app\.js">/);
    assert.equal((await get(`${d.url}app.js`)).status, 200);
    assert.equal((await get(`${d.url}style.css`)).status, 200);

    const topo = JSON.parse((await get(`${d.url}api/cluster`)).body);
    assert.equal(topo.vip, "198.18.100.1");
    assert.equal(topo.mode, "sc");
    assert.deepEqual(topo.nodes, [
      { host: "node1", ip: "198.18.0.11", admin: "http://198.18.0.11:9080" },
      { host: "node2", ip: "198.18.0.12", admin: "http://198.18.0.12:9080" },
    ]);
    assert.equal(topo.client.netns, "sct-x-client");
    assert.equal(topo.replay.available, false);
    assert.match(topo.replay.unavailableReason, /--site/);

    // "localhost" names this server too; another name (DNS rebinding) does not.
    const port = new URL(d.url).port;
    assert.equal((await get(`${d.url}api/cluster`, { host: `localhost:${port}` })).status, 200);
    assert.equal((await get(`${d.url}api/cluster`, { host: `attacker.example:${port}` })).status, 421);

    // A form post from another site cannot start a replay (no JSON body), and without a trace
    // there is none to start.
    const post = async (headers: Record<string, string>) =>
      (await fetch(`${d.url}api/replay`, { method: "POST", headers, body: "{}" })).status;
    assert.equal(await post({ "content-type": "application/x-www-form-urlencoded" }), 415);
    assert.equal(await post({ "content-type": "application/json" }), 409);
  } finally {
    await d.close();
  }
});

test("the event stream sends snapshots with rates; polling stops when nobody watches", async () => {
  const c = standIn();
  const d = await startDashboard({ cluster: c, host: "127.0.0.1", port: 0, intervalMs: 50 });
  try {
    assert.equal(c.polls, 0, "no page open, no polling");
    const s = await nextEvent<Snapshot>(d.url, "snapshot", (x) => x.intervalS !== null);
    assert.deepEqual(
      s.nodes.map((n) => n.host),
      ["node1", "node2"],
    );
    assert.ok(s.totals.clonesSent > 0);
    assert.ok(s.totals.clonesSentPerSec! > 0);
    const snapshot = JSON.parse((await get(`${d.url}api/snapshot`)).body) as Snapshot;
    assert.ok(snapshot.at >= s.at);
  } finally {
    await d.close();
  }
});

test("a replay runs once at a time, and its result and the clones meanwhile reach the page", async () => {
  const result = { requests: 50, ok: 50, errors: 0, errors_by_kind: {}, verify_failures: 0 };
  const full = {
    ...result,
    verify_failures_by_kind: {},
    verify_failure_samples: [],
    elapsed_s: 0.2,
    rps: 250,
    mbps: 1,
    stopped_by: "requests",
    latency_ms: { p50: 1, p90: 1, p99: 2, p999: 2, max: 2, mean: 1 },
  };
  // The stand-in loadgen answers once the test lets it (a file appears), so the second POST
  // certainly meets a running replay.
  const go = join(await mkdtemp(join(tmpdir(), "sc-dash-test-")), "go");
  const script =
    `const t = setInterval(() => { if (require("fs").existsSync(${JSON.stringify(go)})) {` +
    ` clearInterval(t); process.stdout.write(${JSON.stringify(JSON.stringify(full))}); } }, 10)`;
  const d = await startDashboard({
    cluster: standIn({ demo: true, loadgenScript: script }),
    host: "127.0.0.1",
    port: 0,
    intervalMs: 50,
  });
  try {
    const finished = nextEvent<ReplayState>(d.url, "replay", (r) => r.last !== null);
    const start = () =>
      fetch(`${d.url}api/replay`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
    const first = await start();
    assert.equal(first.status, 202);
    assert.equal(((await first.json()) as ReplayState).running, true);
    assert.equal((await start()).status, 409);
    await writeFile(go, "");
    const r = await finished;
    assert.equal(r.running, false);
    assert.equal(r.last!.ok, true);
    assert.equal(r.last!.requests, 50);
    assert.ok(r.last!.clonesDuring! > 0, "the stand-in's clone counters rose during the replay");
    assert.equal(JSON.parse((await get(`${d.url}api/replay`)).body).last.ok, true);
  } finally {
    await d.close();
    await rm(dirname(go), { recursive: true, force: true });
  }
});

test("close() ends open event streams and a running replay", async () => {
  const d = await startDashboard({
    cluster: standIn({ demo: true, loadgenScript: "setInterval(() => {}, 1000)" }),
    host: "127.0.0.1",
    port: 0,
  });
  const stream = new Promise<void>((resolve) => {
    request(`${d.url}api/events`, (res) => res.on("close", resolve).resume()).end();
  });
  await nextEvent<ReplayState>(d.url, "replay", () => true);
  const r = await fetch(`${d.url}api/replay`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(r.status, 202);
  await d.close();
  await stream;
});

/** Opens an event stream; resolves with its status once the head is in. */
function openStream(url: string): Promise<{ status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}api/events`, (res) => {
      res.resume();
      resolve({ status: res.statusCode!, close: () => req.destroy() });
    });
    req.on("error", reject);
    req.end();
  });
}

test("at most maxSubscribers event streams; one more gets 503 until a stream closes", async () => {
  const d = await startDashboard({
    cluster: standIn(),
    host: "127.0.0.1",
    port: 0,
    streams: { maxSubscribers: 3 },
  });
  try {
    const open = [await openStream(d.url), await openStream(d.url), await openStream(d.url)];
    assert.deepEqual(
      open.map((o) => o.status),
      [200, 200, 200],
    );
    const full = await get(`${d.url}api/events`);
    assert.equal(full.status, 503);
    assert.match(full.body, /3 event streams are open already/);
    assert.equal(d.stats.streams.refusedFull, 1);
    // The server sees the close on its next turns of the event loop.
    const closed = new Promise<void>((resolve, reject) => {
      let turns = 0;
      const check = () => {
        if (d.stats.streams.subscribers === 2) resolve();
        else if (++turns > 100_000) reject(new Error("the closed stream is still counted"));
        else setImmediate(check);
      };
      check();
    });
    open[0]!.close();
    await closed;
    const again = await openStream(d.url);
    assert.equal(again.status, 200);
    for (const o of [...open, again]) o.close();
  } finally {
    await d.close();
  }
});

test("a stream that never reads: bounded buffer, skipped snapshots, then dropped", async () => {
  // Large snapshots (each node's poll error is long) fill the socket buffers quickly.
  const c = standIn({ nodes: 20, nodeError: "e".repeat(4000) });
  const maxSkipped = 5;
  const d = await startDashboard({
    cluster: c,
    host: "127.0.0.1",
    port: 0,
    intervalMs: 1,
    streams: { maxSkipped },
  });
  const port = Number(new URL(d.url).port);
  const sock = net.connect({ host: "127.0.0.1", port });
  try {
    await once(sock, "connect");
    sock.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    sock.pause(); // never reads
    // Watch the snapshots the server makes until it has dropped the stream (bounded in count).
    const closed = once(sock, "close");
    let snapshots = 0;
    await new Promise<void>((resolve, reject) => {
      const stop = d.collector.subscribe(() => {
        snapshots++;
        if (d.stats.streams.dropped === 1) {
          stop();
          resolve();
        } else if (snapshots > 20_000) {
          stop();
          reject(new Error(`not dropped after ${snapshots} snapshots: ${JSON.stringify(d.stats.streams)}`));
        }
      });
    });
    const s = d.stats.streams;
    assert.equal(s.dropped, 1);
    assert.equal(s.skipped, maxSkipped);
    const snapshotBytes = JSON.stringify(d.collector.latest).length;
    assert.ok(snapshotBytes > 80_000, `snapshot of ${snapshotBytes} bytes`);
    // At most the socket's buffer limit (16 KiB) plus one event waited in the server.
    assert.ok(s.maxBuffered <= 16 * 1024 + snapshotBytes + 64, `buffered ${s.maxBuffered} bytes`);
    sock.resume();
    await closed;
    const stats = JSON.parse((await get(`${d.url}api/stats`)).body) as { streams: { subscribers: number } };
    assert.equal(stats.streams.subscribers, 0);
  } finally {
    sock.destroy();
    await d.close();
  }
});

test("the replay starts only from the dashboard's own page; Host names listen on 0.0.0.0 too", async () => {
  const d = await startDashboard({
    cluster: standIn(),
    host: "0.0.0.0",
    port: 0,
    hostNames: ["dash.example"],
  });
  try {
    const port = new URL(d.url).port;
    const base = `http://127.0.0.1:${port}/`;
    const post = async (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        request(
          `${base}api/replay`,
          { method: "POST", headers: { "content-type": "application/json", ...headers } },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        )
          .on("error", reject)
          .end("{}");
      });
    const host = `127.0.0.1:${port}`;
    assert.equal(await post({ origin: "http://evil.example" }), 403);
    assert.equal(await post({ origin: "null" }), 403);
    assert.equal(await post({ "sec-fetch-site": "cross-site", origin: `http://${host}` }), 403);
    assert.equal(await post({ "sec-fetch-site": "same-site" }), 403);
    assert.equal(d.stats.refused.crossSite, 4);
    // Same origin (or no browser at all): on to the replay's own checks (none to run here: 409).
    assert.equal(await post({ "sec-fetch-site": "same-origin", origin: `http://${host}` }), 409);
    assert.equal(await post({ origin: `http://${host}` }), 409);
    assert.equal(await post({}), 409);

    // Listening on every address does not turn the Host check off.
    assert.equal((await get(`${base}api/cluster`, { host: `evil.example:${port}` })).status, 421);
    assert.equal((await get(`${base}api/cluster`, { host: `dash.example:${port}` })).status, 200);
    assert.equal((await get(`${base}api/cluster`, { host: `198.18.0.9:${port}` })).status, 200);
    assert.equal(d.stats.refused.host, 1);
  } finally {
    await d.close();
  }
});

test("initialReplayState: on with the demo site's trace, off and why without; nothing run yet", () => {
  const on = initialReplayState({ trace: "/t", manifest: "/m" }, DEFAULT_REPLAY);
  assert.deepEqual(on, {
    running: false,
    available: true,
    unavailableReason: null,
    bounds: DEFAULT_REPLAY,
    startedAt: null,
    last: null,
  });
  const off = initialReplayState(undefined, { requests: 1, durationS: 1, conns: 1 });
  assert.equal(off.available, false);
  assert.match(off.unavailableReason ?? "", /needs the demo site's trace and manifest/);
  assert.deepEqual(off.bounds, { requests: 1, durationS: 1, conns: 1 });
});

test("allowedHostNames: the listen host and the --dashboard-host names, lower-cased; not-names left out", () => {
  assert.deepEqual(
    [...allowedHostNames("127.0.0.1", ["Dash.Example", " lab-1 "])],
    ["127.0.0.1", "dash.example", "lab-1"],
  );
  assert.deepEqual([...allowedHostNames("::1", ["", "a_b"])], []);
});
