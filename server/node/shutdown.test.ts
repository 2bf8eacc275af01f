// Graceful shutdown: stop accepting, close idle keep-alive connections at once, reset the ones
// still mid-request after the grace period.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { makeRoot, removeRoot, testNode } from "./testing.js";

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

test("shutdown closes idle connections gracefully and resets stalled ones after the grace period", async () => {
  const root = await makeRoot({ "a.txt": "a" });
  const node = await testNode({ root });
  const port = node.address.port;
  try {
    const idle = await connect(port);
    const idleEnded = new Promise<number>((resolve) => idle.on("end", () => resolve(Date.now())));
    idle.write("GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n");
    await new Promise((r) => idle.once("data", r));
    const stalled = await connect(port);
    stalled.on("error", () => undefined);
    const stalledClosed = new Promise<number>((resolve) => stalled.on("close", () => resolve(Date.now())));
    stalled.write("GET /a.txt HTTP/1.1\r\n"); // mid-request: not idle
    while (![...node.server.connections].some((c) => c.midMessage)) await new Promise((r) => setImmediate(r));

    const started = Date.now();
    const done = node.shutdown(600);
    const idleAt = await idleEnded;
    assert.ok(idleAt - started < 500, `idle connection closed after ${idleAt - started} ms`);
    await assert.rejects(connect(port), /ECONNREFUSED/);
    await done;
    const stalledAt = await stalledClosed;
    assert.ok(stalledAt - started >= 550, `stalled connection reset after ${stalledAt - started} ms`);
    assert.equal(node.stats.connectionsOpen, 0);
    idle.destroy();
  } finally {
    await removeRoot(root);
  }
});
