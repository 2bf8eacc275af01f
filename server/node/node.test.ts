// End-to-end on loopback (--stack kernel): curl and raw sockets against an in-process node.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { makeRoot, rawExchange, removeRoot, run, splitResponses, testNode } from "./testing.js";
import type { RunningNode } from "./node.js";
import { fileEtag } from "../http/validators.js";

const small = "hello, world\n";
const big = Buffer.alloc(300_000, "abcdefghij");
let root: string;
let outside: string;
let node: RunningNode;
let base: string;

before(async () => {
  root = await makeRoot({
    "a.txt": small,
    "dir/index.html": "<h1>index</h1>",
    "noindex/x.txt": "x",
    "big.bin": big,
    "sp ace.txt": "space",
    ".hidden": "secret",
  });
  outside = await makeRoot({ "secret.txt": "outside the root" });
  await symlink(join(outside, "secret.txt"), join(root, "link-out.txt"));
  await symlink(join(root, "a.txt"), join(root, "link-in.txt"));
  // big.bin exceeds the in-memory limit: it is streamed from disk.
  node = await testNode({ root, maxInMemoryBytes: 100_000 });
  base = `http://127.0.0.1:${node.address.port}`;
});

after(async () => {
  await node.shutdown(100);
  await removeRoot(root);
  await removeRoot(outside);
});

const curl = (...args: string[]) => run("curl", ["-s", "--max-time", "5", ...args]);

