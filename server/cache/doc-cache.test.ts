import { test } from "node:test";
import assert from "node:assert/strict";
import { LfuCache } from "./lfu.js";
import { createDocCache, CACHE_POLICIES } from "./doc-cache.js";
import { docCost, makeDoc, type Doc } from "../http/doc.js";

function doc(key: string, size: number): Doc {
  return makeDoc({ key, size, mtimeMs: 0, etag: '"e"', contentType: "text/plain", body: Buffer.alloc(size) });
}

test("LFU: the more frequently used entry survives a scan of one-time entries", () => {
  const c = new LfuCache<string>(3);
  c.set("hot", "h", 1);
  for (let i = 0; i < 5; i++) c.get("hot");
  assert.equal(c.frequency("hot"), 6);
  for (let i = 0; i < 8; i++) c.set(`scan${i}`, "s", 1);
  assert.equal(c.peek("hot"), "h");
  assert.equal(c.size, 3);
  // Among equal priorities the least recently used goes first.
  assert.equal(c.peek("scan7"), "s");
  assert.equal(c.peek("scan6"), "s");
  assert.equal(c.peek("scan5"), undefined);
});

test("LFU ages: popularity from long ago stops pinning an entry", () => {
  const c = new LfuCache<string>(4);
  c.set("old", "o", 1);
  for (let i = 0; i < 50; i++) c.get("old");
  // A stream of newcomers, each used twice, raises the cache age past old's frequency.
  let n = 0;
  while (c.peek("old") !== undefined && n < 1000) {
    const k = `new${n++}`;
    c.set(k, "n", 1);
    c.get(k);
  }
  assert.equal(c.peek("old"), undefined, "old entry evicted once the age caught up");
  assert.ok(n > 20 && n < 200, `evicted after ${n} newcomers`);
  assert.ok(c.cacheAge >= 51);
  // Plain frequency still matters at equal age: a fresh entry used 3 times beats one used once.
  c.set("a", "a", 1);
  c.get("a");
  c.get("a");
  c.set("b", "b", 1);
  c.set("c", "c", 1);
  c.set("d", "d", 1);
  assert.equal(c.peek("a"), "a");
});

test("LFU: byte bound holds, oversize refused, replacement re-accounts", () => {
  const evicted: string[] = [];
  const c = new LfuCache<string>(100, (k) => evicted.push(k));
  assert.equal(c.set("big", "x", 101), false);
  assert.equal(c.size, 0);
  c.set("a", "a", 60);
  c.set("b", "b", 30);
  assert.equal(c.bytes, 90);
  c.set("c", "c", 30);
  assert.ok(c.bytes <= 100);
  assert.deepEqual(evicted, ["a"]);
  c.set("b", "b2", 70); // grows: something else must go, never b itself
  assert.equal(c.peek("b"), "b2");
  assert.ok(c.bytes <= 100);
  assert.equal(c.bytes, 100);
  assert.equal(c.delete("b"), true);
  assert.equal(c.delete("b"), false);
  assert.equal(c.bytes, 30);
  assert.equal(c.peek("c"), "c");
});

/** LFU-DA by brute force: a linear scan for the victim. */
class ModelLfu {
  entries = new Map<string, { cost: number; freq: number; priority: number; lastUse: number }>();
  age = 0;
  clock = 0;
  bytes = 0;
  constructor(readonly max: number) {}
  get(k: string) {
    const e = this.entries.get(k);
    if (!e) return;
    e.freq++;
    e.priority = this.age + e.freq;
    e.lastUse = ++this.clock;
  }
  set(k: string, cost: number) {
    if (cost > this.max) return;
    const old = this.entries.get(k);
    if (old) {
      this.bytes += cost - old.cost;
      old.cost = cost;
      old.lastUse = ++this.clock;
      this.evict(k);
      return;
    }
    this.bytes += cost;
    this.evict(null);
    this.entries.set(k, { cost, freq: 1, priority: this.age + 1, lastUse: ++this.clock });
  }
  delete(k: string) {
    const e = this.entries.get(k);
    if (e) {
      this.bytes -= e.cost;
      this.entries.delete(k);
    }
  }
  evict(keep: string | null) {
    while (this.bytes > this.max) {
      let victim: string | null = null;
      for (const [k, e] of this.entries) {
        if (k === keep) continue;
        const v = victim === null ? null : this.entries.get(victim)!;
        if (!v || e.priority < v.priority || (e.priority === v.priority && e.lastUse < v.lastUse)) victim = k;
      }
      if (victim === null) return;
      this.age = this.entries.get(victim)!.priority;
      this.delete(victim);
    }
  }
}

