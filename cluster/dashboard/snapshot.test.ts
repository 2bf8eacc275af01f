import { test } from "node:test";
import assert from "node:assert/strict";
import { makeSnapshot, rate, type DispatcherStatsDoc, type NodeStatsDoc, type Sample } from "./snapshot.js";

function node(
  responses: number,
  bytes: number,
  sent: number,
  received: number,
  hits = 0,
  misses = 0,
): NodeStatsDoc {
  return {
    mode: "sc",
    http: { responses, responseBytes: bytes },
    connections: { open: 1 },
    cache: { hits, misses, bytes: 100, entries: 1 },
    sc: { clonesSent: sent, clonesReceived: received, failures: { "peer-down": 1, timeout: 2 } },
  };
}

function dispatcher(scheduled: number[], packets: number): DispatcherStatsDoc {
  return {
    scheduler: "wlc",
    packets: { received: packets },
    connections: { entries: 7 },
    nodes: scheduled.map((s, i) => ({
      id: `node${i + 1}`,
      eligible: i !== 1,
      healthy: true,
      scheduled: s,
      connections: { active: i, inactive: 10 + i },
    })),
  };
}

test("rate: per second from two counter values; none without a previous value, a reset or no time", () => {
  assert.equal(rate(100, 300, 2), 100);
  assert.equal(rate(undefined, 300, 2), null);
  assert.equal(rate(100, 300, null), null);
  assert.equal(rate(100, 300, 0), null);
  assert.equal(rate(500, 10, 1), null); // the node restarted
});

test("the first snapshot has totals and no rates", () => {
  const s = makeSnapshot({
    at: 1000,
    nodes: [
      { host: "node1", stats: node(10, 1000, 4, 2, 3, 1) },
      { host: "node2", stats: node(20, 2000, 1, 3, 1, 3) },
    ],
    dispatcher: { stats: dispatcher([5, 6], 100) },
  });
  assert.equal(s.intervalS, null);
  const [a, b] = s.nodes;
  assert.equal(a!.requests, 10);
  assert.equal(a!.requestsPerSec, null);
  assert.equal(a!.clonesSent, 4);
  assert.equal(a!.clonesReceived, 2);
  assert.equal(a!.cloneFailures, 3);
  assert.equal(a!.cacheHitRatio, 0.75);
  assert.deepEqual(a!.dispatcher, {
    active: 0,
    inactive: 10,
    scheduled: 5,
    scheduledPerSec: null,
    eligible: true,
  });
  assert.equal(b!.dispatcher!.eligible, false);
  assert.deepEqual(s.totals, {
    requests: 30,
    requestsPerSec: null,
    bytesOut: 3000,
    bytesOutPerSec: null,
    clonesSent: 5,
    clonesReceived: 5,
    clonesSentPerSec: null,
    cacheHitRatio: 0.5,
  });
  assert.deepEqual(s.dispatcher, { up: true, scheduler: "wlc", connections: 7, packetsPerSec: null });
});

test("rates come from the previous poll and the time between them", () => {
  const prev: Sample = {
    at: 10_000,
    nodes: [
      { host: "node1", stats: node(10, 1000, 4, 2) },
      { host: "node2", stats: node(20, 2000, 1, 3) },
    ],
    dispatcher: { stats: dispatcher([5, 6], 100) },
  };
  const cur: Sample = {
    at: 12_000,
    nodes: [
      { host: "node1", stats: node(30, 5000, 10, 2) },
      { host: "node2", stats: node(20, 2000, 1, 9) },
    ],
    dispatcher: { stats: dispatcher([9, 6], 500) },
  };
  const s = makeSnapshot(cur, prev);
  assert.equal(s.intervalS, 2);
  assert.equal(s.nodes[0]!.requestsPerSec, 10);
  assert.equal(s.nodes[0]!.bytesOutPerSec, 2000);
  assert.equal(s.nodes[0]!.clonesSentPerSec, 3);
  assert.equal(s.nodes[0]!.dispatcher!.scheduledPerSec, 2);
  assert.equal(s.nodes[1]!.requestsPerSec, 0);
  assert.equal(s.totals.requestsPerSec, 10);
  assert.equal(s.totals.clonesSentPerSec, 3);
  assert.equal(s.totals.bytesOutPerSec, 2000);
  assert.equal(s.dispatcher.packetsPerSec, 200);
});

test("a node that does not answer is down, keeps its place, and counts nowhere", () => {
  const prev: Sample = {
    at: 0,
    nodes: [
      { host: "node1", stats: node(10, 1000, 4, 2) },
      { host: "node2", stats: node(20, 2000, 1, 3) },
    ],
    dispatcher: { stats: dispatcher([5, 6], 100) },
  };
  const cur: Sample = {
    at: 1000,
    nodes: [
      { host: "node1", stats: node(15, 1500, 5, 2) },
      { host: "node2", error: "ECONNREFUSED" },
    ],
    dispatcher: { error: "timeout" },
  };
  const s = makeSnapshot(cur, prev);
  assert.equal(s.nodes[1]!.host, "node2");
  assert.equal(s.nodes[1]!.up, false);
  assert.equal(s.nodes[1]!.error, "ECONNREFUSED");
  assert.equal(s.nodes[1]!.requests, 0);
  assert.equal(s.nodes[1]!.dispatcher, null);
  assert.equal(s.totals.requests, 15);
  assert.equal(s.totals.requestsPerSec, 5);
  assert.deepEqual(s.dispatcher, {
    up: false,
    error: "timeout",
    scheduler: null,
    connections: 0,
    packetsPerSec: null,
  });
});

test("a mode without cloning shows no clone numbers; a node without lookups no hit ratio", () => {
  const local: NodeStatsDoc = {
    mode: "local",
    http: { responses: 3, responseBytes: 30 },
    cache: { hits: 0, misses: 0 },
  };
  const s = makeSnapshot({ at: 0, nodes: [{ host: "node1", stats: local }], dispatcher: {} });
  assert.equal(s.nodes[0]!.clonesSent, null);
  assert.equal(s.nodes[0]!.clonesReceived, null);
  assert.equal(s.nodes[0]!.cloneFailures, null);
  assert.equal(s.nodes[0]!.cacheHitRatio, null);
  assert.equal(s.totals.clonesSent, 0);
  assert.equal(s.totals.cacheHitRatio, null);
});
