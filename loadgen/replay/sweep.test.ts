import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseRateRange, runSweep, sweepPlotSpec, sweepRates } from "./sweep.js";
import { renderPlot } from "../plot.js";
import { rawHttpServer, withTempDir } from "../test-support.js";

test("rate ranges: A..B parsed, N rates evenly spaced with both ends, nonsense refused", () => {
  assert.deepEqual(parseRateRange("100..400"), { from: 100, to: 400 });
  assert.deepEqual(parseRateRange("0.5..2.5"), { from: 0.5, to: 2.5 });
  assert.equal(parseRateRange("100"), null);
  assert.equal(parseRateRange("1..2..3"), null);
  assert.deepEqual(sweepRates(100, 400, 4), [100, 200, 300, 400]);
  assert.deepEqual(sweepRates(1, 2, 3), [1, 1.5, 2]);
  assert.throws(() => sweepRates(400, 100, 4), /0 < A < B/);
  assert.throws(() => sweepRates(1, 2, 1), /--steps/);
  assert.throws(() => sweepRates(1, 2, 51), /--steps/);
});

test("a sweep runs one bounded open loop per rate and plots corrected percentiles against throughput", async () => {
  await withTempDir(async (dir) => {
    // One connection, 10 ms per answer: 100 requests/s at most.
    const server = await rawHttpServer((socket) => {
      setTimeout(() => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 10);
    });
    try {
      const trace = join(dir, "urls.txt");
      writeFileSync(trace, "/a\n/b\n");
      const seen: number[] = [];
      const r = await runSweep({
        trace,
        target: server.url,
        conns: 1,
        keepalive: true,
        durationS: 1,
        rates: [20, 400],
        maxBacklog: 50,
        onStep: (s) => seen.push(s.intended_rps),
      });
      assert.deepEqual(seen, [20, 400]);
      assert.equal(r.runs.length, 2);
      const [low, high] = r.steps;
      assert.equal(low!.kept_up, true, JSON.stringify(r.runs[0]!.open_loop));
      assert.equal(high!.kept_up, false);
      assert.ok(high!.achieved_rps < 200, `achieved ${high!.achieved_rps}`);
      assert.ok(high!.latency_from_intended_ms.p50 > low!.latency_from_intended_ms.p50);
      const spec = sweepPlotSpec(r);
      assert.deepEqual(
        spec.series.map((s) => s.name),
        ["p50", "p90", "p99"],
      );
      assert.deepEqual(
        spec.series[2]!.points.map((p) => p.y),
        r.steps.map((s) => s.latency_from_intended_ms.p99),
      );
      assert.match(spec.notes![0]!, /did not keep up at 400 req\/s/);
      assert.match(renderPlot(spec), /Latency from intended send/);
    } finally {
      await server.close();
    }
  });
});
