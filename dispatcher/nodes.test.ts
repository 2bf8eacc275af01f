import { test } from "node:test";
import assert from "node:assert/strict";
import { NodePool, NodeSpecError, formatNodeSpec, parseNodeSpec } from "./nodes.js";

test("--node specs: ID=ADDR[:PORT][,weight=W][,admin=URL]", () => {
  assert.deepEqual(parseNodeSpec("node1=198.18.0.11"), {
    id: "node1",
    addr: 0xc612000b,
    port: 6080,
    weight: 1,
  });
  assert.deepEqual(parseNodeSpec("n-2.a_b=198.18.0.12:7000,weight=3,admin=http://198.18.0.12:9000/"), {
    id: "n-2.a_b",
    addr: 0xc612000c,
    port: 7000,
    weight: 3,
    admin: "http://198.18.0.12:9000",
  });
  assert.equal(parseNodeSpec("x=10.0.0.1,weight=0").weight, 0);
  assert.equal(parseNodeSpec("x=10.0.0.1", 5555).port, 5555);
  const bad = [
    "node1",
    "=10.0.0.1",
    "-x=10.0.0.1",
    "x=10.0.0",
    "x=10.0.0.256",
    "x=10.0.0.1:0",
    "x=10.0.0.1:70000",
    "x=host.example",
    "x=10.0.0.1,weight=-1",
    "x=10.0.0.1,weight=65536",
    "x=10.0.0.1,weight=1.5",
    "x=10.0.0.1,admin=ftp://a",
    "x=10.0.0.1,admin=not a url",
    "x=10.0.0.1,colour=red",
    `${"a".repeat(64)}=10.0.0.1`,
  ];
  for (const s of bad) assert.throws(() => parseNodeSpec(s), NodeSpecError, s);
  for (const s of ["node1=198.18.0.11", "n=10.0.0.1:7000,weight=3,admin=http://a:1"]) {
    assert.equal(formatNodeSpec(parseNodeSpec(s)), s);
  }
});

test("the pool: slots stay fixed, removed nodes drain and are reaped, eligibility", () => {
  const pool = new NodePool(3);
  const a = pool.upsert({ id: "a", addr: 1, port: 6080, weight: 1 }).node;
  const b = pool.upsert({ id: "b", addr: 2, port: 6080, weight: 2, admin: "http://x" }).node;
  assert.deepEqual([a.slot, b.slot], [0, 1]);
  assert.equal(a.healthy, true, "no admin URL: healthy at once");
  assert.equal(b.healthy, false, "checked nodes start down until a check passes");
  assert.deepEqual(pool.eligible(), [{ slot: 0, id: "a", weight: 1 }]);
  assert.ok(pool.setHealthy("b", true));
  assert.ok(!pool.setHealthy("b", true), "no change, no version bump");
  const v = pool.version;
  assert.equal(pool.upsert({ id: "b", addr: 3, port: 7, weight: 0, admin: "http://x" }).created, false);
  assert.ok(pool.version > v);
  assert.equal(pool.get("b")!.addrText, "0.0.0.3");
  assert.equal(pool.get("b")!.healthy, true, "same admin URL keeps the health state");
  assert.deepEqual(
    pool.eligible().map((n) => n.id),
    ["a"],
  );
  assert.ok(pool.remove("a"));
  assert.ok(!pool.remove("a"));
  assert.deepEqual(pool.eligible(), []);
  // a still has connections: it stays; once none are left it is reaped and its slot reused.
  assert.deepEqual(
    pool.reap((slot) => (slot === 0 ? 5 : 0)),
    [],
  );
  assert.ok(pool.get("a"));
  // Re-adding a draining node brings it back in its slot.
  assert.equal(pool.upsert({ id: "a", addr: 1, port: 6080, weight: 1 }).node.slot, 0);
  assert.ok(!pool.get("a")!.removed);
  pool.remove("a");
  assert.deepEqual(
    pool.reap(() => 0),
    ["a"],
  );
  assert.equal(pool.get("a"), undefined);
  assert.equal(pool.upsert({ id: "c", addr: 4, port: 6080, weight: 1 }).node.slot, 0);
  pool.upsert({ id: "d", addr: 5, port: 6080, weight: 1 });
  assert.throws(() => pool.upsert({ id: "e", addr: 6, port: 6080, weight: 1 }), NodeSpecError);
  assert.throws(() => pool.upsert({ id: "c", addr: 6, port: 6080, weight: 70_000 }), NodeSpecError);
});
