// The node on our own TCP stack (--stack user) in the testbed: node1 owns the VIP through its
// TUN device; real clients in the client namespace (curl, ab, wrk, nc, node scripts) talk to
// 198.18.100.1:80 over the testbed LAN. Needs root, /dev/net/tun and namespaces.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createTestbed, destroyTestbed, testPrefix, type Testbed } from "../../testbed/index.js";
import { VIP } from "../../testbed/topology.js";
import { makeRoot, removeRoot } from "./testing.js";

const BIN = fileURLToPath(new URL("../../../bin/sc-cluster.js", import.meta.url));
const P = testPrefix("h");
const HEADER_TIMEOUT_MS = 1500;
const small = "hello over our own stack\n";
let tb: Testbed;
let root: string;
let scripts: string;
let node: ChildProcess;
let nodeExit: Promise<number | null>;
let lastLog: Record<string, unknown> = {};

before(async () => {
  root = await makeRoot({ "a.txt": small, "1k.bin": Buffer.alloc(1024, "k"), "dir/index.html": "<i>x</i>" });
  scripts = await makeRoot({});
  tb = createTestbed({ prefix: P, nodes: 1, vipHost: "node1" });
  await tb.up();
  node = tb.spawn(
    "node1",
    process.execPath,
    [
      BIN,
      "node",
      "--stack",
      "user",
      "--vip",
      VIP,
      "--port",
      "80",
      "--tun",
      "sctun",
      "--root",
      root,
      "--admin",
      "none",
    ].concat(["--header-timeout", String(HEADER_TIMEOUT_MS), "--node-id", "netns1"]),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  node.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  nodeExit = new Promise((resolve) => node.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: node.stdout! }).on("line", (l) => {
      lastLog = JSON.parse(l) as Record<string, unknown>;
      if (lastLog.msg === "node listening") resolve();
    });
    void nodeExit.then((code) => reject(new Error(`node exited (${code}): ${stderr}`)));
  });
});

after(async () => {
  node?.kill("SIGKILL");
  await destroyTestbed(P);
  await removeRoot(root);
  await removeRoot(scripts);
});

const URL_BASE = `http://${VIP}`;
const curl = (...args: string[]) =>
  tb.exec("client", "curl", ["-s", "--max-time", "10", ...args], { check: false });

test("curl over our stack: GET, HEAD, ranges, 304, HTTP/1.0, reuse, traversal", async () => {
  assert.equal((await curl(`${URL_BASE}/a.txt`)).stdout, small);
  const head = await curl("-I", `${URL_BASE}/a.txt`);
  assert.match(head.stdout, new RegExp(`^HTTP/1\\.1 200 OK\r\n[^]*Content-Length: ${small.length}\r\n`));
  const etag = /ETag: (".*")\r\n/.exec(head.stdout)![1]!;
  assert.equal((await curl("-r", "0-4", `${URL_BASE}/a.txt`)).stdout, "hello");
  assert.equal((await curl("-r", "-6", `${URL_BASE}/a.txt`)).stdout, "stack\n");
  assert.match((await curl("-i", "-r", "500-", `${URL_BASE}/a.txt`)).stdout, /^HTTP\/1\.1 416 /);
  assert.match(
    (await curl("-i", "-H", `If-None-Match: ${etag}`, `${URL_BASE}/a.txt`)).stdout,
    /^HTTP\/1\.1 304 /,
  );
  assert.match((await curl("-i", "--http1.0", `${URL_BASE}/a.txt`)).stdout, /Connection: close\r\n/);
  const reuse = await curl(
    "-v",
    "-o",
    "/dev/null",
    "-o",
    "/dev/null",
    `${URL_BASE}/a.txt`,
    `${URL_BASE}/dir/`,
  );
  assert.match(reuse.stderr, /Re-using existing connection|Reusing existing/);
  assert.match((await curl("-i", `${URL_BASE}/dir`)).stdout, /^HTTP\/1\.1 301 [^]*Location: \/dir\/\r\n/);
  for (const [path, code] of [
    ["/../../etc/passwd", "400"],
    ["/%2e%2e/%2e%2e/etc/passwd", "400"],
    ["/dir/..%2f..%2fetc/passwd", "400"],
  ]) {
    const r = await curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", `${URL_BASE}${path}`);
    assert.equal(r.stdout, code, path);
  }
});

