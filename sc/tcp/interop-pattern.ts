// The deterministic byte pattern the interop service sends (and tests check against): a
// 1 MiB block of xorshift32 output repeated, so any length has a known SHA-256 without
// storing it.

import { createHash } from "node:crypto";

export const PATTERN_BLOCK = 1 << 20;

let block: Buffer | undefined;

export function interopPattern(): Buffer {
  if (block !== undefined) return block;
  const b = Buffer.allocUnsafe(PATTERN_BLOCK);
  let x = 0x9e3779b9;
  for (let i = 0; i < PATTERN_BLOCK; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  block = b;
  return b;
}

/** SHA-256 hex of the first `bytes` bytes of the repeated pattern. */
export function patternSha256(bytes: number): string {
  const p = interopPattern();
  const h = createHash("sha256");
  for (let off = 0; off < bytes; off += PATTERN_BLOCK)
    h.update(p.subarray(0, Math.min(PATTERN_BLOCK, bytes - off)));
  return h.digest("hex");
}
