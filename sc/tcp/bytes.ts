// Copying helpers. Received payloads are views into a device buffer that is reused after
// input() returns, so everything we keep is copied into a Buffer of our own. (Never call
// `.slice()` on a possible Buffer to copy: Buffer#slice is a view.)

/** A new Buffer holding src[start, end). Small copies come from node's Buffer pool. */
export function copyBytes(src: Uint8Array, start = 0, end = src.length): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  out.set(start === 0 && end === src.length ? src : src.subarray(start, end));
  return out;
}

/** A Buffer view of a Uint8Array (no copy). */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length);
}