test("ab -k over our stack: 2000 requests, no failures, exact bytes", async () => {
  const r = await tb.exec(
    "client",
    "ab",
    ["-k", "-q", "-n", "2000", "-c", "10", "-s", "10", `${URL_BASE}/1k.bin`],
    {
      check: false,
      timeoutMs: 60_000,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Complete requests:\s+2000\n/);
  assert.match(r.stdout, /Failed requests:\s+0\n/);
  assert.match(r.stdout, /HTML transferred:\s+2048000 bytes/);
  assert.doesNotMatch(r.stdout, /Non-2xx/);
});

test("wrk over our stack: 2 s keep-alive, no errors", async () => {
  const r = await tb.exec("client", "wrk", ["-t1", "-c10", "-d2s", `${URL_BASE}/1k.bin`], {
    check: false,
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /Socket errors|Non-2xx/, r.stdout);
  const n = Number(/(\d+) requests in/.exec(r.stdout)?.[1]);
  assert.ok(n > 100, r.stdout);
});

test("pipelined requests in one write are answered in order over our stack", async () => {
  const reqs =
    "GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n" +
    "GET /missing HTTP/1.1\r\nHost: h\r\n\r\n" +
    "GET /a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-4\r\n\r\n" +
    "GET /dir/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const script = join(scripts, "pipeline.mjs");
  await writeFile(
    script,
    `import net from "node:net";
const s = net.connect(80, ${JSON.stringify(VIP)}, () => s.write(${JSON.stringify(reqs)}));
let data = "";
s.on("data", (c) => (data += c));
s.on("close", () => process.stdout.write(data));
`,
  );
  const r = await tb.exec("client", process.execPath, [script], { timeoutMs: 20_000 });
  // Bodies run straight into the next status line (no separator), so match anywhere.
  const statuses = [...r.stdout.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 404, 206, 200], r.stdout);
  assert.ok(r.stdout.includes(small) && r.stdout.endsWith("<i>x</i>"), r.stdout);
});

test("slowloris over our stack is cut off with 408 at the header timeout", async () => {
  const script = join(scripts, "slow.mjs");
  await writeFile(
    script,
    `import net from "node:net";
const req = "GET /a.txt HTTP/1.1\\r\\nHost: h\\r\\nX-Slow: " + "s".repeat(200);
const t0 = Date.now();
const s = net.connect(80, ${JSON.stringify(VIP)});
let i = 0, data = "";
const timer = setInterval(() => { if (i < req.length && !s.destroyed) s.write(req[i++]); }, 100);
s.on("data", (c) => (data += c));
s.on("error", () => {});
s.on("close", () => { clearInterval(timer); console.log(JSON.stringify({ ms: Date.now() - t0, data })); });
`,
  );
  const r = await tb.exec("client", process.execPath, [script], { timeoutMs: 20_000 });
  const { ms, data } = JSON.parse(r.stdout) as { ms: number; data: string };
  assert.match(data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.ok(ms >= HEADER_TIMEOUT_MS && ms < HEADER_TIMEOUT_MS + 3000, `cut off after ${ms} ms`);
});

test("1000 idle connections over our stack do not stop service to others", async () => {
  const script = join(scripts, "idle.mjs");
  await writeFile(
    script,
    `import net from "node:net";
import { execFileSync } from "node:child_process";
const socks = [];
await Promise.all(Array.from({ length: 1000 }, () => new Promise((resolve, reject) => {
  const s = net.connect(80, ${JSON.stringify(VIP)}, resolve);
  s.on("error", reject);
  socks.push(s);
})));
const out = execFileSync("curl", ["-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", ${JSON.stringify(`${URL_BASE}/1k.bin`)}], { encoding: "utf8" });
console.log(JSON.stringify({ open: socks.filter((s) => !s.destroyed).length, out }));
for (const s of socks) s.destroy();
`,
  );
  const r = await tb.exec("client", process.execPath, [script], { timeoutMs: 60_000 });
  const res = JSON.parse(r.stdout) as { open: number; out: string };
  assert.equal(res.open, 1000);
  assert.equal(res.out, "200 1024");
});

test("SIGTERM stops the node cleanly", async () => {
  const stopped = new Promise<Record<string, unknown>>((resolve) =>
    createInterface({ input: node.stdout! }).on("line", (l) => {
      const rec = JSON.parse(l) as Record<string, unknown>;
      if (rec.msg === "node stopped") resolve(rec);
    }),
  );
  node.kill("SIGTERM");
  assert.equal(await nodeExit, 0);
  const rec = await stopped;
  assert.ok(((rec.requests as Record<string, number>)["200"] ?? 0) > 2000);
});
