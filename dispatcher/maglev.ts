// Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4), weighted the way
// Linux IPVS's ip_vs_mh does it: in every round each node claims `weight / gcd` slots of
// the lookup table, each at the next free position of its own permutation. A node's
// permutation depends only on its id, so removing or adding a node moves few slots that
// belonged to the others.
import { hashString } from "./hash.js";

/** Default lookup table size: Maglev's own default, a prime. */
export const MAGLEV_DEFAULT_TABLE_SIZE = 65537;

export interface MaglevMember {
  /** Returned by lookups (the dispatcher uses its node slot number). */
  value: number;
  /** Stable identity that seeds the permutation. */
  id: string;
  /** Relative share of the table; 0 means not in the table. */
  weight: number;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export function nextPrime(n: number): number {
  let p = Math.max(2, Math.ceil(n));
  while (!isPrime(p)) p++;
  return p;
}

/**
 * Table size for `members` nodes: at least `minSize` and strictly more than 100 entries per
 * node (so each node's share is within about 1% of its weight), rounded up to a prime.
 */
export function maglevTableSize(members: number, minSize = MAGLEV_DEFAULT_TABLE_SIZE): number {
  return nextPrime(Math.max(minSize, 100 * members + 1));
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Fills a lookup table of `size` (a prime) slots with member values; -1 everywhere when no
 * member has a positive weight.
 */
export function buildMaglevTable(members: readonly MaglevMember[], size: number): Int32Array {
  if (!isPrime(size)) throw new RangeError(`Maglev table size must be prime, got ${size}`);
  const table = new Int32Array(size).fill(-1);
  // Sorting by id makes the table independent of the order members were given in.
  const live = members.filter((m) => m.weight > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (live.length === 0) return table;
  const g = live.reduce((acc, m) => gcd(acc, m.weight), 0);
  const n = live.length;
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  const turns = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const m = live[i]!;
    pos[i] = hashString(m.id, 0x6d61676c) % size;
    skip[i] = (hashString(m.id, 0x65763031) % (size - 1)) + 1;
    turns[i] = m.weight / g;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      for (let t = 0; t < turns[i]!; t++) {
        let c = pos[i]!;
        while (table[c] !== -1) c = (c + skip[i]!) % size;
        table[c] = live[i]!.value;
        pos[i] = (c + skip[i]!) % size;
        if (++filled === size) return table;
      }
    }
  }
}
