import { test } from "node:test";
import assert from "node:assert/strict";
import { hasMetric, histogramBuckets, metricSum, parseMetrics } from "./metrics.js";

const TEXT = `# HELP sc_clones_sent_total CLONE messages sent
# TYPE sc_clones_sent_total counter
sc_clones_sent_total 42
sc_clone_failures_total{reason="timeout"} 2
sc_clone_failures_total{reason="peer-down"} 3
sc_http_requests_total{status="200",node="a \\"b\\""} 7
sc_clone_latency_seconds_bucket{le="0.000025"} 1
sc_clone_latency_seconds_bucket{le="0.0001"} 5
sc_clone_latency_seconds_bucket{le="+Inf"} 9
sc_clone_latency_seconds_sum 0.5
sc_clone_latency_seconds_count 9
garbage line without value
`;

test("parseMetrics reads names, labels (with escapes) and values; skips comments and junk", () => {
  const s = parseMetrics(TEXT);
  assert.equal(metricSum(s, "sc_clones_sent_total"), 42);
  assert.equal(metricSum(s, "sc_clone_failures_total"), 5);
  assert.equal(metricSum(s, "sc_clone_failures_total", { reason: "timeout" }), 2);
  assert.equal(metricSum(s, "sc_http_requests_total", { node: 'a "b"' }), 7);
  assert.equal(metricSum(s, "no_such_metric"), 0);
  assert.ok(hasMetric(s, "sc_clone_latency_seconds_count"));
  assert.ok(!hasMetric(s, "garbage"));
});

test("histogramBuckets returns the cumulative buckets sorted, +Inf as Infinity", () => {
  assert.deepEqual(histogramBuckets(parseMetrics(TEXT), "sc_clone_latency_seconds"), [
    { le: 0.000025, count: 1 },
    { le: 0.0001, count: 5 },
    { le: Infinity, count: 9 },
  ]);
});
