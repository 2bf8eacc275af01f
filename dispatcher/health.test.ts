import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HealthChecker, type CheckedNode } from "./health.js";

/** A node control API on loopback whose /healthz answers `mode`. */
async function fakeNode(): Promise<{ url: string; server: Server; mode: { status: number; hang: boolean } }> {
  const mode = { status: 200, hang: false };
  const server = createServer((req, res) => {
    if (req.url !== "/healthz") {
      res.writeHead(404).end();
      return;
    }
    if (mode.hang) return; // never answers: the checker's timeout must fire
    res.writeHead(mode.status, { "content-type": "application/json" }).end('{"status":"ok"}');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, mode };
}

function events() {
  const log: { id: string; healthy: boolean; reason: string }[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  return {
    log,
    record(id: string, healthy: boolean, reason: string) {
      log.push({ id, healthy, reason });
      if (waiter && log.length >= waiter.n) waiter.resolve();
    },
    /** Resolves when `n` changes have been recorded in total. */
    until(n: number): Promise<void> {
      if (log.length >= n) return Promise.resolve();
      return new Promise((resolve) => (waiter = { n, resolve }));
    },
  };
}

test("a node comes up on its first good check, goes down after `fall` failures, returns after `rise`", async () => {
  const a = await fakeNode();
  const nodes: CheckedNode[] = [
    { id: "a", admin: a.url, healthy: false },
    { id: "plain", healthy: true }, // no admin URL: never checked
  ];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 20, timeoutMs: 200, fall: 2, rise: 3 },
    () => nodes,
    (id, healthy, reason) => {
      nodes.find((n) => n.id === id)!.healthy = healthy;
      ev.record(id, healthy, reason);
    },
  );
  try {
    hc.start();
    await ev.until(1);
    assert.deepEqual(ev.log[0], { id: "a", healthy: true, reason: "first check passed" });

    a.mode.status = 503;
    await ev.until(2);
    assert.equal(ev.log[1]!.healthy, false);
    assert.equal(ev.log[1]!.reason, "HTTP 503");
    assert.ok(hc.health("a")!.failures >= 2);

    a.mode.status = 200;
    await ev.until(3);
    assert.deepEqual(ev.log[2], { id: "a", healthy: true, reason: "3 checks passed" });

    // A check that hangs fails by timeout.
    a.mode.hang = true;
    await ev.until(4);
    assert.equal(ev.log[3]!.healthy, false);
    assert.match(ev.log[3]!.reason, /Timeout|Abort/i);
    assert.equal(hc.health("plain"), undefined);
    assert.ok(ev.log.every((e) => e.id === "a"));
  } finally {
    await hc.stop();
    a.server.closeAllConnections();
    a.server.close();
  }
});

test("a node whose process is gone (connection refused) goes down", async () => {
  const a = await fakeNode();
  const nodes: CheckedNode[] = [{ id: "a", admin: a.url, healthy: false }];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 20, timeoutMs: 200, fall: 2, rise: 1 },
    () => nodes,
    (id, healthy, reason) => {
      nodes[0]!.healthy = healthy;
      ev.record(id, healthy, reason);
    },
  );
  try {
    hc.start();
    await ev.until(1);
    a.server.closeAllConnections();
    await new Promise<void>((r) => a.server.close(() => r()));
    await ev.until(2);
    assert.equal(ev.log[1]!.healthy, false);
    assert.match(ev.log[1]!.reason, /ECONNREFUSED|ECONNRESET|SocketError|other side closed/);
  } finally {
    await hc.stop();
  }
});

test("a node that fails its very first check stays down without waiting for `fall`", async () => {
  const a = await fakeNode();
  a.mode.status = 500;
  const nodes: CheckedNode[] = [{ id: "a", admin: a.url, healthy: true }];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 1000, timeoutMs: 200, fall: 5, rise: 5 },
    () => nodes,
    (id, healthy, reason) => ev.record(id, healthy, reason),
  );
  try {
    hc.start();
    await ev.until(1);
    assert.deepEqual(ev.log, [{ id: "a", healthy: false, reason: "HTTP 500" }]);
    assert.equal(hc.health("a")!.checks, 1);
  } finally {
    await hc.stop();
    a.server.closeAllConnections();
    a.server.close();
  }
});
