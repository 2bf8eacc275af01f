import { test } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createHash } from "node:crypto";
import { contentKey, documentBytes, documentChunks, documentSha256 } from "./content.js";

/** AES-256-CTR written out by hand from AES-256-ECB: an independent check of the scheme. */
function referenceBytes(docPath: string, size: number): Buffer {
  const key = createHash("sha256").update(docPath, "utf8").digest();
  const ecb = createCipheriv("aes-256-ecb", key, null).setAutoPadding(false);
  const blocks = Math.ceil(size / 16);
  const counters = Buffer.alloc(blocks * 16);
  for (let i = 0; i < blocks; i++) counters.writeUInt32BE(i, i * 16 + 12);
  return Buffer.concat([ecb.update(counters), ecb.final()]).subarray(0, size);
}

test("document bytes are AES-256-CTR(key = SHA-256(path), IV 0) of zeros", () => {
  for (const [path, size] of [
    ["/index.html", 7280],
    ["/a b/é.gif", 33],
    ["/x", 0],
    ["/y", 1],
  ] as const) {
    assert.deepEqual(documentBytes(path, size), referenceBytes(path, size), path);
  }
  assert.deepEqual(contentKey("/x"), createHash("sha256").update("/x").digest());
});

test("content depends on the path and is stable; SHA-256 matches the bytes", () => {
  const a = documentBytes("/a.html", 4096);
  assert.deepEqual(documentBytes("/a.html", 4096), a);
  assert.notDeepEqual(documentBytes("/b.html", 4096), a);
  // A shorter document is a prefix of a longer one with the same path.
  assert.deepEqual(documentBytes("/a.html", 100), a.subarray(0, 100));
  assert.equal(documentSha256("/a.html", 4096), createHash("sha256").update(a).digest("hex"));
});

test("any byte range is computed directly (CTR seeks), across 1 MiB chunk boundaries", () => {
  const size = (1 << 20) * 2 + 777;
  const whole = documentBytes("/big.bin", size);
  assert.equal(whole.length, size);
  for (const [s, e] of [
    [0, 1],
    [5, 21],
    [15, 17],
    [(1 << 20) - 3, (1 << 20) + 40],
    [size - 1, size],
    [size, size],
  ]) {
    assert.deepEqual(documentBytes("/big.bin", size, s, e), whole.subarray(s, e), `${s}-${e}`);
  }
  const chunks = [...documentChunks("/big.bin", size)];
  assert.deepEqual(
    chunks.map((c) => c.length),
    [1 << 20, 1 << 20, 777],
  );
  assert.throws(() => documentBytes("/big.bin", size, 10, size + 1), RangeError);
});
