import { test } from "node:test";
import assert from "node:assert/strict";
import { checkPlanes, CLUSTER_DEFAULTS, planeOf, WORKER_PORT_STRIDE, type ClusterConfig } from "./config.js";

const cluster: ClusterConfig = {
  self: "a",
  members: [
    { id: "a", addr: "198.18.0.11", weight: 1 },
    { id: "b", addr: "198.18.0.12", weight: 1 },
  ],
  ...CLUSTER_DEFAULTS,
};

test("worker i's plane: SC and peer ports shifted by the stride, GUE port and members unchanged", () => {
  assert.deepEqual(planeOf(cluster, 0), cluster);
  const p = planeOf(cluster, 3);
  assert.equal(p.scPort, CLUSTER_DEFAULTS.scPort + 3 * WORKER_PORT_STRIDE);
  assert.equal(p.peerPort, CLUSTER_DEFAULTS.peerPort + 3 * WORKER_PORT_STRIDE);
  assert.equal(p.guePort, CLUSTER_DEFAULTS.guePort);
  assert.deepEqual(p.members, cluster.members);
});

test("the planes' ports are checked: past 65535, or SC and peer ports that would meet", () => {
  checkPlanes(cluster, 64);
  // No plane's SC port is another plane's peer port with the defaults.
  const sc = new Set(Array.from({ length: 64 }, (_, i) => planeOf(cluster, i).scPort));
  for (let i = 0; i < 64; i++) assert.ok(!sc.has(planeOf(cluster, i).peerPort));
  assert.throws(() => checkPlanes({ ...cluster, scPort: 65500 }, 2), /worker 1 would be 65600/);
  checkPlanes({ ...cluster, scPort: 65500 }, 1);
  assert.throws(
    () => checkPlanes({ ...cluster, scPort: 7000, peerPort: 7100 }, 2),
    /must not differ by a multiple of 100/,
  );
  checkPlanes({ ...cluster, scPort: 7000, peerPort: 7100 }, 1);
});
