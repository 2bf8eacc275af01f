// The node's control plane behind its AdminGuard, over real connections: Host check, changes
// (none exist yet: a refused one never reaches routing, an authorised one gets 404), counters.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { ClusterSecret, type ClusterTrust } from "../../sc/auth/secret.js";
import { makeRoot, removeRoot, testNode } from "./testing.js";
import type { AdminEndpoint } from "../../sc/auth/admin-access.js";

const secret = ClusterSecret.parse("n".repeat(40)) as ClusterSecret;

function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    })
      .on("error", reject)
      .end();
  });
}

async function withNode(
  trust: ClusterTrust | null,
  admin: Omit<AdminEndpoint, "host" | "port">,
  fn: (port: number, metrics: () => Promise<string>) => Promise<void>,
): Promise<void> {
  const root = await makeRoot({ "a.txt": "a" });
  const node = await testNode({ root, trust, admin: { host: "127.0.0.1", port: 0, ...admin } });
  try {
    await fn(node.adminAddress!.port, () => node.registry.metrics());
  } finally {
    await node.shutdown(0);
    await removeRoot(root);
  }
}

test("node admin: reads for IP literals, localhost and --admin-host names; other Host names get 421", async () => {
  await withNode(null, { names: ["node1.lan"] }, async (port, metrics) => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `node1.lan:${port}`, "198.18.0.11"]) {
      const r = await call(port, "GET", "/healthz", { host });
      assert.equal(r.status, 200, host);
    }
    for (const path of ["/healthz", "/stats", "/metrics"]) {
      const r = await call(port, "GET", path, { host: `rebound.example:${port}` });
      assert.equal(r.status, 421, path);
      assert.match(r.body, /DNS rebinding/);
    }
    assert.match(await metrics(), /^sc_admin_refused_total\{reason="host",node="test"\} 3$/m);
  });
});

test("node admin: a change without a token configured is refused (403), with the secret's token it passes", async () => {
  await withNode(null, {}, async (port, metrics) => {
    const r = await call(port, "POST", "/healthz", { host: "127.0.0.1" });
    assert.equal(r.status, 403);
    assert.match(r.body, /read-only/);
    assert.match(await metrics(), /^sc_admin_refused_total\{reason="read_only",node="test"\} 1$/m);
  });
  await withNode({ kind: "secret", secret }, {}, async (port, metrics) => {
    const host = "127.0.0.1";
    assert.equal((await call(port, "DELETE", "/stats", { host })).status, 401);
    assert.equal((await call(port, "DELETE", "/stats", { host, authorization: "Bearer wrong" })).status, 401);
    const ok = await call(port, "DELETE", "/stats", { host, authorization: `Bearer ${secret.adminToken()}` });
    assert.equal(ok.status, 404, "past the guard: no such route");
    const text = await metrics();
    assert.match(text, /^sc_admin_refused_total\{reason="no_token",node="test"\} 1$/m);
    assert.match(text, /^sc_admin_refused_total\{reason="bad_token",node="test"\} 1$/m);
  });
});
