// 32-bit hashes for the dispatcher: connection-table buckets, source hashing and the
// Maglev permutations. Pure integer arithmetic (Math.imul), no allocation.

import { fmix32 } from "../common/hash.js";

/** Hash of a client endpoint (uint32 address, port); `seed` selects an independent function. */
export function hashEndpoint(addr: number, port: number, seed = 0): number {
  return fmix32(fmix32(addr ^ seed) ^ Math.imul(port + 1, 0x9e3779b1));
}

/** Hash of a TCP 4-tuple, for the connection table's buckets. */
export function hashTuple(srcAddr: number, srcPort: number, dstAddr: number, dstPort: number): number {
  return fmix32(
    fmix32(srcAddr) ^ Math.imul(dstAddr, 0x27d4eb2f) ^ Math.imul((srcPort << 16) | dstPort, 0x9e3779b1),
  );
}

/** FNV-1a over the UTF-16 code units of a string, then mixed; `seed` varies the basis. */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
