// Timings aggregation, and coordinated-omission correction shown on a simulated server under
// virtual time: the open-loop queue (loadgen/schedule.ts) feeding one connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OpenLoopQueue, Pacer, type Due } from "../schedule.js";
import { classKey, percentilesMs, Timings, type Completion } from "./timings.js";

/**
 * One connection to a server that answers in `serviceMs` except during [stallFrom, stallTo),
 * when it answers nothing (a SIGSTOP): what is in service or arrives then completes at stallTo.
 * Requests come at `rate` per second for `seconds`. Returns the timings and the queue.
 */
function simulate(o: {
  rate: number;
  seconds: number;
  serviceMs: number;
  stallFrom: number;
  stallTo: number;
  capacity: number;
}) {
  const q = new OpenLoopQueue(
    new Pacer({ kind: "constant", rate: o.rate }, 0, 1, o.rate * o.seconds),
    o.capacity,
  );
  const timings = new Timings();
  let t = 0;
  let busy: { index: number; intendedMs: number; sentMs: number; endMs: number } | null = null;
  for (let steps = 0; steps < 10 * o.rate * o.seconds; steps++) {
    if (busy && busy.endMs <= t) {
      timings.record({
        cls: 0,
        intendedMs: busy.intendedMs,
        sentMs: busy.sentMs,
        firstByteMs: busy.endMs,
        endMs: busy.endMs,
        connectMs: null,
        status: 200,
        bodyBytes: 100,
        outcome: "ok",
      });
      busy = null;
    }
    q.admit(t);
    const d: Due | null = busy ? null : q.shift();
    if (d) {
      const end = t + o.serviceMs;
      busy = { ...d, sentMs: t, endMs: end >= o.stallFrom && t < o.stallTo ? Math.max(end, o.stallTo) : end };
      timings.sent(t);
    }
    const next = Math.min(q.nextDueMs() ?? Infinity, busy ? busy.endMs : Infinity);
    if (!Number.isFinite(next)) break;
    t = Math.max(t, next);
  }
  return { timings, q };
}

test("a 1 s stall: latency from the intended time shows it at p99, latency from the send does not", () => {
  const { timings, q } = simulate({
    rate: 1000,
    seconds: 5,
    serviceMs: 0.5,
    stallFrom: 2000,
    stallTo: 3000,
    capacity: 5000,
  });
  assert.equal(timings.all.requests, 5000);
  assert.equal(q.stats.dropped, 0);
  assert.ok(q.stats.maxBacklog >= 999, `backlog ${q.stats.maxBacklog}`);
  const fromSend = percentilesMs(timings.all.total);
  const fromIntended = percentilesMs(timings.all.corrected);
  // Only the one request in service when the server stopped waited the second.
  assert.equal(fromSend.p99, 0.5);
  assert.ok(fromSend.max >= 1000 && fromSend.max < 1001, `max ${fromSend.max}`);
  // ~2000 of 5000 requests came due during the stall or its backlog: p90 and p99 show it.
  assert.ok(fromIntended.p99 > 900, `corrected p99 ${fromIntended.p99}`);
  assert.ok(fromIntended.p90 > 500, `corrected p90 ${fromIntended.p90}`);
  assert.ok(fromIntended.p50 < 1, `corrected p50 ${fromIntended.p50}`);
  // The send delay is exactly the difference the correction adds.
  assert.ok(percentilesMs(timings.wait).p99 > 900);
});

test("without a stall, both latencies agree", () => {
  const { timings, q } = simulate({
    rate: 1000,
    seconds: 2,
    serviceMs: 0.5,
    stallFrom: Infinity,
    stallTo: Infinity,
    capacity: 10,
  });
  assert.equal(q.stats.maxBacklog, 1);
  assert.deepEqual(percentilesMs(timings.all.corrected), percentilesMs(timings.all.total));
});

test("a full queue drops the newest due requests and counts them", () => {
  const { timings, q } = simulate({
    rate: 1000,
    seconds: 5,
    serviceMs: 0.5,
    stallFrom: 2000,
    stallTo: 3000,
    capacity: 100,
  });
  assert.equal(q.stats.maxBacklog, 100);
  assert.ok(q.stats.dropped > 850 && q.stats.dropped < 1000, `dropped ${q.stats.dropped}`);
  assert.equal(timings.all.requests + q.stats.dropped, 5000);
});

const completion = (c: Partial<Completion>): Completion => ({
  cls: 0,
  intendedMs: 0,
  sentMs: 0,
  firstByteMs: 1,
  endMs: 2,
  connectMs: null,
  status: 200,
  bodyBytes: 5000,
  outcome: "ok",
  ...c,
});

test("per class (status x size bucket) and per tracked URL; errors counted but not timed", () => {
  const t = new Timings(new Set([0, 2]));
  t.record(completion({ cls: 0, endMs: 4, connectMs: 0.3 }));
  t.record(completion({ cls: 0, endMs: 8 }));
  t.record(completion({ cls: 1, status: 404, bodyBytes: 0, outcome: "verify_failure" }));
  t.record(completion({ cls: 2, status: 0, bodyBytes: 0, firstByteMs: null, outcome: "error", endMs: 1500 }));
  t.record(completion({ cls: 2, bodyBytes: 2_000_000, sentMs: 1000, intendedMs: 900, endMs: 1010 }));
  assert.deepEqual([...t.byClass.keys()].sort(), ["200 1K-10K", "200 >=1M", "404 0", "error"]);
  assert.deepEqual([...t.byUrl.keys()].sort(), [0, 2]);
  const url0 = t.byUrl.get(0)!;
  assert.equal(url0.requests, 2);
  assert.equal(percentilesMs(url0.total).max, 8);
  assert.equal(percentilesMs(url0.ttfb).p50, 1);
  const url2 = t.byUrl.get(2)!;
  assert.deepEqual([url2.requests, url2.errors, url2.total.totalCount], [2, 1, 1]);
  assert.equal(percentilesMs(url2.corrected).max, 110);
  assert.equal(percentilesMs(url2.total).max, 10);
  assert.equal(t.connect.totalCount, 1);
  assert.deepEqual([...t.perSecond.keys()].sort(), [0, 1]);
  assert.equal(t.perSecond.get(1)!.requests, 2);
  assert.equal(classKey({ status: 304, bodyBytes: 0, outcome: "ok" }), "304 0");
  // Merging encoded timings (what workers send) adds up.
  const merged = new Timings();
  merged.add(JSON.parse(JSON.stringify(t.encode())));
  merged.add(t.encode());
  assert.equal(merged.all.requests, 10);
  assert.equal(merged.byUrl.get(2)!.errors, 2);
  assert.deepEqual(percentilesMs(merged.all.total), { ...percentilesMs(t.all.total), count: 8 });
});
