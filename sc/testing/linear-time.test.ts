import { test } from "node:test";
import assert from "node:assert/strict";
import { checkLinearCounts, checkLinearTime, sizesUpTo, type LinearCase } from "./linear-time.js";
import { cpuClockMs } from "./cpu-clock.js";

const LIMIT = 16384;

/** One pass over the input, as a linear scanner does. */
const linearScan: LinearCase<string> = {
  name: "a + n letters",
  make: (n) => "a".repeat(n),
  run: (s) => {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
    return h;
  },
};

/** A rescan from every position, as a backtracking regex does on a run it cannot match. */
const quadraticScan: LinearCase<string> = {
  name: "a + n letters, rescanned from every position",
  make: (n) => "a".repeat(n),
  run: (s) => {
    let h = 0;
    for (let i = 0; i < s.length; i++) for (let j = i; j < s.length; j++) h = (h + s.charCodeAt(j)) | 0;
    return h;
  },
};

test("sizes grow by 4 up to the limit, smallest first", () => {
  assert.deepEqual(sizesUpTo(16384), [256, 1024, 4096, 16384]);
  assert.deepEqual(sizesUpTo(1000, 3), [62, 250, 1000]);
});

test("operation counts: linear passes, quadratic fails at the first step", () => {
  assert.equal(checkLinearCounts((n) => 3 * n + 20, { limit: LIMIT }).ok, true);
  const q = checkLinearCounts((n) => n * n, { limit: LIMIT });
  assert.equal(q.ok, false);
  assert.equal(q.costs.length, 2, "stops at the first failing size");
  assert.match((q as { reason: string }).reason, /grew 16\.0x from n=256 to n=1024/);
});

test("time: a linear scan passes on a loaded machine's CPU clock", () => {
  const v = checkLinearTime(linearScan, { limit: LIMIT, clock: cpuClockMs });
  assert.ok(v.ok, v.ok ? "" : v.reason);
  assert.equal(v.costs.length, 4);
});

test("time: a quadratic scan fails on its growth", () => {
  const v = checkLinearTime(quadraticScan, { limit: LIMIT, clock: cpuClockMs });
  assert.equal(v.ok, false);
  assert.match((v as { reason: string }).reason, /cost grew|budget/);
});

test("time: one call over the budget fails before any repetition", () => {
  // A fake clock: every call costs 1 ms per input unit, so only the budget can fail the case.
  let now = 0;
  const seen: number[] = [];
  const v = checkLinearTime(
    {
      name: "1 ms per unit",
      make: (n) => n,
      run: (n) => {
        seen.push(n);
        now += n;
        return n;
      },
    },
    { limit: 4096, clock: () => now, budgetMs: 100 },
  );
  assert.equal(v.ok, false);
  assert.match((v as { reason: string }).reason, /one call at n=256 took 256\.0 ms \(budget 100 ms\)/);
  assert.equal(seen.filter((n) => n === 256).length, 1, "one call at the size that broke the budget");
  assert.equal(Math.max(...seen), 256, "no larger size tried");
});
