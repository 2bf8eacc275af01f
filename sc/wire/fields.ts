// Range checks shared by the emitters (not re-exported from index.ts).

/** True if x is an integer in 0..255 (false for NaN, fractions, negatives). */
export function isUint8(x: number): boolean {
  return (x & 0xff) === x;
}

export function isUint16(x: number): boolean {
  return (x & 0xffff) === x;
}

export function isUint32(x: number): boolean {
  return x >>> 0 === x;
}

/** True if `off` is an integer and buf[off, off+length) lies inside `buf`. */
export function fits(buf: Uint8Array, off: number, length: number): boolean {
  return off >= 0 && Math.floor(off) === off && off + length <= buf.length;
}
