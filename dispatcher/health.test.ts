import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { HealthChecker, classifyCheckError, type CheckedNode } from "./health.js";
import type { NodeHealthState } from "./nodes.js";

/** A node control API on loopback whose /healthz answers `mode`. */
async function fakeNode(): Promise<{
  url: string;
  server: Server;
  mode: { status: number; hang: boolean; location?: string; body?: string };
  hits: string[];
}> {
  const mode: { status: number; hang: boolean; location?: string; body?: string } = {
    status: 200,
    hang: false,
  };
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? "");
    if (req.url !== "/healthz") {
      res.writeHead(404).end();
      return;
    }
    if (mode.hang) return; // never answers: the checker's timeout must fire
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (mode.location) headers.location = mode.location;
    res.writeHead(mode.status, headers).end(mode.body ?? '{"status":"ok"}');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, mode, hits };
}

function events() {
  const log: { id: string; state: NodeHealthState; reason: string }[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  return {
    log,
    record(id: string, state: NodeHealthState, reason: string) {
      log.push({ id, state, reason });
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
    { id: "a", admin: a.url, healthy: false, gone: false },
    { id: "plain", healthy: true, gone: false }, // no admin URL: never checked
  ];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 20, timeoutMs: 200, fall: 2, rise: 3 },
    () => nodes,
    (id, state, reason) => {
      const n = nodes.find((x) => x.id === id)!;
      n.healthy = state === "up";
      n.gone = state === "gone";
      ev.record(id, state, reason);
    },
  );
  try {
    hc.start();
    await ev.until(1);
    assert.deepEqual(ev.log[0], { id: "a", state: "up", reason: "first check passed" });

    a.mode.status = 503;
    await ev.until(2);
    assert.deepEqual(ev.log[1], { id: "a", state: "down", reason: "HTTP 503" });
    assert.ok(hc.health("a")!.failures >= 2);

    a.mode.status = 200;
    await ev.until(3);
    assert.deepEqual(ev.log[2], { id: "a", state: "up", reason: "3 checks passed" });

    // A check that hangs fails by timeout: down, not gone (the node may be only slow).
    a.mode.hang = true;
    await ev.until(4);
    assert.deepEqual(ev.log[3], { id: "a", state: "down", reason: "timeout" });
    assert.equal(hc.health("plain"), undefined);
    assert.ok(ev.log.every((e) => e.id === "a"));
  } finally {
    await hc.stop();
    a.server.closeAllConnections();
    a.server.close();
  }
});

test("a node whose process is gone (connection refused) is gone at once; a slow one that then refuses too", async () => {
  const a = await fakeNode();
  const nodes: CheckedNode[] = [{ id: "a", admin: a.url, healthy: false, gone: false }];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 20, timeoutMs: 200, fall: 2, rise: 1 },
    () => nodes,
    (id, state, reason) => {
      nodes[0]!.healthy = state === "up";
      nodes[0]!.gone = state === "gone";
      ev.record(id, state, reason);
    },
  );
  try {
    hc.start();
    await ev.until(1);
    // Each check is a fresh connection: with the process gone, the very next one is refused.
    const checks = hc.health("a")!.checks;
    await new Promise<void>((r) => a.server.close(() => r()));
    await ev.until(2);
    assert.deepEqual(ev.log[1], { id: "a", state: "gone", reason: "refused" });
    assert.ok(hc.health("a")!.checks >= checks + 2, "gone after `fall` failed checks");
    assert.equal(hc.health("a")!.lastError, "refused");
  } finally {
    await hc.stop();
  }
  // Down by timeouts first, then refused: gone.
  const b = await fakeNode();
  b.mode.hang = true;
  const nb: CheckedNode[] = [{ id: "b", admin: b.url, healthy: true, gone: false }];
  const ev2 = events();
  const hc2 = new HealthChecker(
    { intervalMs: 20, timeoutMs: 100, fall: 1, rise: 1 },
    () => nb,
    (id, state, reason) => {
      nb[0]!.healthy = state === "up";
      nb[0]!.gone = state === "gone";
      ev2.record(id, state, reason);
    },
  );
  try {
    hc2.start();
    await ev2.until(1);
    assert.deepEqual(ev2.log[0], { id: "b", state: "down", reason: "timeout" });
    b.server.closeAllConnections();
    await new Promise<void>((r) => b.server.close(() => r()));
    await ev2.until(2);
    assert.deepEqual(ev2.log[1], { id: "b", state: "gone", reason: "refused" });
  } finally {
    await hc2.stop();
  }
});