test("LFU heap agrees with a brute-force LFU-DA model under random operations", () => {
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  const c = new LfuCache<number>(50);
  const m = new ModelLfu(50);
  for (let i = 0; i < 20000; i++) {
    const k = `k${Math.floor(rnd() * 40)}`;
    const op = rnd();
    if (op < 0.5) {
      c.get(k);
      m.get(k);
    } else if (op < 0.9) {
      const cost = 1 + Math.floor(rnd() * 10);
      c.set(k, i, cost);
      m.set(k, cost);
    } else {
      c.delete(k);
      m.delete(k);
    }
    assert.equal(c.bytes, m.bytes);
    assert.ok(c.bytes <= 50);
    assert.equal(c.cacheAge, m.age);
  }
  for (let k = 0; k < 40; k++) {
    assert.equal(c.peek(`k${k}`) !== undefined, m.entries.has(`k${k}`), `k${k}`);
    assert.equal(c.frequency(`k${k}`), m.entries.get(`k${k}`)?.freq ?? 0);
  }
});

for (const policy of CACHE_POLICIES) {
  test(`${policy} DocCache: byte bound, statistics, oversize documents rejected`, () => {
    const one = docCost(doc("/x", 1000));
    const cache = createDocCache(policy, one * 3);
    assert.equal(cache.policy, policy);
    assert.equal(cache.get("/a"), undefined);
    assert.equal(cache.set("/a", doc("/a", 1000)), true);
    cache.set("/b", doc("/b", 1000));
    cache.set("/c", doc("/c", 1000));
    assert.equal(cache.get("/a")?.key, "/a");
    cache.set("/d", doc("/d", 1000));
    let s = cache.stats();
    assert.equal(s.entries, 3);
    assert.ok(s.bytes <= s.maxBytes);
    assert.equal(s.bytes, 3 * one);
    assert.equal(s.hits, 1);
    assert.equal(s.misses, 1);
    assert.equal(s.hitBytes, 1000);
    assert.equal(s.insertions, 4);
    assert.equal(s.evictions, 1);
    assert.equal(cache.set("/huge", doc("/huge", one * 3)), false);
    s = cache.stats();
    assert.equal(s.rejected, 1);
    assert.equal(cache.peek("/huge"), undefined);
    // /a was used, so under both policies it outlives the untouched /b.
    assert.notEqual(cache.peek("/a"), undefined);
    assert.equal(cache.peek("/b"), undefined);
    cache.clear();
    assert.equal(cache.stats().bytes, 0);
  });
}

test("resize at run time (SIGHUP --cache-bytes): a smaller bound evicts at once, LRU keeps its order, a larger one keeps all", () => {
  for (const policy of CACHE_POLICIES) {
    const one = docCost(doc("/k0", 1000));
    const c = createDocCache(policy, one * 10);
    for (let i = 0; i < 8; i++) c.set(`/k${i}`, doc(`/k${i}`, 1000));
    // Used most recently (LRU) / most often (LFU): /k0 and /k1.
    for (let r = 0; r < 3; r++) {
      c.get("/k0");
      c.get("/k1");
    }
    c.resize(one * 20);
    assert.equal(c.stats().entries, 8, `${policy}: growing keeps everything`);
    assert.equal(c.maxBytes, one * 20);
    c.resize(one * 3);
    const s = c.stats();
    assert.equal(s.entries, 3, `${policy}: shrunk to 3 entries`);
    assert.ok(s.bytes <= one * 3);
    assert.equal(c.maxBytes, one * 3);
    assert.ok(c.peek("/k0") && c.peek("/k1"), `${policy}: the hot entries stayed`);
    assert.ok(s.evictions >= 5, `${policy}: evictions counted`);
    assert.deepEqual([...c.keys()].length, 3);
    // The new bound holds for later inserts too.
    c.set("/new", doc("/new", 1000));
    assert.ok(c.stats().bytes <= one * 3);
  }
});
