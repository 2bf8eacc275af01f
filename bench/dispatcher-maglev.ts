// Maglev (the dispatcher's `mh` scheduler): balance, disruption when a node leaves or joins,
// and table rebuild time, for a few cluster sizes.
//
//   node dist/bench/dispatcher-maglev.js [--keys N] [--json]
//
// Keys are client endpoints (address, port) spread over 256 ports per address. "Largest share
// deviation" is max |share - 1/n| * n over the nodes (includes the sampling noise of N keys).
import { buildMaglevTable } from "../dispatcher/maglev.js";
import { MaglevHash, type SchedNode } from "../dispatcher/schedulers.js";

const argv = process.argv.slice(2);
const keys = argv.includes("--keys")
  ? Math.min(Number(argv[argv.indexOf("--keys") + 1]), 5_000_000)
  : 200_000;
const json = argv.includes("--json");

const src = (i: number): [number, number] => [0x0a000000 + (i >>> 8), 1024 + (i & 0xff)];
const pickAll = (s: MaglevHash) => Int32Array.from({ length: keys }, (_, i) => s.pick(...src(i)));

const rows = [];
for (const n of [3, 10, 50, 200]) {
  const nodes: SchedNode[] = Array.from({ length: n }, (_, i) => ({
    slot: i,
    id: `node${i + 1}`,
    weight: 1,
  }));
  const s = new MaglevHash();
  s.setNodes(nodes);
  const before = pickAll(s);
  const counts = new Array<number>(n).fill(0);
  for (const v of before) counts[v]!++;
  const maxDeviation = Math.max(...counts.map((c) => Math.abs(c / keys - 1 / n) * n));

  s.setNodes(nodes.filter((x) => x.slot !== 1));
  const removed = pickAll(s);
  let others = 0;
  let movedOthers = 0;
  for (let i = 0; i < keys; i++) {
    if (before[i] === 1) continue;
    others++;
    if (removed[i] !== before[i]) movedOthers++;
  }

  s.setNodes([...nodes, { slot: n, id: `node${n + 1}`, weight: 1 }]);
  const grown = pickAll(s);
  let moved = 0;
  for (let i = 0; i < keys; i++) if (grown[i] !== before[i]) moved++;

  const members = nodes.map((x) => ({ value: x.slot, id: x.id, weight: 1 }));
  const t0 = performance.now();
  buildMaglevTable(members, s.tableSize);
  const buildMs = performance.now() - t0;

  rows.push({
    nodes: n,
    tableSize: s.tableSize,
    maxShareDeviation: maxDeviation,
    removeOneMovedOthers: movedOthers / others,
    addOneMoved: moved / keys,
    addOneIdeal: 1 / (n + 1),
    buildMs,
  });
}

if (json) console.log(JSON.stringify({ keys, rows }));
else {
  console.log(`Maglev over ${keys.toLocaleString("en")} client endpoints`);
  console.log("nodes  table    max share dev.  remove one: others moved  add one: moved (ideal)  rebuild");
  for (const r of rows) {
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    console.log(
      `${String(r.nodes).padEnd(7)}${String(r.tableSize).padEnd(9)}${pct(r.maxShareDeviation).padEnd(16)}` +
        `${pct(r.removeOneMovedOthers).padEnd(26)}${`${pct(r.addOneMoved)} (${pct(r.addOneIdeal)})`.padEnd(24)}` +
        `${r.buildMs.toFixed(1)} ms`,
    );
  }
}
