// The stack-wide challenge-ACK cap (RFC 5961 7) with its per-second random budget
// (CVE-2016-5696 countermeasure, as Linux): bounds, second boundaries, unpredictability.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { ChallengeAckBudget } from "./challenge-ack.js";

function spend(b: ChallengeAckBudget, now: number): number {
  let n = 0;
  while (b.take(now) && n < 1e6) n++;
  return n;
}

test("challenge-ACK budget: each second's budget is limit/2 + a draw in [0, limit)", () => {
  const draws: number[] = [];
  const lowest = new ChallengeAckBudget(1000, (n) => (draws.push(n), 0));
  assert.equal(spend(lowest, 0), 500);
  assert.deepEqual(draws, [1000]);
  const highest = new ChallengeAckBudget(1000, (n) => n - 1);
  assert.equal(spend(highest, 0), 1499);
  const odd = new ChallengeAckBudget(3, () => 0);
  assert.equal(spend(odd, 0), 2, "half rounds up, as Linux's (limit + 1) >> 1");
});

test("challenge-ACK budget: a new budget at each whole second, none carried over", () => {
  let draw = 7;
  const b = new ChallengeAckBudget(10, () => draw);
  assert.equal(spend(b, 100), 12);
  assert.equal(b.take(999), false, "same second: spent");
  draw = 2;
  assert.equal(spend(b, 1000), 7);
  assert.equal(spend(b, 1999.5), 0);
  draw = 9;
  assert.equal(spend(b, 5000), 14, "after idle seconds: one fresh budget");
});

test("challenge-ACK budget: with the default randomness the budget differs from second to second", () => {
  const b = new ChallengeAckBudget(1000, randomInt);
  const budgets: number[] = [];
  for (let s = 0; s < 20; s++) budgets.push(spend(b, s * 1000));
  for (const n of budgets) assert.ok(n >= 500 && n <= 1499, `budget ${n}`);
  // 20 equal draws out of 1000 values: probability 1e-57.
  assert.ok(new Set(budgets).size > 1, `always ${budgets[0]}: a counting attacker learns it`);
});

test("challenge-ACK budget: Infinity means no global cap; a limit below 1 allows none", () => {
  const none = new ChallengeAckBudget(Infinity, () => assert.fail("no draw needed"));
  for (let i = 0; i < 10_000; i++) assert.equal(none.take(0), true);
  assert.equal(new ChallengeAckBudget(0, () => 0).take(0), false);
});
