// Runtime membership: the view from the dispatcher's GET /nodes, and a Membership that
// replaces the mapper in place and tells listeners what changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Membership, staticView, viewFromDispatcher } from "./runtime.js";
import { UrlMapper } from "./mapper.js";
import type { ClusterConfig } from "./config.js";

const self = { id: "node1", addr: "198.18.0.11", weight: 1 };
const entry = (id: string, n: number, over: Record<string, unknown> = {}) => ({
  id,
  addr: `198.18.0.${10 + n}`,
  port: 6080,
  weight: 1,
  admin: `http://198.18.0.${10 + n}:9080`,
  healthy: true,
  state: "up",
  draining: false,
  ...over,
});

test("viewFromDispatcher: links to every listed node, maps only those taking new connections", () => {
  const v = viewFromDispatcher(
    [
      entry("node1", 1),
      entry("node2", 2, { draining: true }),
      entry("node3", 3, { weight: 0 }),
      entry("node4", 4, { state: "down" }),
      entry("node5", 5),
    ],
    self,
  );
  assert.ok(!(v instanceof Error));
  assert.deepEqual(
    v.members.map((m) => m.id),
    ["node1", "node2", "node3", "node4", "node5"],
  );
  assert.deepEqual(v.mapped, ["node1", "node5"]);
  assert.equal(v.admin.node2, "http://198.18.0.12:9080");
});

test("viewFromDispatcher: a node not listed yet still has itself as a member (not mapped)", () => {
  const v = viewFromDispatcher([entry("node2", 2)], self);
  assert.ok(!(v instanceof Error));
  assert.deepEqual(
    v.members.map((m) => m.id),
    ["node2", "node1"],
  );
  assert.deepEqual(v.mapped, ["node2"]);
});

test("viewFromDispatcher: bad answers are errors, not views", () => {
  assert.match(String(viewFromDispatcher({}, self)), /not answer a JSON array/);
  assert.match(String(viewFromDispatcher([{ id: "x" }], self)), /node x has no IPv4 addr/);
  assert.match(String(viewFromDispatcher([entry("a b", 2)], self)), /entry 0 has no valid id/);
  assert.match(String(viewFromDispatcher([entry("n", 2), entry("n", 3)], self)), /listed twice/);
  assert.match(
    String(
      viewFromDispatcher(
        Array.from({ length: 300 }, (_, i) => entry(`n${i}`, 1)),
        self,
      ),
    ),
    /more than 256/,
  );
});

test("Membership.apply: the mapper held by a mode follows; 'change' only on a difference; a bad view is refused", () => {
  const cluster: ClusterConfig = {
    self: "node1",
    members: [self, { id: "node2", addr: "198.18.0.12", weight: 1 }],
    scPort: 6081,
    peerPort: 6082,
    guePort: 6080,
  };
  const mapper = new UrlMapper([]);
  const m = new Membership(cluster, mapper);
  assert.deepEqual(
    mapper.nodes.map((n) => n.id),
    ["node1", "node2"],
  );
  const seen: string[][] = [];
  m.on("change", (v: { mapped: string[] }) => seen.push(v.mapped));
  const three = viewFromDispatcher([entry("node1", 1), entry("node2", 2), entry("node3", 3)], self);
  assert.ok(!(three instanceof Error));
  assert.equal(m.apply(three), true);
  assert.equal(m.apply(three), false);
  assert.deepEqual(seen, [["node1", "node2", "node3"]]);
  assert.deepEqual(
    mapper.nodes.map((n) => n.id),
    ["node1", "node2", "node3"],
  );
  assert.equal(cluster.members.length, 3);
  assert.throws(
    () => m.apply({ members: [self, { id: "node9", addr: self.addr, weight: 1 }], mapped: [], admin: {} }),
    /appears twice/,
  );
  assert.equal(m.apply(staticView({ ...cluster, members: [self] })), true);
  assert.deepEqual(
    mapper.nodes.map((n) => n.id),
    ["node1"],
  );
  assert.equal(m.changes, 3);
});
