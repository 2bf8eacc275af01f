// Which connection-table key is fastest for Map lookups (key construction + get)?
//   npm run build && node dist/bench/wire-tuple-key.js
// Compares the exact 6-char string of fourTupleKey, a decimal template string, and exact
// numeric endpoint keys (48-bit; a nested Map when both endpoints vary). Figures: docs/wire.md.

import { endpointKey, fourTupleKey } from "../sc/wire/addr.js";
import { Prng } from "../sc/wire/testing.js";

const LOOKUPS = 2_000_000;
const ROUNDS = 3;
const VIP = 0xc6126401;
let sink = 0;

function measure(name: string, size: number, lookup: (t: number[]) => unknown, tuples: number[][]): void {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < LOOKUPS; i++) {
      if (lookup(tuples[(i * 7919) % tuples.length]) !== undefined) sink++;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / LOOKUPS);
  }
  console.log(
    `${String(size).padStart(7)} conns  ${name.padEnd(40)} ${best.toFixed(1).padStart(7)} ns/lookup`,
  );
}

console.log(`connection-table key + Map.get (node ${process.version}, best of ${ROUNDS} x ${LOOKUPS})`);
for (const size of [100, 10_000, 100_000]) {
  const r = new Prng(size);
  const tuples: number[][] = [];
  for (let i = 0; i < size; i++) tuples.push([0xc6120000 + r.below(65536), 1024 + r.below(64512), VIP, 80]);

  const strings = new Map<string, number[]>();
  const templates = new Map<string, number[]>();
  const numbers = new Map<number, number[]>();
  const nested = new Map<number, Map<number, number[]>>();
  for (const t of tuples) {
    strings.set(fourTupleKey(t[0], t[1], t[2], t[3]), t);
    templates.set(`${t[0]}:${t[1]}:${t[2]}:${t[3]}`, t);
    numbers.set(endpointKey(t[0], t[1]), t);
    const local = endpointKey(t[2], t[3]);
    let inner = nested.get(local);
    if (inner === undefined) nested.set(local, (inner = new Map()));
    inner.set(endpointKey(t[0], t[1]), t);
  }
  measure(
    "fourTupleKey (6-char string)",
    size,
    (t) => strings.get(fourTupleKey(t[0], t[1], t[2], t[3])),
    tuples,
  );
  measure("template string a:b:c:d", size, (t) => templates.get(`${t[0]}:${t[1]}:${t[2]}:${t[3]}`), tuples);
  measure("endpointKey (number, fixed local end)", size, (t) => numbers.get(endpointKey(t[0], t[1])), tuples);
  measure(
    "nested Map by endpointKey (exact 4-tuple)",
    size,
    (t) => nested.get(endpointKey(t[2], t[3]))?.get(endpointKey(t[0], t[1])),
    tuples,
  );
}
console.log(`(sink ${sink % 10})`);
