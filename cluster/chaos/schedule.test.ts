import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_DURATIONS, FAULT_KINDS, FaultScheduleError, planFaults } from "./schedule.js";

const NODES = ["node1", "node2", "node3"];

test("the same seed gives the same schedule; another seed another one", () => {
  const a = planFaults({ seed: 7, durationS: 600, nodes: NODES, maxFaults: 20 });
  const b = planFaults({ seed: 7, durationS: 600, nodes: NODES, maxFaults: 20 });
  const c = planFaults({ seed: 8, durationS: 600, nodes: NODES, maxFaults: 20 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test("faults never overlap, each is followed by its settle time, and all end inside the run", () => {
  const settle: [number, number] = [12, 20];
  for (let seed = 0; seed < 50; seed++) {
    const fs = planFaults({
      seed,
      durationS: 900,
      nodes: NODES,
      maxFaults: 1000,
      settleS: settle,
      warmupS: 10,
    });
    assert.ok(fs.length > 0);
    assert.ok(fs[0]!.atS >= 10);
    for (let i = 0; i < fs.length; i++) {
      const f = fs[i]!;
      assert.equal(f.index, i);
      const [lo, hi] = DEFAULT_DURATIONS[f.kind];
      assert.ok(f.durationS >= lo && f.durationS <= hi, `${f.kind} ${f.durationS}`);
      assert.ok(f.atS + f.durationS + settle[0] <= 900);
      if (i > 0) {
        const p = fs[i - 1]!;
        assert.ok(
          f.atS >= p.atS + p.durationS + settle[0] - 0.05,
          `#${i} starts inside #${i - 1}'s settle time`,
        );
      }
    }
  }
});

test("bounded in count; every kind comes once per round; targets fit the kind", () => {
  const fs = planFaults({ seed: 3, durationS: 100_000, nodes: NODES, maxFaults: 25 });
  assert.equal(fs.length, 25);
  for (let r = 0; r + FAULT_KINDS.length <= 25; r += FAULT_KINDS.length)
    assert.deepEqual(
      fs
        .slice(r, r + FAULT_KINDS.length)
        .map((f) => f.kind)
        .sort(),
      [...FAULT_KINDS].sort(),
    );
  for (const f of fs) {
    if (f.kind === "dispatcher_restart") assert.equal(f.target, "dispatcher");
    else if (f.kind === "origin_stop") assert.equal(f.target, "origin");
    else assert.ok(NODES.includes(f.target));
    // A purge is instant: it has no duration to undo.
    if (f.kind === "purge") assert.equal(f.durationS, 0);
    if (f.kind === "link_loss") assert.ok(f.lossPercent! >= 5 && f.lossPercent! <= 20);
    else assert.equal(f.lossPercent, undefined);
  }
  assert.equal(planFaults({ seed: 3, durationS: 100_000, nodes: NODES, maxFaults: 0 }).length, 0);
});

test("only the kinds asked for; a short run holds fewer faults than asked", () => {
  const fs = planFaults({
    seed: 1,
    durationS: 300,
    nodes: NODES,
    maxFaults: 100,
    kinds: ["dispatcher_restart"],
  });
  assert.ok(fs.length >= 10 && fs.length < 100);
  assert.ok(fs.every((f) => f.kind === "dispatcher_restart"));
  assert.deepEqual(planFaults({ seed: 1, durationS: 20, nodes: NODES, maxFaults: 5 }), []);
});

test("bad options are refused", () => {
  const base = { seed: 1, durationS: 60, nodes: NODES, maxFaults: 3 };
  assert.throws(() => planFaults({ ...base, kinds: [] }), FaultScheduleError);
  assert.throws(() => planFaults({ ...base, durationS: 0 }), FaultScheduleError);
  assert.throws(() => planFaults({ ...base, maxFaults: -1 }), FaultScheduleError);
  assert.throws(() => planFaults({ ...base, nodes: [] }), FaultScheduleError);
  assert.throws(() => planFaults({ ...base, nodes: [], kinds: ["purge"] }), FaultScheduleError);
  assert.throws(() => planFaults({ ...base, settleS: [5, 2] }), FaultScheduleError);
  assert.throws(() => planFaults({ ...base, lossPercent: [5, 120] }), FaultScheduleError);
  // Without node faults no node is needed.
  assert.doesNotThrow(() => planFaults({ ...base, nodes: [], kinds: ["origin_stop"] }));
});
