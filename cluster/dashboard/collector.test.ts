import { test } from "node:test";
import assert from "node:assert/strict";
import { StatsCollector, type StatsSource } from "./collector.js";
import type { Snapshot } from "./snapshot.js";

/** Lets pending promise callbacks run (setImmediate is not mocked by mock.timers setTimeout). */
const settle = () => new Promise<void>((r) => setImmediate(r));

function source(fail: Set<string> = new Set()): StatsSource & { calls: string[] } {
  const calls: string[] = [];
  let n = 0;
  return {
    calls,
    nodes: [
      { host: "node1", admin: "http://n1" },
      { host: "node2", admin: "http://n2" },
    ],
    dispatcherAdmin: "http://d",
    async json<T>(url: string): Promise<T> {
      calls.push(url);
      if ([...fail].some((f) => url.startsWith(f))) throw new Error(`GET ${url}: ECONNREFUSED`);
      if (url.startsWith("http://d")) return { scheduler: "rr", nodes: [] } as T;
      n++;
      return { http: { responses: n * 10, responseBytes: 0 }, sc: { clonesSent: n, clonesReceived: 0 } } as T;
    },
  };
}

test("one poll reads every node's and the dispatcher's /stats; concurrent polls share one", async () => {
  const src = source();
  const c = new StatsCollector(src, 1000);
  const [a, b] = await Promise.all([c.poll(), c.poll()]);
  assert.equal(a, b);
  assert.deepEqual(src.calls.sort(), ["http://d/stats", "http://n1/stats", "http://n2/stats"]);
  assert.deepEqual(
    a.nodes.map((x) => x.host),
    ["node1", "node2"],
  );
  assert.equal(c.latest, a);
  const second = await c.poll();
  assert.notEqual(second.intervalS, null);
  assert.equal(src.calls.length, 6);
});

test("a control API that does not answer makes its node down with the reason", async () => {
  const c = new StatsCollector(source(new Set(["http://n2"])), 1000);
  const s = await c.poll();
  assert.equal(s.nodes[0]!.up, true);
  assert.equal(s.nodes[1]!.up, false);
  assert.match(s.nodes[1]!.error!, /ECONNREFUSED/);
});

test("polls every interval while someone listens, and not at all otherwise", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const src = source();
  const c = new StatsCollector(src, 1000);
  t.mock.timers.tick(5000);
  await settle();
  assert.equal(src.calls.length, 0, "nobody listens yet");

  const got: Snapshot[] = [];
  const unsubscribe = c.subscribe((s) => got.push(s));
  t.mock.timers.tick(0);
  await settle();
  assert.equal(got.length, 1);
  t.mock.timers.tick(999);
  await settle();
  assert.equal(got.length, 1, "not before the interval");
  t.mock.timers.tick(1);
  await settle();
  assert.equal(got.length, 2);

  // A hold (a replay) keeps polling after the page left; letting go stops it.
  const release = c.hold();
  unsubscribe();
  const calls = src.calls.length;
  t.mock.timers.tick(1000);
  await settle();
  assert.equal(src.calls.length, calls + 3);
  release();
  release(); // twice is harmless
  t.mock.timers.tick(10_000);
  await settle();
  assert.equal(src.calls.length, calls + 3);
  assert.equal(got.length, 2, "an unsubscribed listener hears nothing");
  c.close();
});
