import { test } from "node:test";
import assert from "node:assert/strict";
import { LardPolicy } from "./policy.js";

const NODES = ["n1", "n2", "n3"];

test("a new target goes to the least loaded node and then stays there (locality)", () => {
  const p = new LardPolicy(NODES, { tLow: 2, tHigh: 5 });
  const a = p.assign("/a", 0)!;
  assert.deepEqual(a, { node: "n1", reason: "first" });
  // /b and /c go to the two nodes without load.
  assert.equal(p.assign("/b", 0)!.node, "n2");
  assert.equal(p.assign("/c", 0)!.node, "n3");
  // /a stays on n1 although n1 is not the least loaded any more.
  p.assign("/b", 0);
  for (let i = 0; i < 3; i++) assert.deepEqual(p.assign("/a", 1), { node: "n1", reason: "local" });
  assert.equal(p.load("n1"), 4);
  assert.equal(p.load("n2"), 2);
  assert.equal(p.totalLoad(), 7);
});

test("basic LARD moves a target off a node above T_high only while another is below T_low", () => {
  const p = new LardPolicy(NODES, { tLow: 2, tHigh: 4, replication: false });
  // Pin /a on n1 and /x, /y on n2, n3 (so their loads can be raised).
  assert.equal(p.assign("/a", 0)!.node, "n1");
  assert.equal(p.assign("/x", 0)!.node, "n2");
  assert.equal(p.assign("/y", 0)!.node, "n3");
  for (let i = 0; i < 3; i++) p.assign("/x", 0);
  for (let i = 0; i < 3; i++) p.assign("/y", 0);
  // n1 at 5 > T_high, but n2 and n3 are at 4 (not below T_low): /a stays.
  for (let i = 0; i < 4; i++) assert.equal(p.assign("/a", 0)!.node, "n1");
  assert.equal(p.load("n1"), 5);
  assert.deepEqual(p.assign("/a", 0), { node: "n1", reason: "local" });
  // n3's connections end: it drops below T_low, and n1 (6 > 4) is loaded: /a moves to n3.
  for (let i = 0; i < 3; i++) p.release("n3");
  assert.equal(p.load("n3"), 1);
  assert.deepEqual(p.assign("/a", 1), { node: "n3", reason: "moved" });
  assert.deepEqual(p.holders("/a"), ["n3"]);
  // and stays there.
  assert.deepEqual(p.assign("/a", 2), { node: "n3", reason: "local" });
});

test("basic LARD moves a target off a node at 2 x T_high even when no node is below T_low", () => {
  const p = new LardPolicy(["n1", "n2"], { tLow: 1, tHigh: 3, replication: false });
  assert.equal(p.assign("/a", 0)!.node, "n1");
  assert.equal(p.assign("/x", 0)!.node, "n2");
  for (let i = 0; i < 3; i++) p.assign("/x", 0); // n2 at 4
  for (let i = 0; i < 5; i++) assert.equal(p.assign("/a", 0)!.node, "n1"); // n1 at 6 = 2 x T_high
  assert.deepEqual(p.assign("/a", 0), { node: "n2", reason: "moved" });
});

test("LARD/R replicates a hot target, sends each request to its least loaded holder, and shrinks after K", () => {
  const p = new LardPolicy(NODES, { tLow: 2, tHigh: 4, shrinkAfterMs: 20_000 });
  assert.equal(p.assign("/hot", 0)!.node, "n1");
  for (let i = 0; i < 4; i++) p.assign("/hot", 10); // n1 at 5 > T_high, n2 and n3 at 0 < T_low
  const r = p.assign("/hot", 100)!;
  assert.deepEqual(r, { node: "n2", reason: "replicated" });
  assert.deepEqual(p.holders("/hot"), ["n1", "n2"]);
  // The next ones go to the least loaded holder (n2) until it is loaded as well.
  for (let i = 0; i < 4; i++) assert.deepEqual(p.assign("/hot", 200), { node: "n2", reason: "local" });
  assert.equal(p.load("n2"), 5);
  // n2 loaded too, n3 still below T_low: n3 joins.
  assert.deepEqual(p.assign("/hot", 300), { node: "n3", reason: "replicated" });
  assert.deepEqual(p.holders("/hot"), ["n1", "n2", "n3"]);
  // Demand falls: connections end. Within K of the last change the set stays.
  for (let i = 0; i < 5; i++) p.release("n1");
  for (let i = 0; i < 5; i++) p.release("n2");
  assert.equal(p.assign("/hot", 300 + 20_000)!.node, "n1");
  assert.equal(p.holders("/hot").length, 3);
  // After K unchanged, a request removes the most loaded member that did not take it.
  p.release("n1");
  const after = p.assign("/hot", 300 + 20_001)!;
  assert.equal(after.reason, "local");
  assert.equal(p.holders("/hot").length, 2);
  assert.ok(p.holders("/hot").includes(after.node));
  assert.ok(!p.holders("/hot").includes("n3"), "n3 (1 connection, the most loaded) left the set");
  // The change restarts the clock: the next shrink needs another K.
  p.assign("/hot", 300 + 20_002);
  assert.equal(p.holders("/hot").length, 2);
  p.assign("/hot", 300 + 40_002);
  assert.equal(p.holders("/hot").length, 1);
});