test("curl GET and HEAD: status, headers, body", async () => {
  const st = await stat(join(root, "a.txt"));
  const r = await curl("-i", `${base}/a.txt`);
  const [res] = splitResponses(Buffer.from(r.stdout, "latin1"));
  assert.equal(res!.status, 200);
  assert.equal(res!.body.toString(), small);
  assert.equal(res!.headers["content-type"], "text/plain; charset=utf-8");
  assert.equal(res!.headers["content-length"], String(small.length));
  assert.equal(res!.headers["etag"], fileEtag(st.size, st.mtimeMs));
  assert.equal(res!.headers["accept-ranges"], "bytes");
  assert.equal(res!.headers["server"], "sc-cluster");
  assert.match(res!.headers["date"]!, /GMT$/);
  assert.match(res!.headers["last-modified"]!, /GMT$/);
  const h = await curl("-I", `${base}/a.txt`);
  assert.match(h.stdout, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(h.stdout, new RegExp(`Content-Length: ${small.length}\r\n`));
  assert.equal((await curl(`${base}/sp%20ace.txt`)).stdout, "space");
  assert.equal((await curl(`${base}/link-in.txt`)).stdout, small);
});

test("curl ranges: closed, open-ended, suffix, unsatisfiable", async () => {
  const r = await curl("-i", "-r", "0-4", `${base}/a.txt`);
  const [res] = splitResponses(Buffer.from(r.stdout, "latin1"));
  assert.equal(res!.status, 206);
  assert.equal(res!.headers["content-range"], `bytes 0-4/${small.length}`);
  assert.equal(res!.body.toString(), "hello");
  assert.equal((await curl("-r", "7-", `${base}/a.txt`)).stdout, "world\n");
  assert.equal((await curl("-r", "-6", `${base}/a.txt`)).stdout, "world\n");
  const u = await curl("-i", "-r", "100-", `${base}/a.txt`);
  assert.match(u.stdout, /^HTTP\/1\.1 416 /);
  assert.match(u.stdout, new RegExp(`Content-Range: bytes \\*/${small.length}\r\n`));
  // A range of a streamed (uncached, large) file.
  const b = await curl("-r", "299990-", `${base}/big.bin`);
  assert.equal(b.stdout, big.subarray(299_990).toString("latin1"));
  const whole = await curl(`${base}/big.bin`);
  assert.equal(whole.stdout.length, big.length);
  assert.ok(Buffer.from(whole.stdout, "latin1").equals(big));
});

test("curl conditional GET: If-None-Match -> 304, If-Modified-Since -> 304", async () => {
  const st = await stat(join(root, "a.txt"));
  const etag = fileEtag(st.size, st.mtimeMs);
  const r = await curl("-i", "-H", `If-None-Match: "nope", ${etag}`, `${base}/a.txt`);
  assert.match(r.stdout, /^HTTP\/1\.1 304 Not Modified\r\n/);
  assert.match(r.stdout, new RegExp(`ETag: ${etag}\r\n`));
  assert.ok(r.stdout.endsWith("\r\n\r\n"), "no body");
  const lm = new Date(st.mtimeMs).toUTCString();
  assert.match(
    (await curl("-i", "-H", `If-Modified-Since: ${lm}`, `${base}/a.txt`)).stdout,
    /^HTTP\/1\.1 304 /,
  );
  assert.match((await curl("-i", "-H", 'If-None-Match: "nope"', `${base}/a.txt`)).stdout, /^HTTP\/1\.1 200 /);
});

test("curl --http1.0 gets Connection: close; keep-alive reuses one connection", async () => {
  const r = await curl("-i", "--http1.0", `${base}/a.txt`);
  assert.match(r.stdout, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(r.stdout, /Connection: close\r\n/);
  const v = await curl("-v", "-o", "/dev/null", "-o", "/dev/null", `${base}/a.txt`, `${base}/dir/`);
  assert.match(v.stderr, /Re-using existing connection|Reusing existing/);
  const before = node.stats.connectionsAccepted;
  const three = await curl(`${base}/a.txt`, `${base}/a.txt`, `${base}/a.txt`);
  assert.equal(three.stdout, small.repeat(3));
  assert.equal(node.stats.connectionsAccepted - before, 1);
});

test("directories: index.html, /dir -> 301 /dir/ keeping the query, no index -> 404", async () => {
  assert.equal((await curl(`${base}/dir/`)).stdout, "<h1>index</h1>");
  const r = await curl("-i", `${base}/dir?a=1&b`);
  assert.match(r.stdout, /^HTTP\/1\.1 301 Moved Permanently\r\n/);
  assert.match(r.stdout, /Location: \/dir\/\?a=1&b\r\n/);
  assert.equal((await curl("-L", `${base}/dir`)).stdout, "<h1>index</h1>");
  assert.match((await curl("-i", `${base}/noindex/`)).stdout, /^HTTP\/1\.1 404 /);
});

test("traversal attempts with --path-as-is never leave the root", async () => {
  const cases: [string, number][] = [
    ["/../../../etc/passwd", 400],
    ["/%2e%2e/%2e%2e/etc/passwd", 400],
    ["/dir/..%2f..%2fetc/passwd", 400],
    ["/dir/%2e%2e/%2e%2e/etc/passwd", 400],
    ["/..%5c..%5cetc/passwd", 400],
    ["/a.txt%00.html", 400],
    ["/link-out.txt", 404],
    ["/.hidden", 404],
    ["/dir/../a.txt", 200],
  ];
  for (const [path, status] of cases) {
    const r = await curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", `${base}${path}`);
    assert.equal(r.stdout, String(status), path);
  }
  const raw = await rawExchange(
    node.address.port,
    "GET /a\\..\\..\\etc HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert.equal(splitResponses(raw)[0]!.status, 400);
});

test("pipelining: several requests in one write are answered in order", async () => {
  const reqs =
    "GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n" +
    "HEAD /dir/ HTTP/1.1\r\nHost: h\r\n\r\n" +
    "GET /missing HTTP/1.1\r\nHost: h\r\n\r\n" +
    "GET /a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=7-11\r\n\r\n" +
    "POST /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" +
    "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n" +
    "GET /dir/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" +
    "GET /never HTTP/1.1\r\nHost: h\r\n\r\n";
  const raw = await rawExchange(node.address.port, reqs);
  const res = splitResponses(raw, [false, true]);
  assert.deepEqual(
    res.map((r) => r.status),
    [200, 200, 404, 206, 405, 501, 200],
  );
  assert.equal(res[0]!.body.toString(), small);
  assert.equal(res[1]!.body.length, 0);
  assert.equal(res[1]!.headers["content-length"], "14");
  assert.equal(res[3]!.body.toString(), "world");
  assert.equal(res[4]!.headers["allow"], "GET, HEAD");
  assert.equal(res[6]!.body.toString(), "<h1>index</h1>");
  assert.equal(res[6]!.headers["connection"], "close");
});

test("bad requests get their status and the connection closes", async () => {
  const cases: [string, number][] = [
    ["GET /\r\n\r\n", 400], // HTTP/0.9
    ["GET / HTTP/1.1\r\n\r\n", 400], // no Host
    ["GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505],
    [`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: h\r\n\r\n`, 414],
    [`GET / HTTP/1.1\r\nHost: h\r\nX: ${"b".repeat(17000)}\r\n\r\n`, 431],
    ["GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n", 413],
  ];
  for (const [req, status] of cases) {
    const raw = await rawExchange(node.address.port, `GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n${req}`);
    const res = splitResponses(raw);
    assert.deepEqual(
      res.map((r) => r.status),
      [200, status],
      req.slice(0, 40),
    );
    assert.equal(res[1]!.headers["connection"], "close");
  }
});

test("control plane counts what the data path did", async () => {
  const s = node.snapshot() as { http: { requests: Record<string, number> }; cache: { hits: number } };
  assert.ok(s.http.requests["200"]! > 5);
  assert.ok(s.http.requests["400"]! > 3);
  assert.ok(s.cache.hits > 0);
  const text = await node.registry.metrics();
  for (const name of [
    "sc_http_requests_total",
    "sc_http_response_bytes_total",
    "sc_cache_hits_total",
    "sc_cache_misses_total",
    "sc_cache_bytes",
    "sc_tcp_connections",
  ]) {
    assert.match(text, new RegExp(`^${name}\\{`, "m"), name);
  }
  assert.match(text, /sc_http_requests_total\{code="404",node="test"\} \d+/);
});
