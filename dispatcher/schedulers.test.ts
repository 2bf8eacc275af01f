import { test } from "node:test";
import assert from "node:assert/strict";
import { buildMaglevTable, isPrime, maglevTableSize, nextPrime } from "./maglev.js";
import {
  createScheduler,
  MaglevHash,
  SCHEDULER_NAMES,
  SourceHash,
  type LoadView,
  type SchedNode,
  type Scheduler,
} from "./schedulers.js";

const CLIENT = 0xc6120065;

function nodes(...weights: number[]): SchedNode[] {
  return weights.map((weight, i) => ({ slot: i, id: `node${i + 1}`, weight }));
}

class FakeLoad implements LoadView {
  act: number[] = [];
  inact: number[] = [];
  active(slot: number): number {
    return this.act[slot] ?? 0;
  }
  inactive(slot: number): number {
    return this.inact[slot] ?? 0;
  }
}

function counts(
  s: Scheduler,
  picks: number,
  src: (i: number) => [number, number] = (i) => [CLIENT, i],
): number[] {
  const c: number[] = [];
  for (let i = 0; i < picks; i++) {
    const [a, p] = src(i);
    const slot = s.pick(a, p);
    c[slot] = (c[slot] ?? 0) + 1;
  }
  return c;
}

test("every scheduler returns -1 with no eligible node", () => {
  for (const name of SCHEDULER_NAMES) {
    const s = createScheduler(name, new FakeLoad());
    assert.equal(s.pick(CLIENT, 1), -1, name);
    s.setNodes(nodes(1, 1));
    assert.ok(s.pick(CLIENT, 1) >= 0, name);
    s.setNodes([]);
    assert.equal(s.pick(CLIENT, 1), -1, name);
  }
});

test("rr takes the nodes in turn, ignores weights, and keeps its place across a rebuild", () => {
  const s = createScheduler("rr", new FakeLoad());
  s.setNodes(nodes(5, 1, 1));
  assert.deepEqual(
    Array.from({ length: 7 }, () => s.pick(CLIENT, 0)),
    [0, 1, 2, 0, 1, 2, 0],
  );
  // Node 2 leaves: the rotation continues after node 0 (the last pick), then wraps.
  s.setNodes(nodes(5, 1, 1).filter((n) => n.slot !== 2));
  assert.deepEqual(
    Array.from({ length: 4 }, () => s.pick(CLIENT, 0)),
    [1, 0, 1, 0],
  );
});

test("wrr is smooth: weights 5,1,1 give a a b a c a a (nginx), and exact shares per cycle", () => {
  const s = createScheduler("wrr", new FakeLoad());
  s.setNodes(nodes(5, 1, 1));
  assert.deepEqual(
    Array.from({ length: 7 }, () => s.pick(CLIENT, 0)),
    [0, 0, 1, 0, 2, 0, 0],
  );
  s.setNodes(nodes(3, 2, 7, 1));
  assert.deepEqual(counts(s, 13 * 100), [300, 200, 700, 100]);
  // Within any window of sum(weights) picks every node gets exactly its weight.
  const seq = Array.from({ length: 13 * 3 }, () => s.pick(CLIENT, 0));
  for (let start = 0; start + 13 <= seq.length; start++) {
    const w = [0, 0, 0, 0];
    for (const slot of seq.slice(start, start + 13)) w[slot]!++;
    assert.deepEqual(w, [3, 2, 7, 1], `window at ${start}`);
  }
});

test("lc picks the node with the fewest connections (established weigh 256x); ties take turns", () => {
  const load = new FakeLoad();
  const s = createScheduler("lc", load);
  s.setNodes(nodes(1, 1, 1));
  assert.deepEqual(
    Array.from({ length: 6 }, () => s.pick(CLIENT, 0)),
    [0, 1, 2, 0, 1, 2],
  );
  load.act = [1, 0, 0];
  load.inact = [0, 255, 3];
  assert.equal(s.pick(CLIENT, 0), 2);
  load.inact = [0, 255, 257];
  assert.equal(s.pick(CLIENT, 0), 1);
  // Weights do not matter to lc.
  s.setNodes(nodes(100, 1, 1));
  load.act = [1, 0, 0];
  load.inact = [0, 0, 0];
  assert.notEqual(s.pick(CLIENT, 0), 0);
});

test("wlc keeps connections proportional to weights", () => {
  const load = new FakeLoad();
  const s = createScheduler("wlc", load);
  s.setNodes(nodes(3, 1, 2));
  load.act = [0, 0, 0];
  // Simulate 600 long-lived connections arriving one by one.
  for (let i = 0; i < 600; i++) load.act[s.pick(CLIENT, i)]!++;
  assert.deepEqual(load.act, [300, 100, 200]);
  // A node that already has many connections is skipped until the others catch up.
  load.act = [300, 0, 200];
  assert.deepEqual(
    Array.from({ length: 50 }, () => {
      const slot = s.pick(CLIENT, 0);
      load.act[slot]!++;
      return slot;
    }).filter((x) => x !== 1).length,
    0,
  );
});

