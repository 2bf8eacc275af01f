// Deterministic document content: the bytes of a generated document depend only on its
// path, so anyone can recompute (and verify) them without the files.
//
//   key   = SHA-256(UTF-8 docPath)            docPath from the root, e.g. "/a/index.html"
//   bytes = AES-256-CTR keystream(key, IV = 16 zero bytes), i.e. AES-256-CTR of zeros
//
// Byte i of a document is keystream byte i, so any range is computable directly (CTR
// seeks), and the whole document is `openssl enc -aes-256-ctr -K <key hex> -iv 0 -nosalt`
// over `size` zero bytes. AES-NI makes this a few GB/s: generating a site is disk-bound.
// The bytes look random, so compression (gzip on the wire) cannot flatter a benchmark.
import { createCipheriv, createHash, type Cipher } from "node:crypto";

export const CONTENT_SCHEME = "aes-256-ctr(key=sha256(docPath), iv=0)";
const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);

export function contentKey(docPath: string): Buffer {
  return createHash("sha256").update(docPath, "utf8").digest();
}

function cipherAt(docPath: string, offset: number): Cipher {
  const iv = Buffer.alloc(16);
  // The 128-bit big-endian counter starts at 0; block n covers bytes [16n, 16n+16).
  const block = Math.floor(offset / 16);
  iv.writeUInt32BE(Math.floor(block / 2 ** 32), 8);
  iv.writeUInt32BE(block % 2 ** 32, 12);
  const c = createCipheriv("aes-256-ctr", contentKey(docPath), iv);
  const skip = offset % 16;
  if (skip > 0) c.update(ZEROS.subarray(0, skip));
  return c;
}

/** Yields the document's bytes [start, end) in chunks of up to 1 MiB. */
export function* documentChunks(docPath: string, size: number, start = 0, end = size): Generator<Buffer> {
  if (start < 0 || end > size || start > end) throw new RangeError(`bad range ${start}-${end} of ${size}`);
  const c = cipherAt(docPath, start);
  for (let pos = start; pos < end; pos += CHUNK) {
    yield c.update(ZEROS.subarray(0, Math.min(CHUNK, end - pos)));
  }
}

/** The document's bytes [start, end) in one buffer (for small documents and ranges). */
export function documentBytes(docPath: string, size: number, start = 0, end = size): Buffer {
  return Buffer.concat([...documentChunks(docPath, size, start, end)]);
}

/** SHA-256 (hex) of the whole document, computed without materializing it. */
export function documentSha256(docPath: string, size: number): string {
  const h = createHash("sha256");
  for (const chunk of documentChunks(docPath, size)) h.update(chunk);
  return h.digest("hex");
}
