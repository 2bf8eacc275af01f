import { test } from "node:test";
import assert from "node:assert/strict";
import {
  buildModel,
  documentPath,
  normalCdf,
  normalQuantile,
  PAPER_TRACE,
  requestSequence,
  Rng,
  zipfCounts,
  zipfSlope,
} from "./model.js";
import { canonicalizeTarget } from "../url.js";

test("the PRNG is deterministic per (seed, stream), uniform-ish, and streams differ", () => {
  const a = new Rng(42, 1);
  const b = new Rng(42, 1);
  const c = new Rng(42, 2);
  const xs = Array.from({ length: 10_000 }, () => a.next());
  assert.deepEqual(
    xs.slice(0, 5),
    Array.from({ length: 5 }, () => b.next()),
  );
  assert.notEqual(c.next(), xs[0]);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  const buckets = new Array(10).fill(0);
  for (const x of xs) buckets[Math.floor(x * 10)]++;
  assert.ok(
    buckets.every((n) => n > 850 && n < 1150),
    String(buckets),
  );
});

test("normal quantile inverts the normal CDF", () => {
  // The CDF approximation is good to 1.5e-7 absolute, so the round trip loosens in the tails.
  for (let x = -3; x <= 3; x += 0.25) assert.ok(Math.abs(normalQuantile(normalCdf(x)) - x) < 1e-4, String(x));
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-6);
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-8);
  assert.ok(normalQuantile(0.1) < normalQuantile(0.2) && normalQuantile(0.2) < normalQuantile(0.99));
});

test("Zipf counts sum to the requests, give every file one, and have slope -alpha", () => {
  const counts = zipfCounts(1000, 50_000, 0.8);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    50_000,
  );
  assert.ok(counts.every((c) => c >= 1));
  assert.ok(Math.abs(zipfSlope(counts) + 0.8) < 0.02, String(zipfSlope(counts)));
  const few = zipfCounts(1000, 100, 1.0);
  assert.equal(
    few.reduce((a, b) => a + b, 0),
    100,
  );
  assert.ok(few[0]! >= few[999]!);
});

test("same seed, same model; another seed, another model", () => {
  const p = { ...PAPER_TRACE, scale: 0.005 };
  const a = buildModel({ ...p, seed: 9 });
  const b = buildModel({ ...p, seed: 9 });
  const c = buildModel({ ...p, seed: 10 });
  assert.deepEqual(a.sizes, b.sizes);
  assert.deepEqual(a.requestCounts, b.requestCounts);
  assert.deepEqual(requestSequence(a), requestSequence(b));
  assert.notDeepEqual(a.sizes, c.sizes);
  assert.notDeepEqual(requestSequence(a), requestSequence(c));
});

test("shape at scale 0.01: the paper's means, a heavy tail, Zipf popularity in the requests", () => {
  for (const seed of [1, 2, 3]) {
    const m = buildModel({ ...PAPER_TRACE, scale: 0.01, seed });
    assert.equal(m.files, 874);
    assert.equal(m.requests, 39_407);
    const fileMean = m.achieved.totalBytes / m.files;
    const target = PAPER_TRACE.totalBytes / PAPER_TRACE.files;
    assert.ok(Math.abs(fileMean / target - 1) < 0.05, `seed ${seed}: mean file ${fileMean} vs ${target}`);
    // Mean bytes per request, measured over the request sequence itself.
    const seq = requestSequence(m);
    let bytes = 0;
    const perFile = new Map<number, number>();
    for (const id of seq) {
      bytes += m.sizes[id]!;
      perFile.set(id, (perFile.get(id) ?? 0) + 1);
    }
    const reqMean = bytes / seq.length;
    assert.ok(Math.abs(reqMean / (40 * 1024) - 1) < 0.05, `seed ${seed}: request mean ${reqMean}`);
    const slope = zipfSlope([...perFile.values()].sort((a, b) => b - a));
    assert.ok(Math.abs(slope + PAPER_TRACE.zipfAlpha) < 0.05, `seed ${seed}: slope ${slope}`);
    assert.equal(perFile.size, m.files);
    // Heavy tail: the median is far below the mean, and 1% of files hold over a fifth of the bytes.
    assert.ok(m.achieved.medianFileBytes < fileMean / 3);
    const sorted = Array.from(m.sizes).sort((a, b) => b - a);
    const top = sorted.slice(0, Math.ceil(m.files / 100)).reduce((a, b) => a + b, 0);
    assert.ok(top / m.achieved.totalBytes > 0.2, `top 1% hold ${top / m.achieved.totalBytes}`);
    assert.ok(sorted[0]! <= PAPER_TRACE.maxFileBytes);
    assert.ok(sorted.at(-1)! >= 1);
  }
});

test("document names are canonical paths, one per file id", () => {
  const seen = new Set<string>();
  for (let id = 0; id < 5000; id += 7) {
    const p = documentPath(id, id * 1000);
    const c = canonicalizeTarget(p);
    assert.ok(c.ok && c.url === p && c.docPath === p, p);
    seen.add(p);
  }
  assert.equal(seen.size, Math.ceil(5000 / 7));
});
