import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "hdr-histogram-js";
import { bucketRange, Histogram, HIGHEST_TRACKABLE, indexOf, parseHgrm } from "./histogram.js";

/** A deterministic spread of latencies: many small, a long tail, a few huge. */
function sampleValues(n: number, seed = 1): number[] {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = rnd();
    out.push(
      Math.round(u < 0.9 ? 200 + rnd() * 3000 : u < 0.999 ? 5_000 + rnd() * 500_000 : 2e6 + rnd() * 3e9),
    );
  }
  return out;
}

function hdrOf(values: number[]) {
  const h = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  for (const v of values) h.recordValue(v);
  return h;
}

test("bucket layout: exact below 2048, then relative error under 1/1024, indexes round-trip", () => {
  for (const v of [0, 1, 2047, 2048, 2049, 4095, 4096, 1e6, 123_456_789, HIGHEST_TRACKABLE]) {
    const { low, width } = bucketRange(indexOf(v));
    assert.ok(low <= v && v < low + width, `${v} in [${low}, ${low + width})`);
    if (v < 2048) assert.equal(width, 1);
    else assert.ok(width / low <= 1 / 1024, `${v}: width ${width} low ${low}`);
  }
  // Consecutive buckets tile the line with no gap or overlap.
  for (let i = 2040; i < 9000; i++) {
    const a = bucketRange(i);
    assert.equal(bucketRange(i + 1).low, a.low + a.width, `bucket ${i}`);
  }
});

test("percentiles, mean and deviation equal hdr-histogram-js's on the same values", () => {
  const values = sampleValues(20_000);
  const ours = new Histogram();
  for (const v of values) ours.record(v);
  const hdr = hdrOf(values);
  for (const p of [0, 1, 50, 90, 99, 99.9, 99.99, 100]) {
    assert.equal(ours.valueAtPercentile(p), hdr.getValueAtPercentile(p), `p${p}`);
  }
  assert.equal(ours.totalCount, hdr.totalCount);
  assert.equal(ours.max, hdr.maxValue);
  assert.ok(Math.abs(ours.mean - hdr.mean) < 1e-6 * hdr.mean);
  assert.ok(Math.abs(ours.stdDeviation() - hdr.stdDeviation) < 1e-6 * hdr.stdDeviation);
});

test(".hgrm text is byte for byte hdr-histogram-js's percentile distribution (us shown as ms)", () => {
  for (const values of [sampleValues(5000, 7), [1500], [3, 3, 3, 900, 2_500_000], sampleValues(97, 3)]) {
    const ours = new Histogram();
    for (const v of values) ours.record(v);
    assert.equal(ours.percentileDistribution(1000), hdrOf(values).outputPercentileDistribution(5, 1000));
  }
});

test(".hgrm parses back: rows are monotone, the footer has the totals, the last row is 100%", () => {
  const values = sampleValues(10_000, 11);
  const h = new Histogram();
  for (const v of values) h.record(v);
  const text = h.percentileDistribution(1000);
  const parsed = parseHgrm(text);
  assert.equal(parsed.totalCount, 10_000);
  assert.equal(parsed.max, Math.max(...values) / 1000);
  assert.ok(Math.abs(parsed.mean - h.mean / 1000) < 0.001);
  const last = parsed.rows.at(-1)!;
  assert.equal(last.percentile, 1);
  assert.equal(last.totalCount, 10_000);
  for (let i = 1; i < parsed.rows.length; i++) {
    assert.ok(parsed.rows[i]!.value >= parsed.rows[i - 1]!.value);
    assert.ok(parsed.rows[i]!.percentile >= parsed.rows[i - 1]!.percentile);
    assert.ok(parsed.rows[i]!.totalCount >= parsed.rows[i - 1]!.totalCount);
  }
  // The p50 row agrees with the histogram's own p50.
  const p50 = parsed.rows.find((r) => r.percentile >= 0.5)!;
  assert.equal(p50.value, h.valueAtPercentile(50) / 1000);
  assert.throws(() => parseHgrm("not a histogram\n"), /bad row|footer/);
});

test("encode/decode and add merge exactly; out-of-range values are clamped, not lost", () => {
  const a = new Histogram();
  const b = new Histogram();
  for (const v of sampleValues(1000, 5)) a.record(v);
  for (const v of sampleValues(1000, 6)) b.record(v);
  const merged = Histogram.decode(a.encode());
  merged.add(Histogram.decode(JSON.parse(JSON.stringify(b.encode()))));
  const direct = new Histogram();
  for (const v of [...sampleValues(1000, 5), ...sampleValues(1000, 6)]) direct.record(v);
  assert.deepEqual(merged.encode(), direct.encode());
  const c = new Histogram();
  c.record(-5);
  c.record(HIGHEST_TRACKABLE * 10);
  assert.equal(c.totalCount, 2);
  assert.equal(c.valueAtPercentile(0), 0);
  assert.equal(c.max, HIGHEST_TRACKABLE);
});
