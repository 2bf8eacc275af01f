// A node in front of the origin server (--origin): single-flight, validators passed through,
// status mapping for a missing, failing, unreachable or silent origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { makeRoot, removeRoot, testNode } from "./testing.js";
import { startOrigin, type OriginServer } from "../../origin/server.js";
import { createLogger } from "../log.js";
import { fileEtag } from "../http/validators.js";
import type { RunningNode } from "./node.js";

const cold = Buffer.alloc(200_000, "c");
let root: string;
let origin: OriginServer;
let node: RunningNode;
let base: string;

before(async () => {
  root = await makeRoot({ "cold.bin": cold, "a.css": "a{}", "dir/index.html": "<p>i</p>" });
  origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  node = await testNode({ origin: `http://127.0.0.1:${origin.address.port}` });
  base = `http://127.0.0.1:${node.address.port}`;
});

after(async () => {
  await node.shutdown(100);
  await origin.close();
  await removeRoot(root);
});

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await request(url, { headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body };
}

test("concurrent misses on one URL fetch it from the origin once", async () => {
  const before = origin.requests;
  const results = await Promise.all(Array.from({ length: 30 }, () => get(`${base}/cold.bin`)));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(cold));
  }
  assert.equal(origin.requests - before, 1, "origin requests");
  // The other 29 joined the load in flight, or (if they arrived after it) hit the cache.
  assert.equal(node.store.loads, 1);
  assert.equal(node.store.joined + node.cache.stats().hits, 29);
  // Now cached: no more origin traffic.
  await get(`${base}/cold.bin`);
  assert.equal(origin.requests - before, 1);
});

test("validators: the node passes the origin's strong ETag and Last-Modified through", async () => {
  const st = await stat(join(root, "a.css"));
  const fromOrigin = await get(`http://127.0.0.1:${origin.address.port}/a.css`);
  const fromNode = await get(`${base}/a.css`);
  assert.equal(fromNode.status, 200);
  assert.equal(fromNode.headers["etag"], fileEtag(st.size, st.mtimeMs));
  assert.equal(fromNode.headers["etag"], fromOrigin.headers["etag"]);
  assert.equal(fromNode.headers["last-modified"], fromOrigin.headers["last-modified"]);
  assert.equal(fromNode.headers["content-type"], fromOrigin.headers["content-type"]);
  const c = await get(`${base}/a.css`, { "if-none-match": String(fromNode.headers["etag"]) });
  assert.equal(c.status, 304);
  const r = await get(`${base}/cold.bin`, { range: "bytes=10-19" });
  assert.equal(r.status, 206);
  assert.equal(r.body.length, 10);
});

test("origin 404 -> 404; origin directory redirect -> 301 to /dir/", async () => {
  assert.equal((await get(`${base}/missing.html`)).status, 404);
  const d = await get(`${base}/dir?x=1`);
  assert.equal(d.status, 301);
  assert.equal(d.headers["location"], "/dir/?x=1");
  const i = await get(`${base}/dir/`);
  assert.equal(i.status, 200);
  assert.equal(i.body.toString(), "<p>i</p>");
});

test("unreachable origin -> 502, silent origin -> 504, origin 500 -> 502", async () => {
  // A port with nothing listening: bind one, note it, close it.
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));

  const held: net.Socket[] = [];
  const silent = net.createServer((s) => held.push(s)); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
  const failing = net.createServer((s) =>
    s.once("data", () => s.end("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")),
  );
  await new Promise<void>((r) => failing.listen(0, "127.0.0.1", () => r()));

  const port = (srv: net.Server) => (srv.address() as net.AddressInfo).port;
  const nodes = await Promise.all([
    testNode({ origin: `http://127.0.0.1:${deadPort}` }),
    testNode({ origin: `http://127.0.0.1:${port(silent)}`, originTimeoutMs: 300 }),
    testNode({ origin: `http://127.0.0.1:${port(failing)}` }),
  ]);
  try {
    const statuses = await Promise.all(
      nodes.map(async (n) => (await get(`http://127.0.0.1:${n.address.port}/x`)).status),
    );
    assert.deepEqual(statuses, [502, 504, 502]);
  } finally {
    await Promise.all(nodes.map((n) => n.shutdown(100)));
    for (const s of held) s.destroy();
    silent.close();
    failing.close();
  }
});
