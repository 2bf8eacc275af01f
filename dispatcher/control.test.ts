// The control plane without the admin API: admin-URL checks on PUT, health verdicts applied
// to the forwarder, and the health checker on its worker thread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { TCP_SYN } from "../sc/wire/index.js";
import { ControlError, DispatcherControl } from "./control.js";
import { Forwarder } from "./forwarder.js";
import { Recorder, VIP, clientPacket } from "./testing.js";

function forwarder(): Forwarder {
  return new Forwarder({ vip: VIP, port: 80, scheduler: "rr", encap: "gue" }, new Recorder());
}

/** An HTTP server answering 200 in a child process: not stalled when this thread is. */
async function childServer(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      "require('http').createServer((q,s)=>s.end('ok')).listen(0,'127.0.0.1',function(){console.log(this.address().port)})",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once("data", (d: Buffer) => resolve(Number(String(d).trim())));
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

test("PUT /nodes: the admin URL must be on the node's own address, also when only the address changes", () => {
  const control = new DispatcherControl(forwarder());
  const status = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof ControlError, String(e));
      return e.statusCode;
    }
    return 200;
  };
  assert.equal(
    status(() => control.putNode("n", { addr: "198.18.0.11", admin: "http://198.18.0.11:9080" })),
    200,
  );
  // A port scan of another host through the health checker: refused.
  assert.equal(
    status(() => control.putNode("m", { addr: "198.18.0.12", admin: "http://198.18.0.77:22" })),
    400,
  );
  assert.equal(control.forwarder.nodes.get("m"), undefined);
  assert.equal(
    status(() => control.putNode("n", { admin: "http://10.0.0.1:9080" })),
    400,
  );
  // Moving the node without moving its admin URL leaves the URL on the old host: refused.
  assert.equal(
    status(() => control.putNode("n", { addr: "198.18.0.13" })),
    400,
  );
  assert.equal(control.node("n").addr, "198.18.0.11");
  assert.equal(
    status(() => control.putNode("n", { addr: "198.18.0.13", admin: "http://198.18.0.13:9080/" })),
    200,
  );
  assert.equal(control.node("n").admin, "http://198.18.0.13:9080");
  assert.equal(
    status(() => control.putNode("n", { addr: "198.18.0.14", admin: null })),
    200,
  );
});

test("a node whose admin port refuses is gone: out of scheduling, reported with a fixed reason", async () => {
  const logs: string[] = [];
  const control = new DispatcherControl(forwarder(), {
    health: { intervalMs: 1000, timeoutMs: 200, fall: 1, rise: 1 },
    log: (m, fields) => logs.push(`${m} ${String(fields?.reason)}`),
    clock: () => 5_000,
  });
  try {
    // Nothing listens on this loopback port.
    control.putNode("n", { addr: "127.0.0.1", admin: "http://127.0.0.1:9" });
    control.forwarder.setHealth("n", "up", 0);
    await control.health!.round();
    const view = control.node("n");
    assert.equal(view.state, "gone");
    assert.equal(view.healthy, false);
    assert.equal(view.downForMs, 0);
    assert.equal(view.health!.lastError, "refused");
    assert.deepEqual(logs, ["node added undefined", "node gone refused"]);
    const p = clientPacket({ sport: 1, flags: TCP_SYN });
    control.forwarder.input(p, 0, p.length, 0);
    assert.equal(control.forwarder.dropCount("no_node"), 1);
    assert.equal(control.stats().deadGraceMs, 60_000);
  } finally {
    await control.stop();
  }
});

test("checks on the worker thread go on while this thread is stalled: no false 'node down'", async () => {
  // Measured before the worker: this stall (3 s of 600 ms busy slices, as an overloaded
  // data path) took a healthy node out with the checker on the main thread.
  const server = await childServer();
  const logs: string[] = [];
  const errors: Error[] = [];
  const control = new DispatcherControl(forwarder(), {
    health: { intervalMs: 200, timeoutMs: 500, fall: 2, rise: 1 },
    healthWorker: { onError: (e) => errors.push(e) },
    log: (m) => logs.push(m),
  });
  try {
    control.putNode("n", { addr: "127.0.0.1", admin: server.url });
    control.start();
    await control.health!.round();
    assert.equal(control.node("n").state, "up");
    const before = control.node("n").health!.checks;
    const stallStart = Date.now();
    while (Date.now() - stallStart < 3000) {
      const sliceEnd = Date.now() + 600;
      while (Date.now() < sliceEnd);
      await new Promise((r) => setImmediate(r));
    }
    await control.health!.round();
    const h = control.node("n").health!;
    assert.deepEqual(logs, ["node added", "node up"], "no down verdict during the stall");
    assert.equal(control.node("n").state, "up");
    assert.ok(h.checks - before >= 5, `the worker checked during the stall (${h.checks - before} checks)`);
    assert.equal(h.failures, 0);
    assert.deepEqual(errors, []);
  } finally {
    await control.stop();
    server.stop();
  }
});
