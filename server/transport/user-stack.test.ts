// Who a node takes GUE from (planGueInput), and the stack's counters as metrics: no TUN needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ipv4FromString, isWireError } from "../../sc/wire/index.js";
import { synPacket } from "../../sc/wire/testing.js";
import { TcpStack } from "../../sc/tcp/stack.js";
import { Registry } from "prom-client";
import { planGueInput, registerTcpMetrics } from "./user-stack.js";
import { UserError } from "../../common/errors.js";

const ip = (s: string): number => {
  const a = ipv4FromString(s);
  assert.ok(!isWireError(a));
  return a;
};

test("the GUE input takes packets from the members and --gue-allow, and from nobody else", () => {
  const plan = planGueInput(6080, ["198.18.0.11", "198.18.0.12"], ["198.18.0.1", "10.20.0.0/16"]);
  assert.ok(plan.open);
  assert.equal(plan.port, 6080);
  assert.deepEqual(plan.allow.toStrings(), ["198.18.0.11", "198.18.0.12", "198.18.0.1", "10.20.0.0/16"]);
  for (const a of ["198.18.0.1", "198.18.0.11", "198.18.0.12", "10.20.3.4"])
    assert.ok(plan.allow.has(ip(a)), a);
  // The client host and the other addresses of the LAN are refused.
  for (const a of ["198.18.0.101", "198.18.0.13", "198.18.0.2", "10.21.0.1"])
    assert.ok(!plan.allow.has(ip(a)), a);
  assert.equal(plan.allow.matchesAll, false);

  // A node without a cluster takes only the dispatcher.
  const alone = planGueInput(6080, [], ["198.18.0.1"]);
  assert.ok(alone.open);
  assert.deepEqual(alone.allow.toStrings(), ["198.18.0.1"]);
});

test("with no members and no --gue-allow the input stays closed; 0.0.0.0/0 opens it to all only when asked", () => {
  const closed = planGueInput(6080, [], []);
  assert.equal(closed.open, false);
  assert.ok(
    !closed.open && /--gue-allow ADDR\[\/LEN\].*0\.0\.0\.0\/0/.test(closed.why),
    JSON.stringify(closed),
  );
  assert.deepEqual(planGueInput(0, ["198.18.0.11"], ["198.18.0.1"]), { open: false, why: "--gue-port 0" });
  const any = planGueInput(6080, [], ["0.0.0.0/0"]);
  assert.ok(any.open && any.allow.matchesAll && any.allow.has(ip("203.0.113.9")));
  assert.throws(() => planGueInput(6080, [], ["198.18.0.1/24"]), UserError);
  assert.throws(() => planGueInput(6080, [], ["dispatcher"]), /--gue-allow 'dispatcher'/);
});

test("the stack's drops and zero-window aborts are Prometheus counters, read at scrape time", async () => {
  const stack = new TcpStack({
    addresses: ["198.18.100.1"],
    clock: () => 0,
    output: () => undefined,
    secret: new Uint8Array(16).fill(7),
    scheduleFlush: () => undefined,
  });
  const registry = new Registry();
  registerTcpMetrics(registry, stack);
  // A SYN claiming to come from loopback: an impossible source, dropped and counted.
  stack.receive(synPacket(ip("127.0.0.1"), ip("198.18.100.1")));
  const text = await registry.metrics();
  assert.match(text, /^sc_tcp_drops_total\{reason="bad-source"\} 1$/m);
  assert.match(text, /^sc_tcp_zero_window_aborts_total 0$/m);
  assert.match(text, /^sc_tcp_resets_sent_total 0$/m);
});
