import { test } from "node:test";
import assert from "node:assert/strict";
import { cloneReport, latencyArgs, pointArgs } from "./sc-clone-figures.js";

test("sc-clone load arguments: the verified latency run and one fixed-URL policy point", () => {
  assert.deepEqual(latencyArgs("/t/latency.log", "http://198.18.100.1/", 500, "/t/manifest.jsonl"), [
    "--trace",
    "/t/latency.log",
    "--format",
    "urls",
    "--target",
    "http://198.18.100.1/",
    "--conns",
    "4",
    "--keepalive",
    "--requests",
    "500",
    "--verify",
    "/t/manifest.jsonl",
  ]);
  assert.deepEqual(pointArgs("http://v/s100/3.bin", 100, 16, 5), [
    "--url",
    "http://v/s100/3.bin",
    "--connections",
    "16",
    "--duration",
    "5",
    "--expect-length",
    "100",
  ]);
});

test("sc-clone report: latencies (or 'not measured by this build'), the policy table with its ratios, the set-up", () => {
  const p = (samples: number, p50: number) => ({ samples, p50, p90: p50 + 1, p99: p50 + 2, max: p50 + 3 });
  const lines = cloneReport(
    { roundTrip: p(900, 120), oneWay: p(800, 50) },
    [{ size: 4096, clone: 2000.4, local: 3000, cloneCpuUs: 300, localCpuUs: 200.2 }],
    { connections: 16, durationS: 5, rate: undefined },
  );
  assert.deepEqual(lines.slice(0, 6), [
    "",
    "clone latency one-way (CLONE sent -> the clone's first segment to its TUN), 800 samples: p50 50 us, p90 51 us, p99 52 us, max 53 us",
    "  of which transit (CLONE sent -> read, verified, decoded on the clone's node), 0 samples: not measured by this build",
    "  of which serving (import, response, first segment), 0 samples: not measured by this build",
    "clone latency round trip (CLONE sent -> SC-ACK received), 900 samples: p50 120 us, p90 121 us, p99 122 us, max 123 us",
    "(paper: 46 us one-way on a Pentium III 733, in-kernel)",
  ]);
  assert.equal(lines[9], "| 4096 | 2000 | 3000 | 1.50 | 300 | 200 | 1.50 |");
  assert.match(lines[10]!, /^\n16 connections, 5 s per point, 2 nodes, links unshaped; /);
  assert.match(
    cloneReport({ roundTrip: null }, [], { connections: 1, durationS: 1, rate: "10mbit" }).at(-1)!,
    /links 10mbit;/,
  );
});