test("redirects are not followed and remote text is never reported", async () => {
  const target = await fakeNode();
  const a = await fakeNode();
  a.mode.status = 302;
  a.mode.location = `${target.url}/healthz`;
  const nodes: CheckedNode[] = [{ id: "a", admin: a.url, healthy: true, gone: false }];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 1000, timeoutMs: 500, fall: 1, rise: 1 },
    () => nodes,
    ev.record,
  );
  try {
    await hc.round();
    assert.equal(hc.health("a")!.lastError, "HTTP 302");
    assert.deepEqual(target.hits, [], "the redirect target was never fetched");
    // A long error body is not read into the report either.
    a.mode.status = 500;
    a.mode.location = undefined;
    a.mode.body = "SECRET ".repeat(100_000);
    await hc.round();
    assert.equal(hc.health("a")!.lastError, "HTTP 500");
    assert.deepEqual(
      ev.log.map((e) => e.reason),
      ["HTTP 302", "HTTP 500"],
    );
  } finally {
    await hc.stop();
    for (const s of [a.server, target.server]) {
      s.closeAllConnections();
      s.close();
    }
  }
  // Errors map to fixed words whatever their message says.
  const err = (code: string, message = "remote said <script>") => Object.assign(new Error(message), { code });
  assert.equal(classifyCheckError(err("ECONNREFUSED")), "refused");
  assert.equal(classifyCheckError(err("UND_ERR_HEADERS_TIMEOUT")), "timeout");
  assert.equal(classifyCheckError(err("UND_ERR_SOCKET")), "reset");
  assert.equal(classifyCheckError(err("EHOSTUNREACH")), "unreachable");
  assert.equal(classifyCheckError(err("EWHATEVER")), "failed");
  assert.equal(classifyCheckError(new DOMException("x", "TimeoutError")), "timeout");
  assert.equal(classifyCheckError({ cause: { code: "ECONNREFUSED" } }), "refused");
  assert.equal(classifyCheckError(null), "failed");
});

test("a node that fails its very first check stays down without waiting for `fall`", async () => {
  const a = await fakeNode();
  a.mode.status = 500;
  const nodes: CheckedNode[] = [{ id: "a", admin: a.url, healthy: true, gone: false }];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 1000, timeoutMs: 200, fall: 5, rise: 5 },
    () => nodes,
    ev.record,
  );
  try {
    hc.start();
    await ev.until(1);
    assert.deepEqual(ev.log, [{ id: "a", state: "down", reason: "HTTP 500" }]);
    assert.equal(hc.health("a")!.checks, 1);
  } finally {
    await hc.stop();
    a.server.closeAllConnections();
    a.server.close();
  }
});

test("a node not yet up that fails its first check still gets a verdict (down), so warm-up can end (issue 22)", async () => {
  const a = await fakeNode();
  a.mode.status = 503;
  // A freshly added node with checks starts not healthy (NodePool.upsert).
  const nodes: CheckedNode[] = [{ id: "a", admin: a.url, healthy: false, gone: false }];
  const ev = events();
  const hc = new HealthChecker(
    { intervalMs: 1000, timeoutMs: 200, fall: 5, rise: 5 },
    () => nodes,
    ev.record,
  );
  try {
    hc.start();
    // Bounded: without a verdict the old checker waited forever.
    await Promise.race([ev.until(1), sleep(3000)]);
    assert.deepEqual(ev.log, [{ id: "a", state: "down", reason: "HTTP 503" }]);
    assert.equal(hc.health("a")!.checks, 1);
  } finally {
    await hc.stop();
    a.server.closeAllConnections();
    a.server.close();
  }
});
