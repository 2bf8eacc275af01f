import { test } from "node:test";
import assert from "node:assert/strict";
import { DisplacedSet, decodeHandover, encodeHandover } from "./handover.js";

test("the state file round-trips; torn, foreign or bad lines are skipped and counted", () => {
  const list = [
    { src: 0xc6120065, srcPort: 40000, node: "node1" },
    { src: 0xc6120066, srcPort: 1, node: "node-3.b" },
  ];
  const text = encodeHandover(list);
  assert.deepEqual(decodeHandover(text), { connections: list, skipped: 0 });
  // A kill mid-write cannot tear it (rename), but a torn or edited file must not stop a start.
  const bad =
    text + "198.18.0.101 70000 node1\n198.18.0.999 1 node1\n198.18.0.1 5 -x\n1.2.3.4 5\n198.18.0.1 5 node2";
  const d = decodeHandover(bad);
  assert.equal(d.connections.length, 3);
  assert.equal(d.connections[2]!.node, "node2");
  assert.equal(d.skipped, 4);
  assert.deepEqual(decodeHandover("something else\n198.18.0.1 5 node1\n"), { connections: [], skipped: 1 });
  assert.deepEqual(decodeHandover(""), { connections: [], skipped: 0 });
  // Bounded.
  assert.equal(decodeHandover(text, 1).connections.length, 1);
});

test("the displaced set is bounded, versioned and pruned", () => {
  const s = new DisplacedSet(2);
  s.record(1, 10, "node1");
  const v = s.version;
  s.record(1, 10, "node1");
  assert.equal(s.version, v);
  s.record(1, 10, "node2");
  s.record(2, 10, "node1");
  s.record(3, 10, "node1");
  assert.equal(s.size, 2);
  assert.equal(s.overflow, 1);
  assert.deepEqual(s.list(), [
    { src: 1, srcPort: 10, node: "node2" },
    { src: 2, srcPort: 10, node: "node1" },
  ]);
  s.prune((c) => c.src !== 1);
  assert.deepEqual(s.list(), [{ src: 2, srcPort: 10, node: "node1" }]);
  assert.ok(s.version > v);
});
