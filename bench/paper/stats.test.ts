import { test } from "node:test";
import assert from "node:assert/strict";
import { bucketDelta, histogramQuantile, spread } from "./stats.js";

test("spread: median of odd and even counts, min, max; NaN for none", () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3 });
  assert.deepEqual(spread([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4 });
  assert.deepEqual(spread([7]), { median: 7, min: 7, max: 7 });
  const none = spread([]);
  assert.ok(Number.isNaN(none.median) && Number.isNaN(none.min) && Number.isNaN(none.max));
});

test("histogramQuantile interpolates inside the bucket like Prometheus", () => {
  // 10 observations <= 1, 30 <= 2, 40 <= 4, none above.
  const b = [
    { le: 1, count: 10 },
    { le: 2, count: 30 },
    { le: 4, count: 40 },
    { le: Infinity, count: 40 },
  ];
  assert.equal(histogramQuantile(b, 0.25), 1); // rank 10: the top of the first bucket
  assert.equal(histogramQuantile(b, 0.5), 1.5); // rank 20: halfway through (1, 2]
  assert.equal(histogramQuantile(b, 0.875), 3); // rank 35: halfway through (2, 4]
  assert.equal(histogramQuantile(b, 0.125), 0.5); // first bucket starts at 0
});

test("histogramQuantile: a rank in +Inf gives the highest finite bound; no observations give NaN", () => {
  const b = [
    { le: 1, count: 1 },
    { le: Infinity, count: 4 },
  ];
  assert.equal(histogramQuantile(b, 0.9), 1);
  assert.ok(Number.isNaN(histogramQuantile([{ le: 1, count: 0 }], 0.5)));
});

test("bucketDelta subtracts the earlier counts bound by bound", () => {
  const before = [
    { le: 1, count: 5 },
    { le: Infinity, count: 6 },
  ];
  const after = [
    { le: 1, count: 8 },
    { le: Infinity, count: 12 },
  ];
  assert.deepEqual(bucketDelta(after, before), [
    { le: 1, count: 3 },
    { le: Infinity, count: 6 },
  ]);
});
