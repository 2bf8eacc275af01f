// Loopback load and abuse: ab -k and wrk with zero errors and checked byte counts (bounded in
// requests and seconds), slowloris cut off at the header timeout, 1000 idle connections not
// stopping service to others.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { makeRoot, rawExchange, removeRoot, run, splitResponses, testNode } from "./testing.js";
import type { RunningNode } from "./node.js";

const KB = Buffer.alloc(1024, "k");
const HUNDRED_KB = Buffer.alloc(100 * 1024, "h");
let root: string;
let node: RunningNode;
let base: string;

before(async () => {
  root = await makeRoot({ "1k.bin": KB, "100k.bin": HUNDRED_KB });
  node = await testNode({
    root,
    timeouts: { headerMs: 800, idleMs: 20_000, sendMs: 10_000, lingerMs: 2000 },
  });
  base = `http://127.0.0.1:${node.address.port}`;
});

after(async () => {
  await node.shutdown(100);
  await removeRoot(root);
});

function field(out: string, label: string): number {
  const m = new RegExp(`${label}:\\s+(\\d+)`).exec(out);
  assert.ok(m, `'${label}' in ab output:\n${out}`);
  return Number(m[1]);
}

test("ab -k: 3000 keep-alive requests, no failures, exact body bytes", async () => {
  for (const [path, size] of [
    ["/1k.bin", 1024],
    ["/100k.bin", 100 * 1024],
  ] as const) {
    const r = await run("ab", ["-k", "-q", "-n", "3000", "-c", "20", "-s", "10", `${base}${path}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(field(r.stdout, "Complete requests"), 3000);
    assert.equal(field(r.stdout, "Failed requests"), 0);
    assert.equal(field(r.stdout, "Keep-Alive requests"), 3000);
    assert.doesNotMatch(r.stdout, /Non-2xx/);
    assert.equal(field(r.stdout, "HTML transferred"), 3000 * size);
  }
});

test("wrk: 2 s of keep-alive load, no errors, bytes match the responses", async () => {
  const before = node.stats.totalResponses();
  const r = await run("wrk", ["-t1", "-c20", "-d2s", "--latency", `${base}/1k.bin`], 20_000);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /Socket errors|Non-2xx/, r.stdout);
  const m = /(\d+) requests in [\d.]+s, ([\d.]+)MB read/.exec(r.stdout);
  assert.ok(m, r.stdout);
  const requests = Number(m[1]);
  assert.ok(requests > 1000, `only ${requests} requests`);
  // Every response is the same size: head + 1 KiB.
  const one = splitResponses(await rawExchange(node.address.port, "GET /1k.bin HTTP/1.0\r\n\r\n"))[0]!;
  assert.equal(one.body.length, 1024);
  const served = node.stats.totalResponses() - before - 1;
  assert.ok(served >= requests, `server sent ${served}, wrk counted ${requests}`);
  const mb = Number(m[2]);
  const perResponse = (mb * 1024 * 1024) / requests;
  assert.ok(perResponse > 1024 && perResponse < 1024 + 400, `${perResponse} bytes per response`);
});

test("slowloris: one header byte at a time is cut off with 408 at the header timeout", async () => {
  const req = "GET /1k.bin HTTP/1.1\r\nHost: h\r\nX-Slow: " + "s".repeat(100);
  const started = Date.now();
  const got = await new Promise<{ data: string; at: number }>((resolve) => {
    const s = net.connect(node.address.port, "127.0.0.1");
    let i = 0;
    let data = "";
    const timer = setInterval(() => {
      if (i < req.length && !s.destroyed) s.write(req[i++]!);
    }, 100);
    s.on("data", (c) => (data += c.toString("latin1")));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearInterval(timer);
      resolve({ data, at: Date.now() });
    });
  });
  const elapsed = got.at - started;
  assert.match(got.data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(got.data, /Connection: close\r\n/);
  assert.ok(elapsed >= 800, `cut off after ${elapsed} ms, before the 800 ms timeout`);
  assert.ok(elapsed < 800 + 3000, `cut off only after ${elapsed} ms`);
  assert.ok(node.stats.headerTimeouts >= 1);
});

test("1000 idle connections do not stop service to others", async () => {
  const idle: net.Socket[] = [];
  const acceptedBefore = node.stats.connectionsAccepted;
  try {
    await Promise.all(
      Array.from(
        { length: 1000 },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect(node.address.port, "127.0.0.1", () => resolve());
            s.on("error", reject);
            idle.push(s);
          }),
      ),
    );
    // Half of them even sent a partial request.
    for (const s of idle.slice(0, 500)) s.write("GET /1k.bin HTTP/1.1\r\n");
    const until = Date.now() + 10_000;
    while (node.stats.connectionsAccepted - acceptedBefore < 1000 && Date.now() < until) {
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(node.stats.connectionsOpen >= 500, `${node.stats.connectionsOpen} open`);
    const r = await run("curl", [
      "-s",
      "--max-time",
      "5",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{size_download}",
      `${base}/1k.bin`,
    ]);
    assert.equal(r.stdout, "200 1024");
    const ab = await run("ab", ["-k", "-q", "-n", "500", "-c", "10", `${base}/1k.bin`]);
    assert.equal(field(ab.stdout, "Failed requests"), 0);
    assert.equal(field(ab.stdout, "Complete requests"), 500);
  } finally {
    for (const s of idle) s.destroy();
  }
});
