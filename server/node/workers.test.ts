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

test("--workers N > 1 needs the user stack, mode local, a GUE port, and no access log", () => {
  assert.doesNotThrow(() => checkWorkerConfig(base, 2));
  assert.throws(() => checkWorkerConfig({ ...base, stack: "kernel" }, 2), /--stack user/);
  assert.throws(() => checkWorkerConfig({ ...base, mode: "sc" }, 2), /--mode local only/);
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
