import { test } from "node:test";
import assert from "node:assert/strict";
import { comparisonTable, medianRun, parseWrk, type Result } from "./server-bench-figures.js";

const WRK = `Running 5s test @ http://127.0.0.1:8080/1k.bin
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   1.20ms  300.00us   5.00ms   90.00%
  60000 requests in 5.00s, 70.00MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 3
Requests/sec:  12000.50
Transfer/sec:     14.00MB
`;

test("parseWrk: requests/s, MB/s (wrk's MiB as 10^6 bytes), socket errors plus non-2xx responses", () => {
  const r = parseWrk(WRK);
  assert.equal(r.rps, 12000.5);
  assert.ok(Math.abs(r.mbps - 14 * 1.048576) < 1e-9, String(r.mbps));
  assert.equal(r.errors, 10);
  const kb = parseWrk("Requests/sec: 10\nTransfer/sec: 512.00KB\n");
  assert.ok(Math.abs(kb.mbps - 0.5 * 1.048576) < 1e-9);
  assert.equal(kb.errors, 0);
  assert.ok(Number.isNaN(parseWrk("wrk: connection refused").rps));
});

test("medianRun: the median run by requests/s (the upper of an even count), the errors of all runs", () => {
  const runs = [
    { rps: 300, mbps: 3, errors: 1 },
    { rps: 100, mbps: 1, errors: 0 },
    { rps: 200, mbps: 2, errors: 2 },
  ];
  assert.deepEqual(medianRun("nginx", "1k.bin", runs), {
    server: "nginx",
    file: "1k.bin",
    rps: 200,
    mbps: 2,
    errors: 3,
  });
  assert.equal(medianRun("x", "f", runs.slice(0, 2)).rps, 300);
  assert.equal(runs[0]!.rps, 300, "the runs are not reordered");
});

test("comparisonTable: every server's req/s per file and each of ours against nginx", () => {
  const r = (server: string, file: string, rps: number): Result => ({
    server,
    file,
    rps,
    mbps: 0,
    errors: 0,
  });
  const results = [
    r("sc-cluster (kernel stack)", "1k.bin", 900),
    r("nginx", "1k.bin", 1200),
    r("sc-cluster (kernel stack)", "100k.bin", 100),
    r("nginx", "100k.bin", 80),
  ];
  assert.deepEqual(comparisonTable(results, ["1k.bin", "100k.bin"]), [
    "| file | sc-cluster (kernel stack) req/s | nginx req/s | sc-cluster (kernel stack) / nginx |",
    "| --- | ---: | ---: | ---: |",
    "| 1k.bin | 900 | 1200 | 0.75 |",
    "| 100k.bin | 100 | 80 | 1.25 |",
  ]);
});
