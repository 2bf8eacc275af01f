// Content updates end to end on loopback: two nodes (--origin, kernel stack) in front of the
// real origin server. A purge sent to one node reaches the other (with the cluster secret's
// admin token); revalidation after the TTL picks up a change, and a 304 keeps the cached body.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { request } from "undici";
import { startOrigin } from "../../origin/server.js";
import { createLogger } from "../log.js";
import { testNode } from "./testing.js";
import type { RunningNode } from "./node.js";
import { ClusterSecret } from "../../sc/auth/secret.js";

const secret = ClusterSecret.parse("content-update-test-secret-0123456789abcdef") as ClusterSecret;
const token = secret.adminToken();

/** A port free on both loopback addresses (each node's admin listens on its own address). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.2", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

async function get(node: RunningNode, path: string): Promise<{ status: number; body: string }> {
  const res = await request(`http://${node.address.host}:${node.address.port}${path}`);
  return { status: res.statusCode, body: await res.body.text() };
}

async function purge(
  node: RunningNode,
  body: unknown,
  auth: string | null = token,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const a = node.adminAddress!;
  const res = await request(`http://${a.host}:${a.port}/purge`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

async function cluster(ttlMs: number, fn: (nodes: RunningNode[], root: string) => Promise<void>) {
  const root = await mkdtemp(join(tmpdir(), "sc-update-"));
  const origin = await startOrigin({ root, host: "127.0.0.1", port: 0, logger: createLogger("silent") });
  const adminPort = await freePort();
  const members = [
    { id: "n1", addr: "127.0.0.1", weight: 1 },
    { id: "n2", addr: "127.0.0.2", weight: 1 },
  ];
  const nodes: RunningNode[] = [];
  try {
    for (const m of members) {
      nodes.push(
        await testNode({
          nodeId: m.id,
          listen: { host: m.addr, port: 0 },
          origin: `http://127.0.0.1:${origin.address.port}`,
          admin: { host: m.addr, port: adminPort },
          trust: { kind: "secret", secret },
          cluster: {
            self: m.id,
            members: members.map((x) => ({ ...x })),
            scPort: 1,
            peerPort: 1,
            guePort: 0,
          },
          revalidateTtlMs: ttlMs,
        }),
      );
    }
    await fn(nodes, root);
  } finally {
    // The 502 test stopped n2 itself already.
    for (const n of nodes) await n.shutdown(100).catch(() => undefined);
    await origin.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** Writes a file with an mtime of its own (the origin's ETag is size and mtime). */
async function put(root: string, name: string, text: string, mtimeS: number): Promise<void> {
  await writeFile(join(root, name), text);
  await utimes(join(root, name), mtimeS, mtimeS);
}

test("purge on one node reaches the other: no stale body anywhere once it answered", async () => {
  await cluster(0, async ([n1, n2], root) => {
    await put(root, "page.html", "version 1", 1_700_000_000);
    await put(root, "other.html", "other 1", 1_700_000_000);
    for (const n of [n1!, n2!]) {
      assert.equal((await get(n, "/page.html")).body, "version 1");
      assert.equal((await get(n, "/other.html")).body, "other 1");
    }
    await put(root, "page.html", "version 2!", 1_700_000_100);
    await put(root, "other.html", "other 2", 1_700_000_100);
    // Cached, never revalidated (TTL 0): still the old version everywhere.
    assert.equal((await get(n2!, "/page.html")).body, "version 1");

    assert.equal((await purge(n1!, { url: "/page.html" }, null)).status, 401, "no token: refused");
    assert.equal(
      (await purge(n1!, { url: "/page.html" }, "x".repeat(64))).status,
      401,
      "wrong token: refused",
    );
    assert.equal((await purge(n1!, { url: "/page.html", prefix: "/" })).status, 400);
    assert.equal((await purge(n1!, { nope: 1 })).status, 400);

    const r = await purge(n1!, { url: "/page.html" });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.purged, 1);
    assert.deepEqual(r.json.peers, { n2: { ok: true, purged: 1 } });
    for (const n of [n1!, n2!]) {
      assert.equal((await get(n, "/page.html")).body, "version 2!");
      assert.equal((await get(n, "/other.html")).body, "other 1", "a URL purge leaves the rest");
    }
    const all = await purge(n2!, { all: true });
    assert.equal(all.status, 200);
    for (const n of [n1!, n2!]) assert.equal((await get(n, "/other.html")).body, "other 2");
    const stats = n2!.snapshot().store as { purges: number };
    assert.equal(stats.purges, 2);
  });
});

test("purge answers 502 naming a member that could not be reached", async () => {
  await cluster(0, async ([n1, n2]) => {
    await n2!.shutdown(0);
    const r = await purge(n1!, { prefix: "/" });
    assert.equal(r.status, 502);
    assert.match(String(r.json.error), /not purged on n2/);
  });
});

test("revalidation: after the TTL a change is served; unchanged, the origin's 304 keeps the body", async () => {
  const ttl = 300;
  await cluster(ttl, async ([n1], root) => {
    await put(root, "a.txt", "first", 1_700_000_000);
    await put(root, "b.txt", "same", 1_700_000_000);
    assert.equal((await get(n1!, "/a.txt")).body, "first");
    assert.equal((await get(n1!, "/b.txt")).body, "same");
    await put(root, "a.txt", "second", 1_700_000_100);
    assert.equal((await get(n1!, "/a.txt")).body, "first", "within the TTL the cached copy is served");
    // The TTL is the behaviour under test: wait it out.
    await new Promise((r) => setTimeout(r, ttl + 50));
    assert.equal((await get(n1!, "/a.txt")).body, "second");
    assert.equal((await get(n1!, "/b.txt")).body, "same");
    const snap = n1!.snapshot() as {
      store: { revalidation: { checks: number; unchanged: number; changed: number } };
      sourceStats: { notModified: number; requests: number };
    };
    assert.deepEqual(
      { ...snap.store.revalidation },
      { ttlMs: ttl, checks: 2, unchanged: 1, changed: 1, errors: 0 },
    );
    assert.equal(snap.sourceStats.notModified, 1, "b.txt was answered 304 by the origin");
    assert.equal(snap.sourceStats.requests, 4);
  });
});