test("a node that leaves is taken out of every set; its targets go to the least loaded node again", () => {
  const p = new LardPolicy(NODES, { tLow: 2, tHigh: 4 });
  assert.equal(p.assign("/a", 0)!.node, "n1");
  assert.equal(p.assign("/b", 0)!.node, "n2");
  p.removeNode("n1");
  assert.deepEqual(p.holders("/a"), []);
  assert.deepEqual(p.nodes(), ["n2", "n3"]);
  assert.deepEqual(p.assign("/a", 1), { node: "n3", reason: "first" });
  p.release("n1"); // a release for a node that left changes nothing
  assert.equal(p.load("n1"), 0);
  p.removeNode("n2");
  p.removeNode("n3");
  assert.equal(p.assign("/a", 2), null);
  p.addNode("n4");
  assert.deepEqual(p.assign("/a", 3), { node: "n4", reason: "first" });
});

test("loads never go negative, and the admission limit is the paper's S", () => {
  const p = new LardPolicy(NODES, { tLow: 25, tHigh: 65 });
  p.release("n1");
  assert.equal(p.load("n1"), 0);
  assert.equal(p.admissionLimit(), 2 * 65 + 25 - 1);
  assert.equal(new LardPolicy([]).admissionLimit(), 0);
});

test("the target table is bounded: the target unused longest is forgotten first", () => {
  const p = new LardPolicy(NODES, { maxTargets: 3 });
  for (const t of ["/a", "/b", "/c"]) p.assign(t, 0);
  p.assign("/a", 1); // /a used again: /b is now the oldest
  p.assign("/d", 2);
  assert.equal(p.targetCount, 3);
  assert.deepEqual(p.holders("/b"), []);
  assert.equal(p.holders("/a").length, 1);
  assert.equal(p.holders("/d").length, 1);
});

test("many distinct targets spread evenly (each new one to the least loaded node)", () => {
  const p = new LardPolicy(["n1", "n2", "n3", "n4"]);
  for (let i = 0; i < 400; i++) p.assign(`/doc${i}`, i);
  for (const n of p.nodes()) assert.equal(p.load(n), 100);
});

test("bad thresholds are refused", () => {
  assert.throws(() => new LardPolicy(NODES, { tLow: 5, tHigh: 5 }), RangeError);
  assert.throws(() => new LardPolicy(NODES, { tLow: -1, tHigh: 5 }), RangeError);
  assert.throws(() => new LardPolicy(NODES, { maxTargets: 0 }), RangeError);
});

test("a busy node's request goes to the least loaded other node, which takes the target from the busy one", () => {
  const basic = new LardPolicy(["a", "b", "c"], { tLow: 2, tHigh: 4, replication: false });
  assert.equal(basic.assign("/x", 0)!.node, "a");
  basic.assign("/y", 0); // b
  assert.deepEqual(basic.assignElsewhere("/x", ["a"], 1), { node: "c", reason: "elsewhere" });
  assert.deepEqual(basic.holders("/x"), ["c"]);
  assert.equal(basic.load("c"), 1);
  assert.equal(basic.assignElsewhere("/x", ["a", "b", "c"], 2), null);
  assert.equal(basic.load("c"), 1);
  const r = new LardPolicy(["a", "b"], { tLow: 2, tHigh: 4, replication: true });
  r.assign("/x", 0);
  assert.deepEqual(r.assignElsewhere("/x", ["a"], 1), { node: "b", reason: "elsewhere" });
  assert.deepEqual(r.holders("/x"), ["b"]);
  // A target it never saw is remembered on the node that took it.
  assert.deepEqual(r.assignElsewhere("/new", ["a"], 2), { node: "b", reason: "elsewhere" });
  assert.deepEqual(r.holders("/new"), ["b"]);
});
