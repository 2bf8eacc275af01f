// Integer hashing shared by the URL mapper (server/membership/mapper.ts) and the dispatcher's
// tables (dispatcher/hash.ts). Pure arithmetic (Math.imul), no allocation.

/** MurmurHash3's finaliser: a cheap full-avalanche mix of one 32-bit word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
