// The open-loop schedules and the bounded send queue, under virtual time (no sockets, no clock).
import { test } from "node:test";
import assert from "node:assert/strict";
import { OpenLoopQueue, Pacer, tracePassS, type Due, type ScheduleSpec } from "./schedule.js";

/** Every request of one pacer, in the order it hands them out. */
function drain(p: Pacer): Due[] {
  const out: Due[] = [];
  for (let d = p.takeDue(Infinity); d; d = p.takeDue(Infinity)) out.push(d);
  return out;
}

test("constant: request i at i/R; W workers together send exactly the one global schedule", () => {
  const spec: ScheduleSpec = { kind: "constant", rate: 250 };
  const one = drain(new Pacer(spec, 0, 1, 10));
  assert.deepEqual(
    one.map((d) => d.intendedMs),
    one.map((_, i) => i * 4),
  );
  const merged = [0, 1, 2].flatMap((w) => drain(new Pacer(spec, w, 3, 10)));
  merged.sort((a, b) => a.index - b.index);
  assert.deepEqual(merged, one);
});

test("a pacer hands out only what is due at the time it is given", () => {
  const p = new Pacer({ kind: "constant", rate: 100 }, 0, 1, 1000);
  const at = (ms: number) => {
    const got: number[] = [];
    for (let d = p.takeDue(ms); d; d = p.takeDue(ms)) got.push(d.index);
    return got;
  };
  assert.deepEqual(at(0), [0]);
  assert.deepEqual(at(9.99), []);
  assert.deepEqual(at(35), [1, 2, 3]);
  assert.equal(p.peek(), 40);
});

test("poisson: seeded and repeatable; gaps exponential with mean 1/R (mean, CV, P(gap > mean))", () => {
  const rate = 1000;
  const spec: ScheduleSpec = { kind: "poisson", rate, seed: 42 };
  const n = 50_000;
  const times = drain(new Pacer(spec, 0, 1, n)).map((d) => d.intendedMs);
  assert.deepEqual(
    drain(new Pacer(spec, 0, 1, 100)).map((d) => d.intendedMs),
    times.slice(0, 100),
  );
  const other = drain(new Pacer({ ...spec, seed: 43 }, 0, 1, 100)).map((d) => d.intendedMs);
  assert.notDeepEqual(other, times.slice(0, 100));
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
  // Mean 1 ms: the standard error over 50,000 gaps is 0.45%; 3% is far outside chance.
  assert.ok(Math.abs(mean - 1) < 0.03, `mean gap ${mean}`);
  assert.ok(Math.abs(sd / mean - 1) < 0.05, `coefficient of variation ${sd / mean}`);
  const above = gaps.filter((g) => g > mean).length / gaps.length;
  assert.ok(Math.abs(above - Math.exp(-1)) < 0.02, `P(gap > mean) ${above}`);
  // Counts per 100 ms window: Poisson(100), variance = mean.
  const windows = new Array(Math.floor(times.at(-1)! / 100)).fill(0);
  for (const t of times) if (t < windows.length * 100) windows[Math.floor(t / 100)]++;
  const wm = windows.reduce((a, b) => a + b, 0) / windows.length;
  const wv = windows.reduce((a, c) => a + (c - wm) ** 2, 0) / windows.length;
  assert.ok(Math.abs(wv / wm - 1) < 0.3, `variance/mean of window counts ${wv / wm}`);
});

test("poisson over W workers: the combined rate is R", () => {
  const spec: ScheduleSpec = { kind: "poisson", rate: 600, seed: 7 };
  const all = [0, 1, 2].flatMap((w) => drain(new Pacer(spec, w, 3, 30_000)));
  assert.equal(all.length, 30_000);
  assert.deepEqual(
    all.map((d) => d.index).sort((a, b) => a - b),
    Array.from({ length: 30_000 }, (_, i) => i),
  );
  const within10s = all.filter((d) => d.intendedMs < 10_000).length;
  assert.ok(Math.abs(within10s - 6000) < 300, `${within10s} requests in 10 s at 600/s`);
});

test("trace: each request at its timestamp / speed; the trace wraps one logged span later", () => {
  const offsetsS = Uint32Array.from([0, 0, 1, 3, 3, 10]);
  assert.equal(tracePassS(offsetsS), 11);
  const spec: ScheduleSpec = { kind: "trace", offsetsS, speed: 10 };
  const got = drain(new Pacer(spec, 0, 1, 8));
  assert.deepEqual(
    got.map((d) => d.intendedMs),
    [0, 0, 100, 300, 300, 1000, 1100, 1100],
  );
  const slow = drain(new Pacer({ ...spec, speed: 0.5 }, 0, 1, 6)).map((d) => d.intendedMs);
  assert.deepEqual(slow, [0, 0, 2000, 6000, 6000, 20000]);
  // Dealt over two workers, each share is still in time order.
  const w1 = drain(new Pacer(spec, 1, 2, 6));
  assert.deepEqual(
    w1.map((d) => [d.index, d.intendedMs]),
    [
      [1, 0],
      [3, 300],
      [5, 1000],
    ],
  );
});

test("pacers refuse schedules that would never send", () => {
  assert.throws(() => new Pacer({ kind: "constant", rate: 0 }, 0, 1, 1), /rate/);
  assert.throws(
    () => new Pacer({ kind: "trace", offsetsS: Uint32Array.from([0]), speed: 0 }, 0, 1, 1),
    /speed/,
  );
});

test("queue: FIFO, bounded, tail drop counted; backlog and due tracked under virtual time", () => {
  const q = new OpenLoopQueue(new Pacer({ kind: "constant", rate: 1000 }, 0, 1, 100), 5);
  q.admit(2.5); // requests 0, 1, 2 due
  assert.equal(q.length, 3);
  assert.deepEqual(q.shift(), { index: 0, intendedMs: 0 });
  q.admit(9); // 3..9 due: 2 waiting + 7 = 9 > 5: four dropped (the newest)
  assert.equal(q.length, 5);
  assert.deepEqual(q.stats, { due: 10, dropped: 4, maxBacklog: 5 });
  const order: number[] = [];
  for (let d = q.shift(); d; d = q.shift()) order.push(d.index);
  assert.deepEqual(order, [1, 2, 3, 4, 5]);
  assert.equal(q.nextDueMs(), 10);
  q.admit(1000);
  assert.equal(q.stats.due, 100);
  assert.equal(q.nextDueMs(), null);
  assert.equal(q.exhausted(), false);
  while (q.shift());
  assert.equal(q.exhausted(), true);
});
