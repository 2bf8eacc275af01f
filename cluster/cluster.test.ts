// The launcher's pure parts: readiness from an answer, the state file as start-up begins, and
// the status document built from the record and what the probes found.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterStatusOf, dispatcherReadiness, initialRecord, readiness, unprobedHealth } from "./cluster.js";
import { planCluster, type Capabilities, type ProcessPlan } from "./plan.js";
import type { ProcessRecord } from "./processes.js";
import type { TestbedStatus } from "../testbed/status.js";
import { formatClusterStatus } from "./format.js";
import { readRecord, recordPath, writeRecord } from "./state.js";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CAPS: Capabilities = {
  modes: ["local", "sc"],
  schedulers: ["wlc", "mh"],
  nodeOptions: ["gue-port", "gue-allow", "peer"],
};

const answer = (status: number | undefined, body = "", error?: string) => ({
  body,
  bytes: body.length,
  ...(status !== undefined ? { status } : {}),
  ...(error !== undefined ? { error } : {}),
});

test("readiness: the origin is ready on any HTTP answer, a node only on 200; else why not", () => {
  const plan = planCluster({ nodes: 1, stateDir: "/st" }, CAPS);
  const [origin, node] = plan.processes as [ProcessPlan, ProcessPlan];
  assert.equal(readiness(origin, answer(404)), true);
  assert.equal(readiness(origin, answer(undefined, "", "ECONNREFUSED")), "ECONNREFUSED");
  assert.equal(readiness(node, answer(200)), true);
  assert.equal(readiness(node, answer(503)), "HTTP 503");
  assert.equal(readiness(node, answer(undefined)), "no answer");
});

test("dispatcherReadiness: healthy and every weighted node eligible; else how many are", () => {
  assert.equal(dispatcherReadiness(answer(200, '{"eligible":3}'), 3), true);
  assert.equal(dispatcherReadiness(answer(200, '{"eligible":2}'), 3), "2 of 3 nodes eligible");
  assert.equal(dispatcherReadiness(answer(200, "{}"), 2), "0 of 2 nodes eligible");
  assert.equal(dispatcherReadiness(answer(503, "not json"), 2), "HTTP 503");
  assert.equal(dispatcherReadiness(answer(undefined, "", "timeout"), 2), "timeout");
  assert.throws(() => dispatcherReadiness(answer(200, "not json"), 2), SyntaxError);
});

test("initialRecord: the plan's settings, this launcher, not ready, no process yet", () => {
  const plan = planCluster({ prefix: "r-", nodes: 2, weights: [2, 0], stateDir: "/st", site: "/srv" }, CAPS);
  const r = initialRecord(plan, Date.UTC(2026, 0, 2, 3, 4, 5), 4242);
  assert.deepEqual(r, {
    version: 1,
    prefix: "r-",
    launcherPid: 4242,
    detached: false,
    startedAt: "2026-01-02T03:04:05.000Z",
    readyAt: null,
    startSeconds: null,
    nodes: 2,
    workers: 1,
    mode: "local",
    scheduler: "wlc",
    cacheBytes: plan.cacheBytes,
    weights: [2, 0],
    site: "/srv",
    demo: null,
    dir: "/st/r-",
    logDir: "/st/r-",
    vipUrl: "http://198.18.100.1/",
    originUrl: "http://198.18.0.2:8000",
    processes: [],
  });
});

const proc = (host: string, role: ProcessRecord["role"], pid: number, admin?: string): ProcessRecord => ({
  host,
  role,
  pid,
  startTime: "100",
  netns: `sc-${host}`,
  log: `/l/${host}.log`,
  ...(admin ? { admin } : {}),
  args: [],
});

test("unprobedHealth: exited, or running and not checked (needing root when not root)", () => {
  const procs = [proc("origin", "origin", 10), proc("node1", "node", 11, "http://n1:9080")];
  assert.deepEqual(unprobedHealth(procs, [false, true], true), [
    {
      host: "origin",
      role: "origin",
      pid: 10,
      running: false,
      healthy: false,
      detail: "exited",
      log: "/l/origin.log",
    },
    {
      host: "node1",
      role: "node",
      pid: 11,
      running: true,
      healthy: false,
      detail: "not checked",
      admin: "http://n1:9080",
      log: "/l/node1.log",
    },
  ]);
  assert.equal(unprobedHealth(procs, [true, true], false)[0]!.detail, "not checked (needs root)");
});

test("clusterStatusOf: the record's settings; the dashboard only while its launcher runs; vip only when probed", () => {
  const plan = planCluster({ nodes: 1, stateDir: "/st" }, CAPS);
  const record = { ...initialRecord(plan, 0, 77), dashboard: "http://127.0.0.1:8090/" };
  const tb: TestbedStatus = {
    prefix: "sc-",
    vip: "198.18.100.1",
    subnet: "198.18.0.0/24",
    hosts: [],
    vipHost: "dispatcher",
    rate: null,
    loss: 0,
    expose: false,
  };
  const health = unprobedHealth([proc("origin", "origin", 10)], [true], true);
  const up = clusterStatusOf(tb, record, health, { answers: true, detail: "HTTP 200" }, true);
  assert.equal(up.dashboard, "http://127.0.0.1:8090/");
  assert.equal(up.vipHost, "dispatcher");
  assert.deepEqual(up.cluster?.vip, { answers: true, detail: "HTTP 200" });
  assert.equal(up.cluster?.launcherPid, 77);
  assert.equal(up.cluster?.launcherRunning, true);
  assert.equal(up.cluster?.processes, health);
  assert.equal(up.cluster?.startedAt, "1970-01-01T00:00:00.000Z");
  assert.equal(up.cluster?.workers, 1);
  const withWorkers = clusterStatusOf(tb, { ...record, workers: 2 }, health, undefined, true);
  assert.equal(withWorkers.cluster?.workers, 2, "status shows the recorded worker count");
  assert.match(formatClusterStatus(withWorkers), /cluster: 1 node x 2 workers, mode local/);
  assert.match(formatClusterStatus(up), /cluster: 1 node, mode local/);
  const gone = clusterStatusOf(tb, record, health, undefined, false);
  assert.equal(gone.dashboard, null);
  assert.equal(gone.cluster?.launcherRunning, false);
  assert.ok(gone.cluster && !("vip" in gone.cluster), "no vip key when not probed");
  const none = clusterStatusOf(tb, { ...record, dashboard: undefined }, health, undefined, true);
  assert.equal(none.dashboard, null);
});

test("the state file records the worker count; a record written before workers reads as 1", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sc-cluster-state-"));
  try {
    const plan = planCluster(
      { nodes: 2, stateDir: "/st", workers: 3 },
      { ...CAPS, nodeOptions: [...CAPS.nodeOptions, "workers"], maxNodeWorkers: 64 },
    );
    const record = { ...initialRecord(plan, 0, 77), dir };
    assert.equal(record.workers, 3);
    await writeRecord(record);
    assert.equal((await readRecord(dir))?.workers, 3);
    const { workers: _workers, ...older } = record;
    await writeFile(recordPath(dir), JSON.stringify(older));
    assert.equal((await readRecord(dir))?.workers, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
