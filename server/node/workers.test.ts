// node --workers N without threads: what it refuses, and how the workers' /stats add up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkWorkerConfig, sumSnapshots } from "./workers.js";
import type { NodeConfig } from "./node.js";

const base = {
  nodeId: "n",
  stack: "user",
  mode: "local",
  guePort: 6080,
  listen: { host: "198.18.100.1", port: 80 },
} as unknown as NodeConfig;

const cluster = {
  self: "n",
  members: [
    { id: "n", addr: "198.18.0.11", weight: 1 },
    { id: "m", addr: "198.18.0.12", weight: 1 },
  ],
  scPort: 6081,
  peerPort: 6082,
  guePort: 6080,
};

test("--workers N > 1 needs the user stack, a mode that runs on workers, a GUE port, and no access log", () => {
  assert.doesNotThrow(() => checkWorkerConfig(base, 2));
  for (const mode of ["sc", "cf-lru", "cf-lfu"])
    assert.doesNotThrow(() => checkWorkerConfig({ ...base, mode, cluster }, 2));
  assert.throws(() => checkWorkerConfig({ ...base, stack: "kernel" }, 2), /--stack user/);
  assert.throws(() => checkWorkerConfig({ ...base, mode: "lard", cluster }, 2), /not lard/);
  // Worker i of every node listens on the SC and peer ports + 100 i: they must not meet.
  assert.throws(
    () => checkWorkerConfig({ ...base, mode: "sc", cluster: { ...cluster, peerPort: 6181 } }, 2),
    /multiple of 100/,
  );
  assert.throws(() => checkWorkerConfig({ ...base, guePort: 0 }, 2), /--gue-port/);
  assert.throws(
    () => checkWorkerConfig({ ...base, accessLog: { path: "-", format: "combined" } }, 2),
    /access log/,
  );
  assert.throws(() => checkWorkerConfig(base, 65), /--workers must be/);
});

test("snapshots add up number by number, nested; other values are the first worker's", () => {
  assert.deepEqual(
    sumSnapshots([
      {
        mode: "local",
        http: { requests: { "200": 3 }, aborted: 1 },
        tcp: { gue: { wrongWorker: 0, packets: 5 } },
      },
      {
        mode: "local",
        http: { requests: { "200": 4, "404": 1 }, aborted: 0 },
        tcp: { gue: { wrongWorker: 2, packets: 6 } },
      },
    ]),
    {
      mode: "local",
      http: { requests: { "200": 7, "404": 1 }, aborted: 1 },
      tcp: { gue: { wrongWorker: 2, packets: 11 } },
    },
  );
});

test("settings stay one worker's value and percentiles the larger, not sums", () => {
  assert.deepEqual(
    sumSnapshots([
      {
        uptimeSeconds: 5,
        sc: { oneWay: { samples: 10, p50: 40, p99: 90, max: 100 } },
        store: { revalidation: { ttlMs: 500 } },
      },
      {
        uptimeSeconds: 5,
        sc: { oneWay: { samples: 20, p50: 60, p99: 80, max: 120 } },
        store: { revalidation: { ttlMs: 500 } },
      },
    ]),
    {
      uptimeSeconds: 5,
      sc: { oneWay: { samples: 30, p50: 60, p99: 90, max: 120 } },
      store: { revalidation: { ttlMs: 500 } },
    },
  );
});