test("sh sends a client address always to the same node and spreads addresses by weight", () => {
  const s = new SourceHash();
  s.setNodes(nodes(1, 1, 2));
  const first = s.pick(CLIENT, 1);
  for (let port = 0; port < 1000; port++) assert.equal(s.pick(CLIENT, port), first);
  const c = counts(s, 40_000, (i) => [0x0a000000 + i, 80]);
  // Buckets are dealt 1:1:2, so shares are close to 25/25/50 %.
  assert.ok(Math.abs(c[0]! / 40_000 - 0.25) < 0.03, String(c));
  assert.ok(Math.abs(c[1]! / 40_000 - 0.25) < 0.03, String(c));
  assert.ok(Math.abs(c[2]! / 40_000 - 0.5) < 0.03, String(c));
});

test("maglev table sizes are primes above 100 entries per node", () => {
  assert.ok(isPrime(2) && isPrime(65537) && isPrime(251) && !isPrime(1) && !isPrime(65535) && !isPrime(9));
  assert.equal(nextPrime(100), 101);
  assert.equal(maglevTableSize(3), 65537);
  assert.equal(maglevTableSize(3, 251), 307);
  assert.equal(maglevTableSize(1000), 100_003);
  for (const n of [1, 2, 7, 50, 700]) {
    const m = maglevTableSize(n, 1);
    assert.ok(isPrime(m) && m > 100 * n, `${n} -> ${m}`);
  }
  assert.throws(() => buildMaglevTable([], 100), RangeError);
});

test("maglev fills the table evenly, or by weight, whatever order the nodes come in", () => {
  const size = 65537;
  const share = (table: Int32Array, n: number) => {
    const c = new Array<number>(n).fill(0);
    for (const v of table) c[v]!++;
    return c.map((x) => x / table.length);
  };
  for (const n of [2, 3, 5, 12]) {
    const members = nodes(...new Array<number>(n).fill(1)).map((m) => ({
      value: m.slot,
      id: m.id,
      weight: 1,
    }));
    const table = buildMaglevTable(members, size);
    assert.ok(!table.includes(-1));
    for (const s of share(table, n)) assert.ok(Math.abs(s - 1 / n) < 0.01, `${n} nodes: share ${s}`);
    assert.deepEqual(buildMaglevTable([...members].reverse(), size), table);
  }
  const weighted = buildMaglevTable(
    [
      { value: 0, id: "a", weight: 1 },
      { value: 1, id: "b", weight: 2 },
      { value: 2, id: "c", weight: 5 },
      { value: 3, id: "d", weight: 0 },
    ],
    size,
  );
  const s = share(weighted, 4);
  assert.deepEqual(
    s.map((x) => Math.round(x * 8 * 100) / 100),
    [1, 2, 5, 0],
  );
});

test("maglev: removing a node moves only its own clients (almost), adding one takes ~1/(n+1)", () => {
  const keys = 60_000;
  const src = (i: number): [number, number] => [0x0a000000 + (i >>> 8), 1024 + (i & 0xff)];
  const pickAll = (s: MaglevHash) => Int32Array.from({ length: keys }, (_, i) => s.pick(...src(i)));

  const s = new MaglevHash();
  const all = nodes(1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  s.setNodes(all);
  const before = pickAll(s);
  for (const c of counts(s, keys, src)) assert.ok(Math.abs(c / keys - 0.1) < 0.01, `share ${c / keys}`);

  s.setNodes(all.filter((n) => n.slot !== 4));
  const after = pickAll(s);
  let movedOthers = 0;
  let onRemoved = 0;
  for (let i = 0; i < keys; i++) {
    if (before[i] === 4) {
      onRemoved++;
      assert.notEqual(after[i], 4);
    } else if (after[i] !== before[i]) movedOthers++;
  }
  // Maglev trades a little disruption for balance; mod-N hashing would move ~90% here.
  assert.ok(movedOthers / (keys - onRemoved) < 0.02, `disruption ${movedOthers / (keys - onRemoved)}`);

  // Adding node 4 back restores the original table exactly (it depends only on the set).
  s.setNodes(all);
  assert.deepEqual(pickAll(s), before);

  // Adding an eleventh node: about 1/11 of clients move, and nearly all of them to it.
  s.setNodes([...all, { slot: 10, id: "node11", weight: 1 }]);
  const grown = pickAll(s);
  let moved = 0;
  let movedElsewhere = 0;
  for (let i = 0; i < keys; i++) {
    if (grown[i] !== before[i]) {
      moved++;
      if (grown[i] !== 10) movedElsewhere++;
    }
  }
  assert.ok(Math.abs(moved / keys - 1 / 11) < 0.02, `moved ${moved / keys}`);
  assert.ok(movedElsewhere / keys < 0.02, `moved to old nodes ${movedElsewhere / keys}`);
});

test("mh hashes the client port too, so one client's connections spread", () => {
  const s = createScheduler("mh", new FakeLoad());
  s.setNodes(nodes(1, 1, 1));
  const c = counts(s, 30_000, (i) => [CLIENT, 10_000 + i]);
  for (const x of c) assert.ok(Math.abs(x / 30_000 - 1 / 3) < 0.02, String(c));
  // Deterministic: the same endpoint always maps to the same node.
  assert.equal(s.pick(CLIENT, 5555), s.pick(CLIENT, 5555));
  assert.ok(s.consistent && createScheduler("sh", new FakeLoad()).consistent);
  assert.ok(!createScheduler("rr", new FakeLoad()).consistent);
});
